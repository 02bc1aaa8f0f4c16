//! One client on a reactor: its state, and its output — a socket the reactor writes,
//! or, in stream mode, bytes the host pulls.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use bytes::{Bytes, BytesMut};
use mio::net::TcpStream;
use serde_json::{Map, Value};

use crate::channel_set::ChannelSet;
use crate::lifecycle::{ClientId, DisconnectReason};
use crate::registry::ClientInfo;
use crate::sys::{self, SocketId};

/// Queue slots a drained client keeps; a larger queue is freed (32 bytes a slot).
const IDLE_QUEUE_CAPACITY: usize = 8;

/// Where a client's bytes go.
pub(super) enum Output {
    /// A socket the reactor writes with `sendmsg`.
    Socket { stream: TcpStream, id: SocketId },
    /// Stream mode: the host takes the bytes and writes them through its framework.
    /// `draining`: the client is closing, but the host takes what is queued first.
    Pulled { draining: bool },
}

/// Frames queued for a client, shared with every other recipient (no copies).
#[derive(Default)]
pub(super) struct Outbound {
    queue: VecDeque<Bytes>,
    /// Bytes of the first queued frame already sent.
    offset: usize,
    /// Bytes queued and not yet sent.
    queued: usize,
    /// The last frame with an `id:` line that left.
    last_id_frame: Option<Bytes>,
}

/// What writing a client's queue to its socket did.
#[derive(Debug)]
pub(super) enum Written {
    /// Everything queued left.
    Drained,
    /// The kernel took less than offered: wait until the socket is writable.
    Blocked,
    Failed(io::Error),
}

impl Outbound {
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Bytes queued and not yet sent.
    pub fn len(&self) -> usize {
        self.queued
    }

    pub fn push(&mut self, frame: Bytes) {
        self.queued += frame.len();
        self.queue.push_back(frame);
    }

    /// Drops `n` sent bytes from the front.
    fn advance(&mut self, mut n: usize) {
        self.queued -= n;
        while n > 0 {
            let first = self.queue[0].len() - self.offset;
            if n >= first {
                n -= first;
                self.offset = 0;
                if let Some(frame) = self.queue.pop_front() {
                    if frame.starts_with(b"id: ") {
                        self.last_id_frame = Some(frame);
                    }
                }
            } else {
                self.offset += n;
                n = 0;
            }
        }
    }

