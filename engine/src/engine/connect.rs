//! Handing clients over: sockets, stream-mode clients, and what a host takes from them.

use std::cell::Cell;
use std::fmt;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::Ordering;
use std::sync::mpsc;

use bytes::Bytes;

use crate::config::{ConnectOptions, ValidatedConnect};
use crate::directory::{ReplayBudget, ReplayPlan};
use crate::error::{Error, ErrorKind, Result};
use crate::event::Event;
use crate::lifecycle::{ClientId, DisconnectReason};
use crate::reactor::command::{Command, NewClient, Resume};
use crate::stats::Counters;
use crate::sys::{self, SocketId};

use super::{Engine, ON_REACTOR};

impl Engine {
    /// Takes over a connected TCP socket and makes it an SSE stream.
    ///
    /// On success the engine owns `fd` and closes it when the client leaves. A refusal
    /// says in [`Refused::fd`] who has the descriptor: a limit (`LimitReached`) took it
    /// (the engine answered `503 Service Unavailable` with `Retry-After`, unless
    /// `head_sent`, and closed it); every other refusal gives it back untouched.
    pub fn connect_fd(
        &self,
        fd: OwnedFd,
        options: &ConnectOptions,
    ) -> std::result::Result<ClientId, Refused> {
        let checked = self
            .check_open()
            .and_then(|()| options.validate(&self.shared.config))
            .and_then(|options| Ok((options, sys::check_tcp_socket(fd.as_fd())?)));
        match checked {
            Ok((options, socket)) => self.admit(options, Some((fd, socket))),
            Err(error) => Err(Refused {
                error,
                fd: Some(fd),
            }),
        }
    }

    /// Registers a stream-mode client: for connections the host cannot hand over (TLS
    /// terminated in the host, HTTP/2, ASGI servers). The engine keeps its state
    /// (channels, history and replay, heartbeats, limits, timeouts) exactly as for a
    /// socket, but the host writes the bytes: on `LifecycleEvent::Readable` it calls
    /// [`Engine::take_stream`] and writes what it gets to its response, honouring its
    /// framework's backpressure. When the response ends it calls
    /// [`Engine::close_stream`]; when the engine ends the client (disconnect, slow,
    /// timeout, shutdown) the host gets `Disconnected` and ends the response. The host
    /// writes the response head ([`crate::http::stream_head`]), so `headers` must be
    /// empty; a limit refusal is an error (the host answers [`crate::http::busy_answer`]).
    pub fn connect_stream(&self, options: &ConnectOptions) -> Result<ClientId> {
        self.check_open()?;
        if !options.headers.is_empty() {
            return Err(Error::invalid(
                "in stream mode the host writes the response head: set headers on the response",
            ));
        }
        let options = ConnectOptions {
            head_sent: true,
            ..options.clone()
        };
        let options = options.validate(&self.shared.config)?;
        self.admit(options, None).map_err(|refused| refused.error)
    }

    /// Checks the limits, plans the replay, records the client and hands it to its shard.
    /// `socket` (a checked socket, or `None` in stream mode) becomes the engine's here,
    /// or comes back in the refusal.
    fn admit(
        &self,
        options: ValidatedConnect,
        socket: Option<(OwnedFd, SocketId)>,
    ) -> std::result::Result<ClientId, Refused> {
        let give_back = |error: Error, socket: Option<(OwnedFd, SocketId)>| Refused {
            error,
            fd: socket.map(|(fd, _)| fd),
        };
        let mut directory = self.directory();
        // Checked again under the lock: a shutdown that started meanwhile must not strand
        // this client in a shard that is already closing. The fd is still untouched.
        if let Err(e) = self.check_open() {
            return Err(give_back(e, socket));
        }
        if let Some((fd, id)) = &socket {
            if directory.owns_socket(*id) {
                let error = Error::new(
                    ErrorKind::BadSocket,
                    format!(
                        "fd {} is a socket the engine already owns (handed over before, \
                         by this descriptor or a duplicate of it)",
                        fd.as_raw_fd()
                    ),
                );
                return Err(give_back(error, socket));
            }
        }
        if let Err(error) = directory.check_admission(&options.channels, self.limits()) {
            drop(directory);
            Counters::add(&self.shared.counters.refused_total, 1);
            if let Some((fd, _)) = socket {
                let stream = sys::own_tcp_socket(fd, None);
                if !options.head_sent {
                    refuse_busy(&stream, self.shared.config.busy_retry_after_secs);
                }
            }
            return Err(Refused { error, fd: None });
        }
        if let Some((_, id)) = &socket {
            directory.adopt_socket(*id);
        }
        let write_timeout = self.shared.config.write_timeout;
        let stream = socket.map(|(fd, id)| (sys::own_tcp_socket(fd, write_timeout), id));
        let peer = stream.as_ref().and_then(|(s, _)| s.peer_addr().ok());
        let resume = match &options.last_event_id {
            None => Resume::Live,
            Some(last) => {
                let budget = ReplayBudget {
                    events: self.shared.config.max_replay,
                    bytes: self.shared.config.max_queue_bytes / 2,
                };
                let metadata = options.metadata.as_deref();
                match directory.plan_replay(&options.channels, metadata, last, budget) {
                    ReplayPlan::Replay(replay) => Resume::Replay(replay),
                    ReplayPlan::Gap => Resume::Gap(self.gap_frame(last, directory.position_id())),
                }
            }
        };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        directory.insert(id, options.user.clone(), options.channels.clone());
        let shard = self.shard_of(id);
        shard.send(Command::Connect(Box::new(NewClient {
            id,
            stream,
            peer,
            options,
            seen_seq: directory.last_seq(),
            resume,
        })));
        drop(directory);
        shard.wake();
        Counters::add(&self.shared.counters.connections_total, 1);
        Ok(id)
    }

