//! Subscribing and unsubscribing cost the same whatever a client already holds (they
//! were linear in its channel count: 100,000 channels took 12.8 s, each quarter slower
//! than the last). Measured as a ratio within one run, so the machine's speed does not
//! matter; its own test binary, so no other test shares the cores meanwhile.

mod common;

use std::time::{Duration, Instant};

use common::*;
use sse_engine::{Config, ConnectOptions, Engine, Event};

const CHANNELS: usize = 100_000;
const SAMPLE: usize = 10_000;

fn timed(range: std::ops::Range<usize>, mut call: impl FnMut(usize)) -> Duration {
    let start = Instant::now();
    for i in range {
        call(i);
    }
    start.elapsed()
}

#[test]
fn membership_changes_take_constant_time_per_call() {
    let engine = Engine::start(Config {
        heartbeat: None,
        ..Config::default()
    })
    .unwrap();
    let (mut client, id) = connect(&engine, &ConnectOptions::default()).unwrap();
    client.read_head();
    let name = |i: usize| format!("channel-{i}");

    let first = timed(0..SAMPLE, |i| {
        assert!(engine.subscribe(id, &name(i)).unwrap())
    });
    timed(SAMPLE..CHANNELS - SAMPLE, |i| {
        assert!(engine.subscribe(id, &name(i)).unwrap())
    });
    let last = timed(CHANNELS - SAMPLE..CHANNELS, |i| {
        assert!(engine.subscribe(id, &name(i)).unwrap())
    });
    assert_eq!(engine.channel_count(&name(CHANNELS - 1)).unwrap(), 1);
    // Quadratic cost made the last ten thousand about 19x slower than the first.
    let ratio = last.as_secs_f64() / first.as_secs_f64();
    assert!(
        ratio < 5.0,
        "the last {SAMPLE} subscribes took {ratio:.1}x as long as the first ({last:?} against {first:?})"
    );

    // The client is in every channel, and a channel it joined last still reaches it.
    engine
        .broadcast(&name(CHANNELS - 1), &Event::new("last"))
        .unwrap();
    assert_eq!(client.next_data(), "last");
    assert_eq!(engine.get_client(id).unwrap().channels.len(), CHANNELS);

    // Leaving is constant-time too: the first channels joined, then the last ones.
    let first = timed(0..SAMPLE, |i| {
        assert!(engine.unsubscribe(id, &name(i)).unwrap())
    });
    timed(SAMPLE..CHANNELS - SAMPLE, |i| {
        assert!(engine.unsubscribe(id, &name(i)).unwrap())
    });
    let last = timed(CHANNELS - SAMPLE..CHANNELS, |i| {
        assert!(engine.unsubscribe(id, &name(i)).unwrap())
    });
    let ratio = last.as_secs_f64() / first.as_secs_f64();
    assert!(
        ratio < 5.0,
        "unsubscribe: {ratio:.1}x ({last:?} against {first:?})"
    );
    assert!(engine.get_client(id).unwrap().channels.is_empty());
    engine.shutdown(Duration::from_secs(1)).unwrap();
}
