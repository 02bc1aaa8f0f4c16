//! Stream mode: the engine drives the client, the host takes and writes its bytes.

mod common;

use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use sse_engine::{
    Config, ConnectOptions, DisconnectReason, Engine, ErrorKind, Event, HistoryLimits,
    LifecycleEvent,
};

fn quiet() -> Config {
    Config {
        heartbeat: None,
        ..Config::default()
    }
}

/// An engine whose lifecycle events arrive on a channel, as a binding would queue them.
fn engine_with_events(config: Config) -> (Arc<Engine>, Receiver<LifecycleEvent>) {
    let engine = Arc::new(Engine::start(config).unwrap());
    let (tx, rx) = mpsc::channel();
    engine
        .on_event(move |event| {
            let _ = tx.send(*event);
        })
        .unwrap();
    (engine, rx)
}

fn next_event(events: &Receiver<LifecycleEvent>) -> LifecycleEvent {
    events.recv_timeout(WAIT).expect("a lifecycle event")
}

/// Waits for `Readable` of `client` and takes everything, as a host would.
fn take_next(engine: &Engine, events: &Receiver<LifecycleEvent>, client: u64) -> String {
    loop {
        match next_event(events) {
            LifecycleEvent::Readable { client: c } if c == client => {
                let bytes = engine.take_stream(client, 1 << 20).unwrap();
                return String::from_utf8(bytes.to_vec()).unwrap();
            }
            LifecycleEvent::Disconnected { client: c, reason } if c == client => {
                panic!("client left ({}) while waiting for bytes", reason.as_str())
            }
            _ => {}
        }
    }
}

fn wait_disconnect(events: &Receiver<LifecycleEvent>, client: u64) -> DisconnectReason {
    loop {
        if let LifecycleEvent::Disconnected { client: c, reason } = next_event(events) {
            if c == client {
                return reason;
            }
        }
    }
}

#[test]
fn the_host_takes_exactly_what_a_socket_would_have_received() {
    let (engine, events) = engine_with_events(Config {
        retry: Some(1500),
        ..quiet()
    });
    let id = engine
        .connect_stream(&ConnectOptions {
            user: Some("u".into()),
            ..channels(&["news"])
        })
        .unwrap();
    assert_eq!(
        next_event(&events),
        LifecycleEvent::Connected { client: id }
    );
    // No HTTP head in stream mode: the retry hint is the first thing.
    assert_eq!(take_next(&engine, &events, id), "retry: 1500\n\n");
    engine
        .broadcast("news", &Event::new("a\nb").named("n").with_id("1"))
        .unwrap();
    engine.send_to_user("u", &Event::new("direct")).unwrap();
    let mut got = String::new();
    while !got.ends_with("data: direct\n\n") {
        got.push_str(&take_next(&engine, &events, id));
    }
    assert_eq!(got, "id: 1\nevent: n\ndata: a\ndata: b\n\ndata: direct\n\n");
    let info = engine.get_client(id).unwrap();
    assert_eq!(info.remote_addr, None);
    assert_eq!(info.last_event_id.as_deref(), Some("1"));
    assert_eq!(info.queued_bytes, 0);
}

#[test]
fn a_partial_take_reports_readable_again_for_the_rest() {
    let (engine, events) = engine_with_events(quiet());
    let id = engine.connect_stream(&channels(&["c"])).unwrap();
    engine
        .broadcast("c", &Event::new("0123456789").with_id("x"))
        .unwrap();
    let mut parts = Vec::new();
    loop {
        match next_event(&events) {
            LifecycleEvent::Readable { client } if client == id => {
                let part = engine.take_stream(id, 7).unwrap();
                assert!(part.len() <= 7);
                parts.push(String::from_utf8(part.to_vec()).unwrap());
                if parts.concat().ends_with("\n\n") {
                    break;
                }
            }
            _ => {}
        }
    }
    assert_eq!(parts.concat(), "id: x\ndata: 0123456789\n\n");
    assert!(parts.len() >= 4);
    // Nothing queued: an empty take, not an error.
    assert!(engine.take_stream(id, 100).unwrap().is_empty());
}

#[test]
fn replay_works_in_stream_mode_too() {
    let (engine, events) = engine_with_events(Config {
        max_replay: 3,
        ..quiet()
    });
    for i in 0..10 {
        engine
            .broadcast("c", &Event::new(i.to_string()).with_id(format!("e{i}")))
            .unwrap();
    }
    let id = engine
        .connect_stream(&ConnectOptions {
            last_event_id: Some("e2".into()),
            ..channels(&["c"])
        })
        .unwrap();
    let mut got = String::new();
    while !got.contains("data: 9\n") {
        got.push_str(&take_next(&engine, &events, id));
    }
    let data: Vec<&str> = got
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .collect();
    assert_eq!(data, ["3", "4", "5", "6", "7", "8", "9"]);
}

