//! The benchmark host: `sse-bench-host --kind engine|naive|floor [--port P] [--threads T]
//! [--watch-stdin]` (also run by `sse-loadgen` as `sse-loadgen --serve-host …`, so the
//! host is always built from the same source as the load generator).
//!
//! A minimal HTTP host on 127.0.0.1:P with one accept thread.
//!
//! - `GET /sse`: becomes an SSE stream on channel `bench`. `engine` hands the socket to
//!   `sse_engine`, with the `Last-Event-ID` request header (or a `lastEventId` query
//!   parameter) as `ConnectOptions::last_event_id`, so a reconnecting client gets what
//!   it missed replayed from history; `naive` and `floor` write the response head
//!   themselves and keep the socket (they have no history).
//! - `GET /burst?count=M&size=S`: publishes M events of S bytes whose data starts with the
//!   send time (decimal nanoseconds since the UNIX epoch), then answers `200` with an
//!   empty body. `engine` calls `Engine::broadcast` M times in a tight loop; `naive` does
//!   one blocking `send()` per event per client, on this one thread; `floor` (the
//!   coalesced floor: what one thread can do at best) encodes the M frames once into one
//!   buffer and does one blocking `send()` of that buffer per client.
//! - `GET /pace?rate=R&seconds=S&size=B` (engine only): publishes round(R × S) events
//!   of B bytes, the i-th due at i / R seconds after the request, on a thread of its
//!   own (the accept thread goes on accepting), each stamped with its send time; then
//!   answers `200` with `published N`, `late_max_ns L` (how far behind schedule the
//!   latest event left) and `seconds T` lines.
//! - `GET /sse?channel=NAME` (engine only): the stream also joins channel NAME (the
//!   many-channels scenario gives each client a one-member channel of its own).
//! - `GET /channels?mode=one|each|batch&clients=N&rounds=R&size=B` (engine only): R
//!   rounds of events of B bytes, each stamped with its send time. `one`: one
//!   `broadcast` to `bench` per round; `each`: one `broadcast` to each of `user-0` …
//!   `user-<N-1>` per round; `batch`: one `broadcast_many` of those N (channel, event)
//!   pairs per round. Answers `200` with `published E` (events) and `seconds T` (time spent
//!   publishing on this thread).
//! - `GET /stats`: counters, one `name value` per line.
//!
//! With `--port 0` the kernel picks the port. The first line on stdout is
//! `READY port=<port> pid=<pid>`. With `--watch-stdin` the host exits when its stdin
//! closes, so it never outlives the load generator that started it.

use std::io::{self, BufRead, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::{event_data, now_ns, raise_nofile_limit, user_channel, CHANNEL};
use socket2::{Domain, Protocol, Socket, Type};
use sse_engine::{Config, ConnectOptions, Engine, Event};

const USAGE: &str =
    "usage: sse-bench-host --kind engine|naive|floor [--port P] [--threads T] [--watch-stdin]";
/// Largest burst (or paced run) accepted in one request.
const MAX_BURST_EVENTS: usize = 1_000_000;
/// Highest publishing rate `/pace` accepts, in events per second.
const MAX_PACE_RATE: f64 = 1_000_000.0;
const MAX_EVENT_SIZE: usize = 1024 * 1024;
const NAIVE_HEAD: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\r\n";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Engine,
    Naive,
    Floor,
}

struct Args {
    kind: Kind,
    port: u16,
    threads: usize,
    watch_stdin: bool,
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Args, String> {
    let mut kind = None;
    let mut port = 0u16;
    let mut threads = 1usize;
    let mut watch_stdin = false;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--kind" => {
                kind = Some(match value("--kind")?.as_str() {
                    "engine" => Kind::Engine,
                    "naive" => Kind::Naive,
                    "floor" => Kind::Floor,
                    other => {
                        return Err(format!("unknown --kind {other:?} (engine, naive or floor)"))
                    }
                })
            }
            "--port" => {
                port = value("--port")?
                    .parse()
                    .map_err(|e| format!("bad --port: {e}"))?
            }
            "--threads" => {
                threads = value("--threads")?
                    .parse()
                    .map_err(|e| format!("bad --threads: {e}"))?
            }
            "--watch-stdin" => watch_stdin = true,
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    let kind = kind.ok_or(format!("--kind is required\n{USAGE}"))?;
    Ok(Args {
        kind,
        port,
        threads,
        watch_stdin,
    })
}

