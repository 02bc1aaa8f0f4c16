//! `sse-loadgen pace`: events published on a schedule instead of in a burst.
//!
//! For each host: starts it, opens `--clients` SSE clients, then `--runs` times publishes
//! round(`--rate` × `--seconds`) events of `--size` bytes: the load generator asks for
//! each event on time (`GET /burst?count=1&size=B` on a connection of its own, the k-th
//! at k / rate seconds, without waiting for earlier answers), so every host is driven
//! the same way and a host that falls behind cannot slow the schedule down.
//!
//! Latency is measured **from the schedule**: the k-th event a client receives in a run
//! was due at `t0 + k / rate`, so receive time − that slot counts everything: the
//! request, the host's queueing and the fan-out. (The host's own timestamp in the data
//! gives the latency after publishing, reported beside it.) A host **keeps up** when
//! every client got every event by [`KEEP_UP`] after the last slot; the first run that
//! does not ends the host's measurements (its backlog would spill into the next run).
//!
//! With `--stalled-percent P`, the same host then runs a second phase in which P % of
//! the clients (spread evenly) stop reading: the others' latency and the host's RSS
//! are compared with the first phase. Those clients have a small receive buffer from
//! the start (as a slow client across a network does; on loopback the kernel would
//! otherwise absorb megabytes per socket), so what they do not read stays with the host.

use std::io::Write;
use std::net::TcpStream as StdTcpStream;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::{Events, Poll};
use sse_bench::{median, now_ns, quantile, raise_nofile_limit, MIN_EVENT_SIZE};

use super::{
    blame_host, http_get, ignore_eintr, json_string, mib, ms, own_cpu, read_client, read_response,
    start_and_connect, thousands, Client, ClientSetup, Connected, HostOptions, HostProcess, Kind,
    FD_RESERVE, READ_BUFFER,
};

const USAGE: &str = "usage: sse-loadgen pace [--clients N=10000] [--rate R=100] [--seconds S=10] \
[--size B=64] [--runs K=3] [--stalled-percent P=0] [--hosts engine] [--host-cmd NAME=COMMAND]... \
[--threads T=1] [--grace SECS=10] [--json]";
/// From planning a run to its first slot.
const LEAD: Duration = Duration::from_millis(100);
/// A host keeps up when every delivery arrived within this long after the last slot.
const KEEP_UP: Duration = Duration::from_secs(1);
/// Pause between two runs.
const BETWEEN_RUNS: Duration = Duration::from_millis(500);
/// Events of the warm-up burst before the first phase.
const WARM_UP_EVENTS: usize = 20;
/// Longest the warm-up burst may take.
const WARM_UP_TIMEOUT: Duration = Duration::from_secs(60);
/// Most events in one run (each is a request on a connection of its own).
const MAX_EVENTS: usize = 5_000;

struct Opts {
    clients: usize,
    rate: f64,
    seconds: f64,
    size: usize,
    runs: usize,
    stalled_percent: usize,
    hosts: Vec<Kind>,
    threads: usize,
    /// How long after the last slot a run may take before it counts as fallen behind.
    grace: Duration,
    json: bool,
}

impl Opts {
    fn count(&self) -> usize {
        (self.rate * self.seconds).round() as usize
    }
}

