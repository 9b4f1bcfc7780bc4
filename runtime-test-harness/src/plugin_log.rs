//! The log callback handed to plugins: lines are echoed to stderr and kept
//! (the latest few thousand) so checks and tests can see what a plugin said.

use std::collections::VecDeque;
use std::io::Write;
use std::panic::catch_unwind;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Mutex, PoisonError};

pub const LEVELS: [&str; 5] = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"];
const KEEP: usize = 4096;

#[derive(Debug, Clone, serde::Serialize)]
pub struct LogLine {
    pub level: &'static str,
    pub target: String,
    pub message: String,
}

static LINES: Mutex<VecDeque<LogLine>> = Mutex::new(VecDeque::new());
/// Lines at or above this level are echoed to stderr (5 = none).
static ECHO_FROM: AtomicU8 = AtomicU8::new(2);

pub fn echo_from(level: u8) {
    ECHO_FROM.store(level, Ordering::Relaxed);
}

/// Takes every kept line, leaving none.
pub fn take() -> Vec<LogLine> {
    LINES
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .drain(..)
        .collect()
}

fn text(pointer: *const u8, len: usize) -> String {
    if pointer.is_null() || len == 0 {
        return String::new();
    }
    // SAFETY: the plugin passes a buffer valid for the call.
    String::from_utf8_lossy(unsafe { std::slice::from_raw_parts(pointer, len) }).into_owned()
}

pub extern "C" fn log_callback(
    level: u8,
    target_ptr: *const u8,
    target_len: usize,
    message_ptr: *const u8,
    message_len: usize,
) {
    // Nothing may unwind out of this function: the caller is plugin code.
    let _ = catch_unwind(|| {
        let line = LogLine {
            level: LEVELS.get(usize::from(level)).copied().unwrap_or("ERROR"),
            target: text(target_ptr, target_len),
            message: text(message_ptr, message_len),
        };
        if level >= ECHO_FROM.load(Ordering::Relaxed) {
            let _ = writeln!(
                std::io::stderr(),
                "[plugin {} {}] {}",
                line.level,
                line.target,
                line.message
            );
        }
        let mut lines = LINES.lock().unwrap_or_else(PoisonError::into_inner);
        if lines.len() == KEEP {
            lines.pop_front();
        }
        lines.push_back(line);
    });
}
