//! A value that goes up and down (a lag), absent until first known.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

#[derive(Debug, Default)]
pub struct Gauge {
    value: AtomicI64,
    known: AtomicBool,
}

impl Gauge {
    pub fn set(&self, value: Option<i64>) {
        if let Some(value) = value {
            self.value.store(value, Ordering::Relaxed);
        }
        self.known.store(value.is_some(), Ordering::Relaxed);
    }

    pub fn get(&self) -> Option<i64> {
        self.known
            .load(Ordering::Relaxed)
            .then(|| self.value.load(Ordering::Relaxed))
    }
}
