//! `Engine::broadcast_many` over real loopback sockets: each event reaches its channel's
//! members in order with its id, as the same broadcasts one by one would; a bad item
//! publishes nothing; history and replay see a batch as its single events.

mod common;

use std::time::Duration;

use common::*;
use sse_engine::{Config, ConnectOptions, Engine, ErrorKind, Event};

fn quiet(threads: usize) -> Config {
    Config {
        heartbeat: None,
        threads,
        ..Config::default()
    }
}

/// Connects, skips the head, and returns the client.
fn open(engine: &Engine, options: &ConnectOptions) -> SseClient {
    let (mut c, _) = connect(engine, options).unwrap();
    c.read_head();
    c
}

/// `(data, id)` of the next `n` events.
fn read(c: &mut SseClient, n: usize) -> Vec<(String, String)> {
    (0..n)
        .map(|_| {
            let e = c.next_event().expect("an event");
            (e.data.unwrap_or_default(), e.id.unwrap_or_default())
        })
        .collect()
}

fn seq_of(id: &str) -> u64 {
    id.rsplit_once('-').unwrap().1.parse().unwrap()
}

#[test]
fn each_event_reaches_its_channel_in_order_with_the_ids_single_broadcasts_get() {
    // Three reactors: the clients (and so each channel's members) are spread over them.
    let engine = Engine::start(quiet(3)).unwrap();
    let mut a1 = open(&engine, &channels(&["a"]));
    let mut a2 = open(&engine, &channels(&["a"]));
    let mut b = open(&engine, &channels(&["b"]));
    let mut ab = open(&engine, &channels(&["a", "b"]));
    let mut c = open(&engine, &channels(&["c"]));
    let before = engine.stats().events_published;
    let items = [
        ("a", Event::new("1")),
        ("b", Event::new("2")),
        ("a", Event::new("3").with_id("mine")),
        ("nobody", Event::new("4")),
        ("b", Event::new("5").named("note").with_retry(1500)),
        ("a", Event::new("6\nsecond line")),
    ];
    // a has 3 members (three items), b 2 (two items), nobody none.
    assert_eq!(engine.broadcast_many(&items).unwrap(), 3 * 3 + 2 * 2);
    assert_eq!(engine.stats().events_published, before + 6);

    let got_a1 = read(&mut a1, 3);
    assert_eq!(read(&mut a2, 3), got_a1);
    let data = |events: &[(String, String)]| events.iter().map(|e| e.0.clone()).collect::<Vec<_>>();
    assert_eq!(data(&got_a1), ["1", "3", "6\nsecond line"]);
    let got_b = read(&mut b, 1);
    assert_eq!(data(&got_b), ["2"]);
    let fifth = b.next_event().unwrap();
    assert_eq!(
        (fifth.event.as_deref(), fifth.retry, fifth.data.as_deref()),
        (Some("note"), Some(1500), Some("5"))
    );
    let got_ab = read(&mut ab, 5);
    assert_eq!(data(&got_ab), ["1", "2", "3", "5", "6\nsecond line"]);

    // Ids: the caller's where given, else the engine's, one number per item in order
    // (the item nobody got took its number too), as six broadcasts would.
    assert_eq!(got_a1[1].1, "mine");
    let first = seq_of(&got_a1[0].1);
    assert_eq!(seq_of(&got_b[0].1), first + 1);
    assert_eq!(seq_of(fifth.id.as_deref().unwrap()), first + 4);
    assert_eq!(seq_of(&got_a1[2].1), first + 5);
    assert_eq!(got_ab[0].1, got_a1[0].1);

    // The client of a channel the batch did not name got nothing from it.
    engine.broadcast("c", &Event::new("later")).unwrap();
    let later = c.next_event().unwrap();
    assert_eq!(later.data.as_deref(), Some("later"));
    assert_eq!(seq_of(later.id.as_deref().unwrap()), first + 6);
}

