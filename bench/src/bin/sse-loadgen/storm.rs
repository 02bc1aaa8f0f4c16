//! `sse-loadgen storm`: the reconnect storm.
//!
//! Starts the engine host, opens `--live` clients that stay connected, then runs two
//! windows of the same length in which the host publishes `--rate` events per second
//! (`GET /pace`), each stamped with its send time:
//!
//! 1. **baseline**: only the live clients;
//! 2. **storm**: the live clients, and `--storm` clients that reconnect over and over
//!    with `Last-Event-ID`. Each starts away, as if the storm cut it off right after
//!    the last baseline event (that is its first `Last-Event-ID`), comes back after a
//!    random time in `[0, away max]`, stays for a random `--online` time after its
//!    response head, leaves (closes the socket), stays away for a random `--away` time
//!    so it misses events, and reconnects with the id of the last event it received.
//!    Once publishing is over nobody leaves any more; clients still away come back on
//!    their schedule and the window ends when every client has every event.
//!
//! Measured: the live clients' latency (receive time − send timestamp) in each window;
//! the host's `events_replayed` and `gaps` counters over the storm window; reconnects
//! per second; per reconnect, how long the replay took (last replayed event received −
//! connect started); and per client that it received every event of the window exactly
//! once and in order across its sessions (engine ids are `<epoch>-<seq>` with
//! consecutive `seq`). Any loss, duplicate, reorder or gap is reported and makes the
//! run fail.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::SocketAddr;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use sse_bench::{
    engine_seq, now_ns, quantile, raise_nofile_limit, ClientParser, SeqCheck, SseEvent,
    MIN_EVENT_SIZE,
};

use super::{
    blame_host, connect_clients, http_get, ignore_eintr, json_string, ms, open_client, own_cpu,
    thousands, Client, ClientSetup, HostProcess, Kind, FD_RESERVE, READ_BUFFER,
};
use std::io::{self, Read, Write};

const USAGE: &str = "usage: sse-loadgen storm [--live N=1000] [--storm M=1000] [--rate R=100] \
[--seconds S=10] [--size B=64] [--online MIN-MAX=0.2-1] [--away MIN-MAX=0.5-2] [--threads T=1] \
[--timeout SECS=30] [--seed X=1] [--json]";
/// Quiet time after the live clients connected, and between the two windows.
const SETTLE: Duration = Duration::from_secs(1);
/// Longest a storm client may wait for its response head.
const RECONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest poll wait (the host is checked for life, and idle clients are read, this often).
const POLL_MAX: Duration = Duration::from_millis(50);
/// With the engine's default history of 1,000 events, a client away longer than this
/// many events would legitimately get a gap; the options are kept below it.
const HISTORY_EVENTS: f64 = 1000.0;

/// A range of seconds, `MIN-MAX` (or one value).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Span {
    lo: f64,
    hi: f64,
}

impl Span {
    fn show(self) -> String {
        format!("{}–{} s", self.lo, self.hi)
    }
}

fn parse_span(text: &str) -> Result<Span, String> {
    let number = |t: &str| {
        t.trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v >= 0.0)
            .ok_or_else(|| format!("bad time {t:?} in {text:?} (seconds, MIN-MAX)"))
    };
    let (lo, hi) = match text.split_once('-') {
        Some((lo, hi)) => (number(lo)?, number(hi)?),
        None => (number(text)?, number(text)?),
    };
    if lo > hi {
        return Err(format!("{text:?}: MIN is larger than MAX"));
    }
    if hi > 3600.0 {
        return Err(format!("{text:?}: at most an hour"));
    }
    Ok(Span { lo, hi })
}

#[derive(Debug, Clone, PartialEq)]
struct Opts {
    live: usize,
    storm: usize,
    rate: f64,
    seconds: f64,
    size: usize,
    online: Span,
    away: Span,
    threads: usize,
    timeout: Duration,
    seed: u64,
    json: bool,
}

fn parse_args(args: &[String]) -> Result<Opts, String> {
    let mut opts = Opts {
        live: 1000,
        storm: 1000,
        rate: 100.0,
        seconds: 10.0,
        size: 64,
        online: Span { lo: 0.2, hi: 1.0 },
        away: Span { lo: 0.5, hi: 2.0 },
        threads: 1,
        timeout: Duration::from_secs(30),
        seed: 1,
        json: false,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .map(|v| v.replace('_', ""))
                .ok_or(format!("{arg} needs a value"))
        };
        let int = |v: String| {
            v.parse::<u64>()
                .map_err(|e| format!("bad {arg} {v:?}: {e}"))
        };
        let real = |v: String| {
            v.parse::<f64>()
                .ok()
                .filter(|x| x.is_finite() && *x > 0.0)
                .ok_or(format!("bad {arg} {v:?}: a positive number is needed"))
        };
        match arg.as_str() {
            "--live" => opts.live = int(value()?)? as usize,
            "--storm" => opts.storm = int(value()?)? as usize,
            "--rate" => opts.rate = real(value()?)?,
            "--seconds" => opts.seconds = real(value()?)?,
            "--size" => opts.size = int(value()?)? as usize,
            "--online" => opts.online = parse_span(&value()?)?,
            "--away" => opts.away = parse_span(&value()?)?,
            "--threads" => opts.threads = int(value()?)? as usize,
            "--timeout" => opts.timeout = Duration::from_secs(int(value()?)?),
            "--seed" => opts.seed = int(value()?)?,
            "--json" => opts.json = true,
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    if opts.live == 0 {
        return Err("--live must be at least 1 (their latency is what is measured)".into());
    }
    if opts.size < MIN_EVENT_SIZE || opts.size > 64 * 1024 {
        return Err(format!(
            "--size must be between {MIN_EVENT_SIZE} (the timestamp and a space) and 65536"
        ));
    }
    let events = opts.rate * opts.seconds;
    if !(1.0..=1_000_000.0).contains(&events.round()) {
        return Err("--rate × --seconds must be between 1 and 1,000,000 events".into());
    }
    if opts.online.hi <= 0.0 {
        return Err("--online must allow a positive time".into());
    }
    // The first return comes after up to away.hi: the client may miss that long.
    if opts.rate * (opts.away.hi + opts.online.hi) >= HISTORY_EVENTS {
        return Err(format!(
            "--rate × (away max + online max) must stay under the engine's history of \
             {HISTORY_EVENTS} events, or a client may miss more than history keeps (a gap)"
        ));
    }
    Ok(opts)
}

/// SplitMix64: a small seeded generator for the clients' schedules.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform time in `span`.
    fn within(&mut self, span: Span) -> Duration {
        let unit = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        Duration::from_secs_f64(span.lo + (span.hi - span.lo) * unit)
    }
}

