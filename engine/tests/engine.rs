//! The engine over real loopback sockets.

mod common;

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use common::*;
use sse_engine::{
    Config, ConnectOptions, DisconnectReason, Engine, ErrorKind, Event, LifecycleEvent,
};

fn quiet() -> Config {
    Config {
        heartbeat: None,
        ..Config::default()
    }
}

#[test]
fn response_head_headers_and_retry_hint() {
    let engine = Engine::start(Config {
        retry: Some(3000),
        ..quiet()
    })
    .unwrap();
    let options = ConnectOptions {
        headers: vec![("X-Request-Id".into(), "r-1".into())],
        ..Default::default()
    };
    let (mut client, _) = connect(&engine, &options).unwrap();
    let head = client.read_head();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    for line in [
        "Content-Type: text/event-stream\r\n",
        "Cache-Control: no-cache\r\n",
        "Connection: keep-alive\r\n",
        "X-Accel-Buffering: no\r\n",
        "X-Request-Id: r-1\r\n",
    ] {
        assert!(head.contains(line), "missing {line:?} in {head}");
    }
    assert_eq!(client.next().unwrap().retry, Some(3000));

    // A per-connection retry overrides the engine's; head_sent skips the head.
    let options = ConnectOptions {
        retry: Some(10),
        head_sent: true,
        ..Default::default()
    };
    let (mut client, id) = connect(&engine, &options).unwrap();
    assert_eq!(client.next().unwrap().retry, Some(10));
    engine.send_to_client(id, &Event::new("x")).unwrap();
    assert_eq!(client.next_data(), "x");
}

#[test]
fn sends_reach_exactly_their_targets() {
    let engine = Engine::start(quiet()).unwrap();
    let user = |u: &str, chans: &[&str]| ConnectOptions {
        user: Some(u.into()),
        ..channels(chans)
    };
    let (mut a1, a1_id) = connect(&engine, &user("alice", &["news"])).unwrap();
    let (mut a2, _) = connect(&engine, &user("alice", &["sport"])).unwrap();
    let (mut b, b_id) = connect(&engine, &user("bob", &["news", "sport"])).unwrap();
    for c in [&mut a1, &mut a2, &mut b] {
        c.read_head();
    }

    assert_eq!(
        engine.send_to_client(a1_id, &Event::new("to-a1")).unwrap(),
        1
    );
    assert_eq!(
        engine
            .send_to_user("alice", &Event::new("to-alice"))
            .unwrap(),
        2
    );
    assert_eq!(engine.broadcast("news", &Event::new("news-1")).unwrap(), 2);
    assert_eq!(
        engine.broadcast("sport", &Event::new("sport-1")).unwrap(),
        2
    );
    assert_eq!(engine.broadcast("nobody", &Event::new("lost")).unwrap(), 0);
    assert_eq!(
        engine.send_to_user("carol", &Event::new("lost")).unwrap(),
        0
    );
    assert_eq!(
        engine
            .broadcast_all(&Event::new("all").named("tick").with_id("9"))
            .unwrap(),
        3
    );

    let take = |c: &mut SseClient, n: usize| (0..n).map(|_| c.next_data()).collect::<Vec<_>>();
    assert_eq!(take(&mut a1, 4), ["to-a1", "to-alice", "news-1", "all"]);
    assert_eq!(take(&mut a2, 3), ["to-alice", "sport-1", "all"]);
    assert_eq!(take(&mut b, 2), ["news-1", "sport-1"]);
    let last = b.next_event().unwrap();
    assert_eq!(
        (last.event.as_deref(), last.id.as_deref()),
        (Some("tick"), Some("9"))
    );

    assert_eq!(engine.client_count().unwrap(), 3);
    assert_eq!(engine.channel_count("news").unwrap(), 2);
    assert_eq!(engine.user_count("alice").unwrap(), 2);
    assert_eq!(engine.stats().events_published, 7);
    assert_eq!(
        engine
            .send_to_client(b_id + 1000, &Event::new("x"))
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );
}

