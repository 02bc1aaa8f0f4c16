//! Test-only fault injection (cargo feature `fault-injection`, off in every package):
//! makes the next engine call, or the next command a reactor applies, panic, so tests
//! in every language can show that the host survives and the engine fails closed.

use std::sync::atomic::{AtomicU8, Ordering};

/// Where the next panic happens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Fault {
    /// The next engine call that checks the engine is open (almost every call), on
    /// the caller's thread.
    NextCall = 1,
    /// The next command a reactor applies, on that reactor's thread.
    NextCommand = 2,
}

static ARMED: AtomicU8 = AtomicU8::new(0);

/// Arms `fault` for the whole process (one at a time; a later arm replaces it).
pub fn arm(fault: Fault) {
    ARMED.store(fault as u8, Ordering::SeqCst);
}

/// Panics here if `fault` is armed (and disarms it).
pub(crate) fn hit(fault: Fault) {
    let armed = fault as u8;
    if ARMED
        .compare_exchange(armed, 0, Ordering::SeqCst, Ordering::SeqCst)
        .is_ok()
    {
        panic!("injected fault: {fault:?}");
    }
}
