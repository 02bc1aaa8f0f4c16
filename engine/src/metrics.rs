//! Prometheus text exposition of the engine's counters.

use std::fmt::Write;

use crate::lifecycle::DisconnectReason;
use crate::stats::Stats;

/// Renders the counters in the Prometheus text format (version 0.0.4).
pub(crate) fn render(stats: &Stats, channels: usize) -> String {
    let mut out = String::with_capacity(2048);
    let mut metric = |name: &str, kind: &str, help: &str, samples: &[(&str, u64)]| {
        let _ = writeln!(out, "# HELP sse_engine_{name} {help}");
        let _ = writeln!(out, "# TYPE sse_engine_{name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(out, "sse_engine_{name}{labels} {value}");
        }
    };
    metric(
        "connections_open",
        "gauge",
        "Clients connected now.",
        &[("", stats.connections_open)],
    );
    metric(
        "connections_total",
        "counter",
        "Clients accepted since start.",
        &[("", stats.connections_total)],
    );
    metric(
        "refused_total",
        "counter",
        "Hand-overs refused by a limit (answered 503).",
        &[("", stats.refused_total)],
    );
    let by_reason: Vec<(String, u64)> = DisconnectReason::ALL
        .iter()
        .map(|r| {
            (
                format!("{{reason=\"{}\"}}", r.as_str()),
                stats.disconnects_by(*r),
            )
        })
        .collect();
    let by_reason: Vec<(&str, u64)> = by_reason.iter().map(|(l, v)| (l.as_str(), *v)).collect();
    metric(
        "disconnects_total",
        "counter",
        "Clients gone, by reason.",
        &by_reason,
    );
    metric(
        "slow_client_drops_total",
        "counter",
        "Clients dropped because their queue passed its limit.",
        &[("", stats.disconnects_by(DisconnectReason::Slow))],
    );
    metric(
        "events_published_total",
        "counter",
        "Events published by the host.",
        &[("", stats.events_published)],
    );
    metric(
        "frames_queued_total",
        "counter",
        "Frames queued to clients (one per recipient per event).",
        &[("", stats.frames_queued)],
    );
    metric(
        "bytes_written_total",
        "counter",
        "Bytes written to client sockets.",
        &[("", stats.bytes_written)],
    );
    metric(
        "write_calls_total",
        "counter",
        "sendmsg calls on client sockets.",
        &[("", stats.write_calls)],
    );
    metric(
        "heartbeats_total",
        "counter",
        "Heartbeat comments queued.",
        &[("", stats.heartbeats)],
    );
    metric(
        "events_replayed_total",
        "counter",
        "Events replayed from history to reconnecting clients.",
        &[("", stats.events_replayed)],
    );
    metric(
        "gaps_total",
        "counter",
        "Reconnects whose Last-Event-ID was not in history.",
        &[("", stats.gaps)],
    );
    metric(
        "queue_high_water_bytes",
        "gauge",
        "Most bytes any one client has had queued.",
        &[("", stats.queue_high_water)],
    );
    metric(
        "reactor_failures_total",
        "counter",
        "Reactor threads that stopped on a panic (the engine failed closed).",
        &[("", stats.reactor_failures)],
    );
    metric(
        "channels",
        "gauge",
        "Channels known (with members, history or settings).",
        &[("", channels as u64)],
    );
    out
}
