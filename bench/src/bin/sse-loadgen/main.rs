//! `sse-loadgen [--clients N] [--events M] [--size S] [--runs R] [--hosts engine,naive]
//!  [--host-cmd NAME=COMMAND]... [--threads T] [--timeout SECS] [--json]`
//!
//! For each host kind: starts the benchmark host (this executable with `--serve-host`,
//! the same code as `sse-bench-host`; `SSE_BENCH_HOST=path` runs another), opens N
//! SSE clients over loopback from source addresses spread over 127.0.0.2–127.0.0.254,
//! measures the host's RSS per idle connection, then R times asks the host for a burst of
//! M events of S bytes and reads every client until all N×M deliveries arrived.
//! Deliveries/s = N×M / (last delivery − first send); latency = receive time − the send
//! timestamp carried in each event. Prints per-run lines, a summary table and the
//! engine/naive ratio (and one JSON line with `--json`).
//!
//! `sse-loadgen pace [options]`: the paced scenario (see [`pace`]): events published on a
//! schedule, latency measured from the schedule, optionally with a share of clients that
//! stop reading.
//!
//! `sse-loadgen channels [options]`: publishing to many one-member channels (one event
//! each per round) against one channel with every client, in the same run (see
//! [`channels`]).
//!
//! `sse-loadgen storm [options]`: the reconnect storm (see [`storm`]): live clients'
//! latency while paced events are published, without and then with storm clients that
//! keep disconnecting and reconnecting with `Last-Event-ID`; replay throughput; and a
//! check that every client got every event exactly once and in order.

mod channels;
mod pace;
mod storm;

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream as StdTcpStream};
use std::process::{Child, ChildStdin, Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use socket2::{Domain, Protocol, Socket, Type};
use sse_bench::{
    cpu_time, median, now_ns, quantile, raise_nofile_limit, rss_bytes, ClientParser,
    MIN_EVENT_SIZE, SSE_REQUEST,
};

const USAGE: &str = "usage: sse-loadgen [burst] [--clients N=10000] [--events M=20] [--size S=64] \
[--runs R=3] [--hosts engine,naive] [--host-cmd NAME=COMMAND]... [--threads T=1] [--timeout SECS=60] [--json]
       sse-loadgen pace --help    (paced publishing, slow clients)
       sse-loadgen storm --help   (the reconnect storm)
       sse-loadgen channels --help   (many one-member channels against one big channel)";
/// File descriptors kept free for the poller, the burst connection, stdio and pipes.
const FD_RESERVE: u64 = 64;
/// Clients connecting at once (well under the host's accept backlog of 4096).
const MAX_CONNECTING: usize = 512;
/// How long the host may take to accept every client.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(120);
/// `SO_RCVBUF` of a client that will stop reading (the kernel doubles it): like a slow
/// client across a real network, it holds little, so what it does not read stays with
/// the host instead of in loopback's large autotuned buffers.
const SMALL_RECEIVE_BUFFER: usize = 4096;
/// Quiet time after connecting, before the idle RSS is read.
const SETTLE: Duration = Duration::from_secs(1);
/// Pause between two bursts.
const BETWEEN_RUNS: Duration = Duration::from_millis(300);
/// One read buffer for every client (a client gets a few KiB per burst).
const READ_BUFFER: usize = 256 * 1024;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Engine,
    Naive,
    /// The coalesced floor: every event of a burst in one `send()` per client.
    Floor,
    /// A host started from a command line given with `--host-cmd` (leaked: it lives for
    /// the whole run, and `Kind` stays `Copy`).
    External(&'static ExternalHost),
}

/// A benchmark host of another program (`--host-cmd NAME=COMMAND`): it serves the same
/// `/sse`, `/burst` and `/stats` as `sse-bench-host` and prints the same READY line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ExternalHost {
    name: String,
    /// Program and arguments; the load generator appends `--kind NAME --port 0
    /// --watch-stdin --threads T` as for its own host.
    argv: Vec<String>,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Engine => "engine",
            Kind::Naive => "naive",
            Kind::Floor => "floor",
            Kind::External(host) => host.name.as_str(),
        }
    }
}

/// Parses `NAME=COMMAND` (the command split on whitespace).
fn parse_host_cmd(spec: &str) -> Result<ExternalHost, String> {
    let (name, command) = spec
        .split_once('=')
        .ok_or(format!("--host-cmd needs NAME=COMMAND, got {spec:?}"))?;
    let argv: Vec<String> = command.split_whitespace().map(str::to_string).collect();
    let valid_name = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !valid_name || matches!(name, "engine" | "naive" | "floor") {
        return Err(format!(
            "--host-cmd name {name:?} must be letters, digits, - or _, and not engine, naive or floor"
        ));
    }
    if argv.is_empty() {
        return Err(format!("--host-cmd {name}: empty command"));
    }
    Ok(ExternalHost {
        name: name.to_string(),
        argv,
    })
}

/// `--hosts` and `--host-cmd`, shared by the scenarios.
#[derive(Default)]
struct HostOptions {
    names: Option<Vec<String>>,
    external: Vec<ExternalHost>,
}