/// How the host serves streams and bursts.
enum Host {
    /// Shared with the threads of `/pace`.
    Engine(Arc<Engine>),
    /// A reference of our own: every client socket, written with blocking `send()`s.
    Plain(Reference, Vec<TcpStream>),
}

/// The references written without the engine.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Reference {
    /// One `send()` per event per client.
    Naive,
    /// One `send()` per client per burst, of every frame of the burst.
    Floor,
}

/// Runs the host with its command-line arguments (without the program name).
pub fn main(args: impl IntoIterator<Item = String>) -> ExitCode {
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sse-bench-host: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: impl IntoIterator<Item = String>) -> Result<(), String> {
    let args = parse_args(args)?;
    let (soft, _hard) = raise_nofile_limit().map_err(|e| format!("RLIMIT_NOFILE: {e}"))?;
    let listener = listen(args.port).map_err(|e| format!("listen on port {}: {e}", args.port))?;
    let port = listener
        .local_addr()
        .map_err(|e| format!("local address: {e}"))?
        .port();
    let mut host = match args.kind {
        Kind::Engine => {
            let config = Config {
                threads: args.threads,
                heartbeat: None,
                ..Config::default()
            };
            Host::Engine(Arc::new(
                Engine::start(config).map_err(|e| format!("engine start: {e}"))?,
            ))
        }
        Kind::Naive => Host::Plain(Reference::Naive, Vec::new()),
        Kind::Floor => Host::Plain(Reference::Floor, Vec::new()),
    };
    if args.watch_stdin {
        std::thread::spawn(|| {
            // Ends when the parent closes our stdin (or dies): leave with it.
            let mut sink = Vec::new();
            let _ = io::stdin().lock().read_to_end(&mut sink);
            std::process::exit(0);
        });
    }
    {
        let mut out = io::stdout().lock();
        writeln!(out, "READY port={port} pid={}", std::process::id())
            .and_then(|()| out.flush())
            .map_err(|e| format!("stdout: {e}"))?;
    }
    eprintln!(
        "sse-bench-host: kind {:?} on 127.0.0.1:{port}, RLIMIT_NOFILE {soft}",
        args.kind
    );
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                if let Err(e) = host.handle(stream) {
                    eprintln!("sse-bench-host: {e}");
                }
            }
            Err(e) => {
                // EMFILE and friends: say so, give the process a moment, go on.
                eprintln!("sse-bench-host: accept: {e}");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
    Ok(())
}

fn listen(port: u16) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.bind(&SocketAddr::from(([127, 0, 0, 1], port)).into())?;
    // The kernel caps this at net.core.somaxconn (4096 here).
    socket.listen(4096)?;
    Ok(socket.into())
}

/// What the host needs from a request head.
#[derive(Debug, PartialEq, Eq)]
struct Request {
    /// The request target (path and query).
    target: String,
    /// The `Last-Event-ID` header's value.
    last_event_id: Option<String>,
}

/// Reads a request head (up to the blank line).
fn read_request(stream: &mut TcpStream) -> Result<Request, String> {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| format!("set read timeout: {e}"))?;
    let mut reader = io::BufReader::with_capacity(1024, &*stream);
    let mut request_line = String::new();
    reader
        .read_line(&mut request_line)
        .map_err(|e| format!("read request: {e}"))?;
    let mut line = String::new();
    let mut last_event_id = None;
    loop {
        line.clear();
        let n = reader
            .read_line(&mut line)
            .map_err(|e| format!("read request head: {e}"))?;
        if n == 0 {
            return Err("client closed before the end of the request head".into());
        }
        if line == "\r\n" || line == "\n" {
            break;
        }
        if line.len() > 8192 {
            return Err("request header line too long".into());
        }
        if let Some(value) = header_value(&line, "last-event-id") {
            last_event_id = Some(value.to_string());
        }
    }
    if !reader.buffer().is_empty() {
        return Err(
            "client sent bytes after the request head (pipelining is not supported)".into(),
        );
    }
    let mut parts = request_line.split_whitespace();
    match (parts.next(), parts.next()) {
        (Some("GET"), Some(target)) => Ok(Request {
            target: target.to_string(),
            last_event_id,
        }),
        _ => Err(format!("unsupported request {:?}", request_line.trim_end())),
    }
}