#[test]
fn multiline_data_and_payloads_survive_the_wire() {
    let engine = Engine::start(quiet()).unwrap();
    let (mut c, id) = connect(&engine, &ConnectOptions::default()).unwrap();
    c.read_head();
    for data in ["a\nb", "a\r\nb", " leading space", "", "ünïcødé ✓", "x\ry"] {
        engine.send_to_client(id, &Event::new(data)).unwrap();
        let expected = data.replace("\r\n", "\n").replace('\r', "\n");
        assert_eq!(c.next_data(), expected);
    }
}

#[test]
fn subscribe_and_unsubscribe_take_effect_in_order() {
    let engine = Engine::start(quiet()).unwrap();
    let (mut c, id) = connect(&engine, &ConnectOptions::default()).unwrap();
    c.read_head();
    assert!(engine.subscribe(id, "a").unwrap());
    assert!(!engine.subscribe(id, "a").unwrap());
    assert_eq!(engine.broadcast("a", &Event::new("1")).unwrap(), 1);
    assert!(engine.unsubscribe(id, "a").unwrap());
    assert!(!engine.unsubscribe(id, "a").unwrap());
    assert_eq!(engine.broadcast("a", &Event::new("2")).unwrap(), 0);
    engine.send_to_client(id, &Event::new("3")).unwrap();
    assert_eq!(c.next_data(), "1");
    assert_eq!(c.next_data(), "3");
    assert_eq!(
        engine.subscribe(id + 7, "a").unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        engine.subscribe(id, "").unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
}

#[test]
fn lifecycle_connected_and_every_disconnect_reason() {
    let engine = Engine::start(Config {
        max_queue_bytes: 64 * 1024,
        write_timeout: Some(Duration::from_millis(300)),
        ..quiet()
    })
    .unwrap();
    let events = Recorder::install(&engine);

    // closed: the client closes in order.
    let (mut c, id) = connect(&engine, &ConnectOptions::default()).unwrap();
    events.wait_for(LifecycleEvent::Connected { client: id });
    c.read_head(); // unread bytes would make the kernel reset instead of close
    drop(c);
    events.wait_disconnect(id, DisconnectReason::Closed);

    // error: the client resets the connection.
    let (c, id) = connect(&engine, &ConnectOptions::default()).unwrap();
    socket2::SockRef::from(c.stream())
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(c);
    events.wait_disconnect(id, DisconnectReason::Error);

    // server: the host disconnects; the client sees the last event and then EOF.
    let (mut c, id) = connect(&engine, &ConnectOptions::default()).unwrap();
    c.read_head();
    engine.send_to_client(id, &Event::new("bye")).unwrap();
    engine.disconnect(id).unwrap();
    assert_eq!(c.next_data(), "bye");
    assert!(c.next().is_none());
    events.wait_disconnect(id, DisconnectReason::Server);
    assert_eq!(
        engine.disconnect(id).unwrap_err().kind(),
        ErrorKind::NotFound
    );

    // slow: the client never reads; its queue passes the limit.
    let (slow, slow_id) = connect(&engine, &channels(&["flood"])).unwrap();
    let big = Event::new("x".repeat(16 * 1024));
    for _ in 0..2000 {
        if engine.broadcast("flood", &big).unwrap() == 0 {
            break;
        }
    }
    events.wait_disconnect(slow_id, DisconnectReason::Slow);
    let high_water = engine.stats().queue_high_water;
    assert!(
        high_water <= 64 * 1024,
        "queue grew to {high_water} bytes past its 64 KiB bound"
    );
    drop(slow);

    // shutdown: every remaining client.
    let (_c, id) = connect(&engine, &ConnectOptions::default()).unwrap();
    engine.shutdown(Duration::from_secs(1)).unwrap();
    events.wait_disconnect(id, DisconnectReason::Shutdown);
    let stats = engine.stats();
    for reason in DisconnectReason::ALL {
        let expected = u64::from(reason != DisconnectReason::Timeout);
        assert_eq!(
            stats.disconnects_by(reason),
            expected,
            "{}",
            reason.as_str()
        );
    }
}

#[test]
fn heartbeats_reach_idle_clients_only() {
    let engine = Engine::start(Config {
        heartbeat: Some(Duration::from_millis(100)),
        ..Config::default()
    })
    .unwrap();
    let (mut c, _) = connect(&engine, &ConnectOptions::default()).unwrap();
    c.read_head();
    for _ in 0..3 {
        assert!(c.next().unwrap().comment);
    }
    assert!(engine.stats().heartbeats >= 3);
}

#[test]
fn limits_refuse_with_503_and_retry_after() {
    let engine = Engine::start(Config {
        max_clients: Some(2),
        max_clients_per_channel: Some(1),
        busy_retry_after_secs: 7,
        ..quiet()
    })
    .unwrap();
    let (_a, a) = connect(&engine, &channels(&["room"])).unwrap();
    let (client, server) = socket_pair();
    // Refused by a limit: the engine took the fd (it answered and closed it).
    let refused = engine
        .connect_fd(server.into(), &channels(&["room"]))
        .unwrap_err();
    assert_eq!(refused.error.kind(), ErrorKind::LimitReached, "{refused}");
    assert!(refused.fd.is_none());
    let mut answer = String::new();
    SseClient::new(client)
        .reader
        .read_to_string(&mut answer)
        .unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
        "{answer}"
    );
    assert!(answer.contains("Retry-After: 7\r\n"), "{answer}");

    let (_b, b) = connect(&engine, &ConnectOptions::default()).unwrap();
    assert_eq!(
        engine.subscribe(b, "room").unwrap_err().kind(),
        ErrorKind::LimitReached
    );
    let err = connect(&engine, &ConnectOptions::default()).err().unwrap();
    assert_eq!(err.kind(), ErrorKind::LimitReached);
    assert_eq!(engine.stats().refused_total, 2);
    engine.disconnect(a).unwrap();
    connect(&engine, &channels(&["room"])).unwrap();
}

