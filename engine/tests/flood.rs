//! A publisher that calls `broadcast` as fast as it can must not starve the sockets,
//! the other channels or the registry, and must not grow the process without bound
//! (the command queue is bounded: such a publisher is slowed to the reactor's pace).
//!
//! Its own test binary: it measures the whole process's resident memory.

mod common;

use std::io::Read;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use sse_engine::{Config, Engine, Event};

fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

#[test]
fn a_flooding_publisher_is_slowed_and_starves_nobody() {
    let engine = Arc::new(
        Engine::start(Config {
            heartbeat: None,
            // Readers here keep up; the point is the reactor's turn, not slow drops.
            max_queue_bytes: 64 * 1024 * 1024,
            ..Config::default()
        })
        .unwrap(),
    );
    let received = Arc::new(AtomicU64::new(0));
    let mut readers = Vec::new();
    for _ in 0..50 {
        let (client, _) = connect(&engine, &channels(&["flood"])).unwrap();
        let received = received.clone();
        readers.push(std::thread::spawn(move || {
            let mut stream = client.reader.into_inner();
            let mut buf = vec![0u8; 256 * 1024];
            while let Ok(n) = stream.read(&mut buf) {
                if n == 0 {
                    break;
                }
                received.fetch_add(n as u64, Ordering::Relaxed);
            }
        }));
    }
    let (mut quiet, _) = connect(&engine, &channels(&["quiet"])).unwrap();
    quiet.read_head();
    let rss_before = resident_bytes();

    let flooding = Arc::new(AtomicBool::new(true));
    let published = Arc::new(AtomicU64::new(0));
    let publisher = {
        let (engine, flooding, published) = (engine.clone(), flooding.clone(), published.clone());
        std::thread::spawn(move || {
            let event = Event::new("x".repeat(64));
            // Longer than a client's read timeout: a starved reader fails before it ends.
            let deadline = Instant::now() + 3 * WAIT;
            while flooding.load(Ordering::Relaxed) && Instant::now() < deadline {
                engine.broadcast("flood", &event).unwrap();
                published.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    // Let the flood build up, then check every part of the engine still gets its turn.
    eventually("the flood is under way", || {
        published.load(Ordering::Relaxed) > 100_000
    });
    std::thread::sleep(Duration::from_millis(500));
    let delivered_early = received.load(Ordering::Relaxed);

    engine.broadcast("quiet", &Event::new("hello")).unwrap();
    assert_eq!(quiet.next_data(), "hello");
    assert!(
        published.load(Ordering::Relaxed) > 0 && !publisher.is_finished(),
        "the quiet channel's event arrived only after the flood ended"
    );
    let clients = engine.clients().unwrap();
    assert_eq!(clients.len(), 51);
    assert!(
        !publisher.is_finished(),
        "clients() answered only after the flood ended"
    );
    let grown = resident_bytes().saturating_sub(rss_before);
    flooding.store(false, Ordering::Relaxed);
    publisher.join().unwrap();

    assert!(
        delivered_early > 1024 * 1024,
        "the flood's readers got only {delivered_early} bytes while it ran"
    );
    // Unbounded, the command queue grew by hundreds of MiB in a second here.
    assert!(
        grown < 128 * 1024 * 1024,
        "the process grew by {} MiB during the flood",
        grown >> 20
    );

    // Everything published still arrives: 50 readers x every event (ids make frames longer).
    let total = published.load(Ordering::Relaxed);
    let frame_len = Event::new("x".repeat(64)).encode().unwrap().len() as u64;
    eventually("every published event reached every reader", || {
        received.load(Ordering::Relaxed) >= 50 * total * frame_len
    });
    Arc::try_unwrap(engine)
        .ok()
        .unwrap()
        .shutdown(Duration::from_secs(1))
        .unwrap();
    for reader in readers {
        reader.join().unwrap();
    }
}
