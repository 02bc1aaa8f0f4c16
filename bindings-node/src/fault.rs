//! Injected panics for the binding's own tests (`test/panic.test.js`).
//!
//! Only with the cargo feature `fault-injection`, which is off by default and in every
//! published build: `run-tests.sh` builds a second addon with it, into
//! `target/fault-injection/`, for that one test. Without the feature [`hit`] does
//! nothing and the `fault*` exports do not exist.

/// Where an armed panic fires.
#[derive(Clone, Copy)]
pub(crate) enum Point {
    /// At the start of the next export's body, inside its guard (`error::guard`).
    Call,
    /// In the next delivery of lifecycle events on the JavaScript thread (`events.rs`).
    Events,
    /// In the shutdown thread of the next `close()` (`lib.rs`).
    Close,
}

#[cfg(not(feature = "fault-injection"))]
#[inline(always)]
pub(crate) fn hit(_point: Point) {}

#[cfg(feature = "fault-injection")]
pub(crate) use armed::hit;

#[cfg(feature = "fault-injection")]
// A test build of the crate (`--all-targets`) does not register napi exports.
#[cfg_attr(test, allow(dead_code))]
mod armed {
    use std::sync::atomic::{AtomicBool, Ordering};

    use napi::Env;
    use napi_derive::napi;

    use super::Point;

    static CALL: AtomicBool = AtomicBool::new(false);
    static EVENTS: AtomicBool = AtomicBool::new(false);
    static CLOSE: AtomicBool = AtomicBool::new(false);

    fn flag(point: Point) -> &'static AtomicBool {
        match point {
            Point::Call => &CALL,
            Point::Events => &EVENTS,
            Point::Close => &CLOSE,
        }
    }

    /// Panics once if `point` is armed. It unwinds as `panic!` does, with the payload
    /// `panic!` gives, but without the panic hook, which would print a message (and
    /// with `RUST_BACKTRACE` set, a slow backtrace) for each injected panic.
    pub(crate) fn hit(point: Point) {
        if flag(point).swap(false, Ordering::SeqCst) {
            std::panic::resume_unwind(Box::new("injected panic (fault-injection build)"));
        }
    }

    fn point_of(env: &Env, point: &str) -> napi::Result<Point> {
        match point {
            "call" => Ok(Point::Call),
            "events" => Ok(Point::Events),
            "close" => Ok(Point::Close),
            _ => Err(crate::error::range(
                env,
                format!("no fault point {point:?}"),
            )),
        }
    }

    /// Whether the panic armed at `point` is still to fire.
    #[napi(catch_unwind)]
    pub fn fault_pending(env: Env, point: String) -> napi::Result<bool> {
        Ok(flag(point_of(&env, &point)?).load(Ordering::SeqCst))
    }

    /// Arms one panic at `point`: `"call"` (the next export called), `"events"` (the
    /// next delivery of lifecycle events) or `"close"` (the next shutdown thread).
    #[napi(catch_unwind)]
    pub fn fault_arm(env: Env, point: String) -> napi::Result<()> {
        // Not through `error::guard`: it would fire an armed `call` panic here.
        flag(point_of(&env, &point)?).store(true, Ordering::SeqCst);
        Ok(())
    }
}