    /// Takes up to `max_bytes` of what is queued for a stream-mode client (possibly
    /// nothing), for the host to write to its response. When bytes remain, `Readable` is
    /// reported again. `NotFound` once the client is gone; `InvalidArgument` for a
    /// client that owns a socket. It waits for the reactor, so not from a handler.
    ///
    /// It keeps working while a shutdown flushes (that is how stream-mode clients get
    /// their last bytes); after it, it returns `ShutDown`.
    pub fn take_stream(&self, client: ClientId, max_bytes: usize) -> Result<Bytes> {
        self.check_same_process()?;
        if ON_REACTOR.with(Cell::get) {
            return Err(Error::invalid(
                "take_stream cannot run inside an event handler (it runs on the reactor thread)",
            ));
        }
        if max_bytes == 0 {
            return Err(Error::out_of_range("max_bytes must be at least 1"));
        }
        let (reply, answer) = mpsc::channel();
        let shard = self.shard_of(client);
        shard.send(Command::Take {
            client,
            max: max_bytes,
            reply,
        });
        shard.wake();
        // No answer means the shard stopped: the engine shut down meanwhile.
        answer
            .recv()
            .unwrap_or_else(|_| Err(self.failure().unwrap_or_else(Error::shut_down)))
    }

    /// The host's response of a stream-mode client ended (the client went away): the
    /// client leaves with reason `closed`.
    pub fn close_stream(&self, client: ClientId) -> Result<()> {
        self.end_client(client, DisconnectReason::Closed)
    }

    /// The event telling a client that its `Last-Event-ID` is not in history. Its id is
    /// the position the client resumes from, so a client that drops right after it
    /// resumes from there (with a replay) instead of meeting the same gap again.
    pub(super) fn gap_frame(&self, last_event_id: &str, position: String) -> Option<Bytes> {
        let name = self.shared.config.gap_event.as_deref()?;
        let data = serde_json::json!({ "lastEventId": last_event_id }).to_string();
        // The name was validated with the config, the id is the engine's own format and
        // the data is one JSON line. Without `auto_ids` events go out without ids, so a
        // position id would stay the client's last one and replay what it already has.
        let event = Event::new(data).named(name);
        let event = match self.shared.config.auto_ids {
            true => event.with_id(position),
            false => event,
        };
        event.encode().ok()
    }
}

/// A hand-over that did not happen: why, and the descriptor when the caller still has it.
#[derive(Debug)]
pub struct Refused {
    pub error: Error,
    /// The caller's descriptor, untouched, when the refusal left it with the caller;
    /// `None` when the engine took it (a limit refused the client: the engine answered
    /// 503 and closed it) and for stream-mode clients, which have none.
    pub fd: Option<OwnedFd>,
}

impl From<Refused> for Error {
    fn from(refused: Refused) -> Self {
        refused.error
    }
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.error.fmt(f)
    }
}

impl std::error::Error for Refused {}

/// Answers a refused hand-over with `503` and `Retry-After`, then closes the socket.
fn refuse_busy(stream: &std::net::TcpStream, retry_after_secs: u32) {
    let response = crate::http::busy_answer(retry_after_secs, false).to_http1();
    // Best effort on a fresh socket: the kernel buffer takes a few hundred bytes at once.
    let _ = sys::send_bytes(stream, &response);
    let _ = stream.shutdown(std::net::Shutdown::Write);
    // Read what the client sent so closing sends FIN rather than RST, which could discard
    // the answer before the client reads it.
    let mut scratch = [0u8; 1024];
    while let Ok(n) = std::io::Read::read(&mut &*stream, &mut scratch) {
        if n == 0 {
            break;
        }
    }
}