impl HostOptions {
    /// Takes `--hosts A,B` or `--host-cmd NAME=COMMAND`.
    fn take(&mut self, option: &str, value: String) -> Result<(), String> {
        if option == "--hosts" {
            self.names = Some(
                value
                    .split(',')
                    .filter(|h| !h.is_empty())
                    .map(str::to_string)
                    .collect(),
            );
            return Ok(());
        }
        let host = parse_host_cmd(&value)?;
        if self.external.iter().any(|h| h.name == host.name) {
            return Err(format!("--host-cmd {} given twice", host.name));
        }
        self.external.push(host);
        Ok(())
    }

    /// The hosts in order: `--hosts` names engine, naive, floor or a `--host-cmd` host;
    /// without it, the `--host-cmd` hosts run after engine and naive.
    fn kinds(self) -> Result<Vec<Kind>, String> {
        let names = self.names.unwrap_or_else(|| {
            ["engine", "naive"]
                .into_iter()
                .map(str::to_string)
                .chain(self.external.iter().map(|h| h.name.clone()))
                .collect()
        });
        names
            .iter()
            .map(|h| match h.as_str() {
                "engine" => Ok(Kind::Engine),
                "naive" => Ok(Kind::Naive),
                "floor" => Ok(Kind::Floor),
                other => self
                    .external
                    .iter()
                    .find(|e| e.name == other)
                    .map(|e| Kind::External(Box::leak(Box::new(e.clone()))))
                    .ok_or(format!(
                        "unknown host kind {other:?} (engine, naive, floor, or a --host-cmd name)"
                    )),
            })
            .collect()
    }
}

struct Opts {
    clients: usize,
    events: usize,
    size: usize,
    runs: usize,
    hosts: Vec<Kind>,
    threads: usize,
    timeout: Duration,
    json: bool,
}

fn parse_args(args: &[String]) -> Result<Opts, String> {
    let mut opts = Opts {
        clients: 10_000,
        events: 20,
        size: 64,
        runs: 3,
        hosts: vec![Kind::Engine, Kind::Naive],
        threads: 1,
        timeout: Duration::from_secs(60),
        json: false,
    };
    let mut hosts = HostOptions::default();
    let mut args = args.iter().cloned();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        let number = |name: &str, v: String| {
            v.replace('_', "")
                .parse::<usize>()
                .map_err(|e| format!("bad {name} {v:?}: {e}"))
        };
        match arg.as_str() {
            "--clients" => opts.clients = number(&arg, value(&arg)?)?,
            "--events" => opts.events = number(&arg, value(&arg)?)?,
            "--size" => opts.size = number(&arg, value(&arg)?)?,
            "--runs" => opts.runs = number(&arg, value(&arg)?)?,
            "--threads" => opts.threads = number(&arg, value(&arg)?)?,
            "--timeout" => opts.timeout = Duration::from_secs(number(&arg, value(&arg)?)? as u64),
            "--hosts" | "--host-cmd" => hosts.take(&arg, value(&arg)?)?,
            "--json" => opts.json = true,
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    opts.hosts = hosts.kinds()?;
    if opts.clients == 0 || opts.events == 0 || opts.runs == 0 || opts.hosts.is_empty() {
        return Err("--clients, --events, --runs and --hosts must be non-zero".into());
    }
    if opts.size < MIN_EVENT_SIZE {
        return Err(format!(
            "--size must be at least {MIN_EVENT_SIZE} (the timestamp and a space)"
        ));
    }
    if opts.clients * opts.events > 100_000_000 {
        return Err("--clients × --events must stay under 100,000,000".into());
    }
    Ok(opts)
}

/// First argument that turns this executable into the benchmark host.
const SERVE_HOST: &str = "--serve-host";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some(SERVE_HOST) => return sse_bench::host::main(args.into_iter().skip(1)),
        Some("storm") => storm::run(&args[1..]),
        Some("channels") => channels::run(&args[1..]),
        Some("pace") => pace::run(&args[1..]),
        Some("burst") => run(&args[1..]),
        _ => run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sse-loadgen: error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &[String]) -> Result<(), String> {
    let opts = parse_args(args)?;
    let (soft, _) = raise_nofile_limit().map_err(|e| format!("RLIMIT_NOFILE: {e}"))?;
    if opts.clients as u64 + FD_RESERVE > soft {
        return Err(format!(
            "{} clients need {} file descriptors; RLIMIT_NOFILE allows {soft}",
            opts.clients,
            opts.clients as u64 + FD_RESERVE
        ));
    }
    println!(
        "sse-loadgen: {} clients × {} events × {} B, {} run(s) per host, hosts: {}",
        opts.clients,
        opts.events,
        opts.size,
        opts.runs,
        opts.hosts
            .iter()
            .map(|k| k.name())
            .collect::<Vec<_>>()
            .join(",")
    );
    let mut reports = Vec::new();
    for &kind in &opts.hosts {
        reports.push(bench_host(kind, &opts)?);
    }
    print_summary(&opts, &reports);
    if opts.json {
        println!("{}", json(&opts, &reports));
    }
    Ok(())
}