/// What one received event is.
enum Got<'a> {
    /// A benchmark event with an engine id of this run.
    Seq { ts: u64, seq: u64, id: &'a [u8] },
    /// The engine's gap event (the client's `Last-Event-ID` was not in history).
    Gap,
    /// Anything else: a problem.
    Bad(String),
}

fn classify<'a>(event: &SseEvent<'a>, epoch: &mut Option<Vec<u8>>) -> Got<'a> {
    if let Some(name) = event.name {
        if name == b"sse-gap" {
            return Got::Gap;
        }
        return Got::Bad(format!(
            "unexpected event {:?}",
            String::from_utf8_lossy(name)
        ));
    }
    let (Some(ts), Some(id)) = (event.ts, event.id) else {
        return Got::Bad("event without an id".into());
    };
    let Some((this_epoch, seq)) = engine_seq(id) else {
        return Got::Bad(format!(
            "event id {:?} is not an engine id",
            String::from_utf8_lossy(id)
        ));
    };
    match epoch {
        Some(known) if known.as_slice() != this_epoch => Got::Bad(format!(
            "event id {:?} is of another engine run",
            String::from_utf8_lossy(id)
        )),
        Some(_) => Got::Seq { ts, seq, id },
        None => {
            *epoch = Some(this_epoch.to_vec());
            Got::Seq { ts, seq, id }
        }
    }
}

/// Reads what a socket has and hands each complete event over with the receive time.
/// A short read emptied the socket (see `read_client`).
fn read_events(
    stream: &mut TcpStream,
    parser: &mut ClientParser,
    buf: &mut [u8],
    mut on_event: impl FnMut(&SseEvent<'_>, u64),
) -> Result<(), String> {
    loop {
        match stream.read(buf) {
            Ok(0) => return Err("the host closed the connection".into()),
            Ok(n) => {
                let recv = now_ns();
                parser.feed_events(&buf[..n], |e| on_event(e, recv))?;
                if n < buf.len() {
                    return Ok(());
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("read: {e}")),
        }
    }
}

/// A live client's record for one window.
struct Live {
    check: SeqCheck,
    gaps: u64,
}

/// Where a storm client is in its cycle. The instants are also its timer's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Away {
        until: Instant,
    },
    Connecting {
        since: Instant,
    },
    /// `leave_at: None`: publishing is over, it stays.
    Streaming {
        leave_at: Option<Instant>,
    },
}

/// One storm client across its sessions.
struct StormClient {
    stream: Option<TcpStream>,
    parser: ClientParser,
    request_sent: bool,
    request: Vec<u8>,
    state: State,
    check: SeqCheck,
    /// The id of the last event received: the next `Last-Event-ID`.
    last_id: Vec<u8>,
    gaps: u64,
    /// The current session: when its connect started (ns since the epoch), events
    /// received that were sent before that (replayed), when the last of them arrived,
    /// and whether a later (live) event arrived, which shows the replay was complete.
    session_start_ns: u64,
    session_replayed: u64,
    session_last_replay_ns: u64,
    session_live: bool,
}

/// Figures of the storm clients over the storm window.
#[derive(Default)]
struct StormFigures {
    clients: usize,
    sessions: u64,
    sessions_while_publishing: u64,
    /// Events received that were sent before their session's connect started.
    replayed_client_side: u64,
    /// Per session with a replay that was followed by a live event: last replayed event
    /// received − connect started, sorted.
    catch_up_ns: Vec<u64>,
    /// Sessions that left before a live event (or the end) showed their replay complete.
    cut_short: u64,
    lost: u64,
    duplicates: u64,
    gaps: u64,
    bad_clients: usize,
    first_problem: Option<String>,
    received: u64,
}

struct Storm {
    clients: Vec<StormClient>,
    timers: BinaryHeap<Reverse<(Instant, usize)>>,
    rng: Rng,
    /// Sockets opened so far (spreads source addresses).
    opened: usize,
    /// Token of client 0.
    base: usize,
    target: SocketAddr,
    online: Span,
    away: Span,
    figures: StormFigures,
}

impl Storm {
    fn new(opts: &Opts, base: usize, port: u16, first_id: &[u8], first_seq: u64) -> Storm {
        let clients = (0..opts.storm)
            .map(|_| StormClient {
                stream: None,
                parser: ClientParser::default(),
                request_sent: false,
                request: Vec::new(),
                state: State::Connecting {
                    since: Instant::now(),
                },
                check: SeqCheck::new(first_seq),
                last_id: first_id.to_vec(),
                gaps: 0,
                session_start_ns: 0,
                session_replayed: 0,
                session_last_replay_ns: 0,
                session_live: false,
            })
            .collect();
        Storm {
            clients,
            timers: BinaryHeap::new(),
            rng: Rng(opts.seed),
            opened: base,
            base,
            target: SocketAddr::from(([127, 0, 0, 1], port)),
            online: opts.online,
            away: opts.away,
            figures: StormFigures {
                clients: opts.storm,
                ..StormFigures::default()
            },
        }
    }