#[test]
fn shutdown_flushes_queued_events_and_sends_the_last_one() {
    let engine = Engine::start(quiet()).unwrap();
    let (mut c, _) = connect(&engine, &channels(&["c"])).unwrap();
    c.read_head();
    // Queue far more than the socket buffers hold while the client is not reading yet.
    let payload = "z".repeat(4000);
    for i in 0..200 {
        engine
            .broadcast("c", &Event::new(format!("{i}:{payload}")))
            .unwrap();
    }
    let reader = std::thread::spawn(move || {
        let mut got = Vec::new();
        while let Some(item) = c.next_event() {
            got.push(item);
        }
        got
    });
    engine
        .shutdown_with(
            Duration::from_secs(10),
            Some(&Event::new("going away").named("shutdown")),
        )
        .unwrap();
    let got = reader.join().unwrap();
    assert_eq!(got.len(), 201);
    for (i, item) in got[..200].iter().enumerate() {
        assert!(item.data.as_ref().unwrap().starts_with(&format!("{i}:")));
    }
    assert_eq!(got[200].event.as_deref(), Some("shutdown"));
}

#[test]
fn calls_after_shutdown_fail_and_shutdown_twice_fails() {
    let engine = Engine::start(quiet()).unwrap();
    let (_c, id) = connect(&engine, &channels(&["a"])).unwrap();
    engine.shutdown(Duration::ZERO).unwrap();
    let ev = Event::new("x");
    let (_client, server) = socket_pair();
    let fd = server.as_raw_fd();
    let refused = engine
        .connect_fd(server.into(), &ConnectOptions::default())
        .unwrap_err();
    // The refused fd comes back, open.
    let server = refused.fd.expect("the caller keeps the fd");
    assert_eq!(server.as_raw_fd(), fd);
    assert!(fd_is_open(fd));
    let results = [
        engine.shutdown(Duration::ZERO).map(|_| 0),
        Err(refused.error),
        engine.send_to_client(id, &ev),
        engine.send_to_user("u", &ev),
        engine.broadcast("a", &ev),
        engine.broadcast_all(&ev),
        engine.subscribe(id, "b").map(|_| 0),
        engine.unsubscribe(id, "a").map(|_| 0),
        engine.disconnect(id).map(|_| 0),
        engine.client_count(),
        engine.channel_count("a"),
        engine.set_event_handler(None).map(|_| 0),
    ];
    for r in results {
        assert_eq!(r.unwrap_err().kind(), ErrorKind::ShutDown);
    }
    drop(server);
}