/// One burst's measurements.
struct RunResult {
    deliveries: u64,
    seconds: f64,
    rate: f64,
    p50_ns: u64,
    p99_ns: u64,
    max_ns: u64,
    /// Delivery time measured from the burst's first send (when the last client got the
    /// event, not only how old the event was): p50 and p99.
    since_start_p50_ns: u64,
    since_start_p99_ns: u64,
    /// How long after the burst request the host answered it (it answers after publishing).
    publish_seconds: f64,
    /// CPU time the host and the load generator used during the burst (10 ms resolution).
    host_cpu_seconds: f64,
    loadgen_cpu_seconds: f64,
}

/// Everything measured for one host kind.
struct HostReport {
    kind: Kind,
    rss_before: u64,
    rss_idle: u64,
    rss_after_runs: u64,
    connect_seconds: f64,
    runs: Vec<RunResult>,
    stats: String,
}

impl HostReport {
    fn rss_per_idle(&self, clients: usize) -> f64 {
        self.rss_idle.saturating_sub(self.rss_before) as f64 / clients as f64
    }
    fn rss_per_conn_after(&self, clients: usize) -> f64 {
        self.rss_after_runs.saturating_sub(self.rss_before) as f64 / clients as f64
    }
    fn rates(&self) -> Vec<f64> {
        self.runs.iter().map(|r| r.rate).collect()
    }
    fn median_rate(&self) -> f64 {
        median(&self.rates())
    }
    fn median_of(&self, f: impl Fn(&RunResult) -> u64) -> f64 {
        median(&self.runs.iter().map(|r| f(r) as f64).collect::<Vec<_>>())
    }
}

/// The host process. Dropping it kills the host, so none is ever left behind.
struct HostProcess {
    child: Child,
    /// Held open: the host exits when it closes (`--watch-stdin`), even if we are killed.
    _stdin: Option<ChildStdin>,
    port: u16,
    pid: u32,
}

impl HostProcess {
    fn spawn(kind: Kind, threads: usize) -> Result<HostProcess, String> {
        // The host runs from this very executable (`--serve-host`), so it is always built
        // from the same source; SSE_BENCH_HOST may name another `sse-bench-host` binary.
        let external = match kind {
            Kind::External(host) => Some(host),
            _ => None,
        };
        let mut command = match (external, std::env::var_os("SSE_BENCH_HOST")) {
            (Some(host), _) => {
                let mut command = Command::new(&host.argv[0]);
                command.args(&host.argv[1..]);
                command
            }
            (None, Some(path)) => Command::new(path),
            (None, None) => {
                let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
                let mut command = Command::new(exe);
                command.arg(SERVE_HOST);
                command
            }
        };
        command
            .args(["--kind", kind.name(), "--port", "0", "--watch-stdin"])
            .args(["--threads", &threads.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = command
            .spawn()
            .map_err(|e| format!("start the host ({command:?}): {e}"))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        // From here on the guard owns the child: every early return kills it.
        let mut host = HostProcess {
            pid: child.id(),
            child,
            _stdin: stdin,
            port: 0,
        };
        let stdout = stdout.ok_or("host stdout not captured")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let first = reader.read_line(&mut line).map(|_| line.clone());
            let _ = tx.send(first);
            // Keep draining so the host can never block on a full pipe.
            let mut sink = Vec::new();
            let _ = reader.read_to_end(&mut sink);
        });
        let line = match rx.recv_timeout(Duration::from_secs(15)) {
            Ok(Ok(line)) => line,
            Ok(Err(e)) => return Err(format!("reading the host's READY line: {e}")),
            Err(_) => {
                host.check_alive()?;
                return Err("host did not report READY within 15 s".into());
            }
        };
        host.port = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("port="))
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| {
                let _ = host.check_alive();
                format!("host did not start (its first line was {:?})", line.trim())
            })?;
        Ok(host)
    }

    fn check_alive(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!("host process {} exited: {status}", self.pid)),
            Err(e) => Err(format!("cannot check host process {}: {e}", self.pid)),
        }
    }

    fn cpu(&mut self) -> Result<Duration, String> {
        self.check_alive()?;
        cpu_time(self.pid).map_err(|e| format!("host CPU time: {e}"))
    }

    fn rss(&mut self) -> Result<u64, String> {
        self.check_alive()?;
        rss_bytes(self.pid).map_err(|e| format!("host RSS: {e}"))
    }
}

/// When a client fails because the host died, says that first.
fn blame_host(host: &mut HostProcess, error: String) -> String {
    // Give a host that is exiting a moment to become reapable.
    std::thread::sleep(Duration::from_millis(200));
    match host.check_alive() {
        Ok(()) => error,
        Err(dead) => format!("{dead} (seen as: {error})"),
    }
}