    /// Every client starts away, cut off right after the last baseline event; each comes
    /// back at a random time in `[0, away max]`.
    fn start(&mut self, now: Instant) {
        let first = Span {
            lo: 0.0,
            hi: self.away.hi,
        };
        for index in 0..self.clients.len() {
            let until = now + self.rng.within(first);
            self.clients[index].state = State::Away { until };
            self.timers.push(Reverse((until, index)));
        }
    }

    fn next_timer(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((at, _))| *at)
    }

    /// Runs every timer that is due.
    fn fire(&mut self, poll: &Poll, now: Instant, publishing_until: Instant) -> Result<(), String> {
        while let Some(&Reverse((at, index))) = self.timers.peek() {
            if at > now {
                break;
            }
            self.timers.pop();
            match self.clients[index].state {
                State::Away { until } if until == at => {
                    self.reconnect(poll, index, now)?;
                    if now < publishing_until {
                        self.figures.sessions_while_publishing += 1;
                    }
                }
                State::Connecting { since } if since + RECONNECT_TIMEOUT == at => {
                    return Err(format!(
                        "storm client {index}: no SSE response within {} s of reconnecting",
                        RECONNECT_TIMEOUT.as_secs()
                    ));
                }
                State::Streaming {
                    leave_at: Some(leave_at),
                } if leave_at == at => {
                    if now < publishing_until {
                        self.leave(poll, index, now)?;
                    } else {
                        self.clients[index].state = State::Streaming { leave_at: None };
                    }
                }
                _ => {} // a stale timer
            }
        }
        Ok(())
    }

    fn reconnect(&mut self, poll: &Poll, index: usize, now: Instant) -> Result<(), String> {
        let mut stream = open_client(self.opened, self.target, None)
            .map_err(|e| format!("storm client {index}: connect: {e}"))?;
        self.opened += 1;
        poll.registry()
            .register(
                &mut stream,
                Token(self.base + index),
                Interest::READABLE | Interest::WRITABLE,
            )
            .map_err(|e| format!("storm client {index}: register: {e}"))?;
        let client = &mut self.clients[index];
        client.request.clear();
        client
            .request
            .extend_from_slice(b"GET /sse HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n");
        if !client.last_id.is_empty() {
            client.request.extend_from_slice(b"Last-Event-ID: ");
            client.request.extend_from_slice(&client.last_id);
            client.request.extend_from_slice(b"\r\n");
        }
        client.request.extend_from_slice(b"\r\n");
        client.stream = Some(stream);
        client.parser = ClientParser::default();
        client.request_sent = false;
        client.state = State::Connecting { since: now };
        client.session_start_ns = now_ns();
        client.session_replayed = 0;
        client.session_last_replay_ns = 0;
        client.session_live = false;
        self.figures.sessions += 1;
        self.timers.push(Reverse((now + RECONNECT_TIMEOUT, index)));
        Ok(())
    }

    /// Closes the client's socket and schedules its return.
    fn leave(&mut self, poll: &Poll, index: usize, now: Instant) -> Result<(), String> {
        self.end_session(poll, index, None)?;
        let until = now + self.rng.within(self.away);
        self.clients[index].state = State::Away { until };
        self.timers.push(Reverse((until, index)));
        Ok(())
    }

    /// Closes the current session and records its replay. The replay was complete when a
    /// live event followed it or, at the end of the window (`last`: the last event
    /// published), when the client has every event.
    fn end_session(&mut self, poll: &Poll, index: usize, last: Option<u64>) -> Result<(), String> {
        let client = &mut self.clients[index];
        if let Some(mut stream) = client.stream.take() {
            poll.registry()
                .deregister(&mut stream)
                .map_err(|e| format!("storm client {index}: deregister: {e}"))?;
        }
        let figures = &mut self.figures;
        figures.replayed_client_side += client.session_replayed;
        if client.session_replayed > 0 {
            if client.session_live || last.is_some_and(|l| client.check.complete(l)) {
                figures.catch_up_ns.push(
                    client
                        .session_last_replay_ns
                        .saturating_sub(client.session_start_ns),
                );
            } else {
                figures.cut_short += 1;
            }
        }
        client.session_replayed = 0;
        Ok(())
    }

    /// Handles readiness of client `index`'s socket.
    #[allow(clippy::too_many_arguments)]
    fn ready(
        &mut self,
        index: usize,
        event: &mio::event::Event,
        buf: &mut [u8],
        epoch: &mut Option<Vec<u8>>,
        now: Instant,
        publishing_until: Instant,
    ) -> Result<(), String> {
        let client = &mut self.clients[index];
        let Some(stream) = client.stream.as_mut() else {
            return Ok(()); // it left; a stale event
        };
        if let Some(e) = stream.take_error().ok().flatten() {
            return Err(format!("storm client {index}: socket error: {e}"));
        }
        if !client.request_sent && event.is_writable() {
            match stream.peer_addr() {
                Ok(_) => {
                    let n = stream
                        .write(&client.request)
                        .map_err(|e| format!("storm client {index}: send request: {e}"))?;
                    if n != client.request.len() {
                        return Err(format!("storm client {index}: request only partly sent"));
                    }
                    client.request_sent = true;
                }
                Err(e) if e.kind() == io::ErrorKind::NotConnected => {}
                Err(e) => return Err(format!("storm client {index}: connect: {e}")),
            }
        }
        if event.is_readable() || event.is_read_closed() || event.is_error() {
            self.read(index, buf, epoch)?;
        }
        let client = &mut self.clients[index];
        if matches!(client.state, State::Connecting { .. }) && client.parser.is_streaming() {
            let leave_at = (now < publishing_until).then(|| now + self.rng.within(self.online));
            client.state = State::Streaming { leave_at };
            if let Some(at) = leave_at {
                self.timers.push(Reverse((at, index)));
            }
        }
        Ok(())
    }

    fn read(
        &mut self,
        index: usize,
        buf: &mut [u8],
        epoch: &mut Option<Vec<u8>>,
    ) -> Result<(), String> {
        let client = &mut self.clients[index];
        let Some(stream) = client.stream.as_mut() else {
            return Ok(());
        };
        let StormClient {
            parser,
            check,
            last_id,
            gaps,
            session_start_ns,
            session_replayed,
            session_last_replay_ns,
            session_live,
            ..
        } = client;
        read_events(stream, parser, buf, |event, recv| {
            match classify(event, epoch) {
                Got::Seq { ts, seq, id } => {
                    check.see(seq);
                    last_id.clear();
                    last_id.extend_from_slice(id);
                    if ts < *session_start_ns {
                        *session_replayed += 1;
                        *session_last_replay_ns = recv;
                    } else {
                        *session_live = true;
                    }
                }
                Got::Gap => {
                    *gaps += 1;
                    check.problem(format!(
                        "got a gap event after reconnecting with Last-Event-ID {:?}",
                        String::from_utf8_lossy(last_id)
                    ));
                }
                Got::Bad(what) => check.problem(what),
            }
        })
        .map_err(|e| format!("storm client {index}: {e}"))
    }

    /// Whether every client is back and has every event up to `last`.
    fn caught_up(&self, last: u64) -> bool {
        self.clients.iter().all(|c| {
            matches!(c.state, State::Streaming { leave_at: None }) && c.check.complete(last)
        })
    }

    /// Reads every connected client (a safety net for a lost readiness edge).
    fn sweep(&mut self, buf: &mut [u8], epoch: &mut Option<Vec<u8>>) -> Result<(), String> {
        for index in 0..self.clients.len() {
            if self.clients[index].parser.is_streaming() {
                self.read(index, buf, epoch)?;
            }
        }
        Ok(())
    }

    /// Ends every session and checks every client up to `last`.
    fn finish(&mut self, poll: &Poll, last: u64) -> Result<StormFigures, String> {
        for index in 0..self.clients.len() {
            self.end_session(poll, index, Some(last))?;
        }
        let mut figures = std::mem::take(&mut self.figures);
        for client in &mut self.clients {
            client.check.finish(last);
            figures.received += client.check.received;
            figures.lost += client.check.lost;
            figures.duplicates += client.check.duplicates;
            figures.gaps += client.gaps;
            if !client.check.ok() {
                figures.bad_clients += 1;
                if figures.first_problem.is_none() {
                    figures.first_problem = client.check.first_problem.clone();
                }
            }
        }
        figures.catch_up_ns.sort_unstable();
        Ok(figures)
    }
}