/// The value of header `name` (lower case) if `line` is that header.
fn header_value<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let (field, value) = line.split_once(':')?;
    field
        .trim()
        .eq_ignore_ascii_case(name)
        .then(|| value.trim_matches([' ', '\t', '\r', '\n']))
}

/// The `Last-Event-ID` of an SSE request: the header, else the `lastEventId` query
/// parameter (what a client that cannot set headers sends on its first connect).
fn resume_id(request: &Request) -> Result<Option<String>, String> {
    if let Some(id) = &request.last_event_id {
        return Ok(Some(id.clone()));
    }
    let query = request.target.split_once('?').map_or("", |(_, q)| q);
    for pair in query.split('&') {
        if let Some(value) = pair.strip_prefix("lastEventId=") {
            return percent_decode(value).map(Some);
        }
    }
    Ok(None)
}

/// Decodes `%XX` escapes and `+` of a query value.
fn percent_decode(value: &str) -> Result<String, String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| format!("bad percent escape in {value:?}"))?;
                out.push(hex);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| format!("{value:?} is not UTF-8 once decoded"))
}

/// The value of query parameter `name` in `target` (not decoded: the benchmark's names
/// need no escapes).
fn query_param<'a>(target: &'a str, name: &str) -> Option<&'a str> {
    let query = target.split_once('?').map_or("", |(_, q)| q);
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
}

/// How the many-channels scenario publishes a round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChannelsMode {
    /// One `broadcast` to [`CHANNEL`], which every client is in.
    One,
    /// One `broadcast` to each client's own channel.
    Each,
    /// One `broadcast_many` with an event for each client's own channel.
    Batch,
}

/// A many-channels run: how, to how many channels, how many rounds, how large.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Channels {
    mode: ChannelsMode,
    clients: usize,
    rounds: usize,
    size: usize,
}

/// `/channels?mode=one|each|batch&clients=N&rounds=R&size=B`.
fn channels_params(target: &str) -> Result<Channels, String> {
    let query = target.split_once('?').map_or("", |(_, q)| q);
    let mut run = Channels {
        mode: ChannelsMode::One,
        clients: 0,
        rounds: 1,
        size: 64,
    };
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let number = || {
            value
                .parse::<usize>()
                .map_err(|e| format!("bad {name}={value:?}: {e}"))
        };
        match name {
            "mode" => {
                run.mode = match value {
                    "one" => ChannelsMode::One,
                    "each" => ChannelsMode::Each,
                    "batch" => ChannelsMode::Batch,
                    _ => return Err(format!("unknown mode {value:?} (one, each or batch)")),
                }
            }
            "clients" => run.clients = number()?,
            "rounds" => run.rounds = number()?,
            "size" => run.size = number()?,
            _ => return Err(format!("unknown channels parameter {name:?}")),
        }
    }
    if run.clients.saturating_mul(run.rounds) > MAX_BURST_EVENTS * 10 || run.size > MAX_EVENT_SIZE {
        return Err(format!(
            "run too large (clients × rounds <= {}, size <= {MAX_EVENT_SIZE})",
            MAX_BURST_EVENTS * 10
        ));
    }
    Ok(run)
}

/// Publishes a many-channels run; returns the events published and the seconds it took.
fn publish_channels(engine: &Engine, run: Channels) -> Result<(usize, f64), String> {
    let names: Vec<String> = (0..run.clients).map(user_channel).collect();
    let started = Instant::now();
    let mut published = 0;
    for _ in 0..run.rounds {
        match run.mode {
            ChannelsMode::One => {
                let event = Event::new(event_data(now_ns(), run.size));
                engine
                    .broadcast(CHANNEL, &event)
                    .map_err(|e| format!("broadcast: {e}"))?;
                published += 1;
            }
            ChannelsMode::Each => {
                for name in &names {
                    let event = Event::new(event_data(now_ns(), run.size));
                    engine
                        .broadcast(name, &event)
                        .map_err(|e| format!("broadcast: {e}"))?;
                }
                published += names.len();
            }
            ChannelsMode::Batch => {
                let items: Vec<(&str, Event)> = names
                    .iter()
                    .map(|name| (name.as_str(), Event::new(event_data(now_ns(), run.size))))
                    .collect();
                engine
                    .broadcast_many(&items)
                    .map_err(|e| format!("broadcast_many: {e}"))?;
                published += items.len();
            }
        }
    }
    Ok((published, started.elapsed().as_secs_f64()))
}

