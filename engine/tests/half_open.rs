//! A client whose network vanished (no FIN, no RST: its packets are simply lost) is
//! dropped with reason `timeout` within about the write timeout, whatever the publish
//! rate: with heartbeats only (the kernel buffer never fills) and with no traffic at all.
//!
//! The network vanishes for real: the test runs itself again inside a private network
//! namespace (`unshare --net`) and takes its loopback interface down, so the kernel
//! stops delivering segments either way and nothing answers.

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use sse_engine::{Config, ConnectOptions, DisconnectReason, Engine};

const INSIDE: &str = "SSE_TEST_PRIVATE_NETNS";

fn run(program: &str, args: &[&str]) {
    let status = Command::new(program).args(args).status();
    assert!(
        status.as_ref().is_ok_and(|s| s.success()),
        "{program} {args:?}: {status:?}"
    );
}

#[test]
fn half_open_clients_are_dropped_within_about_the_write_timeout() {
    if std::env::var_os(INSIDE).is_none() {
        let exe = std::env::current_exe().unwrap();
        let status = Command::new("unshare")
            .args(["--net", "--map-root-user", "--"])
            .arg(exe)
            .args([
                "--exact",
                "half_open_clients_are_dropped_within_about_the_write_timeout",
                "--nocapture",
            ])
            .env(INSIDE, "1")
            .status()
            .expect("unshare (util-linux) runs the test in a private network namespace");
        assert!(
            status.success(),
            "the test inside the namespace failed: {status}"
        );
        return;
    }
    run("ip", &["link", "set", "lo", "up"]);

    let write_timeout = Duration::from_secs(1);
    let with_heartbeats = Engine::start(Config {
        heartbeat: Some(Duration::from_millis(100)),
        write_timeout: Some(write_timeout),
        ..Config::default()
    })
    .unwrap();
    let silent = Engine::start(Config {
        heartbeat: None,
        write_timeout: Some(write_timeout),
        ..Config::default()
    })
    .unwrap();
    let mut clients = Vec::new();
    let mut recorders = Vec::new();
    for engine in [&with_heartbeats, &silent] {
        let recorder = Recorder::install(engine);
        let (mut client, id) = connect(engine, &ConnectOptions::default()).unwrap();
        client.read_head();
        clients.push(client);
        recorders.push((recorder, id));
    }
    // Let a heartbeat or two through, so the first case has traffic when the link goes.
    std::thread::sleep(Duration::from_millis(300));

    // Within the recorder's wait (10 write timeouts); TCP's own retransmission limit
    // would take about 15 minutes, keepalive at its defaults hours.
    run("ip", &["link", "set", "lo", "down"]);
    for (recorder, id) in &recorders {
        recorder.wait_disconnect(*id, DisconnectReason::Timeout);
    }
    drop(clients);
}