fn fd_is_open(fd: i32) -> bool {
    std::fs::read_link(format!("/proc/self/fd/{fd}")).is_ok()
}

/// Hands `fd` over, expects a refusal of `kind` that gives the same descriptor back open.
fn expect_refused_and_returned(
    engine: &Engine,
    fd: OwnedFd,
    options: &ConnectOptions,
    kind: ErrorKind,
) -> OwnedFd {
    let number = fd.as_raw_fd();
    let refused = engine.connect_fd(fd, options).unwrap_err();
    assert_eq!(refused.error.kind(), kind, "{refused}");
    let fd = refused.fd.expect("the refusal gives the fd back");
    assert_eq!(fd.as_raw_fd(), number);
    assert!(fd_is_open(number));
    fd
}

#[test]
fn bad_sockets_are_refused_and_given_back() {
    let engine = Engine::start(quiet()).unwrap();
    let opts = ConnectOptions::default();
    let refuse = |fd: OwnedFd| {
        expect_refused_and_returned(&engine, fd, &opts, ErrorKind::BadSocket);
    };
    refuse(std::fs::File::open("/proc/self/status").unwrap().into());
    let (reader, writer) = std::io::pipe().unwrap();
    refuse(reader.into());
    refuse(writer.into());
    refuse(std::net::TcpListener::bind("127.0.0.1:0").unwrap().into());
    refuse(std::net::UdpSocket::bind("127.0.0.1:0").unwrap().into());
    let (unix, _peer) = std::os::unix::net::UnixStream::pair().unwrap();
    refuse(unix.into());

    // Bad options give a good socket back too.
    let (_client, server) = socket_pair();
    let mut fd = OwnedFd::from(server);
    for bad in [
        channels(&[""]),
        ConnectOptions {
            user: Some(String::new()),
            ..Default::default()
        },
        ConnectOptions {
            metadata: Some("[1,2]".into()),
            ..Default::default()
        },
        ConnectOptions {
            metadata: Some("{not json".into()),
            ..Default::default()
        },
        ConnectOptions {
            headers: vec![("X-A".into(), "a\r\nb: c".into())],
            ..Default::default()
        },
        ConnectOptions {
            last_event_id: Some("a\nb".into()),
            ..Default::default()
        },
    ] {
        fd = expect_refused_and_returned(&engine, fd, &bad, ErrorKind::InvalidArgument);
    }
    assert!(engine.connect_fd(fd, &opts).is_ok());
}