/// The host's counters (`name value` lines of `/stats`).
struct HostStats(String);

impl HostStats {
    fn get(port: u16) -> Result<HostStats, String> {
        http_get(port, "/stats").map(HostStats)
    }

    fn value(&self, name: &str) -> Result<u64, String> {
        self.0
            .lines()
            .find_map(|line| {
                let (key, value) = line.split_once(' ')?;
                (key == name).then(|| value.trim().parse().ok()).flatten()
            })
            .ok_or_else(|| format!("the host's /stats has no {name:?} counter"))
    }
}

/// What `/pace` answered.
#[derive(Debug, PartialEq)]
struct PaceAnswer {
    published: u64,
    late_max_ns: u64,
    seconds: f64,
}

fn parse_pace_answer(body: &str) -> Result<PaceAnswer, String> {
    let field = |name: &str| {
        body.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .ok_or_else(|| format!("/pace answer without {name:?}: {body:?}"))
    };
    Ok(PaceAnswer {
        published: field("published")?
            .parse()
            .map_err(|e| format!("/pace published: {e}"))?,
        late_max_ns: field("late_max_ns")?
            .parse()
            .map_err(|e| format!("/pace late_max_ns: {e}"))?,
        seconds: field("seconds")?
            .parse()
            .map_err(|e| format!("/pace seconds: {e}"))?,
    })
}

/// One window's figures.
struct Window {
    name: &'static str,
    pace: PaceAnswer,
    /// From the pace request until every client had every event.
    seconds: f64,
    live_deliveries: u64,
    p50_ns: u64,
    p99_ns: u64,
    p999_ns: u64,
    max_ns: u64,
    host_cpu_seconds: f64,
    loadgen_cpu_seconds: f64,
    host_replayed: u64,
    host_gaps: u64,
    host_connections: u64,
    live_lost: u64,
    live_duplicates: u64,
    live_gaps: u64,
    live_bad_clients: usize,
    live_first_problem: Option<String>,
    timed_out: bool,
    storm: Option<StormFigures>,
}

impl Window {
    fn ok(&self) -> bool {
        let storm_ok = self
            .storm
            .as_ref()
            .is_none_or(|s| s.bad_clients == 0 && s.lost == 0 && s.duplicates == 0 && s.gaps == 0);
        !self.timed_out && self.live_bad_clients == 0 && self.host_gaps == 0 && storm_ok
    }
}

