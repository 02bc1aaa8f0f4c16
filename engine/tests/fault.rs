//! Injected panics (cargo feature `fault-injection`): a panic in a reactor thread makes
//! the engine fail closed — its clients are closed and reported `error`, every later
//! call fails with a message saying so, stats and metrics show it — and a panic in a
//! call leaves the engine working.
//!
//! `cargo test -p sse_engine --features fault-injection --test fault` (make test runs it).
#![cfg(feature = "fault-injection")]

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use common::*;
use sse_engine::fault::{arm, Fault};
use sse_engine::{Config, ConnectOptions, DisconnectReason, Engine, ErrorKind, Event};

/// The armed fault is process-wide: one test at a time.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn a_panicking_reactor_fails_the_engine_closed() {
    let _serial = one_at_a_time();
    let engine = Engine::start(Config {
        threads: 2,
        heartbeat: None,
        ..Config::default()
    })
    .unwrap();
    let events = Recorder::install(&engine);
    let mut clients = Vec::new();
    for _ in 0..4 {
        let (mut client, id) = connect(&engine, &ConnectOptions::default()).unwrap();
        client.read_head();
        clients.push((client, id));
    }
    // The next command a reactor applies panics: the send to the first client.
    let (victim, others) = clients.split_first_mut().unwrap();
    arm(Fault::NextCommand);
    engine
        .send_to_client(victim.1, &Event::new("boom"))
        .unwrap();
    // Its reactor's clients (ids of the same parity) are closed and reported `error`.
    let dead: Vec<u64> = std::iter::once(victim.1)
        .chain(others.iter().map(|c| c.1))
        .filter(|id| id % 2 == victim.1 % 2)
        .collect();
    assert_eq!(dead.len(), 2);
    for id in &dead {
        events.wait_disconnect(*id, DisconnectReason::Error);
    }
    assert!(victim.0.read_to_end().is_empty(), "nothing after the panic");
    // Every later call says what happened, instead of queueing into a dead reactor.
    let err = engine.broadcast("news", &Event::new("x")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ShutDown);
    assert!(err.message().contains("panicked"), "{err}");
    let err = engine
        .send_to_client(others[0].1, &Event::new("x"))
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ShutDown, "{err}");
    assert!(engine.client_count().is_err());
    assert!(connect(&engine, &ConnectOptions::default()).is_err());
    let stats = engine.stats();
    assert_eq!(stats.reactor_failures, 1);
    assert_eq!(stats.disconnects_by(DisconnectReason::Error), 2);
    assert!(engine
        .metrics()
        .contains("sse_engine_reactor_failures_total 1"));
    // Shutting it down still closes the other reactor's clients, then reports the failure.
    let err = engine.shutdown(Duration::from_secs(1)).unwrap_err();
    assert!(err.message().contains("panicked"), "{err}");
    for (client, id) in others.iter_mut() {
        if !dead.contains(id) {
            client.read_to_end();
            events.wait_disconnect(*id, DisconnectReason::Shutdown);
        }
    }
    let again = engine.shutdown(Duration::ZERO).unwrap_err();
    assert_eq!(again.kind(), ErrorKind::ShutDown);
}

#[test]
fn a_panic_in_a_call_leaves_the_engine_working() {
    let _serial = one_at_a_time();
    let engine = Engine::start(Config {
        heartbeat: None,
        ..Config::default()
    })
    .unwrap();
    let (mut client, id) = connect(&engine, &ConnectOptions::default()).unwrap();
    client.read_head();
    arm(Fault::NextCall);
    let panicked = catch_unwind(AssertUnwindSafe(|| {
        engine.send_to_client(id, &Event::new("a"))
    }));
    assert!(panicked.is_err());
    engine.send_to_client(id, &Event::new("b")).unwrap();
    assert_eq!(client.next_data(), "b");
    assert_eq!(engine.stats().reactor_failures, 0);
    engine.shutdown(Duration::from_secs(1)).unwrap();
}

#[test]
fn a_client_being_disconnected_when_its_reactor_dies_is_still_reported() {
    let _serial = one_at_a_time();
    let engine = Engine::start(Config {
        heartbeat: None,
        ..Config::default()
    })
    .unwrap();
    let events = Recorder::install(&engine);
    let id = engine.connect_stream(&ConnectOptions::default()).unwrap();
    events.wait_for(sse_engine::LifecycleEvent::Connected { client: id });
    // Gone from the directory at once; the reactor dies applying the disconnect.
    arm(Fault::NextCommand);
    engine.disconnect(id).unwrap();
    events.wait_disconnect(id, DisconnectReason::Error);
}