fn own_cpu() -> Result<Duration, String> {
    cpu_time(std::process::id()).map_err(|e| format!("own CPU time: {e}"))
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Per-delivery samples of one burst, kept between runs to reuse their memory.
#[derive(Default)]
struct Samples {
    /// Receive time − send timestamp, per delivery.
    latencies: Vec<u64>,
    /// Receive time, per delivery.
    arrivals: Vec<u64>,
    first_send: u64,
    last_delivery: u64,
    total: u64,
}

impl Samples {
    fn reset(&mut self) {
        self.latencies.clear();
        self.arrivals.clear();
        self.first_send = u64::MAX;
        self.last_delivery = 0;
        self.total = 0;
    }

    /// Reads one client and records what it delivered.
    fn read(&mut self, client: &mut Client, index: usize, buf: &mut [u8]) -> Result<(), String> {
        let before = client.parser.received;
        let recv = now_ns();
        let (latencies, arrivals, first_send) = (
            &mut self.latencies,
            &mut self.arrivals,
            &mut self.first_send,
        );
        read_client(client, index, buf, |ts| {
            latencies.push(recv.saturating_sub(ts));
            arrivals.push(recv);
            *first_send = (*first_send).min(ts);
        })?;
        let got = u64::from(client.parser.received - before);
        if got > 0 {
            self.total += got;
            self.last_delivery = recv;
        }
        Ok(())
    }
}

/// One SSE client.
struct Client {
    stream: TcpStream,
    parser: ClientParser,
    request_sent: bool,
}

/// A started host with its clients streaming, and what that cost.
struct Connected {
    host: HostProcess,
    poll: Poll,
    events: Events,
    clients: Vec<Client>,
    rss_before: u64,
    rss_idle: u64,
    connect_seconds: f64,
}

/// How a client is opened: its request, and whether it gets a small receive window.
pub(crate) struct ClientSetup<'a> {
    /// The request of client `index` (usually [`SSE_REQUEST`]).
    pub request: &'a dyn Fn(usize) -> Vec<u8>,
    /// Clients for which this is true get a [`SMALL_RECEIVE_BUFFER`].
    pub small_window: &'a dyn Fn(usize) -> bool,
}

impl ClientSetup<'static> {
    /// `GET /sse` with the usual receive window.
    pub const PLAIN: ClientSetup<'static> = ClientSetup {
        request: &|_| SSE_REQUEST.to_vec(),
        small_window: &|_| false,
    };
}

/// Starts the host, connects `clients` SSE clients as `setup` says, waits [`SETTLE`]
/// and reads the RSS.
fn start_and_connect(
    kind: Kind,
    threads: usize,
    clients: usize,
    setup: &ClientSetup<'_>,
) -> Result<Connected, String> {
    let tag = kind.name();
    let mut host = HostProcess::spawn(kind, threads)?;
    std::thread::sleep(Duration::from_millis(200));
    let rss_before = host.rss()?;
    println!(
        "[{tag}] host pid {} on 127.0.0.1:{}, RSS before clients {}",
        host.pid,
        host.port,
        mib(rss_before)
    );
    let mut poll = Poll::new().map_err(|e| format!("create poller: {e}"))?;
    let mut events = Events::with_capacity(4096);
    let started = Instant::now();
    let connected = connect_clients(&mut poll, &mut events, &mut host, clients, setup)
        .map_err(|e| blame_host(&mut host, e))?;
    let connect_seconds = started.elapsed().as_secs_f64();
    std::thread::sleep(SETTLE);
    let rss_idle = host.rss()?;
    let per_idle = rss_idle.saturating_sub(rss_before) as f64 / clients as f64;
    println!(
        "[{tag}] {clients} clients streaming after {connect_seconds:.2} s ({}/s); RSS {} → {} B per idle connection",
        thousands(clients as f64 / connect_seconds.max(1e-9)),
        mib(rss_idle),
        per_idle.round()
    );
    Ok(Connected {
        host,
        poll,
        events,
        clients: connected,
        rss_before,
        rss_idle,
        connect_seconds,
    })
}