/// The state both windows share.
struct Bench {
    opts: Opts,
    host: HostProcess,
    poll: Poll,
    events: Events,
    buf: Vec<u8>,
    live: Vec<Client>,
    epoch: Option<Vec<u8>>,
    latencies: Vec<u64>,
}

pub(super) fn run(args: &[String]) -> Result<(), String> {
    let opts = parse_args(args)?;
    let (soft, _) = raise_nofile_limit().map_err(|e| format!("RLIMIT_NOFILE: {e}"))?;
    let needed = (opts.live + opts.storm) as u64 + FD_RESERVE;
    if needed > soft {
        return Err(format!(
            "{} live + {} storm clients need {needed} file descriptors; RLIMIT_NOFILE allows {soft}",
            opts.live, opts.storm
        ));
    }
    println!(
        "sse-loadgen storm: {} live clients, {} events/s for {} s per window, {} B; \
         {} storm clients (online {}, away {}), engine threads {}",
        opts.live,
        opts.rate,
        opts.seconds,
        opts.size,
        opts.storm,
        opts.online.show(),
        opts.away.show(),
        opts.threads
    );
    let mut host = HostProcess::spawn(Kind::Engine, opts.threads)?;
    println!("[storm] host pid {} on 127.0.0.1:{}", host.pid, host.port);
    let mut poll = Poll::new().map_err(|e| format!("create poller: {e}"))?;
    let mut events = Events::with_capacity(4096);
    let started = Instant::now();
    let live = connect_clients(
        &mut poll,
        &mut events,
        &mut host,
        opts.live,
        &ClientSetup::PLAIN,
    )
    .map_err(|e| blame_host(&mut host, e))?;
    println!(
        "[storm] {} live clients streaming after {:.2} s",
        opts.live,
        started.elapsed().as_secs_f64()
    );
    let expected_events = (opts.rate * opts.seconds).round() as usize;
    let mut bench = Bench {
        latencies: Vec::with_capacity(opts.live * expected_events),
        opts,
        host,
        poll,
        events,
        buf: vec![0u8; READ_BUFFER],
        live,
        epoch: None,
    };
    std::thread::sleep(SETTLE);
    let baseline = bench
        .window("baseline", false)
        .map_err(|e| blame_host(&mut bench.host, e))?;
    print_window(&baseline);
    std::thread::sleep(SETTLE);
    let storm = bench
        .window("storm", true)
        .map_err(|e| blame_host(&mut bench.host, e))?;
    print_window(&storm);
    let stats = HostStats::get(bench.host.port)
        .map(|s| s.0.trim().replace('\n', ", "))
        .unwrap_or_else(|e| format!("(no stats: {e})"));
    println!("[storm] host counters: {stats}");
    // Stop the host first, so TIME_WAIT stays on its side.
    let Bench {
        opts, host, live, ..
    } = bench;
    drop(host);
    drop(live);
    print_summary(&opts, &baseline, &storm);
    if opts.json {
        println!("{}", json(&opts, &baseline, &storm, &stats));
    }
    if baseline.ok() && storm.ok() {
        Ok(())
    } else {
        Err(
            "events were lost, duplicated, reordered or gapped, or a window did not \
             complete (see above)"
                .into(),
        )
    }
}

