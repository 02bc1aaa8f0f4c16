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
    /// In the next command a reactor thread applies (the engine's own fault point).
    #[cfg(feature = "fault-injection")]
    Reactor,
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

    /// The binding's flag of `point`; `None` for the engine's own point (`Reactor`).
    fn flag(point: Point) -> Option<&'static AtomicBool> {
        match point {
            Point::Call => Some(&CALL),
            Point::Events => Some(&EVENTS),
            Point::Close => Some(&CLOSE),
            Point::Reactor => None,
        }
    }

    /// Panics once if `point` is armed. It unwinds as `panic!` does, with the payload
    /// `panic!` gives, but without the panic hook, which would print a message (and
    /// with `RUST_BACKTRACE` set, a slow backtrace) for each injected panic.
    pub(crate) fn hit(point: Point) {
        if flag(point).is_some_and(|f| f.swap(false, Ordering::SeqCst)) {
            std::panic::resume_unwind(Box::new("injected panic (fault-injection build)"));
        }
    }

    fn point_of(env: &Env, point: &str) -> napi::Result<Point> {
        match point {
            "call" => Ok(Point::Call),
            "events" => Ok(Point::Events),
            "close" => Ok(Point::Close),
            "reactor" => Ok(Point::Reactor),
            _ => Err(crate::error::range(
                env,
                format!("no fault point {point:?}"),
            )),
        }
    }

    /// Whether the panic armed at `point` is still to fire.
    #[napi(catch_unwind)]
    pub fn fault_pending(env: Env, point: String) -> napi::Result<bool> {
        match flag(point_of(&env, &point)?) {
            Some(flag) => Ok(flag.load(Ordering::SeqCst)),
            None => Err(crate::error::range(
                &env,
                "the reactor point is armed in the engine and not tracked here".to_string(),
            )),
        }
    }

    /// Arms one panic at `point`: `"call"` (the next export called), `"events"` (the
    /// next delivery of lifecycle events), `"close"` (the next shutdown thread) or
    /// `"reactor"` (the next command a reactor thread applies).
    #[napi(catch_unwind)]
    pub fn fault_arm(env: Env, point: String) -> napi::Result<()> {
        // Not through `error::guard`: it would fire an armed `call` panic here.
        match flag(point_of(&env, &point)?) {
            Some(flag) => flag.store(true, Ordering::SeqCst),
            None => sse_engine::fault::arm(sse_engine::fault::Fault::NextCommand),
        }
        Ok(())
    }
}