fn bench_host(kind: Kind, opts: &Opts) -> Result<HostReport, String> {
    let tag = kind.name();
    let Connected {
        mut host,
        mut poll,
        mut events,
        mut clients,
        rss_before,
        rss_idle,
        connect_seconds,
    } = start_and_connect(kind, opts.threads, opts.clients, &ClientSetup::PLAIN)?;
    let stats_before = http_get(host.port, "/stats")
        .map(|body| body.trim().replace('\n', ", "))
        .unwrap_or_default();
    let mut buf = vec![0u8; READ_BUFFER];
    let mut samples = Samples {
        latencies: Vec::with_capacity(opts.clients * opts.events),
        arrivals: Vec::with_capacity(opts.clients * opts.events),
        ..Samples::default()
    };
    let mut runs = Vec::with_capacity(opts.runs);
    for index in 0..opts.runs {
        if index > 0 {
            std::thread::sleep(BETWEEN_RUNS);
        }
        let r = burst(
            &mut poll,
            &mut events,
            &mut clients,
            &mut host,
            opts,
            &mut buf,
            &mut samples,
        )
        .map_err(|e| blame_host(&mut host, e))?;
        println!(
            "[{tag}] run {}: {} deliveries in {:.3} s = {}/s; latency p50 {} p99 {} max {}; \
             since burst start p50 {} p99 {}; host published in {:.3} s; CPU host {:.2} s, loadgen {:.2} s",
            index + 1,
            r.deliveries,
            r.seconds,
            thousands(r.rate),
            ms(r.p50_ns),
            ms(r.p99_ns),
            ms(r.max_ns),
            ms(r.since_start_p50_ns),
            ms(r.since_start_p99_ns),
            r.publish_seconds,
            r.host_cpu_seconds,
            r.loadgen_cpu_seconds
        );
        runs.push(r);
    }
    let rss_after_runs = host.rss()?;
    let stats = http_get(host.port, "/stats")
        .map(|body| body.trim().replace('\n', ", "))
        .unwrap_or_else(|e| format!("(no stats: {e})"));
    println!("[{tag}] host counters: {stats}");
    let delta = |name| counter(&stats, name)?.checked_sub(counter(&stats_before, name)?);
    if let (Some(frames), Some(calls)) = (delta("frames_queued"), delta("write_calls")) {
        if calls > 0 {
            println!(
                "[{tag}] coalescing during the bursts: {frames} frames in {calls} sendmsg calls = {:.1} frames per call",
                frames as f64 / calls as f64
            );
        }
    }
    let report = HostReport {
        kind,
        rss_before,
        rss_idle,
        rss_after_runs,
        connect_seconds,
        runs,
        stats,
    };
    println!(
        "[{tag}] median {}/s (min {}, max {}); RSS per connection after the bursts {} B",
        thousands(report.median_rate()),
        thousands(report.rates().iter().copied().fold(f64::INFINITY, f64::min)),
        thousands(report.rates().iter().copied().fold(0.0, f64::max)),
        report.rss_per_conn_after(opts.clients).round()
    );
    // Stop the host first: its side closes first and keeps the TIME_WAIT entries, so our
    // source ports are free again for the next host.
    drop(host);
    drop(clients);
    Ok(report)
}

/// A counter from the host's `/stats` text (`name value` items separated by commas).
fn counter(stats: &str, name: &str) -> Option<u64> {
    stats.split(", ").find_map(|item| {
        let (key, value) = item.split_once(' ')?;
        (key == name).then(|| value.parse().ok()).flatten()
    })
}