#[test]
fn a_host_that_never_takes_is_dropped_as_slow_or_after_the_timeout() {
    let (engine, events) = engine_with_events(Config {
        max_queue_bytes: 4096,
        write_timeout: Some(Duration::from_millis(200)),
        ..quiet()
    });
    let slow = engine.connect_stream(&channels(&["big"])).unwrap();
    for _ in 0..10 {
        engine
            .broadcast("big", &Event::new("x".repeat(1000)))
            .unwrap();
    }
    assert_eq!(wait_disconnect(&events, slow), DisconnectReason::Slow);

    let idle = engine.connect_stream(&channels(&["small"])).unwrap();
    engine.broadcast("small", &Event::new("x")).unwrap();
    assert_eq!(wait_disconnect(&events, idle), DisconnectReason::Timeout);
    assert_eq!(
        engine.take_stream(idle, 10).unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

#[test]
fn disconnect_and_shutdown_let_the_host_take_what_is_queued_first() {
    let (engine, events) = engine_with_events(quiet());
    let a = engine.connect_stream(&channels(&["c"])).unwrap();
    engine.broadcast("c", &Event::new("last words")).unwrap();
    engine.disconnect(a).unwrap();
    assert!(take_next(&engine, &events, a).contains("data: last words"));
    assert_eq!(wait_disconnect(&events, a), DisconnectReason::Server);

    let b = engine.connect_stream(&channels(&["c"])).unwrap();
    let host = {
        let engine = engine.clone();
        std::thread::spawn(move || {
            let mut got = String::new();
            loop {
                match events.recv_timeout(WAIT).expect("event") {
                    LifecycleEvent::Readable { client } if client == b => {
                        if let Ok(bytes) = engine.take_stream(b, 1 << 20) {
                            got.push_str(std::str::from_utf8(&bytes).unwrap());
                        }
                    }
                    LifecycleEvent::Disconnected { client, reason } if client == b => {
                        return (got, reason);
                    }
                    _ => {}
                }
            }
        })
    };
    engine
        .shutdown_with(
            Duration::from_secs(5),
            Some(&Event::new("bye").named("end")),
        )
        .unwrap();
    let (got, reason) = host.join().unwrap();
    assert_eq!(reason, DisconnectReason::Shutdown);
    assert!(got.contains("event: end\ndata: bye\n\n"), "{got:?}");
}

#[test]
fn close_stream_ends_the_client_as_closed() {
    let (engine, events) = engine_with_events(quiet());
    let id = engine.connect_stream(&channels(&["c"])).unwrap();
    engine.close_stream(id).unwrap();
    assert_eq!(wait_disconnect(&events, id), DisconnectReason::Closed);
    assert_eq!(
        engine.close_stream(id).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(engine.broadcast("c", &Event::new("x")).unwrap(), 0);
}

#[test]
fn stream_mode_refuses_bad_input_and_limits() {
    let (engine, _events) = engine_with_events(Config {
        max_clients: Some(1),
        history: HistoryLimits {
            max_events: 10,
            max_age: Duration::from_secs(10),
        },
        ..quiet()
    });
    let with_headers = ConnectOptions {
        headers: vec![("X-A".into(), "1".into())],
        ..Default::default()
    };
    let err = engine.connect_stream(&with_headers).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    let err = engine.connect_stream(&channels(&[""])).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    let id = engine.connect_stream(&ConnectOptions::default()).unwrap();
    assert_eq!(
        engine.take_stream(id, 0).unwrap_err().kind(),
        ErrorKind::OutOfRange
    );
    let err = engine
        .connect_stream(&ConnectOptions::default())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LimitReached);
    engine.disconnect(id).unwrap();
    // A socket client cannot be taken from.
    let (_c, socket_id) = connect(&engine, &ConnectOptions::default()).unwrap();
    assert_eq!(
        engine.take_stream(socket_id, 10).unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
    engine.shutdown(Duration::ZERO).unwrap();
    assert_eq!(
        engine
            .connect_stream(&ConnectOptions::default())
            .unwrap_err()
            .kind(),
        ErrorKind::ShutDown
    );
    assert_eq!(
        engine.take_stream(1, 10).unwrap_err().kind(),
        ErrorKind::ShutDown
    );
}