impl Bench {
    /// Runs one window: publishing at the rate while every client is read; with
    /// `storm`, the storm clients come and go. Ends when every client has every event.
    fn window(&mut self, name: &'static str, with_storm: bool) -> Result<Window, String> {
        let opts = self.opts.clone();
        let port = self.host.port;
        let before = HostStats::get(port)?;
        // Engine ids number every published event consecutively; only `/pace` publishes.
        let first = before.value("events_published")? + 1;
        let mut storm = if with_storm && opts.storm > 0 {
            // The storm clients were cut off right after the last event so far.
            let last_id: Vec<u8> = self.live[0].parser.last_event_id().to_vec();
            if last_id.is_empty() {
                return Err("no event id seen before the storm".into());
            }
            Some(Storm::new(&opts, self.live.len(), port, &last_id, first))
        } else {
            None
        };
        let mut live: Vec<Live> = (0..self.live.len())
            .map(|_| Live {
                check: SeqCheck::new(first),
                gaps: 0,
            })
            .collect();
        self.latencies.clear();
        let host_cpu_before = self.host.cpu()?;
        let own_cpu_before = own_cpu()?;
        let path = format!(
            "/pace?rate={}&seconds={}&size={}",
            opts.rate, opts.seconds, opts.size
        );
        let asked = Instant::now();
        let trigger: JoinHandle<Result<String, String>> =
            std::thread::spawn(move || http_get(port, &path));
        if let Some(storm) = &mut storm {
            storm.start(asked);
        }
        let publishing_until = asked + Duration::from_secs_f64(opts.seconds);
        let deadline = publishing_until + opts.timeout;
        let mut pace: Option<PaceAnswer> = None;
        let mut trigger = Some(trigger);
        let mut timed_out = false;
        let mut last_done_check = Instant::now();
        let live_count = self.live.len();
        loop {
            let now = Instant::now();
            let wait = storm
                .as_ref()
                .and_then(Storm::next_timer)
                .map_or(POLL_MAX, |at| {
                    at.saturating_duration_since(now).min(POLL_MAX)
                });
            self.poll
                .poll(&mut self.events, Some(wait))
                .or_else(ignore_eintr)
                .map_err(|e| format!("poll: {e}"))?;
            let now = Instant::now();
            for event in self.events.iter() {
                let index = event.token().0;
                if index < live_count {
                    read_live(
                        &mut self.live[index],
                        index,
                        &mut live[index],
                        &mut self.buf,
                        &mut self.epoch,
                        &mut self.latencies,
                    )?;
                } else if let Some(storm) = &mut storm {
                    storm.ready(
                        index - live_count,
                        event,
                        &mut self.buf,
                        &mut self.epoch,
                        now,
                        publishing_until,
                    )?;
                }
            }
            if let Some(storm) = &mut storm {
                storm.fire(&self.poll, now, publishing_until)?;
            }
            if trigger.as_ref().is_some_and(JoinHandle::is_finished) {
                let body = trigger
                    .take()
                    .and_then(|t| t.join().ok())
                    .ok_or("the pace request thread panicked")?
                    .map_err(|e| format!("pace request: {e}"))?;
                pace = Some(parse_pace_answer(&body)?);
            }
            let idle = self.events.is_empty();
            if idle {
                self.host.check_alive()?;
            }
            if let Some(answer) = &pace {
                let last = first + answer.published - 1;
                if idle {
                    // A safety net for a lost readiness edge.
                    for (index, client) in self.live.iter_mut().enumerate() {
                        if !live[index].check.complete(last) {
                            read_live(
                                client,
                                index,
                                &mut live[index],
                                &mut self.buf,
                                &mut self.epoch,
                                &mut self.latencies,
                            )?;
                        }
                    }
                    if let Some(storm) = &mut storm {
                        storm.sweep(&mut self.buf, &mut self.epoch)?;
                    }
                }
                if idle || now.duration_since(last_done_check) >= Duration::from_millis(10) {
                    last_done_check = now;
                    let live_done = live.iter().all(|l| l.check.complete(last));
                    if live_done && storm.as_ref().is_none_or(|s| s.caught_up(last)) {
                        break;
                    }
                }
            }
            if now > deadline {
                if pace.is_none() {
                    return Err(format!(
                        "the host did not finish publishing within {} s of the window's end",
                        opts.timeout.as_secs()
                    ));
                }
                timed_out = true;
                break;
            }
        }
        let seconds = asked.elapsed().as_secs_f64();
        let host_cpu_seconds = self
            .host
            .cpu()?
            .saturating_sub(host_cpu_before)
            .as_secs_f64();
        let loadgen_cpu_seconds = own_cpu()?.saturating_sub(own_cpu_before).as_secs_f64();
        let pace = pace.ok_or("no pace answer")?;
        let last = first + pace.published - 1;
        let after = HostStats::get(port)?;
        let delta = |name: &str| -> Result<u64, String> {
            Ok(after.value(name)?.saturating_sub(before.value(name)?))
        };
        let storm = match &mut storm {
            Some(storm) => Some(storm.finish(&self.poll, last)?),
            None => None,
        };
        let (mut live_lost, mut live_duplicates, mut live_gaps, mut live_bad_clients) =
            (0, 0, 0, 0);
        let mut live_first_problem = None;
        for (index, l) in live.iter_mut().enumerate() {
            l.check.finish(last);
            live_lost += l.check.lost;
            live_duplicates += l.check.duplicates;
            live_gaps += l.gaps;
            if !l.check.ok() {
                live_bad_clients += 1;
                if live_first_problem.is_none() {
                    live_first_problem = l
                        .check
                        .first_problem
                        .as_ref()
                        .map(|p| format!("live client {index}: {p}"));
                }
            }
        }
        self.latencies.sort_unstable();
        Ok(Window {
            name,
            seconds,
            live_deliveries: self.latencies.len() as u64,
            p50_ns: quantile(&self.latencies, 0.50),
            p99_ns: quantile(&self.latencies, 0.99),
            p999_ns: quantile(&self.latencies, 0.999),
            max_ns: self.latencies.last().copied().unwrap_or(0),
            host_cpu_seconds,
            loadgen_cpu_seconds,
            host_replayed: delta("events_replayed")?,
            host_gaps: delta("gaps")?,
            host_connections: delta("connections_total")?,
            live_lost,
            live_duplicates,
            live_gaps,
            live_bad_clients,
            live_first_problem,
            timed_out,
            storm,
            pace,
        })
    }
}

/// Reads one live client: checks each event's sequence and records its latency.
fn read_live(
    client: &mut Client,
    index: usize,
    record: &mut Live,
    buf: &mut [u8],
    epoch: &mut Option<Vec<u8>>,
    latencies: &mut Vec<u64>,
) -> Result<(), String> {
    read_events(
        &mut client.stream,
        &mut client.parser,
        buf,
        |event, recv| match classify(event, epoch) {
            Got::Seq { ts, seq, .. } => {
                record.check.see(seq);
                latencies.push(recv.saturating_sub(ts));
            }
            Got::Gap => {
                record.gaps += 1;
                record.check.problem("a live client got a gap event".into());
            }
            Got::Bad(what) => record.check.problem(what),
        },
    )
    .map_err(|e| format!("live client {index}: {e}"))
}

fn per_second(count: u64, seconds: f64) -> f64 {
    count as f64 / seconds.max(1e-9)
}

