//! History, Last-Event-ID replay, the registry, filtered sends and metrics, over real
//! loopback sockets.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use sse_engine::{Config, ConnectOptions, Engine, ErrorKind, Event, HistoryLimits, LifecycleEvent};

fn quiet() -> Config {
    Config {
        heartbeat: None,
        ..Config::default()
    }
}

fn resume(channels_: &[&str], last_event_id: &str) -> ConnectOptions {
    ConnectOptions {
        last_event_id: Some(last_event_id.into()),
        ..channels(channels_)
    }
}

/// Connects, skips the head, and returns the client.
fn open(engine: &Engine, options: &ConnectOptions) -> (SseClient, u64) {
    let (mut c, id) = connect(engine, options).unwrap();
    c.read_head();
    (c, id)
}

#[test]
fn engine_ids_are_short_ascii_and_increase_in_publish_order() {
    let engine = Engine::start(quiet()).unwrap();
    let (mut c, _) = open(&engine, &channels(&["a", "b"]));
    engine.broadcast("a", &Event::new("1")).unwrap();
    engine.broadcast("b", &Event::new("2")).unwrap();
    engine.broadcast_all(&Event::new("3")).unwrap();
    engine
        .broadcast("a", &Event::new("4").with_id("mine"))
        .unwrap();
    let ids: Vec<String> = (0..4)
        .map(|_| c.next_event().unwrap().id.unwrap())
        .collect();
    let (epoch, _) = ids[0].split_once('-').unwrap();
    let seqs: Vec<u64> = ids[..3]
        .iter()
        .map(|id| {
            assert!(id.len() <= 16 && id.is_ascii(), "{id}");
            let (e, seq) = id.split_once('-').unwrap();
            assert_eq!(e, epoch);
            seq.parse().unwrap()
        })
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    assert_eq!(ids[3], "mine");

    // Direct sends get no engine id; auto_ids off gives none either.
    let engine = Engine::start(Config {
        auto_ids: false,
        ..quiet()
    })
    .unwrap();
    let (mut c, id) = open(&engine, &channels(&["a"]));
    engine.broadcast("a", &Event::new("x")).unwrap();
    engine.send_to_client(id, &Event::new("y")).unwrap();
    assert_eq!(c.next_event().unwrap().id, None);
    assert_eq!(c.next_event().unwrap().id, None);
}