/// A paced run: how many events, how many per second, how large.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Pace {
    count: usize,
    rate: f64,
    size: usize,
}

/// `rate`, `seconds` and `size` from `/pace?rate=R&seconds=S&size=B`.
fn pace_params(target: &str) -> Result<Pace, String> {
    let query = target.split_once('?').map_or("", |(_, q)| q);
    let (mut rate, mut seconds, mut size) = (100f64, 10f64, 64usize);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let real = || {
            value
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v > 0.0)
                .ok_or_else(|| format!("bad {name}={value:?}: a positive number is needed"))
        };
        match name {
            "rate" => rate = real()?,
            "seconds" => seconds = real()?,
            "size" => {
                size = value
                    .parse()
                    .map_err(|e| format!("bad size={value:?}: {e}"))?
            }
            _ => return Err(format!("unknown pace parameter {name:?}")),
        }
    }
    if rate > MAX_PACE_RATE {
        return Err(format!("rate above {MAX_PACE_RATE} events/s"));
    }
    let count = (rate * seconds).round();
    if count > MAX_BURST_EVENTS as f64 || size > MAX_EVENT_SIZE {
        return Err(format!(
            "paced run too large (rate × seconds <= {MAX_BURST_EVENTS}, size <= {MAX_EVENT_SIZE})"
        ));
    }
    Ok(Pace {
        count: count as usize,
        rate,
        size,
    })
}

/// Publishes a paced run on its own thread and answers `stream` when it is over.
fn start_pace(engine: Arc<Engine>, mut stream: TcpStream, pace: Pace) -> Result<(), String> {
    let spawned = std::thread::Builder::new()
        .name("pace".into())
        .spawn(move || {
            let started = Instant::now();
            let mut late_max = Duration::ZERO;
            for i in 0..pace.count {
                let due = started + Duration::from_secs_f64(i as f64 / pace.rate);
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                }
                late_max = late_max.max(Instant::now().saturating_duration_since(due));
                let event = Event::new(event_data(now_ns(), pace.size));
                if let Err(e) = engine.broadcast(CHANNEL, &event) {
                    let _ = respond(
                        &mut stream,
                        "500 Internal Server Error",
                        &format!("broadcast: {e}\n"),
                    );
                    return;
                }
            }
            let body = format!(
                "published {}\nlate_max_ns {}\nseconds {:.6}\n",
                pace.count,
                late_max.as_nanos(),
                started.elapsed().as_secs_f64()
            );
            if let Err(e) = respond(&mut stream, "200 OK", &body) {
                eprintln!("sse-bench-host: pace: {e}");
            }
        });
    spawned
        .map(|_| ())
        .map_err(|e| format!("spawn the pace thread: {e}"))
}

/// Appends one `data: <send time> xx…\n\n` frame.
fn push_frame(buffer: &mut Vec<u8>, size: usize) {
    buffer.extend_from_slice(b"data: ");
    buffer.extend_from_slice(event_data(now_ns(), size).as_bytes());
    buffer.extend_from_slice(b"\n\n");
}

/// `count` and `size` from `/burst?count=M&size=S`.
fn burst_params(target: &str) -> Result<(usize, usize), String> {
    let query = target.split_once('?').map_or("", |(_, q)| q);
    let (mut count, mut size) = (20usize, 64usize);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let number = || {
            value
                .parse::<usize>()
                .map_err(|e| format!("bad {name}={value:?}: {e}"))
        };
        match name {
            "count" => count = number()?,
            "size" => size = number()?,
            _ => return Err(format!("unknown burst parameter {name:?}")),
        }
    }
    if count > MAX_BURST_EVENTS || size > MAX_EVENT_SIZE {
        return Err(format!(
            "burst too large (count <= {MAX_BURST_EVENTS}, size <= {MAX_EVENT_SIZE})"
        ));
    }
    Ok((count, size))
}

fn respond(stream: &mut TcpStream, status: &str, body: &str) -> Result<(), String> {
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream
        .write_all(response.as_bytes())
        .map_err(|e| format!("write response: {e}"))
}