fn print_window(w: &Window) {
    println!(
        "[{}] {} events published in {:.3} s (publisher at most {} late); window {:.3} s; \
         live: {} deliveries, latency p50 {} p99 {} p99.9 {} max {}; CPU host {:.2} s, loadgen {:.2} s",
        w.name,
        w.pace.published,
        w.pace.seconds,
        ms(w.pace.late_max_ns),
        w.seconds,
        thousands(w.live_deliveries as f64),
        ms(w.p50_ns),
        ms(w.p99_ns),
        ms(w.p999_ns),
        ms(w.max_ns),
        w.host_cpu_seconds,
        w.loadgen_cpu_seconds
    );
    if let Some(s) = &w.storm {
        println!(
            "[{}] {} reconnects ({} while publishing), host replayed {} events ({} client-side), \
             {} gaps; catch-up per reconnect p50 {} p99 {} max {} ({} sessions left before a live event)",
            w.name,
            s.sessions,
            s.sessions_while_publishing,
            thousands(w.host_replayed as f64),
            thousands(s.replayed_client_side as f64),
            w.host_gaps,
            ms(quantile(&s.catch_up_ns, 0.50)),
            ms(quantile(&s.catch_up_ns, 0.99)),
            ms(s.catch_up_ns.last().copied().unwrap_or(0)),
            s.cut_short
        );
    }
    if w.timed_out {
        println!(
            "[{}] TIMEOUT: not every client had every event in time",
            w.name
        );
    }
    if let Some(p) = &w.live_first_problem {
        println!(
            "[{}] PROBLEM: {} live clients: {} lost, {} duplicated or out of order, {} gaps; first: {p}",
            w.name, w.live_bad_clients, w.live_lost, w.live_duplicates, w.live_gaps
        );
    }
    if let Some(s) = &w.storm {
        if let Some(p) = &s.first_problem {
            println!(
                "[{}] PROBLEM: {} storm clients: {} lost, {} duplicated or out of order, {} gaps; first: {p}",
                w.name, s.bad_clients, s.lost, s.duplicates, s.gaps
            );
        }
    }
}

fn print_summary(opts: &Opts, baseline: &Window, storm: &Window) {
    println!();
    println!(
        "summary: {} live clients, {} events/s × {} s of {} B per window; storm: {} clients \
         reconnecting with Last-Event-ID (online {}, away {})",
        opts.live,
        opts.rate,
        opts.seconds,
        opts.size,
        opts.storm,
        opts.online.show(),
        opts.away.show()
    );
    println!("live latency = receive time − the event's send timestamp, over every live delivery");
    println!(
        "{:<9} {:>16} {:>9} {:>9} {:>9} {:>9} {:>9} {:>12} {:>15}",
        "window",
        "live deliveries",
        "p50",
        "p99",
        "p99.9",
        "max",
        "host CPU",
        "loadgen CPU",
        "publisher late"
    );
    for w in [baseline, storm] {
        println!(
            "{:<9} {:>16} {:>9} {:>9} {:>9} {:>9} {:>7.2} s {:>10.2} s {:>15}",
            w.name,
            thousands(w.live_deliveries as f64),
            ms(w.p50_ns),
            ms(w.p99_ns),
            ms(w.p999_ns),
            ms(w.max_ns),
            w.host_cpu_seconds,
            w.loadgen_cpu_seconds,
            ms(w.pace.late_max_ns)
        );
    }
    if let Some(s) = &storm.storm {
        println!(
            "storm: {} reconnects, {}/s while publishing ({} in {} s); replay: {} events in the \
             {:.2} s storm window = {} events/s (host counter; client-side {}); catch-up per \
             reconnect p50 {} p99 {} max {}; gaps {}",
            thousands(s.sessions as f64),
            thousands(per_second(s.sessions_while_publishing, opts.seconds)),
            thousands(s.sessions_while_publishing as f64),
            opts.seconds,
            thousands(storm.host_replayed as f64),
            storm.seconds,
            thousands(per_second(storm.host_replayed, storm.seconds)),
            thousands(s.replayed_client_side as f64),
            ms(quantile(&s.catch_up_ns, 0.50)),
            ms(quantile(&s.catch_up_ns, 0.99)),
            ms(s.catch_up_ns.last().copied().unwrap_or(0)),
            storm.host_gaps
        );
    }
    println!(
        "p99 with the storm / without: {:.2}×; p50: {:.2}×",
        storm.p99_ns as f64 / baseline.p99_ns.max(1) as f64,
        storm.p50_ns as f64 / baseline.p50_ns.max(1) as f64
    );
    let storm_clients = storm.storm.as_ref().map_or(0, |s| s.clients);
    let verdict = if baseline.ok() && storm.ok() {
        "OK".to_string()
    } else {
        "FAILED".to_string()
    };
    println!(
        "check: every live client got the {} + {} events of both windows, and every storm client \
         the {} events of the storm window across its sessions, exactly once and in order: {verdict}",
        baseline.pace.published, storm.pace.published, storm.pace.published,
    );
    if storm_clients > 0 {
        if let Some(s) = &storm.storm {
            println!(
                "       storm clients: {} events received, {} lost, {} duplicated or out of order, \
                 {} gap events, {} clients with a problem",
                thousands(s.received as f64),
                s.lost,
                s.duplicates,
                s.gaps,
                s.bad_clients
            );
        }
    }
}