/// Opens `n` clients and waits until each has read its SSE response head.
fn connect_clients(
    poll: &mut Poll,
    events: &mut Events,
    host: &mut HostProcess,
    n: usize,
    setup: &ClientSetup<'_>,
) -> Result<Vec<Client>, String> {
    let target = SocketAddr::from(([127, 0, 0, 1], host.port));
    let mut clients: Vec<Client> = Vec::with_capacity(n);
    let mut connecting = 0usize;
    let mut streaming = 0usize;
    let deadline = Instant::now() + CONNECT_TIMEOUT;
    while streaming < n {
        while clients.len() < n && connecting < MAX_CONNECTING {
            let index = clients.len();
            let receive_buffer = (setup.small_window)(index).then_some(SMALL_RECEIVE_BUFFER);
            let mut stream = open_client(index, target, receive_buffer)
                .map_err(|e| format!("client {index}: connect to {target}: {e}"))?;
            poll.registry()
                .register(
                    &mut stream,
                    Token(index),
                    Interest::READABLE | Interest::WRITABLE,
                )
                .map_err(|e| format!("client {index}: register: {e}"))?;
            clients.push(Client {
                stream,
                parser: ClientParser::default(),
                request_sent: false,
            });
            connecting += 1;
        }
        poll.poll(events, Some(Duration::from_millis(100)))
            .or_else(ignore_eintr)
            .map_err(|e| format!("poll: {e}"))?;
        if events.is_empty() {
            host.check_alive()?;
            if Instant::now() > deadline {
                return Err(format!(
                    "only {streaming} of {n} clients got their SSE response within {} s",
                    CONNECT_TIMEOUT.as_secs()
                ));
            }
        }
        for event in events.iter() {
            let index = event.token().0;
            let client = &mut clients[index];
            if let Some(e) = client.stream.take_error().ok().flatten() {
                return Err(format!(
                    "client {index}: socket error while connecting: {e}"
                ));
            }
            if !client.request_sent && event.is_writable() {
                match client.stream.peer_addr() {
                    Ok(_) => {
                        let request = (setup.request)(index);
                        let n = client
                            .stream
                            .write(&request)
                            .map_err(|e| format!("client {index}: send request: {e}"))?;
                        if n != request.len() {
                            return Err(format!("client {index}: request only partly sent"));
                        }
                        client.request_sent = true;
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotConnected => {}
                    Err(e) => return Err(format!("client {index}: connect: {e}")),
                }
            }
            if event.is_readable() || event.is_read_closed() || event.is_error() {
                let was_streaming = client.parser.is_streaming();
                read_client(client, index, &mut [0u8; 4096], |_| {})?;
                if !was_streaming && client.parser.is_streaming() {
                    connecting -= 1;
                    streaming += 1;
                }
            }
        }
    }
    Ok(clients)
}

fn ignore_eintr(e: io::Error) -> io::Result<()> {
    if e.kind() == io::ErrorKind::Interrupted {
        Ok(())
    } else {
        Err(e)
    }
}

/// A non-blocking socket bound to 127.0.0.(2 + index mod 253), connecting to `target`,
/// with `SO_RCVBUF` set to `receive_buffer` if given (before connecting, so the window
/// stays that small).
fn open_client(
    index: usize,
    target: SocketAddr,
    receive_buffer: Option<usize>,
) -> io::Result<TcpStream> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
    if let Some(size) = receive_buffer {
        socket.set_recv_buffer_size(size)?;
    }
    socket.set_nonblocking(true)?;
    let source = Ipv4Addr::new(127, 0, 0, 2 + (index % 253) as u8);
    socket.bind(&SocketAddr::V4(SocketAddrV4::new(source, 0)).into())?;
    match socket.connect(&target.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    Ok(TcpStream::from_std(socket.into()))
}

/// Reads what a client has. A read shorter than the buffer emptied the socket: any byte
/// arriving later raises a new readiness edge, so it need not be followed by a read that
/// fails with `WouldBlock` (this halves the load generator's read calls). The idle sweep
/// in [`burst`] is the safety net.
fn read_client(
    client: &mut Client,
    index: usize,
    buf: &mut [u8],
    mut on_data: impl FnMut(u64),
) -> Result<(), String> {
    loop {
        match client.stream.read(buf) {
            Ok(0) => return Err(format!("client {index}: the host closed the connection")),
            Ok(n) => {
                client
                    .parser
                    .feed(&buf[..n], &mut on_data)
                    .map_err(|e| format!("client {index}: {e}"))?;
                if n < buf.len() {
                    return Ok(());
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("client {index}: read: {e}")),
        }
    }
}

/// Asks the host for one burst and reads every client until all deliveries arrived.
fn burst(
    poll: &mut Poll,
    events: &mut Events,
    clients: &mut [Client],
    host: &mut HostProcess,
    opts: &Opts,
    buf: &mut [u8],
    samples: &mut Samples,
) -> Result<RunResult, String> {
    let trigger = Trigger {
        path: format!("/burst?count={}&size={}", opts.events, opts.size),
        per_client: opts.events,
        timeout: opts.timeout,
    };
    deliver(poll, events, clients, host, &trigger, buf, samples).map(|(run, _)| run)
}

/// A request that makes the host publish, and what every client must then receive.
pub(crate) struct Trigger {
    pub path: String,
    /// Events each client gets.
    pub per_client: usize,
    /// Longest wait for every delivery.
    pub timeout: Duration,
}

/// Sends the trigger request and reads every client until each has its events; returns
/// the measurements and the host's answer.
pub(crate) fn deliver(
    poll: &mut Poll,
    events: &mut Events,
    clients: &mut [Client],
    host: &mut HostProcess,
    trigger_request: &Trigger,
    buf: &mut [u8],
    samples: &mut Samples,
) -> Result<(RunResult, String), String> {
    let per_client = trigger_request.per_client;
    let expected = (clients.len() * per_client) as u64;
    for client in clients.iter_mut() {
        client.parser.reset_count();
    }
    samples.reset();
    let host_cpu_before = host.cpu()?;
    let own_cpu_before = own_cpu()?;
    let path = trigger_request.path.clone();
    let port = host.port;
    let asked = Instant::now();
    let trigger: JoinHandle<Result<(f64, String), String>> = std::thread::spawn(move || {
        http_get(port, &path).map(|body| (asked.elapsed().as_secs_f64(), body))
    });
    let timeout = trigger_request.timeout;
    let deadline = Instant::now() + timeout;
    while samples.total < expected {
        poll.poll(events, Some(Duration::from_millis(200)))
            .or_else(ignore_eintr)
            .map_err(|e| format!("poll: {e}"))?;
        if events.is_empty() {
            host.check_alive()?;
            if trigger.is_finished() {
                // Publishing is over; read anything a lost readiness edge might have left.
                for (index, client) in clients.iter_mut().enumerate() {
                    if client.parser.received < per_client as u32 {
                        samples.read(client, index, buf)?;
                    }
                }
            }
            if Instant::now() > deadline {
                let published = match trigger.is_finished() {
                    true => "the host answered the burst request",
                    false => "the host has not answered the burst request",
                };
                return Err(format!(
                    "timeout after {} s: {} of {expected} deliveries arrived ({published})",
                    timeout.as_secs(),
                    samples.total
                ));
            }
            continue;
        }
        for event in events.iter() {
            let index = event.token().0;
            samples.read(&mut clients[index], index, buf)?;
        }
    }
    let (publish_seconds, answer) = trigger
        .join()
        .map_err(|_| "the burst request thread panicked".to_string())?
        .map_err(|e| format!("burst request: {e}"))?;
    let host_cpu_seconds = host.cpu()?.saturating_sub(host_cpu_before).as_secs_f64();
    let loadgen_cpu_seconds = own_cpu()?.saturating_sub(own_cpu_before).as_secs_f64();
    if let Some((index, client)) = clients
        .iter()
        .enumerate()
        .find(|(_, c)| c.parser.received != per_client as u32)
    {
        return Err(format!(
            "client {index} got {} events instead of {per_client}",
            client.parser.received
        ));
    }
    let first_send = samples.first_send;
    samples.latencies.sort_unstable();
    for arrival in samples.arrivals.iter_mut() {
        *arrival = arrival.saturating_sub(first_send);
    }
    samples.arrivals.sort_unstable();
    let seconds = samples.last_delivery.saturating_sub(first_send) as f64 / 1e9;
    let run = RunResult {
        deliveries: samples.total,
        seconds,
        rate: samples.total as f64 / seconds.max(1e-9),
        p50_ns: quantile(&samples.latencies, 0.50),
        p99_ns: quantile(&samples.latencies, 0.99),
        max_ns: samples.latencies.last().copied().unwrap_or(0),
        since_start_p50_ns: quantile(&samples.arrivals, 0.50),
        since_start_p99_ns: quantile(&samples.arrivals, 0.99),
        publish_seconds,
        host_cpu_seconds,
        loadgen_cpu_seconds,
    };
    Ok((run, answer))
}

/// A blocking `GET` to the host on its own connection; returns the body.
fn http_get(port: u16, path: &str) -> Result<String, String> {
    let mut stream = StdTcpStream::connect(("127.0.0.1", port))
        .map_err(|e| format!("connect for {path}: {e}"))?;
    // The naive host answers a burst only after its whole send loop.
    stream
        .set_read_timeout(Some(Duration::from_secs(300)))
        .map_err(|e| format!("set timeout: {e}"))?;
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .map_err(|e| format!("send {path}: {e}"))?;
    let (status, body) = read_response(&mut stream).map_err(|e| format!("{path}: {e}"))?;
    if !status.starts_with("HTTP/1.1 200") {
        return Err(format!("{path} answered {status:?} {}", body.trim()));
    }
    Ok(body)
}

/// Reads one HTTP response: its status line and body. The body ends at `Content-Length`
/// when there is one (some servers keep the connection open), else at end of stream.
fn read_response(stream: &mut impl Read) -> Result<(String, String), String> {
    let mut response = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&response);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head.lines().find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.trim()
                    .eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse::<usize>().ok())
                    .flatten()
            });
            if length.is_some_and(|n| body.len() >= n) {
                let status = head.lines().next().unwrap_or("").to_string();
                return Ok((status, body[..length.unwrap_or(0)].to_string()));
            }
        }
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => response.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("read the answer: {e}")),
        }
    }
    let text = String::from_utf8_lossy(&response);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    Ok((
        head.lines().next().unwrap_or("").to_string(),
        body.to_string(),
    ))
}