    /// Writes as much as the kernel takes, in as few `sendmsg` calls as the queue needs
    /// (one, unless it holds more frames than one call carries). Returns the outcome,
    /// the bytes written and the calls made.
    pub fn write_to(&mut self, socket: &impl AsRawFd) -> (Written, u64, u64) {
        let mut written = 0u64;
        let mut calls = 0u64;
        let outcome = loop {
            if self.queue.is_empty() {
                // A burst grew the queue; give the memory back while the client is idle.
                if self.queue.capacity() > IDLE_QUEUE_CAPACITY {
                    self.queue = VecDeque::new();
                }
                break Written::Drained;
            }
            let batch: usize = self
                .queue
                .iter()
                .take(sys::MAX_IOV)
                .map(Bytes::len)
                .sum::<usize>()
                - self.offset;
            calls += 1;
            match sys::send_frames(socket, &self.queue, self.offset) {
                Ok(n) => {
                    written += n as u64;
                    self.advance(n);
                    if n < batch {
                        break Written::Blocked;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Written::Blocked,
                Err(e) => break Written::Failed(e),
            }
        };
        (outcome, written, calls)
    }

    /// Takes up to `max` queued bytes for the host to write: the first frame itself
    /// when it is exactly that, else a copy of what fits.
    pub fn take(&mut self, max: usize) -> Bytes {
        let n = self.queued.min(max);
        let bytes = if self.offset == 0 && self.queue.front().is_some_and(|f| f.len() == n) {
            self.queue[0].clone()
        } else {
            let mut buf = BytesMut::with_capacity(n);
            let mut skip = self.offset;
            for frame in &self.queue {
                let part = &frame[skip..];
                skip = 0;
                let want = (n - buf.len()).min(part.len());
                buf.extend_from_slice(&part[..want]);
                if buf.len() == n {
                    break;
                }
            }
            buf.freeze()
        };
        self.advance(n);
        bytes
    }

    /// The `id:` of the last event that left, if any did.
    fn last_id(&self) -> Option<String> {
        let frame = self.last_id_frame.as_ref()?;
        let line = frame.strip_prefix(b"id: ")?.split(|b| *b == b'\n').next()?;
        Some(String::from_utf8_lossy(line).into_owned())
    }
}

pub(super) struct Conn {
    pub id: ClientId,
    pub output: Output,
    pub out: Outbound,
    pub channels: ChannelSet,
    pub user: Option<Arc<str>>,
    /// Waiting in the dirty list for a flush.
    pub dirty: bool,
    /// The flush pass `in_pass` counts for (see `Work::deliver`; passes are numbered
    /// modulo 2^32, which only ever makes a count start again early).
    pub pass: u32,
    /// Live frames queued for it in that pass.
    pub in_pass: u32,
    /// Its output takes no bytes now: a socket with WRITABLE interest registered (the
    /// kernel buffer was full), or a stream-mode client the host was told to take from.
    pub blocked: bool,
    /// When the client last stopped accepting bytes, while it has some queued.
    pub stalled_since: Option<Instant>,
    /// Received a frame since the last heartbeat tick.
    pub active: bool,
    /// Marked for closing with this reason at the next safe point.
    pub doomed: Option<DisconnectReason>,
    pub metadata: Option<Arc<Map<String, Value>>>,
    /// Highest history sequence number delivered (live or by replay).
    pub seen_seq: u64,
    /// While replaying: the last sequence number replayed; live history events wait.
    pub replay_cursor: Option<u64>,
    /// The `Last-Event-ID` the client connected with.
    pub resumed_from: Option<Box<str>>,
    pub peer: Option<SocketAddr>,
    pub connected_at: SystemTime,
}

impl Conn {
    pub fn new(id: ClientId, output: Output, channels: ChannelSet) -> Conn {
        Conn {
            id,
            output,
            out: Outbound::default(),
            channels,
            user: None,
            dirty: false,
            pass: 0,
            in_pass: 0,
            blocked: false,
            stalled_since: None,
            active: false,
            doomed: None,
            metadata: None,
            seen_seq: 0,
            replay_cursor: None,
            resumed_from: None,
            peer: None,
            connected_at: SystemTime::now(),
        }
    }

    /// Stream mode and closing: the host takes what is queued before it ends.
    pub fn draining(&self) -> bool {
        matches!(self.output, Output::Pulled { draining: true })
    }

    pub fn info(&self) -> ClientInfo {
        ClientInfo {
            id: self.id,
            user: self.user.as_deref().map(str::to_owned),
            channels: self.channels.iter().map(|c| c.to_string()).collect(),
            metadata: self.metadata.as_deref().cloned(),
            connected_at: self.connected_at,
            remote_addr: self.peer,
            queued_bytes: self.out.len(),
            last_event_id: self
                .out
                .last_id()
                .or_else(|| self.resumed_from.as_deref().map(String::from)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn frames(out: &mut Outbound, texts: &[&str]) {
        for t in texts {
            out.push(Bytes::copy_from_slice(t.as_bytes()));
        }
    }

    #[test]
    fn take_hands_out_whole_frames_or_copies_across_them() {
        let mut out = Outbound::default();
        frames(
            &mut out,
            &["id: 1\ndata: a\n\n", "data: bb\n\n", "id: 3\ndata: c\n\n"],
        );
        let first = out.queue[0].clone();
        // Exactly the first frame: the same bytes, no copy.
        let taken = out.take(first.len());
        assert_eq!(taken.as_ptr(), first.as_ptr());
        assert_eq!(out.last_id().as_deref(), Some("1"));
        // Part of a frame, then the rest of it with the next one.
        assert_eq!(&out.take(4)[..], b"data");
        assert_eq!(&out.take(16)[..], b": bb\n\nid: 3\ndata");
        assert_eq!(out.len(), ": c\n\n".len());
        assert_eq!(out.last_id().as_deref(), Some("1"));
        assert_eq!(&out.take(100)[..], b": c\n\n");
        assert!(out.is_empty());
        assert_eq!(out.len(), 0);
        assert_eq!(out.last_id().as_deref(), Some("3"));
        assert!(out.take(10).is_empty());
    }

    #[test]
    fn partial_writes_resume_where_the_kernel_stopped() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut reader = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (writer, _) = listener.accept().unwrap();
        socket2::SockRef::from(&reader)
            .set_recv_buffer_size(4096)
            .unwrap();
        socket2::SockRef::from(&writer)
            .set_send_buffer_size(4096)
            .unwrap();
        writer.set_nonblocking(true).unwrap();
        let mut out = Outbound::default();
        let mut expected = Vec::new();
        for i in 0..200u32 {
            let frame = format!("id: {i}\ndata: {}\n\n", "x".repeat(1000));
            expected.extend_from_slice(frame.as_bytes());
            out.push(Bytes::from(frame));
        }
        let (outcome, written, calls) = out.write_to(&writer);
        assert!(matches!(outcome, Written::Blocked), "{outcome:?}");
        assert!(written > 0 && (written as usize) < expected.len());
        assert!(calls >= 1);
        assert_eq!(out.len(), expected.len() - written as usize);
        // Read everything while writing the rest: the bytes arrive whole and in order.
        let mut got = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        while got.len() < expected.len() {
            if !out.is_empty() {
                let (outcome, _, _) = out.write_to(&writer);
                assert!(!matches!(outcome, Written::Failed(_)), "{outcome:?}");
            }
            let n = reader.read(&mut buf).unwrap();
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, expected);
        assert!(matches!(out.write_to(&writer).0, Written::Drained));
        assert_eq!(out.last_id().as_deref(), Some("199"));
        // A drained queue gives its memory back.
        assert!(out.queue.capacity() <= IDLE_QUEUE_CAPACITY);
        drop(reader);
        std::thread::sleep(std::time::Duration::from_millis(50));
        frames(&mut out, &["data: late\n\n"]);
        let mut failed = false;
        for _ in 0..10 {
            if let (Written::Failed(_), _, _) = out.write_to(&writer) {
                failed = true;
                break;
            }
            frames(&mut out, &["data: late\n\n"]);
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(
            failed,
            "writing to a closed peer fails (EPIPE/ECONNRESET, no SIGPIPE)"
        );
    }

    #[test]
    fn info_reports_the_last_id_sent_or_the_one_it_resumed_from() {
        let mut conn = Conn::new(7, Output::Pulled { draining: false }, ChannelSet::new());
        conn.resumed_from = Some("abc".into());
        assert_eq!(conn.info().last_event_id.as_deref(), Some("abc"));
        frames(&mut conn.out, &["id: x-9\ndata: d\n\n"]);
        assert_eq!(conn.info().queued_bytes, 17);
        conn.out.take(100);
        assert_eq!(conn.info().last_event_id.as_deref(), Some("x-9"));
        assert!(!conn.draining());
        conn.output = Output::Pulled { draining: true };
        assert!(conn.draining());
    }
}