fn parse_args(args: &[String]) -> Result<Opts, String> {
    let mut opts = Opts {
        clients: 10_000,
        rate: 100.0,
        seconds: 10.0,
        size: 64,
        runs: 3,
        stalled_percent: 0,
        hosts: Vec::new(),
        threads: 1,
        grace: Duration::from_secs(10),
        json: false,
    };
    let mut hosts = HostOptions::default();
    let mut args = args.iter().cloned();
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        let int = |v: String| {
            v.replace('_', "")
                .parse::<usize>()
                .map_err(|e| format!("bad {arg} {v:?}: {e}"))
        };
        let real = |v: String| match v.parse::<f64>() {
            Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
            _ => Err(format!("bad {arg} {v:?}: a positive number")),
        };
        match arg.as_str() {
            "--clients" => opts.clients = int(value()?)?,
            "--rate" => opts.rate = real(value()?)?,
            "--seconds" => opts.seconds = real(value()?)?,
            "--size" => opts.size = int(value()?)?,
            "--runs" => opts.runs = int(value()?)?,
            "--stalled-percent" => opts.stalled_percent = int(value()?)?,
            "--threads" => opts.threads = int(value()?)?,
            "--grace" => opts.grace = Duration::from_secs_f64(real(value()?)?),
            "--hosts" | "--host-cmd" => {
                let v = value()?;
                hosts.take(&arg, v)?
            }
            "--json" => opts.json = true,
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    if hosts.names.is_none() {
        hosts.names = Some(vec!["engine".into()]);
    }
    opts.hosts = hosts.kinds()?;
    if opts.clients == 0 || opts.runs == 0 || opts.hosts.is_empty() {
        return Err("--clients, --runs and --hosts must be non-zero".into());
    }
    if !(1..=MAX_EVENTS).contains(&opts.count()) {
        return Err(format!(
            "--rate × --seconds must be between 1 and {MAX_EVENTS} events"
        ));
    }
    if !(MIN_EVENT_SIZE..=65536).contains(&opts.size) {
        return Err(format!(
            "--size must be between {MIN_EVENT_SIZE} (the timestamp and a space) and 65536"
        ));
    }
    if opts.stalled_percent > 90 {
        return Err("--stalled-percent must be at most 90".into());
    }
    if opts.clients * opts.count() > 100_000_000 {
        return Err("--clients × events per run must stay under 100,000,000".into());
    }
    Ok(opts)
}

/// Whether client `index` stops reading when `percent` % of the clients do: spread
/// evenly (every 10th for 10 %).
fn is_stalled(index: usize, percent: usize) -> bool {
    (index * percent) % 100 < percent
}

/// One paced run.
struct RunResult {
    expected: u64,
    delivered: u64,
    keeps_up: bool,
    /// Deliveries / (last delivery − first slot).
    rate: f64,
    /// Receive time − the event's slot in the schedule.
    p50_ns: u64,
    p99_ns: u64,
    max_ns: u64,
    /// Receive time − the host's timestamp in the event (latency after publishing).
    stamp_p50_ns: u64,
    stamp_p99_ns: u64,
    /// Last delivery − the last slot (or how long the run waited, when incomplete).
    lag_ns: u64,
    /// Most any request of ours left behind its slot (our own pacing error).
    issue_late_max_ns: u64,
    host_cpu_seconds: f64,
    loadgen_cpu_seconds: f64,
}

/// The runs with a given number of stalled clients.
struct Phase {
    stalled_clients: usize,
    runs: Vec<RunResult>,
    /// Why the phase has fewer runs than asked, if it has.
    note: Option<String>,
    rss_after: u64,
}

impl Phase {
    fn keeps_up(&self) -> bool {
        self.note.is_none() && self.runs.iter().all(|r| r.keeps_up)
    }
}

struct HostReport {
    kind: Kind,
    rss_before: u64,
    rss_idle: u64,
    connect_seconds: f64,
    phases: Vec<Phase>,
    stats: String,
}

pub(super) fn run(args: &[String]) -> Result<(), String> {
    let opts = parse_args(args)?;
    let (soft, _) = raise_nofile_limit().map_err(|e| format!("RLIMIT_NOFILE: {e}"))?;
    let needed = (opts.clients + opts.count()) as u64 + FD_RESERVE;
    if needed > soft {
        return Err(format!(
            "{} clients and {} event requests need {needed} file descriptors; RLIMIT_NOFILE allows {soft}",
            opts.clients,
            opts.count()
        ));
    }
    println!(
        "sse-loadgen pace: {} clients, {} events/s for {} s ({} events of {} B), {} run(s), {}% stalled clients in a second phase, hosts: {}",
        opts.clients,
        opts.rate,
        opts.seconds,
        opts.count(),
        opts.size,
        opts.runs,
        opts.stalled_percent,
        opts.hosts.iter().map(|k| k.name()).collect::<Vec<_>>().join(",")
    );
    let mut reports = Vec::new();
    for &kind in &opts.hosts {
        reports.push(bench_host(kind, &opts)?);
    }
    if opts.json {
        println!("{}", json(&opts, &reports));
    }
    Ok(())
}

fn bench_host(kind: Kind, opts: &Opts) -> Result<HostReport, String> {
    let tag = kind.name();
    let setup = ClientSetup {
        small_window: &|index| is_stalled(index, opts.stalled_percent),
        ..ClientSetup::PLAIN
    };
    let Connected {
        mut host,
        mut poll,
        mut events,
        mut clients,
        rss_before,
        rss_idle,
        connect_seconds,
    } = start_and_connect(kind, opts.threads, opts.clients, &setup)?;
    let mut buf = vec![0u8; READ_BUFFER];
    let mut phases = Vec::new();
    warm_up(
        &mut poll,
        &mut events,
        &mut clients,
        &mut host,
        opts.size,
        &mut buf,
    )
    .map_err(|e| blame_host(&mut host, e))?;
    let stalled_phases = if opts.stalled_percent > 0 {
        vec![0, opts.stalled_percent]
    } else {
        vec![0]
    };
    let mut stalled = vec![false; clients.len()];
    for percent in stalled_phases {
        for (index, client) in clients.iter_mut().enumerate() {
            if !stalled[index] && is_stalled(index, percent) {
                stalled[index] = true;
                poll.registry()
                    .deregister(&mut client.stream)
                    .map_err(|e| format!("client {index}: deregister: {e}"))?;
            }
        }
        let stalled_clients = stalled.iter().filter(|s| **s).count();
        let mut phase = Phase {
            stalled_clients,
            runs: Vec::new(),
            note: None,
            rss_after: 0,
        };
        if let Some(previous) = phases.last().filter(|p: &&Phase| !p.keeps_up()) {
            phase.note = Some(format!(
                "not run: the host did not keep up with {} stalled clients",
                previous.stalled_clients
            ));
            phase.rss_after = host.rss()?;
            phases.push(phase);
            continue;
        }
        for index in 0..opts.runs {
            if index > 0 {
                std::thread::sleep(BETWEEN_RUNS);
            }
            let r = paced_run(
                &mut poll,
                &mut events,
                &mut clients,
                &stalled,
                &mut host,
                opts,
                &mut buf,
            )
            .map_err(|e| blame_host(&mut host, e))?;
            println!(
                "[{tag}] {stalled_clients} stalled, run {}: {} of {} deliveries ({}/s), {}; \
                 from schedule p50 {} p99 {} max {}; after publishing p50 {} p99 {}; \
                 lag at the end {}; our pacing late by ≤ {}; CPU host {:.2} s, loadgen {:.2} s",
                index + 1,
                r.delivered,
                r.expected,
                thousands(r.rate),
                if r.keeps_up { "kept up" } else { "FELL BEHIND" },
                ms(r.p50_ns),
                ms(r.p99_ns),
                ms(r.max_ns),
                ms(r.stamp_p50_ns),
                ms(r.stamp_p99_ns),
                ms(r.lag_ns),
                ms(r.issue_late_max_ns),
                r.host_cpu_seconds,
                r.loadgen_cpu_seconds
            );
            let kept_up = r.keeps_up;
            phase.runs.push(r);
            if !kept_up {
                phase.note = Some(format!(
                    "stopped after run {}: the host fell behind",
                    index + 1
                ));
                break;
            }
        }
        phase.rss_after = host.rss()?;
        println!(
            "[{tag}] {stalled_clients} stalled: RSS after the runs {} ({} per connection over the idle RSS)",
            mib(phase.rss_after),
            phase.rss_after.saturating_sub(rss_idle) as f64 / opts.clients as f64
        );
        phases.push(phase);
    }
    // A host that fell behind is still working off its backlog and may not answer soon.
    let stats = if phases.iter().all(Phase::keeps_up) {
        http_get(host.port, "/stats")
            .map(|body| body.trim().replace('\n', ", "))
            .unwrap_or_else(|e| format!("(no stats: {e})"))
    } else {
        "(not asked: the host fell behind)".to_string()
    };
    println!("[{tag}] host counters: {stats}");
    drop(host);
    drop(clients);
    Ok(HostReport {
        kind,
        rss_before,
        rss_idle,
        connect_seconds,
        phases,
        stats,
    })
}

/// Has the host publish a burst of [`WARM_UP_EVENTS`] and reads it, so the first phase
/// does not pay for the host's warm-up (JIT, allocator growth) alone.
fn warm_up(
    poll: &mut Poll,
    events: &mut Events,
    clients: &mut [Client],
    host: &mut HostProcess,
    size: usize,
    buf: &mut [u8],
) -> Result<(), String> {
    for client in clients.iter_mut() {
        client.parser.reset_count();
    }
    let port = host.port;
    let path = format!("/burst?count={WARM_UP_EVENTS}&size={size}");
    let trigger = std::thread::spawn(move || http_get(port, &path));
    let deadline = Instant::now() + WARM_UP_TIMEOUT;
    let done = |clients: &[Client]| {
        clients
            .iter()
            .all(|c| c.parser.received as usize >= WARM_UP_EVENTS)
    };
    while !done(clients) {
        if Instant::now() > deadline {
            return Err(format!(
                "warm-up: the {WARM_UP_EVENTS} events did not all arrive within {} s",
                WARM_UP_TIMEOUT.as_secs()
            ));
        }
        poll.poll(events, Some(Duration::from_millis(100)))
            .or_else(ignore_eintr)
            .map_err(|e| format!("poll: {e}"))?;
        if events.is_empty() {
            host.check_alive()?;
            if trigger.is_finished() {
                for (index, client) in clients.iter_mut().enumerate() {
                    read_client(client, index, buf, |_| {})?;
                }
            }
        }
        for event in events.iter() {
            let index = event.token().0;
            read_client(&mut clients[index], index, buf, |_| {})?;
        }
    }
    trigger
        .join()
        .map_err(|_| "the warm-up request thread panicked".to_string())?
        .map_err(|e| format!("warm-up burst: {e}"))?;
    Ok(())
}

/// Asks the host for one event per slot, on a thread of its own; returns how late the
/// latest request left behind its slot. The answers are read once every request is out.
fn start_pacer(
    port: u16,
    size: usize,
    first_slot: Instant,
    count: usize,
    rate: f64,
) -> JoinHandle<Result<u64, String>> {
    std::thread::spawn(move || {
        let request = format!(
            "GET /burst?count=1&size={size} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        );
        let mut pending = Vec::with_capacity(count);
        let mut late_max = Duration::ZERO;
        for k in 0..count {
            let due = first_slot + Duration::from_secs_f64(k as f64 / rate);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            late_max = late_max.max(Instant::now().saturating_duration_since(due));
            let mut stream = StdTcpStream::connect(("127.0.0.1", port))
                .map_err(|e| format!("connect for event {k}: {e}"))?;
            stream
                .write_all(request.as_bytes())
                .map_err(|e| format!("send the request for event {k}: {e}"))?;
            pending.push(stream);
        }
        for (k, mut stream) in pending.into_iter().enumerate() {
            stream
                .set_read_timeout(Some(Duration::from_secs(120)))
                .map_err(|e| format!("set timeout: {e}"))?;
            let (status, body) =
                read_response(&mut stream).map_err(|e| format!("event {k}: {e}"))?;
            if !status.starts_with("HTTP/1.1 200") {
                return Err(format!(
                    "event {k}: the host answered {status:?} {}",
                    body.trim()
                ));
            }
        }
        Ok(late_max.as_nanos() as u64)
    })
}

fn paced_run(
    poll: &mut Poll,
    events: &mut Events,
    clients: &mut [Client],
    stalled: &[bool],
    host: &mut HostProcess,
    opts: &Opts,
    buf: &mut [u8],
) -> Result<RunResult, String> {
    let count = opts.count();
    let readers = stalled.iter().filter(|s| !**s).count();
    let expected = (readers * count) as u64;
    for client in clients.iter_mut() {
        client.parser.reset_count();
    }
    let mut from_slot: Vec<u64> = Vec::with_capacity(expected as usize);
    let mut from_stamp: Vec<u64> = Vec::with_capacity(expected as usize);
    let host_cpu_before = host.cpu()?;
    let own_cpu_before = own_cpu()?;
    let first_slot = Instant::now() + LEAD;
    let first_slot_ns = now_ns() + LEAD.as_nanos() as u64;
    let period_ns = 1e9 / opts.rate;
    let last_slot_ns = first_slot_ns + ((count - 1) as f64 * period_ns) as u64;
    let pacer = start_pacer(host.port, opts.size, first_slot, count, opts.rate);
    let deadline = first_slot + Duration::from_secs_f64(opts.seconds) + opts.grace;
    let mut total = 0u64;
    let mut last_delivery = 0u64;
    // Reads one client: its k-th event of the run was due at the k-th slot.
    let read = |client: &mut Client,
                index: usize,
                buf: &mut [u8],
                from_slot: &mut Vec<u64>,
                from_stamp: &mut Vec<u64>|
     -> Result<(), String> {
        let recv = now_ns();
        let mut k = u64::from(client.parser.received);
        read_client(client, index, buf, |stamp| {
            let slot = first_slot_ns + (k as f64 * period_ns) as u64;
            from_slot.push(recv.saturating_sub(slot));
            from_stamp.push(recv.saturating_sub(stamp));
            k += 1;
        })?;
        if client.parser.received as usize > count {
            return Err(format!(
                "client {index} got {} events, more than the {count} published",
                client.parser.received
            ));
        }
        Ok(())
    };
    while total < expected && Instant::now() < deadline {
        poll.poll(events, Some(Duration::from_millis(100)))
            .or_else(ignore_eintr)
            .map_err(|e| format!("poll: {e}"))?;
        if events.is_empty() {
            host.check_alive()?;
            if pacer.is_finished() {
                // Read anything a lost readiness edge might have left.
                for (index, client) in clients.iter_mut().enumerate() {
                    if !stalled[index] && (client.parser.received as usize) < count {
                        read(client, index, buf, &mut from_slot, &mut from_stamp)?;
                    }
                }
            }
        }
        for event in events.iter() {
            let index = event.token().0;
            read(
                &mut clients[index],
                index,
                buf,
                &mut from_slot,
                &mut from_stamp,
            )?;
        }
        let now_total = from_slot.len() as u64;
        if now_total > total {
            total = now_total;
            last_delivery = now_ns();
        }
    }
    let complete = total == expected;
    let keeps_up =
        complete && last_delivery.saturating_sub(last_slot_ns) <= KEEP_UP.as_nanos() as u64;
    // A host that fell behind may never answer in time: do not wait for the pacer then
    // (the caller stops the host, which ends its connections).
    let issue_late_max_ns = if complete {
        pacer
            .join()
            .map_err(|_| "the pacer thread panicked".to_string())??
    } else {
        0
    };
    let host_cpu_seconds = host.cpu()?.saturating_sub(host_cpu_before).as_secs_f64();
    let loadgen_cpu_seconds = own_cpu()?.saturating_sub(own_cpu_before).as_secs_f64();
    let end = if complete { last_delivery } else { now_ns() };
    from_slot.sort_unstable();
    from_stamp.sort_unstable();
    Ok(RunResult {
        expected,
        delivered: total,
        keeps_up,
        rate: total as f64 / (end.saturating_sub(first_slot_ns) as f64 / 1e9).max(1e-9),
        p50_ns: quantile(&from_slot, 0.50),
        p99_ns: quantile(&from_slot, 0.99),
        max_ns: from_slot.last().copied().unwrap_or(0),
        stamp_p50_ns: quantile(&from_stamp, 0.50),
        stamp_p99_ns: quantile(&from_stamp, 0.99),
        lag_ns: end.saturating_sub(last_slot_ns),
        issue_late_max_ns,
        host_cpu_seconds,
        loadgen_cpu_seconds,
    })
}

/// `{"median":…,"min":…,"max":…}` of one figure over the runs.
fn spread(runs: &[RunResult], figure: impl Fn(&RunResult) -> f64) -> String {
    let values: Vec<f64> = runs.iter().map(figure).collect();
    if values.is_empty() {
        return "null".into();
    }
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!(
        "{{\"median\":{:.3},\"min\":{lo:.3},\"max\":{hi:.3}}}",
        median(&values)
    )
}

fn json(opts: &Opts, reports: &[HostReport]) -> String {
    let hosts: Vec<String> = reports
        .iter()
        .map(|r| {
            let phases: Vec<String> = r
                .phases
                .iter()
                .map(|p| {
                    let runs: Vec<String> = p
                        .runs
                        .iter()
                        .map(|x| {
                            format!(
                                "{{\"expected\":{},\"delivered\":{},\"keeps_up\":{},\"deliveries_per_s\":{:.0},\
                                 \"p50_ns\":{},\"p99_ns\":{},\"max_ns\":{},\"stamp_p50_ns\":{},\"stamp_p99_ns\":{},\
                                 \"lag_ns\":{},\"issue_late_max_ns\":{},\"host_cpu_seconds\":{:.2},\
                                 \"loadgen_cpu_seconds\":{:.2}}}",
                                x.expected,
                                x.delivered,
                                x.keeps_up,
                                x.rate,
                                x.p50_ns,
                                x.p99_ns,
                                x.max_ns,
                                x.stamp_p50_ns,
                                x.stamp_p99_ns,
                                x.lag_ns,
                                x.issue_late_max_ns,
                                x.host_cpu_seconds,
                                x.loadgen_cpu_seconds
                            )
                        })
                        .collect();
                    format!(
                        "{{\"stalled_clients\":{},\"keeps_up\":{},\"note\":{},\"rss_after_bytes\":{},\
                         \"deliveries_per_s\":{},\"p50_ns\":{},\"p99_ns\":{},\"max_ns\":{},\
                         \"stamp_p99_ns\":{},\"lag_ns\":{},\"host_cpu_seconds\":{},\"runs\":[{}]}}",
                        p.stalled_clients,
                        p.keeps_up(),
                        p.note.as_deref().map_or("null".into(), json_string),
                        p.rss_after,
                        spread(&p.runs, |x| x.rate),
                        spread(&p.runs, |x| x.p50_ns as f64),
                        spread(&p.runs, |x| x.p99_ns as f64),
                        spread(&p.runs, |x| x.max_ns as f64),
                        spread(&p.runs, |x| x.stamp_p99_ns as f64),
                        spread(&p.runs, |x| x.lag_ns as f64),
                        spread(&p.runs, |x| x.host_cpu_seconds),
                        runs.join(",")
                    )
                })
                .collect();
            format!(
                "{{\"kind\":\"{}\",\"rss_before_bytes\":{},\"rss_idle_bytes\":{},\
                 \"rss_per_idle_conn_bytes\":{:.1},\"connect_seconds\":{:.3},\"connects_per_s\":{:.0},\
                 \"stats\":{},\"phases\":[{}]}}",
                r.kind.name(),
                r.rss_before,
                r.rss_idle,
                r.rss_idle.saturating_sub(r.rss_before) as f64 / opts.clients as f64,
                r.connect_seconds,
                opts.clients as f64 / r.connect_seconds.max(1e-9),
                json_string(&r.stats),
                phases.join(",")
            )
        })
        .collect();
    format!(
        "{{\"bench\":\"sse_paced\",\"clients\":{},\"rate\":{},\"seconds\":{},\"events\":{},\"size\":{},\
         \"runs\":{},\"stalled_percent\":{},\"keep_up_seconds\":{},\"hosts\":[{}]}}",
        opts.clients,
        opts.rate,
        opts.seconds,
        opts.count(),
        opts.size,
        opts.runs,
        opts.stalled_percent,
        KEEP_UP.as_secs_f64(),
        hosts.join(",")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn options() {
        let o = parse_args(&args(
            "--clients 500 --rate 50 --seconds 2 --stalled-percent 10 --json",
        ))
        .unwrap();
        assert_eq!((o.clients, o.count(), o.stalled_percent), (500, 100, 10));
        assert_eq!(o.hosts, vec![Kind::Engine]);
        assert!(o.json);
        let o = parse_args(&args("--hosts floor,naive")).unwrap();
        assert_eq!(o.hosts, vec![Kind::Floor, Kind::Naive]);
        for bad in [
            "--rate 0",
            "--rate nan",
            "--seconds -1",
            "--rate 1000 --seconds 10",
            "--size 5",
            "--stalled-percent 95",
            "--clients 0",
            "--hosts nope",
            "--bogus",
        ] {
            assert!(parse_args(&args(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn stalled_clients_are_spread_evenly() {
        let stalled: Vec<usize> = (0..100).filter(|&i| is_stalled(i, 10)).collect();
        assert_eq!(stalled.len(), 10);
        assert!(stalled.windows(2).all(|w| w[1] - w[0] == 10));
        assert_eq!((0..1000).filter(|&i| is_stalled(i, 25)).count(), 250);
        assert!(!(0..1000).any(|i| is_stalled(i, 0)));
    }
}
