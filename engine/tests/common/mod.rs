//! Helpers for the engine's integration tests: real loopback sockets, a small SSE
//! parser, and a recorder for lifecycle events.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use sse_engine::{ClientId, ConnectOptions, DisconnectReason, Engine, LifecycleEvent, Result};

pub const WAIT: Duration = Duration::from_secs(10);

/// A connected pair: the client end and the server end.
pub fn socket_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    client.set_read_timeout(Some(WAIT)).unwrap();
    (client, server)
}

/// Hands a fresh connection to the engine; returns the client's reader and id.
pub fn connect(engine: &Engine, options: &ConnectOptions) -> Result<(SseClient, ClientId)> {
    let (client, server) = socket_pair();
    let id = engine.connect_fd(server.into(), options)?;
    Ok((SseClient::new(client), id))
}

pub fn channels(names: &[&str]) -> ConnectOptions {
    ConnectOptions {
        channels: names.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

/// One parsed SSE item: an event, or a comment line (heartbeat).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Received {
    pub event: Option<String>,
    pub id: Option<String>,
    pub retry: Option<u64>,
    pub data: Option<String>,
    pub comment: bool,
}

pub struct SseClient {
    pub reader: BufReader<TcpStream>,
}

impl SseClient {
    pub fn new(stream: TcpStream) -> Self {
        SseClient {
            reader: BufReader::new(stream),
        }
    }

    pub fn stream(&self) -> &TcpStream {
        self.reader.get_ref()
    }

    /// Reads the HTTP response head (through the blank line).
    pub fn read_head(&mut self) -> String {
        let mut head = String::new();
        loop {
            let mut line = String::new();
            let n = self.reader.read_line(&mut line).expect("read head");
            assert!(n > 0, "EOF inside the response head: {head:?}");
            head.push_str(&line);
            if line == "\r\n" {
                return head;
            }
        }
    }

    /// Reads the next block (up to a blank line); `None` at EOF.
    pub fn next(&mut self) -> Option<Received> {
        let mut item = Received::default();
        let mut seen = false;
        loop {
            let mut line = String::new();
            match self.reader.read_line(&mut line) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return None,
                Err(e) => panic!("read: {e}"),
            }
            let line = line.strip_suffix('\n').expect("line without LF");
            if line.is_empty() {
                if seen {
                    return Some(item);
                }
                continue;
            }
            seen = true;
            if line.starts_with(':') {
                item.comment = true;
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value).to_string();
            match field {
                "event" => item.event = Some(value),
                "id" => item.id = Some(value),
                "retry" => item.retry = Some(value.parse().unwrap()),
                "data" => {
                    item.data = Some(match item.data.take() {
                        Some(d) => format!("{d}\n{value}"),
                        None => value,
                    })
                }
                other => panic!("unexpected field {other:?}"),
            }
        }
    }

    /// The next item that is not a heartbeat comment.
    pub fn next_event(&mut self) -> Option<Received> {
        loop {
            let item = self.next()?;
            if !item.comment {
                return Some(item);
            }
        }
    }

    pub fn next_data(&mut self) -> String {
        self.next_event().expect("an event").data.expect("data")
    }

    /// Reads until EOF; returns everything read.
    pub fn read_to_end(&mut self) -> Vec<u8> {
        let mut rest = Vec::new();
        let _ = self.reader.read_to_end(&mut rest);
        rest
    }
}

/// Records lifecycle events and lets a test wait for one.
#[derive(Clone, Default)]
pub struct Recorder {
    inner: Arc<(Mutex<Vec<LifecycleEvent>>, Condvar)>,
}

impl Recorder {
    pub fn install(engine: &Engine) -> Recorder {
        let recorder = Recorder::default();
        let sink = recorder.clone();
        engine
            .on_event(move |event| {
                let (events, cv) = &*sink.inner;
                events
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(*event);
                cv.notify_all();
            })
            .unwrap();
        recorder
    }

    pub fn events(&self) -> Vec<LifecycleEvent> {
        self.inner.0.lock().unwrap().clone()
    }

    pub fn wait_for(&self, want: LifecycleEvent) {
        let (events, cv) = &*self.inner;
        let deadline = Instant::now() + WAIT;
        let mut guard = events.lock().unwrap();
        while !guard.contains(&want) {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "timed out waiting for {want:?}; saw {:?}",
                *guard
            );
            guard = cv.wait_timeout(guard, left).unwrap().0;
        }
    }

    pub fn wait_disconnect(&self, client: ClientId, reason: DisconnectReason) {
        self.wait_for(LifecycleEvent::Disconnected { client, reason });
    }
}

/// Polls `f` until it returns true (state changes made by a reactor thread).
pub fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}