#[test]
fn invalid_events_are_errors_and_nothing_is_sent() {
    let engine = Engine::start(quiet()).unwrap();
    let (mut c, id) = connect(&engine, &channels(&["a"])).unwrap();
    c.read_head();
    for bad in [
        Event::new("x").named("a\nb"),
        Event::new("x").named(""),
        Event::new("x").with_id("1\r2"),
        Event::new("x").with_id("1\u{0}2"),
    ] {
        assert_eq!(
            engine.broadcast("a", &bad).unwrap_err().kind(),
            ErrorKind::InvalidArgument
        );
        assert_eq!(
            engine.send_to_client(id, &bad).unwrap_err().kind(),
            ErrorKind::InvalidArgument
        );
    }
    assert_eq!(
        engine.broadcast("", &Event::new("x")).unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
    engine.send_to_client(id, &Event::new("ok")).unwrap();
    assert_eq!(c.next_data(), "ok");
}

#[test]
fn ids_are_unique_and_fit_in_53_bits_and_shards_share_the_work() {
    let engine = Engine::start(Config {
        threads: 3,
        ..quiet()
    })
    .unwrap();
    let mut clients = Vec::new();
    let mut ids = std::collections::HashSet::new();
    for _ in 0..30 {
        let (mut c, id) = connect(&engine, &channels(&["all"])).unwrap();
        c.read_head();
        assert!(id < (1 << 53));
        assert!(ids.insert(id));
        clients.push(c);
    }
    assert_eq!(engine.broadcast("all", &Event::new("hi")).unwrap(), 30);
    for c in &mut clients {
        assert_eq!(c.next_data(), "hi");
    }
}

#[test]
fn a_panicking_handler_does_not_stop_the_reactor() {
    let engine = Engine::start(quiet()).unwrap();
    engine.on_event(|_| panic!("handler bug")).unwrap();
    let (mut c, id) = connect(&engine, &ConnectOptions::default()).unwrap();
    c.read_head();
    engine
        .send_to_client(id, &Event::new("still here"))
        .unwrap();
    assert_eq!(c.next_data(), "still here");
}

#[test]
fn shutdown_from_a_handler_is_refused_not_deadlocked() {
    let engine = std::sync::Arc::new(Engine::start(quiet()).unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    let weak = std::sync::Arc::downgrade(&engine);
    engine
        .on_event(move |_| {
            if let Some(engine) = weak.upgrade() {
                let _ = tx.send(engine.shutdown(Duration::ZERO).unwrap_err().kind());
            }
        })
        .unwrap();
    let _c = connect(&engine, &ConnectOptions::default()).unwrap();
    assert_eq!(rx.recv_timeout(WAIT).unwrap(), ErrorKind::InvalidArgument);
}

#[test]
fn client_data_is_discarded_and_coalesced_bursts_arrive_whole() {
    let engine = Engine::start(quiet()).unwrap();
    let (mut c, id) = connect(&engine, &ConnectOptions::default()).unwrap();
    c.read_head();
    let mut s = c.stream();
    s.write_all(b"GET /ignored HTTP/1.1\r\n\r\n").unwrap();
    for i in 0..1000 {
        engine
            .send_to_client(id, &Event::new(i.to_string()))
            .unwrap();
    }
    for i in 0..1000 {
        assert_eq!(c.next_data(), i.to_string());
    }
    let stats = engine.stats();
    assert_eq!(stats.frames_queued, 1001);
}

/// Sends to a client that does not read until the engine has to queue for it, or the
/// client is gone already (the kernel also ends a connection whose receive window stayed
/// shut for the write timeout). Returns whether it is still connected.
fn stall(engine: &Engine, client: &SseClient, id: sse_engine::ClientId) -> bool {
    socket2::SockRef::from(client.stream())
        .set_recv_buffer_size(4096)
        .unwrap();
    // Fill the socket buffers until the engine has to keep bytes queued (more than one
    // chunk: a client that reads has its queue written at once), then stop: well below
    // the 1 MiB queue limit.
    let chunk = Event::new("y".repeat(8 * 1024));
    for _ in 0..2000 {
        match engine.send_to_client(id, &chunk) {
            Err(e) if e.kind() == ErrorKind::NotFound => return false,
            result => result.unwrap(),
        };
        match engine.get_client(id) {
            Ok(info) if info.queued_bytes > 2 * 8 * 1024 => return true,
            _ => {}
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    panic!("the client never blocked");
}

#[test]
fn a_client_that_accepts_no_bytes_is_dropped_after_the_write_timeout() {
    let engine = Engine::start(Config {
        write_timeout: Some(Duration::from_millis(300)),
        ..quiet()
    })
    .unwrap();
    let events = Recorder::install(&engine);
    let (stalled, id) = connect(&engine, &ConnectOptions::default()).unwrap();
    stall(&engine, &stalled, id);
    events.wait_disconnect(id, DisconnectReason::Timeout);
    assert_eq!(engine.stats().disconnects_by(DisconnectReason::Slow), 0);
    drop(stalled);
}

#[test]
fn a_client_stalled_during_a_long_shutdown_leaves_with_reason_shutdown() {
    let engine = Engine::start(Config {
        write_timeout: Some(Duration::from_secs(2)),
        ..quiet()
    })
    .unwrap();
    let events = Recorder::install(&engine);
    let (stalled, id) = connect(&engine, &ConnectOptions::default()).unwrap();
    assert!(
        stall(&engine, &stalled, id),
        "the client left before the shutdown"
    );
    // The flush gives up on it after the write timeout, long before the deadline.
    engine.shutdown(Duration::from_secs(3600)).unwrap();
    events.wait_disconnect(id, DisconnectReason::Shutdown);
    assert_eq!(engine.stats().disconnects_by(DisconnectReason::Timeout), 0);
    drop(stalled);
}

#[test]
fn begin_shutdown_returns_at_once_and_wait_shutdown_waits_for_the_flush() {
    let engine = Engine::start(quiet()).unwrap();
    let events = Recorder::install(&engine);
    assert_eq!(
        engine.wait_shutdown(None).unwrap_err().kind(),
        ErrorKind::InvalidArgument,
        "nothing to wait for before a shutdown began"
    );
    let (stalled, id) = connect(&engine, &ConnectOptions::default()).unwrap();
    assert!(stall(&engine, &stalled, id), "the client left early");
    let began = Instant::now();
    engine
        .begin_shutdown(Duration::from_millis(600), Some(&Event::new("bye")))
        .unwrap();
    assert!(
        began.elapsed() < Duration::from_millis(300),
        "begin_shutdown waited"
    );
    // From here the engine takes no calls, while its reactor still tries to flush.
    assert_eq!(
        engine.broadcast_all(&Event::new("x")).unwrap_err().kind(),
        ErrorKind::ShutDown
    );
    assert_eq!(
        engine
            .begin_shutdown(Duration::ZERO, None)
            .unwrap_err()
            .kind(),
        ErrorKind::ShutDown
    );
    assert!(!engine
        .wait_shutdown(Some(Duration::from_millis(50)))
        .unwrap());
    assert!(engine.wait_shutdown(None).unwrap());
    assert!(
        began.elapsed() >= Duration::from_millis(600),
        "the flush deadline was cut short"
    );
    // Stopped: the client's last event was delivered before the wait returned.
    assert!(events.events().contains(&LifecycleEvent::Disconnected {
        client: id,
        reason: DisconnectReason::Shutdown
    }));
    assert!(engine.wait_shutdown(Some(Duration::ZERO)).unwrap());
    drop(stalled);
}

#[test]
fn disconnect_delivers_everything_queued_before_it() {
    let engine = Engine::start(quiet()).unwrap();
    let (mut c, id) = connect(&engine, &ConnectOptions::default()).unwrap();
    c.read_head();
    for i in 0..500 {
        engine
            .send_to_client(id, &Event::new(i.to_string()))
            .unwrap();
    }
    engine.disconnect(id).unwrap();
    for i in 0..500 {
        assert_eq!(c.next_data(), i.to_string());
    }
    assert!(c.next().is_none());
    // A failed send is not counted as published.
    assert_eq!(
        engine
            .send_to_client(id, &Event::new("x"))
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );
    assert_eq!(engine.stats().events_published, 500);
}

#[test]
fn a_removed_handler_is_not_called_after_set_event_handler_returns() {
    let engine = Engine::start(quiet()).unwrap();
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = calls.clone();
    engine
        .on_event(move |_| {
            std::thread::sleep(Duration::from_millis(20));
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        })
        .unwrap();
    let mut clients = Vec::new();
    for _ in 0..5 {
        clients.push(connect(&engine, &ConnectOptions::default()).unwrap());
    }
    engine.set_event_handler(None).unwrap();
    let seen = calls.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(seen, 5, "every connect before the removal was reported");
    drop(clients);
    eventually("clients are gone", || engine.client_count().unwrap() == 0);
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), seen);
}

#[test]
fn an_fd_number_is_reusable_after_the_engine_closed_it() {
    let engine = Engine::start(quiet()).unwrap();
    let events = Recorder::install(&engine);
    let (mut client, server) = socket_pair();
    let fd = server.as_raw_fd();
    let id = engine
        .connect_fd(server.into(), &ConnectOptions::default())
        .unwrap();
    let mut sse = SseClient::new(client.try_clone().unwrap());
    sse.read_head();
    engine.send_to_client(id, &Event::new("ok")).unwrap();
    assert_eq!(sse.next_data(), "ok");
    // Once the engine closed it, the same number may come back and be handed over
    // (tests in parallel threads may take the number first; then there is nothing to try).
    engine.disconnect(id).unwrap();
    events.wait_disconnect(id, DisconnectReason::Server);
    let _ = client.read_to_end(&mut Vec::new());
    let mut reused = None;
    let mut keep = Vec::new();
    for _ in 0..64 {
        let (c, s) = socket_pair();
        if s.as_raw_fd() == fd {
            reused = Some((c, s));
            break;
        }
        keep.push((c, s));
    }
    if let Some((_c, s)) = reused {
        engine
            .connect_fd(s.into(), &ConnectOptions::default())
            .unwrap();
    }
}

#[test]
fn a_duplicate_of_a_handed_over_socket_is_refused() {
    let engine = Engine::start(quiet()).unwrap();
    let events = Recorder::install(&engine);
    let (client, server) = socket_pair();
    // The host keeps a duplicate (dup, F_DUPFD, a descriptor passed over a Unix socket).
    let duplicate = server.try_clone().unwrap();
    let id = engine
        .connect_fd(server.into(), &ConnectOptions::default())
        .unwrap();
    let refused = engine
        .connect_fd(duplicate.into(), &ConnectOptions::default())
        .unwrap_err();
    let err = &refused.error;
    assert_eq!(err.kind(), ErrorKind::BadSocket, "{err}");
    assert!(err.message().contains("already owns"), "{err}");
    let duplicate = refused.fd.expect("the duplicate comes back");
    assert_eq!(engine.client_count().unwrap(), 1);
    // The peer got one response head, and the stream goes on.
    let mut sse = SseClient::new(client);
    let head = sse.read_head();
    assert_eq!(head.matches("HTTP/1.1 200 OK").count(), 1, "{head}");
    engine.send_to_client(id, &Event::new("one")).unwrap();
    let item = sse.next().unwrap();
    assert_eq!(item.data.as_deref(), Some("one"), "{item:?}");
    // Once the engine closed its descriptor, the host's duplicate is a socket nobody
    // else owns: it may be handed over.
    engine.disconnect(id).unwrap();
    events.wait_disconnect(id, DisconnectReason::Server);
    engine
        .connect_fd(duplicate, &ConnectOptions::default())
        .unwrap();
}

#[test]
fn numbers_outside_their_range_are_out_of_range_and_malformed_values_invalid() {
    let kind = |config: Config| Engine::start(config).err().map(|e| e.kind());
    for bad in [
        Config {
            threads: 0,
            ..quiet()
        },
        Config {
            threads: sse_engine::MAX_THREADS + 1,
            ..quiet()
        },
        Config {
            heartbeat: Some(Duration::ZERO),
            ..quiet()
        },
        Config {
            write_timeout: Some(Duration::ZERO),
            ..quiet()
        },
        Config {
            max_queue_bytes: sse_engine::MIN_QUEUE_BYTES - 1,
            ..quiet()
        },
        Config {
            max_replay: 0,
            ..quiet()
        },
    ] {
        assert_eq!(kind(bad), Some(ErrorKind::OutOfRange));
    }
    let bad_name = Config {
        gap_event: Some("a\nb".into()),
        ..quiet()
    };
    assert_eq!(kind(bad_name), Some(ErrorKind::InvalidArgument));
}
