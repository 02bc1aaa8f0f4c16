//! A host process keeps SIGPIPE at its default action (terminate). Clients that vanish
//! while the engine is writing to them must not kill it. The scenario runs in a child
//! process: Rust's runtime ignores SIGPIPE in this one, which would hide the failure.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use sse_engine::{Config, Engine, Event};

const CHILD_ENV: &str = "SSE_ENGINE_SIGPIPE_CHILD";

#[test]
fn clients_vanishing_mid_write_do_not_kill_a_host_with_default_sigpipe() {
    if std::env::var_os(CHILD_ENV).is_some() {
        run_scenario();
        return;
    }
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "clients_vanishing_mid_write_do_not_kill_a_host_with_default_sigpipe",
            "--nocapture",
        ])
        .env(CHILD_ENV, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "child died: {:?}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("scenario done"), "{stdout}");
}

fn run_scenario() {
    // SAFETY: restoring the default disposition of SIGPIPE touches no memory; it is what
    // every C, Node or Python host has, and what this test is about.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let engine = Engine::start(Config {
        heartbeat: None,
        ..Config::default()
    })
    .unwrap();
    let payload = Event::new("p".repeat(32 * 1024));
    for round in 0..5 {
        let mut clients: Vec<_> = (0..40)
            .map(|_| connect(&engine, &channels(&["c"])).unwrap().0)
            .collect();
        let until = Instant::now() + Duration::from_millis(200);
        while Instant::now() < until {
            engine.broadcast("c", &payload).unwrap();
            if let Some(mut c) = clients.pop() {
                // Read a little so the close is orderly for some, reset for others.
                if clients.len() % 2 == 0 {
                    c.read_head();
                }
                drop(c);
            }
        }
        eventually("every client is gone", || {
            engine.client_count().unwrap() == 0
        });
        println!("round {round} ok");
    }
    println!("scenario done");
}