#[test]
fn reconnecting_while_publishing_goes_on_loses_and_doubles_nothing() {
    let engine = Arc::new(Engine::start(quiet()).unwrap());
    const TOTAL: usize = 3000;
    let publisher = {
        let engine = engine.clone();
        std::thread::spawn(move || {
            for i in 0..TOTAL {
                engine
                    .broadcast("feed", &Event::new(i.to_string()))
                    .unwrap();
                if i % 50 == 0 {
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
        })
    };
    let mut received: Vec<usize> = Vec::new();
    let mut last_id: Option<String> = None;
    let mut sessions = 0;
    while received.last() != Some(&(TOTAL - 1)) {
        let options = match &last_id {
            Some(id) => resume(&["feed"], id),
            None => channels(&["feed"]),
        };
        if sessions > 0 {
            // Stay away a moment so events are published while disconnected.
            std::thread::sleep(Duration::from_millis(15));
        }
        let (mut c, _) = open(&engine, &options);
        sessions += 1;
        // Read a stretch, then vanish mid-stream (unless this is the end).
        for _ in 0..400 {
            let Some(item) = c.next_event() else { break };
            received.push(item.data.unwrap().parse().unwrap());
            last_id = item.id;
            if received.last() == Some(&(TOTAL - 1)) {
                break;
            }
        }
    }
    publisher.join().unwrap();
    let first = received[0];
    let expected: Vec<usize> = (first..TOTAL).collect();
    assert_eq!(received, expected, "lost, doubled or reordered events");
    assert!(sessions >= 5, "only {sessions} sessions");
    assert!(engine.stats().events_replayed > 0);
}

#[test]
fn replay_spans_channels_and_broadcast_all_in_publish_order() {
    let engine = Engine::start(quiet()).unwrap();
    let (mut c, _) = open(&engine, &channels(&["a", "b"]));
    engine.broadcast("a", &Event::new("a0")).unwrap();
    let resume_from = c.next_event().unwrap().id.unwrap();
    drop(c);
    let publish = [
        ("a", "a1"),
        ("c", "c1"),
        ("b", "b1"),
        ("*", "all1"),
        ("a", "a2"),
        ("c", "c2"),
        ("b", "b2"),
    ];
    for (channel, data) in publish {
        if channel == "*" {
            engine.broadcast_all(&Event::new(data)).unwrap();
        } else {
            engine.broadcast(channel, &Event::new(data)).unwrap();
        }
    }
    let (mut c, _) = open(&engine, &resume(&["a", "b"], &resume_from));
    let got: Vec<String> = (0..5).map(|_| c.next_data()).collect();
    assert_eq!(got, ["a1", "b1", "all1", "a2", "b2"]);
    engine.broadcast("a", &Event::new("live")).unwrap();
    assert_eq!(c.next_data(), "live");
}

#[test]
fn callers_ids_resume_too() {
    let engine = Engine::start(quiet()).unwrap();
    for i in 1..=5 {
        engine
            .broadcast(
                "a",
                &Event::new(format!("d{i}")).with_id(format!("order-{i}")),
            )
            .unwrap();
    }
    let (mut c, _) = open(&engine, &resume(&["a"], "order-3"));
    let a = c.next_event().unwrap();
    assert_eq!(
        (a.id.as_deref(), a.data.as_deref()),
        (Some("order-4"), Some("d4"))
    );
    assert_eq!(c.next_data(), "d5");
}

fn expect_gap(engine: &Engine, events: &Recorder, options: &ConnectOptions, last: &str) {
    let (mut c, id) = open(engine, options);
    let gap = c.next_event().unwrap();
    assert_eq!(gap.event.as_deref(), Some("sse-gap"));
    let data: serde_json::Value = serde_json::from_str(gap.data.as_deref().unwrap()).unwrap();
    assert_eq!(data["lastEventId"], last);
    events.wait_for(LifecycleEvent::Gap { client: id });
    // Then the live stream, nothing replayed.
    let channel = &options.channels[0];
    engine.broadcast(channel, &Event::new("live")).unwrap();
    assert_eq!(c.next_data(), "live");
}

#[test]
fn a_client_dropped_right_after_a_gap_resumes_from_it_without_another_gap() {
    let engine = Engine::start(quiet()).unwrap();
    let events = Recorder::install(&engine);
    engine.broadcast("room", &Event::new("before")).unwrap();
    let (mut c, id) = open(&engine, &resume(&["room"], "not-an-id-of-this-run"));
    let gap = c.next_event().unwrap();
    assert_eq!(gap.event.as_deref(), Some("sse-gap"));
    // The gap carries the position the client resumes from: EventSource keeps it.
    let position = gap.id.expect("the gap event has an id");
    events.wait_for(LifecycleEvent::Gap { client: id });
    drop(c);
    engine.broadcast("room", &Event::new("missed-1")).unwrap();
    engine.broadcast("room", &Event::new("missed-2")).unwrap();
    let (mut again, again_id) = open(&engine, &resume(&["room"], &position));
    assert_eq!(again.next_data(), "missed-1");
    assert_eq!(again.next_data(), "missed-2");
    engine.broadcast("room", &Event::new("live")).unwrap();
    assert_eq!(again.next_data(), "live");
    assert!(!events
        .events()
        .contains(&LifecycleEvent::Gap { client: again_id }));
}

#[test]
fn without_auto_ids_the_gap_event_has_no_id() {
    // Events then go out without ids: a position id would stay the client's last one.
    let engine = Engine::start(Config {
        auto_ids: false,
        ..quiet()
    })
    .unwrap();
    let (mut c, _) = open(&engine, &resume(&["room"], "unknown"));
    let gap = c.next_event().unwrap();
    assert_eq!(gap.event.as_deref(), Some("sse-gap"));
    assert_eq!(gap.id, None);
}

#[test]
fn expired_foreign_and_unknown_ids_signal_a_gap() {
    let engine = Engine::start(Config {
        history: HistoryLimits {
            max_events: 3,
            max_age: Duration::from_secs(60),
        },
        ..quiet()
    })
    .unwrap();
    let events = Recorder::install(&engine);
    let (mut c, _) = open(&engine, &channels(&["a"]));
    engine.broadcast("a", &Event::new("first")).unwrap();
    let first_id = c.next_event().unwrap().id.unwrap();
    drop(c);
    for i in 0..5 {
        engine.broadcast("a", &Event::new(i.to_string())).unwrap();
    }
    // Pushed out of the 3-event ring.
    expect_gap(&engine, &events, &resume(&["a"], &first_id), &first_id);
    // Another run's id (another epoch).
    let other = Engine::start(quiet()).unwrap();
    let (mut oc, _) = open(&other, &channels(&["a"]));
    other.broadcast("a", &Event::new("x")).unwrap();
    let foreign = oc.next_event().unwrap().id.unwrap();
    assert_ne!(foreign.split('-').next(), first_id.split('-').next());
    expect_gap(&engine, &events, &resume(&["a"], &foreign), &foreign);
    // An id nobody published, and a future one of this run.
    expect_gap(
        &engine,
        &events,
        &resume(&["a"], "no-such-id"),
        "no-such-id",
    );
    let epoch = first_id.split('-').next().unwrap();
    let future = format!("{epoch}-999999");
    expect_gap(&engine, &events, &resume(&["a"], &future), &future);
    assert_eq!(engine.stats().gaps, 4);
}

#[test]
fn ids_older_than_the_age_bound_signal_a_gap_and_gap_event_can_be_off() {
    let engine = Engine::start(Config {
        history: HistoryLimits {
            max_events: 100,
            max_age: Duration::from_millis(100),
        },
        gap_event: None,
        ..quiet()
    })
    .unwrap();
    let events = Recorder::install(&engine);
    let (mut c, _) = open(&engine, &channels(&["a"]));
    engine.broadcast("a", &Event::new("old")).unwrap();
    let old = c.next_event().unwrap().id.unwrap();
    engine.broadcast("a", &Event::new("also old")).unwrap();
    std::thread::sleep(Duration::from_millis(250));
    let (mut c, id) = open(&engine, &resume(&["a"], &old));
    events.wait_for(LifecycleEvent::Gap { client: id });
    engine.broadcast("a", &Event::new("live")).unwrap();
    // No gap event (turned off) and nothing replayed: the live event comes first.
    assert_eq!(c.next_data(), "live");
    // The periodic sweep drops expired history; a channel left with nothing goes.
    engine.broadcast("gone", &Event::new("x")).unwrap();
    eventually("expired history is dropped", || {
        let channels = engine.channels().unwrap();
        channels.len() == 1 && channels[0].name == "a" && channels[0].history == 0
    });
}

#[test]
fn history_bounds_are_global_and_per_channel() {
    let engine = Engine::start(Config {
        history: HistoryLimits {
            max_events: 5,
            max_age: Duration::from_secs(60),
        },
        ..quiet()
    })
    .unwrap();
    let off = HistoryLimits {
        max_events: 0,
        max_age: Duration::from_secs(60),
    };
    let two = HistoryLimits {
        max_events: 2,
        max_age: Duration::from_secs(60),
    };
    engine.configure_channel("nohistory", off).unwrap();
    engine.configure_channel("small", two).unwrap();
    for i in 0..10 {
        for channel in ["default", "nohistory", "small"] {
            engine
                .broadcast(channel, &Event::new(i.to_string()))
                .unwrap();
        }
    }
    let sizes: Vec<(String, usize, usize)> = engine
        .channels()
        .unwrap()
        .into_iter()
        .map(|c| (c.name, c.members, c.history))
        .collect();
    assert_eq!(
        sizes,
        [
            ("default".into(), 0, 5),
            ("nohistory".into(), 0, 0),
            ("small".into(), 0, 2)
        ]
    );
    assert_eq!(engine.remove_empty_channels().unwrap(), 3);
    assert!(engine.channels().unwrap().is_empty());
    let bad = engine.configure_channel("", two).unwrap_err();
    assert_eq!(bad.kind(), ErrorKind::InvalidArgument);
}

#[test]
fn replay_is_bounded_per_step_and_the_rest_follows_as_the_client_drains() {
    let engine = Arc::new(
        Engine::start(Config {
            max_replay: 10,
            ..quiet()
        })
        .unwrap(),
    );
    let (mut c, _) = open(&engine, &channels(&["a"]));
    engine.broadcast("a", &Event::new("0")).unwrap();
    let from = c.next_event().unwrap().id.unwrap();
    drop(c);
    for i in 1..=200 {
        engine.broadcast("a", &Event::new(i.to_string())).unwrap();
    }
    let (mut c, _) = open(&engine, &resume(&["a"], &from));
    // Live publishing goes on while the replay is still being sent in steps.
    let done = Arc::new(AtomicBool::new(false));
    let publisher = {
        let engine = engine.clone();
        let done = done.clone();
        std::thread::spawn(move || {
            for i in 201..=400 {
                engine.broadcast("a", &Event::new(i.to_string())).unwrap();
            }
            done.store(true, Ordering::SeqCst);
        })
    };
    for i in 1..=400 {
        assert_eq!(c.next_data(), i.to_string());
    }
    publisher.join().unwrap();
    assert!(done.load(Ordering::SeqCst));
    let replayed = engine.stats().events_replayed;
    assert!(replayed >= 200, "replayed {replayed}");
}

#[test]
fn filtered_sends_match_equalities_and_in_lists() {
    let engine = Engine::start(quiet()).unwrap();
    let with = |meta: &str| ConnectOptions {
        metadata: Some(meta.into()),
        ..channels(&["room"])
    };
    let (mut admin, _) = open(&engine, &with(r#"{"role":"admin","tier":1}"#));
    let (mut user2, user2_id) = open(&engine, &with(r#"{"role":"user","tier":2}"#));
    let (mut bare, _) = open(&engine, &channels(&["room"]));
    assert_eq!(
        engine
            .broadcast_where("room", r#"{"role":"admin"}"#, &Event::new("admins"))
            .unwrap(),
        3
    );
    engine
        .broadcast_where("room", r#"{"tier":{"$in":[2,3]}}"#, &Event::new("tier23"))
        .unwrap();
    engine
        .broadcast_where("room", r#"{"role":"nobody"}"#, &Event::new("none"))
        .unwrap();
    engine
        .broadcast_where("room", "{}", &Event::new("everyone"))
        .unwrap();
    assert_eq!(admin.next_data(), "admins");
    assert_eq!(admin.next_data(), "everyone");
    assert_eq!(user2.next_data(), "tier23");
    assert_eq!(user2.next_data(), "everyone");
    assert_eq!(bare.next_data(), "everyone");

    // New metadata applies to sends after set_metadata.
    engine
        .set_metadata(user2_id, Some(r#"{"role":"admin"}"#))
        .unwrap();
    engine
        .broadcast_where("room", r#"{"role":"admin"}"#, &Event::new("admins2"))
        .unwrap();
    assert_eq!(admin.next_data(), "admins2");
    assert_eq!(user2.next_data(), "admins2");

    for bad in ["[]", "{", r#"{"a":{"$gt":1}}"#, r#"{"a":{"$in":3}}"#] {
        let err = engine
            .broadcast_where("room", bad, &Event::new("x"))
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{bad}");
    }
    let err = engine.set_metadata(user2_id, Some("[1]")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    let err = engine.set_metadata(999_999, None).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

#[test]
fn metadata_numbers_stay_exact_beyond_64_bits() {
    let engine = Engine::start(quiet()).unwrap();
    let big = "123456789012345678901234567890";
    let next = "123456789012345678901234567891";
    let meta = format!(r#"{{"n":{big},"x":1.10}}"#);
    let (mut exact, id) = open(
        &engine,
        &ConnectOptions {
            metadata: Some(meta),
            ..channels(&["room"])
        },
    );
    // As doubles both numbers are 1.2345678901234568e29: a filter could not tell them apart.
    let (mut other, _) = open(
        &engine,
        &ConnectOptions {
            metadata: Some(format!(r#"{{"n":{next}}}"#)),
            ..channels(&["room"])
        },
    );
    let info = engine.get_client(id).unwrap();
    let text = serde_json::Value::Object(info.metadata.unwrap()).to_string();
    assert_eq!(text, format!(r#"{{"n":{big},"x":1.10}}"#));
    engine
        .broadcast_where("room", &format!(r#"{{"n":{big}}}"#), &Event::new("big"))
        .unwrap();
    engine
        .broadcast_where("room", "{}", &Event::new("all"))
        .unwrap();
    assert_eq!(exact.next_data(), "big");
    assert_eq!(exact.next_data(), "all");
    assert_eq!(other.next_data(), "all");
}

#[test]
fn registry_queries_report_every_client() {
    let engine = Engine::start(quiet()).unwrap();
    let (mut a, a_id) = open(
        &engine,
        &ConnectOptions {
            user: Some("alice".into()),
            metadata: Some(r#"{"plan":"pro"}"#.into()),
            last_event_id: Some("before".into()),
            ..channels(&["news", "sport"])
        },
    );
    let (_b, b_id) = open(
        &engine,
        &ConnectOptions {
            user: Some("bob".into()),
            ..channels(&["news"])
        },
    );
    // "before" is not in history: a gap, whose id (the position it resumes from) is the
    // client's last event id from then on.
    let gap = a.next_event().unwrap();
    assert_eq!(gap.event.as_deref(), Some("sse-gap"));
    let info = engine.get_client(a_id).unwrap();
    assert_eq!(info.id, a_id);
    assert_eq!(info.user.as_deref(), Some("alice"));
    assert_eq!(info.channels, ["news", "sport"]);
    assert_eq!(info.metadata.unwrap()["plan"], "pro");
    assert!(info.remote_addr.unwrap().ip().is_loopback());
    assert_eq!(info.last_event_id, gap.id);
    let age = std::time::SystemTime::now()
        .duration_since(info.connected_at)
        .unwrap();
    assert!(age < WAIT);

    engine
        .broadcast("news", &Event::new("n").with_id("n-1"))
        .unwrap();
    assert_eq!(a.next_data(), "n");
    eventually("last event id is reported", || {
        engine.get_client(a_id).unwrap().last_event_id.as_deref() == Some("n-1")
    });
    let json = engine.get_client(a_id).unwrap().to_json();
    for key in [
        "id",
        "user",
        "channels",
        "metadata",
        "connected_at_ms",
        "remote_addr",
        "queued_bytes",
        "last_event_id",
    ] {
        assert!(json.get(key).is_some(), "{key} missing in {json}");
    }

    let ids =
        |list: Vec<sse_engine::ClientInfo>| list.into_iter().map(|c| c.id).collect::<Vec<_>>();
    assert_eq!(ids(engine.clients().unwrap()), [a_id, b_id]);
    assert_eq!(ids(engine.clients_in("news").unwrap()), [a_id, b_id]);
    assert_eq!(ids(engine.clients_in("sport").unwrap()), [a_id]);
    assert!(engine.clients_in("unknown").unwrap().is_empty());
    assert_eq!(ids(engine.clients_of("bob").unwrap()), [b_id]);
    assert!(engine.clients_of("nobody").unwrap().is_empty());
    let channels: Vec<(String, usize)> = engine
        .channels()
        .unwrap()
        .into_iter()
        .map(|c| (c.name, c.members))
        .collect();
    assert_eq!(channels, [("news".into(), 2), ("sport".into(), 1)]);
    assert_eq!(
        engine.get_client(12345).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        engine.clients_in("").unwrap_err().kind(),
        ErrorKind::InvalidArgument
    );
}

#[test]
fn close_channel_unsubscribes_or_disconnects_its_members() {
    let engine = Engine::start(quiet()).unwrap();
    let events = Recorder::install(&engine);
    let (mut a, a_id) = open(&engine, &channels(&["x", "keep"]));
    let (_b, b_id) = open(&engine, &channels(&["y"]));
    assert_eq!(engine.close_channel("x", false).unwrap(), 1);
    assert_eq!(engine.broadcast("x", &Event::new("gone")).unwrap(), 0);
    assert_eq!(engine.get_client(a_id).unwrap().channels, ["keep"]);
    engine.broadcast("keep", &Event::new("still here")).unwrap();
    assert_eq!(a.next_data(), "still here");

    assert_eq!(engine.close_channel("y", true).unwrap(), 1);
    events.wait_disconnect(b_id, sse_engine::DisconnectReason::Server);
    assert_eq!(engine.close_channel("never-existed", true).unwrap(), 0);
    assert!(engine.channels().unwrap().iter().all(|c| c.name != "y"));
}

#[test]
fn queries_from_a_handler_are_refused_not_deadlocked() {
    let engine = Arc::new(Engine::start(quiet()).unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    let weak = Arc::downgrade(&engine);
    engine
        .on_event(move |event| {
            if let (Some(engine), LifecycleEvent::Connected { client }) = (weak.upgrade(), event) {
                let _ = tx.send(engine.get_client(*client).unwrap_err().kind());
            }
        })
        .unwrap();
    let _c = open(&engine, &ConnectOptions::default());
    assert_eq!(rx.recv_timeout(WAIT).unwrap(), ErrorKind::InvalidArgument);
}

#[test]
fn malformed_last_event_ids_and_metadata_are_refused() {
    let engine = Engine::start(quiet()).unwrap();
    for bad in [
        "x".repeat(300),
        "caf\u{e9}".into(),
        "a\0b".into(),
        "a\nb".into(),
    ] {
        let err = connect(&engine, &resume(&["a"], &bad)).err().unwrap();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{bad:?}");
        assert!(err.message().contains("Last-Event-ID"), "{err}");
    }
    for bad in ["[]", "1", "\"s\"", "{"] {
        let options = ConnectOptions {
            metadata: Some(bad.into()),
            ..Default::default()
        };
        let err = connect(&engine, &options).err().unwrap();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{bad}");
    }
    // An empty Last-Event-ID means "none": a plain live connection.
    let (mut c, _) = open(&engine, &resume(&["a"], ""));
    engine.broadcast("a", &Event::new("live")).unwrap();
    assert_eq!(c.next_data(), "live");
    assert_eq!(engine.stats().gaps, 0);
}

#[test]
fn metrics_are_valid_prometheus_text() {
    let engine = Engine::start(quiet()).unwrap();
    let (mut c, _) = open(&engine, &channels(&["a"]));
    engine.broadcast("a", &Event::new("x")).unwrap();
    c.next_data();
    drop(c);
    eventually("the client is gone", || engine.client_count().unwrap() == 0);
    let text = engine.metrics();
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("parses as Prometheus text");
    let value = |name: &str, reason: Option<&str>| {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == name && reason.is_none_or(|r| s.labels.get("reason") == Some(r)))
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Gauge(v) => v,
                prometheus_parse::Value::Untyped(v) => v,
                _ => panic!("unexpected type for {name}"),
            })
            .unwrap_or_else(|| panic!("{name} missing in\n{text}"))
    };
    assert_eq!(value("sse_engine_connections_total", None), 1.0);
    assert_eq!(value("sse_engine_connections_open", None), 0.0);
    assert_eq!(value("sse_engine_events_published_total", None), 1.0);
    assert_eq!(value("sse_engine_disconnects_total", Some("closed")), 1.0);
    assert_eq!(value("sse_engine_disconnects_total", Some("slow")), 0.0);
    assert_eq!(value("sse_engine_channels", None), 1.0);
    assert!(matches!(
        scrape.samples.iter().find(|s| s.metric == "sse_engine_bytes_written_total").unwrap().value,
        prometheus_parse::Value::Counter(v) if v > 0.0
    ));
    for sample in &scrape.samples {
        assert!(
            sample.metric.starts_with("sse_engine_"),
            "{}",
            sample.metric
        );
        assert!(
            scrape.docs.contains_key(&sample.metric),
            "no HELP for {}",
            sample.metric
        );
    }
}

#[test]
fn events_history_never_kept_or_forgot_signal_a_gap_not_silence() {
    let engine = Engine::start(Config {
        history: HistoryLimits {
            max_events: 100,
            max_age: Duration::from_millis(100),
        },
        ..quiet()
    })
    .unwrap();
    let events = Recorder::install(&engine);
    let off = HistoryLimits {
        max_events: 0,
        max_age: Duration::ZERO,
    };
    engine.configure_channel("quiet", off).unwrap();
    let (mut c, _) = open(&engine, &channels(&["quiet", "brief"]));
    engine.broadcast("quiet", &Event::new("q1")).unwrap();
    let q1 = c.next_event().unwrap().id.unwrap();
    engine.broadcast("brief", &Event::new("b1")).unwrap();
    let b1 = c.next_event().unwrap().id.unwrap();
    drop(c);
    // Never kept: the channel has history off.
    engine.broadcast("quiet", &Event::new("q2")).unwrap();
    expect_gap(&engine, &events, &resume(&["quiet"], &q1), &q1);

    // Kept, then expired with the whole channel: the directory forgot "brief".
    engine.broadcast("brief", &Event::new("b2")).unwrap();
    eventually("the channel is forgotten", || {
        engine.channels().unwrap().iter().all(|c| c.name != "brief")
    });
    expect_gap(&engine, &events, &resume(&["brief"], &b1), &b1);
    // Resuming from the newest event of a forgotten channel misses nothing.
    let (mut c, _) = open(&engine, &channels(&["brief"]));
    engine.broadcast("brief", &Event::new("b3")).unwrap();
    let b3 = c.next_event().unwrap().id.unwrap();
    drop(c);
    eventually("the channel is forgotten again", || {
        engine.channels().unwrap().iter().all(|c| c.name != "brief")
    });
    let gaps = engine.stats().gaps;
    let (mut c, _) = open(&engine, &resume(&["a"], &b3));
    engine.broadcast("a", &Event::new("live")).unwrap();
    assert_eq!(c.next_data(), "live");
    assert_eq!(engine.stats().gaps, gaps);
}