impl Host {
    fn handle(&mut self, mut stream: TcpStream) -> Result<(), String> {
        let request = match read_request(&mut stream) {
            Ok(request) => request,
            Err(e) => {
                let _ = respond(&mut stream, "400 Bad Request", "");
                return Err(e);
            }
        };
        let target = request.target.as_str();
        let path = target.split_once('?').map_or(target, |(p, _)| p);
        match path {
            "/sse" => match resume_id(&request) {
                Ok(last_event_id) => {
                    let channel = query_param(target, "channel").map(str::to_string);
                    self.stream(stream, last_event_id, channel)
                }
                Err(e) => respond(&mut stream, "400 Bad Request", &format!("{e}\n")),
            },
            "/burst" => match burst_params(target) {
                Ok((count, size)) => {
                    self.burst(count, size)?;
                    respond(&mut stream, "200 OK", "")
                }
                Err(e) => respond(&mut stream, "400 Bad Request", &format!("{e}\n")),
            },
            "/pace" => match (pace_params(target), &*self) {
                (Ok(pace), Host::Engine(engine)) => start_pace(engine.clone(), stream, pace),
                (Ok(_), Host::Plain(..)) => respond(
                    &mut stream,
                    "400 Bad Request",
                    "/pace needs the engine host\n",
                ),
                (Err(e), _) => respond(&mut stream, "400 Bad Request", &format!("{e}\n")),
            },
            "/channels" => match (channels_params(target), &*self) {
                (Ok(run), Host::Engine(engine)) => {
                    let (published, seconds) = publish_channels(engine, run)?;
                    let body = format!("published {published}\nseconds {seconds:.6}\n");
                    respond(&mut stream, "200 OK", &body)
                }
                (Ok(_), Host::Plain(..)) => respond(
                    &mut stream,
                    "400 Bad Request",
                    "/channels needs the engine host\n",
                ),
                (Err(e), _) => respond(&mut stream, "400 Bad Request", &format!("{e}\n")),
            },
            "/stats" => {
                let body = self.stats();
                respond(&mut stream, "200 OK", &body)
            }
            _ => respond(&mut stream, "404 Not Found", ""),
        }
    }

    fn stream(
        &mut self,
        mut stream: TcpStream,
        last_event_id: Option<String>,
        channel: Option<String>,
    ) -> Result<(), String> {
        stream
            .set_read_timeout(None)
            .map_err(|e| format!("clear read timeout: {e}"))?;
        match self {
            Host::Engine(engine) => {
                let options = ConnectOptions {
                    channels: std::iter::once(CHANNEL.to_string())
                        .chain(channel)
                        .collect(),
                    last_event_id,
                    ..ConnectOptions::default()
                };
                engine
                    .connect_fd(stream.into(), &options)
                    .map_err(|e| format!("connect_fd: {e}"))?;
                Ok(())
            }
            Host::Plain(_, clients) => {
                // As the engine does: small frames leave at once rather than after an ACK.
                stream
                    .set_nodelay(true)
                    .map_err(|e| format!("TCP_NODELAY: {e}"))?;
                stream
                    .write_all(NAIVE_HEAD)
                    .map_err(|e| format!("write response head: {e}"))?;
                clients.push(stream);
                Ok(())
            }
        }
    }

    fn burst(&mut self, count: usize, size: usize) -> Result<(), String> {
        match self {
            Host::Engine(engine) => {
                for _ in 0..count {
                    let event = Event::new(event_data(now_ns(), size));
                    engine
                        .broadcast(CHANNEL, &event)
                        .map_err(|e| format!("broadcast: {e}"))?;
                }
                Ok(())
            }
            Host::Plain(reference, clients) => {
                let mut failed = 0usize;
                // One blocking send() of the whole buffer per client, dropping the clients
                // that fail.
                let mut send_to_all = |buffer: &[u8]| {
                    clients.retain_mut(|client| match client.write_all(buffer) {
                        Ok(()) => true,
                        Err(_) => {
                            failed += 1;
                            false
                        }
                    })
                };
                let frame_len = size + 8;
                match reference {
                    Reference::Naive => {
                        let mut frame = Vec::with_capacity(frame_len);
                        for _ in 0..count {
                            frame.clear();
                            push_frame(&mut frame, size);
                            send_to_all(&frame);
                        }
                    }
                    Reference::Floor => {
                        let mut frames = Vec::with_capacity(frame_len * count);
                        for _ in 0..count {
                            push_frame(&mut frames, size);
                        }
                        send_to_all(&frames);
                    }
                }
                if failed > 0 {
                    eprintln!(
                        "sse-bench-host: {reference:?} burst dropped {failed} clients after write errors"
                    );
                }
                Ok(())
            }
        }
    }