fn json_window(w: &Window) -> String {
    let storm = match &w.storm {
        None => "null".to_string(),
        Some(s) => format!(
            "{{\"clients\":{},\"reconnects\":{},\"reconnects_while_publishing\":{},\
             \"replayed_client_side\":{},\"catch_up_p50_ns\":{},\"catch_up_p99_ns\":{},\
             \"catch_up_max_ns\":{},\"sessions_cut_short\":{},\"received\":{},\"lost\":{},\
             \"duplicates\":{},\"gap_events\":{},\"clients_with_problems\":{},\"first_problem\":{}}}",
            s.clients,
            s.sessions,
            s.sessions_while_publishing,
            s.replayed_client_side,
            quantile(&s.catch_up_ns, 0.50),
            quantile(&s.catch_up_ns, 0.99),
            s.catch_up_ns.last().copied().unwrap_or(0),
            s.cut_short,
            s.received,
            s.lost,
            s.duplicates,
            s.gaps,
            s.bad_clients,
            s.first_problem
                .as_deref()
                .map_or("null".to_string(), json_string)
        ),
    };
    format!(
        "{{\"published\":{},\"publish_seconds\":{:.6},\"publisher_late_max_ns\":{},\
         \"window_seconds\":{:.6},\"live_deliveries\":{},\"p50_ns\":{},\"p99_ns\":{},\
         \"p999_ns\":{},\"max_ns\":{},\"host_cpu_seconds\":{:.2},\"loadgen_cpu_seconds\":{:.2},\
         \"host_events_replayed\":{},\"replayed_per_s\":{:.0},\"host_gaps\":{},\
         \"host_connections\":{},\"live_lost\":{},\"live_duplicates\":{},\"live_gap_events\":{},\
         \"live_clients_with_problems\":{},\"timed_out\":{},\"ok\":{},\"storm\":{}}}",
        w.pace.published,
        w.pace.seconds,
        w.pace.late_max_ns,
        w.seconds,
        w.live_deliveries,
        w.p50_ns,
        w.p99_ns,
        w.p999_ns,
        w.max_ns,
        w.host_cpu_seconds,
        w.loadgen_cpu_seconds,
        w.host_replayed,
        per_second(w.host_replayed, w.seconds),
        w.host_gaps,
        w.host_connections,
        w.live_lost,
        w.live_duplicates,
        w.live_gaps,
        w.live_bad_clients,
        w.timed_out,
        w.ok(),
        storm
    )
}

fn json(opts: &Opts, baseline: &Window, storm: &Window, stats: &str) -> String {
    let reconnects_per_s = storm.storm.as_ref().map_or(0.0, |s| {
        per_second(s.sessions_while_publishing, opts.seconds)
    });
    format!(
        "{{\"bench\":\"sse_reconnect_storm\",\"live\":{},\"storm\":{},\"rate\":{},\"seconds\":{},\
         \"size\":{},\"online\":[{},{}],\"away\":[{},{}],\"threads\":{},\"seed\":{},\
         \"reconnects_per_s\":{:.1},\"p99_ratio\":{:.3},\"ok\":{},\"baseline\":{},\"storm_window\":{},\
         \"stats\":{}}}",
        opts.live,
        opts.storm,
        opts.rate,
        opts.seconds,
        opts.size,
        opts.online.lo,
        opts.online.hi,
        opts.away.lo,
        opts.away.hi,
        opts.threads,
        opts.seed,
        reconnects_per_s,
        storm.p99_ns as f64 / baseline.p99_ns.max(1) as f64,
        baseline.ok() && storm.ok(),
        json_window(baseline),
        json_window(storm),
        json_string(stats)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Vec<String> {
        text.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn spans() {
        assert_eq!(parse_span("0.5-2"), Ok(Span { lo: 0.5, hi: 2.0 }));
        assert_eq!(parse_span("1"), Ok(Span { lo: 1.0, hi: 1.0 }));
        assert_eq!(parse_span(" 0 - 3 "), Ok(Span { lo: 0.0, hi: 3.0 }));
        for bad in ["", "2-1", "a-1", "1-", "-1", "1-nan", "0-9999"] {
            assert!(parse_span(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn options() {
        let o = parse_args(&[]).unwrap();
        assert_eq!(
            (o.live, o.storm, o.rate, o.seconds),
            (1000, 1000, 100.0, 10.0)
        );
        assert_eq!(o.away, Span { lo: 0.5, hi: 2.0 });
        let o = parse_args(&args(
            "--live 10 --storm 0 --rate 50 --seconds 2.5 --away 1-3 --online 0.1-0.2 --json",
        ))
        .unwrap();
        assert_eq!((o.live, o.storm, o.rate, o.seconds), (10, 0, 50.0, 2.5));
        assert!(o.json);
        for bad in [
            "--live 0",
            "--rate 0",
            "--size 10",
            "--online 0",
            "--rate 400 --away 1-2",
            "--seconds",
            "--bogus",
        ] {
            assert!(parse_args(&args(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn pace_answers() {
        assert_eq!(
            parse_pace_answer("published 1000\nlate_max_ns 1500\nseconds 9.990000\n"),
            Ok(PaceAnswer {
                published: 1000,
                late_max_ns: 1500,
                seconds: 9.99
            })
        );
        assert!(parse_pace_answer("published x\n").is_err());
        assert!(parse_pace_answer("").is_err());
    }

    #[test]
    fn spans_are_drawn_within_bounds_and_reproducibly() {
        let span = Span { lo: 0.5, hi: 2.0 };
        let mut a = Rng(7);
        let mut b = Rng(7);
        for _ in 0..1000 {
            let d = a.within(span);
            assert!(d >= Duration::from_millis(500) && d <= Duration::from_secs(2));
            assert_eq!(d, b.within(span));
        }
    }

    #[test]
    fn events_are_classified() {
        let mut epoch = None;
        let event = |id: Option<&'static [u8]>, name: Option<&'static [u8]>| SseEvent {
            ts: name.is_none().then_some(5),
            id,
            name,
        };
        assert!(matches!(
            classify(&event(Some(b"ep-3"), None), &mut epoch),
            Got::Seq { ts: 5, seq: 3, .. }
        ));
        assert_eq!(epoch.as_deref(), Some(&b"ep"[..]));
        assert!(matches!(
            classify(&event(Some(b"other-4"), None), &mut epoch),
            Got::Bad(_)
        ));
        assert!(matches!(
            classify(&event(None, None), &mut epoch),
            Got::Bad(_)
        ));
        assert!(matches!(
            classify(&event(None, Some(b"sse-gap")), &mut epoch),
            Got::Gap
        ));
        assert!(matches!(
            classify(&event(None, Some(b"other")), &mut epoch),
            Got::Bad(_)
        ));
    }
}
