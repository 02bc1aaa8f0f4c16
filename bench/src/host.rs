//! The benchmark host: `sse-bench-host --kind engine|naive [--port P] [--threads T]
//! [--watch-stdin]` (also run by `sse-loadgen` as `sse-loadgen --serve-host …`, so the
//! host is always built from the same source as the load generator).
//!
//! A minimal HTTP host on 127.0.0.1:P with one accept thread.
//!
//! - `GET /sse`: becomes an SSE stream on channel `bench`. `engine` hands the socket to
//!   `sse_engine`; `naive` writes the response head itself and keeps the socket.
//! - `GET /burst?count=M&size=S`: publishes M events of S bytes whose data starts with the
//!   send time (decimal nanoseconds since the UNIX epoch), then answers `200` with an
//!   empty body. `engine` calls `Engine::broadcast` M times in a tight loop; `naive` does
//!   one blocking `send()` per event per client, on this one thread.
//! - `GET /stats`: counters, one `name value` per line.
//!
//! With `--port 0` the kernel picks the port. The first line on stdout is
//! `READY port=<port> pid=<pid>`. With `--watch-stdin` the host exits when its stdin
//! closes, so it never outlives the load generator that started it.

use std::io::{self, BufRead, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::IntoRawFd;
use std::process::ExitCode;
use std::time::Duration;

use crate::{event_data, now_ns, raise_nofile_limit, CHANNEL};
use socket2::{Domain, Protocol, Socket, Type};
use sse_engine::{Config, ConnectOptions, Engine, Event};

const USAGE: &str =
    "usage: sse-bench-host --kind engine|naive [--port P] [--threads T] [--watch-stdin]";
/// Largest burst accepted in one request.
const MAX_BURST_EVENTS: usize = 1_000_000;
const MAX_EVENT_SIZE: usize = 1024 * 1024;
const NAIVE_HEAD: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\r\n";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Engine,
    Naive,
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
                    other => return Err(format!("unknown --kind {other:?} (engine or naive)")),
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
    Engine(Engine),
    /// The naive reference: every client socket, written with blocking `send()`s.
    Naive(Vec<TcpStream>),
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
            Host::Engine(Engine::start(config).map_err(|e| format!("engine start: {e}"))?)
        }
        Kind::Naive => Host::Naive(Vec::new()),
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

/// Reads a request head (up to the blank line); returns the request target.
fn read_request(stream: &mut TcpStream) -> Result<String, String> {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| format!("set read timeout: {e}"))?;
    let mut reader = io::BufReader::with_capacity(1024, &*stream);
    let mut request_line = String::new();
    reader
        .read_line(&mut request_line)
        .map_err(|e| format!("read request: {e}"))?;
    let mut line = String::new();
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
    }
    if !reader.buffer().is_empty() {
        return Err(
            "client sent bytes after the request head (pipelining is not supported)".into(),
        );
    }
    let mut parts = request_line.split_whitespace();
    match (parts.next(), parts.next()) {
        (Some("GET"), Some(target)) => Ok(target.to_string()),
        _ => Err(format!("unsupported request {:?}", request_line.trim_end())),
    }
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
        let target = match read_request(&mut stream) {
            Ok(target) => target,
            Err(e) => {
                let _ = respond(&mut stream, "400 Bad Request", "");
                return Err(e);
            }
        };
        let path = target.split_once('?').map_or(target.as_str(), |(p, _)| p);
        match path {
            "/sse" => self.stream(stream),
            "/burst" => match burst_params(&target) {
                Ok((count, size)) => {
                    self.burst(count, size)?;
                    respond(&mut stream, "200 OK", "")
                }
                Err(e) => respond(&mut stream, "400 Bad Request", &format!("{e}\n")),
            },
            "/stats" => {
                let body = self.stats();
                respond(&mut stream, "200 OK", &body)
            }
            _ => respond(&mut stream, "404 Not Found", ""),
        }
    }

    fn stream(&mut self, mut stream: TcpStream) -> Result<(), String> {
        stream
            .set_read_timeout(None)
            .map_err(|e| format!("clear read timeout: {e}"))?;
        match self {
            Host::Engine(engine) => {
                let options = ConnectOptions {
                    channels: vec![CHANNEL.into()],
                    ..ConnectOptions::default()
                };
                let fd = stream.into_raw_fd();
                engine
                    .connect_fd(fd, &options)
                    .map_err(|e| format!("connect_fd: {e}"))?;
                Ok(())
            }
            Host::Naive(clients) => {
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
            Host::Naive(clients) => {
                let mut frame = Vec::with_capacity(size + 16);
                let mut failed = 0usize;
                for _ in 0..count {
                    frame.clear();
                    frame.extend_from_slice(b"data: ");
                    frame.extend_from_slice(event_data(now_ns(), size).as_bytes());
                    frame.extend_from_slice(b"\n\n");
                    // One blocking send() of the whole frame per client: the reference loop.
                    clients.retain_mut(|client| match client.write_all(&frame) {
                        Ok(()) => true,
                        Err(_) => {
                            failed += 1;
                            false
                        }
                    });
                }
                if failed > 0 {
                    eprintln!(
                        "sse-bench-host: naive burst dropped {failed} clients after write errors"
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
                    "kind engine\nconnections_open {}\nconnections_total {}\nevents_published {}\n\
                     frames_queued {}\nbytes_written {}\nwrite_calls {}\nqueue_high_water {}\n\
                     disconnects_total {}\n",
                    s.connections_open,
                    s.connections_total,
                    s.events_published,
                    s.frames_queued,
                    s.bytes_written,
                    s.write_calls,
                    s.queue_high_water,
                    s.disconnects.iter().sum::<u64>(),
                )
            }
            Host::Naive(clients) => format!("kind naive\nconnections_open {}\n", clients.len()),
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
}