    fn stats(&self) -> String {
        match self {
            Host::Engine(engine) => {
                let s = engine.stats();
                format!(
                    "kind engine\nconnections_open {}\nconnections_total {}\nrefused_total {}\n\
                     events_published {}\nframes_queued {}\nbytes_written {}\nwrite_calls {}\n\
                     queue_high_water {}\ndisconnects_total {}\nevents_replayed {}\ngaps {}\n",
                    s.connections_open,
                    s.connections_total,
                    s.refused_total,
                    s.events_published,
                    s.frames_queued,
                    s.bytes_written,
                    s.write_calls,
                    s.queue_high_water,
                    s.disconnects.iter().sum::<u64>(),
                    s.events_replayed,
                    s.gaps,
                )
            }
            Host::Plain(reference, clients) => format!(
                "kind {}\nconnections_open {}\n",
                format!("{reference:?}").to_lowercase(),
                clients.len()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_parameters() {
        assert_eq!(burst_params("/burst?count=5&size=100"), Ok((5, 100)));
        assert_eq!(burst_params("/burst"), Ok((20, 64)));
        assert!(burst_params("/burst?count=x").is_err());
        assert!(burst_params("/burst?speed=1").is_err());
        assert!(burst_params("/burst?count=99999999").is_err());
    }

    #[test]
    fn pace_parameters() {
        let pace = pace_params("/pace?rate=100&seconds=2.5&size=80").unwrap();
        assert_eq!(
            pace,
            Pace {
                count: 250,
                rate: 100.0,
                size: 80
            }
        );
        assert_eq!(pace_params("/pace").unwrap().count, 1000);
        for bad in [
            "/pace?rate=0",
            "/pace?rate=-1",
            "/pace?rate=inf",
            "/pace?seconds=x",
            "/pace?size=-1",
            "/pace?rate=1000000&seconds=100",
            "/pace?count=5",
        ] {
            assert!(pace_params(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn channels_parameters() {
        let run = channels_params("/channels?mode=each&clients=5000&rounds=20&size=80").unwrap();
        assert_eq!(
            run,
            Channels {
                mode: ChannelsMode::Each,
                clients: 5000,
                rounds: 20,
                size: 80
            }
        );
        assert_eq!(
            channels_params("/channels").unwrap().mode,
            ChannelsMode::One
        );
        for bad in [
            "/channels?mode=all",
            "/channels?mode=many",
            "/channels?clients=x",
            "/channels?speed=1",
            "/channels?clients=1000000&rounds=1000",
        ] {
            assert!(channels_params(bad).is_err(), "{bad}");
        }
        assert_eq!(
            query_param("/sse?x=1&channel=user-7", "channel"),
            Some("user-7")
        );
        assert_eq!(query_param("/sse?channels=a", "channel"), None);
        assert_eq!(query_param("/sse", "channel"), None);
    }

    #[test]
    fn last_event_id_from_header_or_query() {
        let request = |target: &str, header: Option<&str>| Request {
            target: target.into(),
            last_event_id: header.map(Into::into),
        };
        assert_eq!(resume_id(&request("/sse", None)), Ok(None));
        assert_eq!(
            resume_id(&request("/sse?lastEventId=ab-7", None)),
            Ok(Some("ab-7".into()))
        );
        assert_eq!(
            resume_id(&request("/sse?x=1&lastEventId=a%2Db+c", None)),
            Ok(Some("a-b c".into()))
        );
        // The header wins over the query parameter.
        assert_eq!(
            resume_id(&request("/sse?lastEventId=q-1", Some("h-2"))),
            Ok(Some("h-2".into()))
        );
        assert!(resume_id(&request("/sse?lastEventId=%zz", None)).is_err());
        assert!(resume_id(&request("/sse?lastEventId=%ff", None)).is_err());
        assert_eq!(
            header_value("Last-Event-ID: ep-42\r\n", "last-event-id"),
            Some("ep-42")
        );
        assert_eq!(
            header_value("last-event-id:ep-1\n", "last-event-id"),
            Some("ep-1")
        );
        assert_eq!(header_value("Host: x\r\n", "last-event-id"), None);
    }
}