#[test]
fn a_bad_item_publishes_nothing_and_names_its_index() {
    let engine = Engine::start(quiet(1)).unwrap();
    let mut a = open(&engine, &channels(&["a"]));
    let before = engine.stats().events_published;
    let bad_channel = [("a", Event::new("1")), ("", Event::new("2"))];
    let err = engine.broadcast_many(&bad_channel).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(err.message().starts_with("item 1: "), "{err}");
    assert!(err.message().contains("channel"), "{err}");
    let bad_event = [
        ("a", Event::new("1")),
        ("a", Event::new("2")),
        ("a", Event::new("3").with_id("line\nbreak")),
    ];
    let err = engine.broadcast_many(&bad_event).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(err.message().starts_with("item 2: event id"), "{err}");
    let bad_name = [("a", Event::new("1").named(""))];
    let err = engine.broadcast_many(&bad_name).unwrap_err();
    assert!(err.message().starts_with("item 0: "), "{err}");

    // Nothing went out, nothing was counted or kept in history.
    assert_eq!(engine.stats().events_published, before);
    assert!(engine.channels().unwrap().iter().all(|c| c.history == 0));
    engine.broadcast("a", &Event::new("after")).unwrap();
    assert_eq!(a.next_data(), "after");
}

#[test]
fn an_empty_batch_returns_zero_and_a_closed_engine_refuses() {
    let engine = Engine::start(quiet(1)).unwrap();
    let none: [(&str, Event); 0] = [];
    assert_eq!(engine.broadcast_many(&none).unwrap(), 0);
    assert_eq!(engine.stats().events_published, 0);
    // Owned names work as well as borrowed ones.
    let owned = vec![("nobody".to_string(), Event::new("x"))];
    assert_eq!(engine.broadcast_many(&owned).unwrap(), 0);
    engine.shutdown(Duration::from_millis(100)).unwrap();
    let err = engine.broadcast_many(&owned).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ShutDown);
    assert_eq!(
        engine.broadcast_many(&none).unwrap_err().kind(),
        ErrorKind::ShutDown
    );
}

#[test]
fn a_client_resuming_before_a_batch_gets_its_events_replayed_in_order() {
    let engine = Engine::start(quiet(1)).unwrap();
    let mut live = open(&engine, &channels(&["a", "b"]));
    engine.broadcast("a", &Event::new("0")).unwrap();
    let resume_from = live.next_event().unwrap().id.unwrap();
    let items = [
        ("a", Event::new("1")),
        ("b", Event::new("2")),
        ("x", Event::new("not mine")),
        ("a", Event::new("3")),
    ];
    assert_eq!(engine.broadcast_many(&items).unwrap(), 3);
    let seen = read(&mut live, 3);
    let options = ConnectOptions {
        last_event_id: Some(resume_from),
        ..channels(&["a", "b"])
    };
    let mut resumed = open(&engine, &options);
    assert_eq!(read(&mut resumed, 3), seen);
    // Then the live stream, without a repeat.
    engine.broadcast("b", &Event::new("4")).unwrap();
    assert_eq!(resumed.next_data(), "4");
}

#[test]
fn a_batch_heavier_than_the_command_queue_is_delivered_whole_and_in_order() {
    // 600 events of 4,000 bytes (2.4 MB) to two channels in turn: heavier than a
    // reactor's command queue may hold (1 MiB), and every channel comes again (each
    // command names a channel once). The reader keeps up, as a browser would.
    let engine = Engine::start(quiet(1)).unwrap();
    let mut c = open(&engine, &channels(&["a", "b"]));
    let pad = "x".repeat(4000);
    let items: Vec<(&str, Event)> = (0..600)
        .map(|i| {
            let channel = if i % 2 == 0 { "a" } else { "b" };
            (channel, Event::new(format!("{i} {pad}")))
        })
        .collect();
    let reader = std::thread::spawn(move || {
        let got: Vec<usize> = (0..600)
            .map(|_| {
                let data = c.next_data();
                data.split_once(' ').unwrap().0.parse().unwrap()
            })
            .collect();
        (got, c)
    });
    assert_eq!(engine.broadcast_many(&items).unwrap(), 600);
    // The client is kept open until the counters are read: nobody was dropped (as slow).
    let (got, _client) = reader.join().unwrap();
    assert_eq!(got, (0..600).collect::<Vec<_>>());
    assert_eq!(engine.stats().disconnects.iter().sum::<u64>(), 0);
}
