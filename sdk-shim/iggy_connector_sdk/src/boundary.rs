//! What every ABI entry point needs: panics kept on this side (an unwind out
//! of an `extern "C"` function aborts the whole runtime process) and borrowed
//! byte slices built safely from the runtime's pointers.

use std::any::Any;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};

/// Runs one ABI entry point; a panic is logged and becomes `-1`.
pub(crate) fn contain(entry: &str, id: u32, call: impl FnOnce() -> i32) -> i32 {
    match catch_unwind(AssertUnwindSafe(call)) {
        Ok(code) => code,
        Err(panic) => {
            tracing::error!(
                "connector {id} panicked in {entry}: {}; the call returns -1",
                panic_text(&*panic)
            );
            -1
        }
    }
}

pub(crate) fn panic_text(panic: &(dyn Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(non-text panic payload)")
}

/// A future that turns a panic while it is polled into an `Err`, so a
/// connector's panicking `poll` cannot kill the source loop.
pub(crate) struct CatchPanic<F>(pub F);

impl<F: Future + Unpin> Future for CatchPanic<F> {
    type Output = Result<F::Output, String>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = &mut self.0;
        match catch_unwind(AssertUnwindSafe(|| Pin::new(inner).poll(cx))) {
            Ok(Poll::Ready(value)) => Poll::Ready(Ok(value)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(panic) => Poll::Ready(Err(panic_text(&*panic).to_string())),
        }
    }
}

/// Borrows `len` bytes at `ptr` for the duration of a call; a null pointer is an empty slice.
///
/// # Safety
/// A non-null `ptr` must point to `len` readable bytes that outlive the call.
pub(crate) unsafe fn borrowed<'a>(ptr: *const u8, len: usize) -> &'a [u8] {
    if ptr.is_null() || len == 0 {
        &[]
    } else {
        // SAFETY: the runtime guarantees the pointer and length for the call.
        unsafe { std::slice::from_raw_parts(ptr, len) }
    }
}