fn ms(ns: u64) -> String {
    format!("{:.1} ms", ns as f64 / 1e6)
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn print_summary(opts: &Opts, reports: &[HostReport]) {
    println!();
    println!(
        "summary: {} clients × {} events × {} B, {} run(s); medians over runs (min – max of deliveries/s)",
        opts.clients, opts.events, opts.size, opts.runs
    );
    println!(
        "latency = receive time − the event's send timestamp; \"from start\" = receive time − the burst's first send"
    );
    println!(
        "{:<7} {:>12} {:>25} {:>9} {:>9} {:>9} {:>14} {:>14} {:>14} {:>15}",
        "host",
        "deliveries/s",
        "(min – max)",
        "p50",
        "p99",
        "max",
        "p50 from start",
        "p99 from start",
        "RSS/idle conn",
        "RSS/conn after"
    );
    for r in reports {
        let rates = r.rates();
        let lo = rates.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = rates.iter().copied().fold(0.0, f64::max);
        println!(
            "{:<7} {:>12} {:>25} {:>9} {:>9} {:>9} {:>14} {:>14} {:>12} B {:>13} B",
            r.kind.name(),
            thousands(r.median_rate()),
            format!("({} – {})", thousands(lo), thousands(hi)),
            ms(r.median_of(|x| x.p50_ns) as u64),
            ms(r.median_of(|x| x.p99_ns) as u64),
            ms(r.median_of(|x| x.max_ns) as u64),
            ms(r.median_of(|x| x.since_start_p50_ns) as u64),
            ms(r.median_of(|x| x.since_start_p99_ns) as u64),
            r.rss_per_idle(opts.clients).round(),
            r.rss_per_conn_after(opts.clients).round(),
        );
    }
    if let Some(ratio) = ratio(reports) {
        println!("ratio engine/naive deliveries/s: {ratio:.2}×");
    }
    // With other hosts: the first host against each of the others.
    if reports.iter().any(|r| matches!(r.kind, Kind::External(_))) {
        if let Some((first, others)) = reports.split_first() {
            for other in others {
                let (a, b) = (first.median_rate(), other.median_rate());
                if b > 0.0 {
                    println!(
                        "ratio {}/{} deliveries/s: {:.2}×",
                        first.kind.name(),
                        other.kind.name(),
                        a / b
                    );
                }
            }
        }
    }
}

fn ratio(reports: &[HostReport]) -> Option<f64> {
    let rate = |kind| {
        reports
            .iter()
            .find(|r| r.kind == kind)
            .map(HostReport::median_rate)
    };
    match (rate(Kind::Engine), rate(Kind::Naive)) {
        (Some(e), Some(n)) if n > 0.0 => Some(e / n),
        _ => None,
    }
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json(opts: &Opts, reports: &[HostReport]) -> String {
    let hosts: Vec<String> = reports
        .iter()
        .map(|r| {
            let runs: Vec<String> = r
                .runs
                .iter()
                .map(|x| {
                    format!(
                        "{{\"deliveries\":{},\"seconds\":{:.6},\"deliveries_per_s\":{:.0},\
                         \"p50_ns\":{},\"p99_ns\":{},\"max_ns\":{},\"since_start_p50_ns\":{},\
                         \"since_start_p99_ns\":{},\"publish_seconds\":{:.6},\"host_cpu_seconds\":{:.2},\
                         \"loadgen_cpu_seconds\":{:.2}}}",
                        x.deliveries,
                        x.seconds,
                        x.rate,
                        x.p50_ns,
                        x.p99_ns,
                        x.max_ns,
                        x.since_start_p50_ns,
                        x.since_start_p99_ns,
                        x.publish_seconds,
                        x.host_cpu_seconds,
                        x.loadgen_cpu_seconds
                    )
                })
                .collect();
            let rates = r.rates();
            format!(
                "{{\"kind\":\"{}\",\"deliveries_per_s\":{{\"median\":{:.0},\"min\":{:.0},\"max\":{:.0}}},\
                 \"p50_ns\":{:.0},\"p99_ns\":{:.0},\"max_ns\":{:.0},\"since_start_p50_ns\":{:.0},\
                 \"since_start_p99_ns\":{:.0},\"rss_before_bytes\":{},\
                 \"rss_idle_bytes\":{},\"rss_after_runs_bytes\":{},\"rss_per_idle_conn_bytes\":{:.1},\
                 \"rss_per_conn_after_runs_bytes\":{:.1},\"connect_seconds\":{:.3},\"connects_per_s\":{:.0},\
                 \"stats\":{},\"runs\":[{}]}}",
                r.kind.name(),
                r.median_rate(),
                rates.iter().copied().fold(f64::INFINITY, f64::min),
                rates.iter().copied().fold(0.0, f64::max),
                r.median_of(|x| x.p50_ns),
                r.median_of(|x| x.p99_ns),
                r.median_of(|x| x.max_ns),
                r.median_of(|x| x.since_start_p50_ns),
                r.median_of(|x| x.since_start_p99_ns),
                r.rss_before,
                r.rss_idle,
                r.rss_after_runs,
                r.rss_per_idle(opts.clients),
                r.rss_per_conn_after(opts.clients),
                r.connect_seconds,
                opts.clients as f64 / r.connect_seconds.max(1e-9),
                json_string(&r.stats),
                runs.join(",")
            )
        })
        .collect();
    let ratio = ratio(reports).map_or("null".to_string(), |r| format!("{r:.3}"));
    format!(
        "{{\"bench\":\"sse_fanout\",\"clients\":{},\"events\":{},\"size\":{},\"runs\":{},\
         \"hosts\":[{}],\"ratio_engine_over_naive\":{}}}",
        opts.clients,
        opts.events,
        opts.size,
        opts.runs,
        hosts.join(","),
        ratio
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_commands() {
        let host = parse_host_cmd("node-engine=node bench/node/express-engine.js --x").unwrap();
        assert_eq!(host.name, "node-engine");
        assert_eq!(
            host.argv,
            vec!["node", "bench/node/express-engine.js", "--x"]
        );
        for bad in [
            "no-equals",
            "=node x.js",
            "engine=node x.js",
            "naive=x",
            "a b=node",
            "empty=",
        ] {
            assert!(parse_host_cmd(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn hosts_default_and_with_commands() {
        let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let opts = parse_args(&args(&[])).unwrap();
        assert_eq!(opts.hosts, vec![Kind::Engine, Kind::Naive]);
        let opts = parse_args(&args(&[
            "--hosts",
            "n1,engine",
            "--host-cmd",
            "n1=node a.js",
        ]))
        .unwrap();
        assert_eq!(opts.hosts.len(), 2);
        assert_eq!(opts.hosts[0].name(), "n1");
        assert_eq!(opts.hosts[1], Kind::Engine);
        assert!(matches!(opts.hosts[0], Kind::External(h) if h.argv == ["node", "a.js"]));
        assert!(parse_args(&args(&["--hosts", "nope"])).is_err());
    }
}
