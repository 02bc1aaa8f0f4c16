//! Shared pieces of the `sse_bench` benchmark: the burst payload, clocks, `/proc`
//! readers, file-descriptor limits and the client-side SSE parser used by the load
//! generator.
//!
//! The two binaries are `sse-bench-host` (serves SSE with the engine or with a naive
//! one-`send()`-per-event loop, see [`host`]) and `sse-loadgen` (opens the clients,
//! triggers bursts and measures). See `bench/README.md`.

pub mod host;

use std::fmt::Write as _;
use std::io;
use std::time::{SystemTime, UNIX_EPOCH};

/// The channel every benchmark client joins.
pub const CHANNEL: &str = "bench";

/// Smallest event size the load generator asks for: a nanosecond timestamp (19 digits
/// until the year 2286) and the space after it.
pub const MIN_EVENT_SIZE: usize = 20;

/// The request a benchmark client sends to become an SSE stream.
pub const SSE_REQUEST: &[u8] = b"GET /sse HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n";

/// The channel of its own that client `index` joins in the many-channels scenario
/// (`GET /sse?channel=user-<index>`), besides [`CHANNEL`]: a per-user notification
/// channel with one member.
pub fn user_channel(index: usize) -> String {
    format!("user-{index}")
}

/// The request of client `index` in the many-channels scenario: its own channel too.
pub fn user_channel_request(index: usize) -> Vec<u8> {
    format!(
        "GET /sse?channel={} HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n",
        user_channel(index)
    )
    .into_bytes()
}

/// Nanoseconds since the UNIX epoch (CLOCK_REALTIME), comparable across processes.
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// The `data` of one benchmark event: the send timestamp in decimal nanoseconds, a space,
/// then `x` padding up to `size` bytes (never shorter than the timestamp and the space).
pub fn event_data(send_ns: u64, size: usize) -> String {
    let mut data = String::with_capacity(size.max(MIN_EVENT_SIZE + 1));
    // Writing to a String cannot fail.
    let _ = write!(data, "{send_ns} ");
    while data.len() < size {
        data.push('x');
    }
    data
}

/// Raises this process's RLIMIT_NOFILE soft limit to the hard limit; returns the new
/// `(soft, hard)` pair.
pub fn raise_nofile_limit() -> io::Result<(u64, u64)> {
    let (soft, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE)?;
    if soft < hard {
        rlimit::setrlimit(rlimit::Resource::NOFILE, hard, hard)?;
    }
    rlimit::getrlimit(rlimit::Resource::NOFILE)
}

/// Resident set size of process `pid` in bytes (`VmRSS` of `/proc/<pid>/status`).
pub fn rss_bytes(pid: u32) -> io::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    parse_vm_rss(&status).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("no VmRSS line in /proc/{pid}/status"),
        )
    })
}

/// CPU time (user + system, all threads) process `pid` has used, from `/proc/<pid>/stat`.
/// Linux counts it in USER_HZ ticks, which is 100 per second on every Linux ABI: the
/// resolution is 10 ms.
pub fn cpu_time(pid: u32) -> io::Result<std::time::Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    parse_cpu_ticks(&stat)
        .map(|ticks| std::time::Duration::from_millis(ticks * 10))
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("cannot parse /proc/{pid}/stat"),
            )
        })
}

fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let mut fields = line["VmRSS:".len()..].split_whitespace();
    let value: u64 = fields.next()?.parse().ok()?;
    match fields.next() {
        Some("kB") | None => Some(value * 1024),
        Some(_) => None,
    }
}

/// The value at quantile `q` (0.0..=1.0) of sorted samples (nearest rank); 0 when empty.
pub fn quantile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The median of a few values (the mean of the middle two for an even count).
pub fn median(values: &[f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}

/// Longest line (or response head) a client keeps while waiting for its end.
const MAX_PENDING_LINE: usize = 64 * 1024;

/// Incremental parser for one client's stream: first the HTTP response head, then SSE
/// lines. [`ClientParser::feed`] hands each `data:` line's leading timestamp to the
/// caller as soon as the line is complete (the fan-out benchmark's delivery);
/// [`ClientParser::feed_events`] hands over whole events (at the blank line that ends
/// them, as an `EventSource` dispatches them) with their id and event name. Both keep
/// the last event id as the SSE rules do (set by `id:` lines, taken at dispatch).
/// It allocates only while a line is split across two reads, and for ids and event
/// names (and then reuses the buffers).
#[derive(Debug, Default)]
pub struct ClientParser {
    streaming: bool,
    partial: Vec<u8>,
    /// `data:` lines with a timestamp seen since the last [`ClientParser::reset_count`].
    pub received: u32,
    /// The SSE "last event ID buffer": the value of the latest `id:` line.
    id_buffer: Vec<u8>,
    /// The last event id as of the last dispatched event.
    last_event_id: Vec<u8>,
    /// The event being read: its `event:` name, whether it had an `id:` line, the
    /// timestamp of its first `data:` line, whether it had any `data:` line.
    event_name: Vec<u8>,
    event_has_id: bool,
    event_ts: Option<u64>,
    event_has_data: bool,
}

/// One complete SSE event, as [`ClientParser::feed_events`] hands it over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SseEvent<'a> {
    /// The leading timestamp of its first `data:` line; `None` for a named event (an
    /// `event:` field, such as the engine's `sse-gap`), whose data is not parsed.
    pub ts: Option<u64>,
    /// The value of its own `id:` line, if it had one.
    pub id: Option<&'a [u8]>,
    /// Its `event:` name, if it had one.
    pub name: Option<&'a [u8]>,
}

/// What the line reader found.
enum Found<'a> {
    /// A `data:` line of an unnamed event, with its timestamp.
    Data(u64),
    /// The blank line ending an event that had data.
    Event(SseEvent<'a>),
}

impl ClientParser {
    /// True once the response head was read completely.
    pub fn is_streaming(&self) -> bool {
        self.streaming
    }

    /// Starts counting `data:` lines from zero.
    pub fn reset_count(&mut self) {
        self.received = 0;
    }

    /// The last event id as of the last complete event (empty before any id): what an
    /// `EventSource` sends as `Last-Event-ID` when it reconnects.
    pub fn last_event_id(&self) -> &[u8] {
        &self.last_event_id
    }

    /// Feeds bytes read from the socket. `on_data` gets the timestamp of every `data:`
    /// line as soon as the line is complete. Returns an error for a response that is
    /// not an SSE stream or a data line without a leading timestamp (outside a named
    /// event).
    pub fn feed(&mut self, bytes: &[u8], mut on_data: impl FnMut(u64)) -> Result<(), String> {
        self.feed_inner(bytes, &mut |found| {
            if let Found::Data(ts) = found {
                on_data(ts);
            }
        })
    }

    /// Feeds bytes read from the socket; `on_event` gets every complete event that had
    /// data. Errors as [`ClientParser::feed`].
    pub fn feed_events(
        &mut self,
        bytes: &[u8],
        mut on_event: impl FnMut(&SseEvent<'_>),
    ) -> Result<(), String> {
        self.feed_inner(bytes, &mut |found| {
            if let Found::Event(event) = found {
                on_event(&event);
            }
        })
    }

    fn feed_inner(
        &mut self,
        mut bytes: &[u8],
        on: &mut impl FnMut(Found<'_>),
    ) -> Result<(), String> {
        if !self.streaming {
            let before = self.partial.len();
            self.partial.extend_from_slice(bytes);
            let Some(end) = find(&self.partial, b"\r\n\r\n") else {
                if self.partial.len() > MAX_PENDING_LINE {
                    return Err("response head longer than 64 KiB".into());
                }
                return Ok(());
            };
            let head = &self.partial[..end];
            check_head(head)?;
            // What follows the head in this read is stream body.
            let consumed_here = end + 4 - before;
            bytes = &bytes[consumed_here..];
            self.partial.clear();
            self.streaming = true;
        }
        if !self.partial.is_empty() {
            match bytes.iter().position(|&b| b == b'\n') {
                None => {
                    self.partial.extend_from_slice(bytes);
                    if self.partial.len() > MAX_PENDING_LINE {
                        return Err("SSE line longer than 64 KiB".into());
                    }
                    return Ok(());
                }
                Some(i) => {
                    self.partial.extend_from_slice(&bytes[..i]);
                    let line = std::mem::take(&mut self.partial);
                    let result = self.line(&line, on);
                    self.partial = line;
                    self.partial.clear();
                    result?;
                    bytes = &bytes[i + 1..];
                }
            }
        }
        while let Some(i) = bytes.iter().position(|&b| b == b'\n') {
            self.line(&bytes[..i], on)?;
            bytes = &bytes[i + 1..];
        }
        self.partial.extend_from_slice(bytes);
        Ok(())
    }

    fn line(&mut self, line: &[u8], on: &mut impl FnMut(Found<'_>)) -> Result<(), String> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            // Dispatch, as the SSE rules say: the last event id is taken even from an
            // event without data, which is then not delivered.
            self.last_event_id.clear();
            self.last_event_id.extend_from_slice(&self.id_buffer);
            if self.event_has_data {
                on(Found::Event(SseEvent {
                    ts: self.event_ts,
                    id: self.event_has_id.then_some(&self.id_buffer[..]),
                    name: (!self.event_name.is_empty()).then_some(&self.event_name[..]),
                }));
            }
            self.event_name.clear();
            self.event_has_id = false;
            self.event_ts = None;
            self.event_has_data = false;
            return Ok(());
        }
        if line[0] == b':' {
            return Ok(()); // a comment (heartbeat)
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(i) => (&line[..i], &line[i + 1..]),
            None => (line, &line[line.len()..]),
        };
        let value = value.strip_prefix(b" ").unwrap_or(value);
        match field {
            // An id with NUL is ignored, as the SSE rules say.
            b"id" if !value.contains(&0) => {
                self.id_buffer.clear();
                self.id_buffer.extend_from_slice(value);
                self.event_has_id = true;
            }
            b"event" => {
                self.event_name.clear();
                // `message` is the default type: an event named so is an ordinary
                // message (better-sse names every event that way).
                if value != b"message" {
                    self.event_name.extend_from_slice(value);
                }
            }
            b"data" => {
                let first = !self.event_has_data;
                self.event_has_data = true;
                if !self.event_name.is_empty() {
                    // A named event (`sse-gap`): its data is not a benchmark payload.
                    return Ok(());
                }
                let ts = parse_timestamp(value).ok_or_else(|| {
                    format!(
                        "data line without a leading timestamp: {:?}",
                        String::from_utf8_lossy(&line[..line.len().min(80)])
                    )
                })?;
                if first {
                    self.event_ts = Some(ts);
                }
                self.received += 1;
                on(Found::Data(ts));
            }
            // `retry:` and unknown fields carry no payload here.
            _ => {}
        }
        Ok(())
    }
}

/// The leading decimal timestamp of a benchmark event's data.
fn parse_timestamp(value: &[u8]) -> Option<u64> {
    let digits = value.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 || digits > 20 {
        return None;
    }
    let mut ts: u64 = 0;
    for &b in &value[..digits] {
        ts = ts.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(ts)
}

/// The sequence number of an engine id `<epoch>-<seq>` and its epoch.
pub fn engine_seq(id: &[u8]) -> Option<(&[u8], u64)> {
    let dash = id.iter().rposition(|&b| b == b'-')?;
    let (epoch, seq) = (&id[..dash], &id[dash + 1..]);
    if epoch.is_empty() || seq.is_empty() || seq.len() > 19 || !seq.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let seq = std::str::from_utf8(seq).ok()?.parse().ok()?;
    Some((epoch, seq))
}

/// Checks that one client receives a run of consecutive sequence numbers exactly once
/// and in order (across reconnects).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeqCheck {
    /// The sequence number expected next.
    pub next: u64,
    /// Events seen.
    pub received: u64,
    /// Sequence numbers skipped (never delivered before a later one).
    pub lost: u64,
    /// Events at or below one already seen: duplicates or out of order.
    pub duplicates: u64,
    /// The first problem, described.
    pub first_problem: Option<String>,
}

impl SeqCheck {
    /// Expects `first` next.
    pub fn new(first: u64) -> SeqCheck {
        SeqCheck {
            next: first,
            ..SeqCheck::default()
        }
    }

    /// Records one received sequence number.
    pub fn see(&mut self, seq: u64) {
        self.received += 1;
        if seq == self.next {
            self.next += 1;
        } else if seq > self.next {
            self.problem(format!(
                "got event {seq} when {} was expected ({} lost)",
                self.next,
                seq - self.next
            ));
            self.lost += seq - self.next;
            self.next = seq + 1;
        } else {
            self.problem(format!(
                "got event {seq} again or out of order (expected {})",
                self.next
            ));
            self.duplicates += 1;
        }
    }

    /// Whether every event up to `last` arrived.
    pub fn complete(&self, last: u64) -> bool {
        self.next > last
    }

    /// Counts what never arrived up to `last` as lost (at the end of a run).
    pub fn finish(&mut self, last: u64) {
        if self.next <= last {
            self.problem(format!("events {} to {last} never arrived", self.next));
            self.lost += last + 1 - self.next;
            self.next = last + 1;
        }
    }

    /// True when nothing was lost, duplicated or reordered.
    pub fn ok(&self) -> bool {
        self.lost == 0 && self.duplicates == 0 && self.first_problem.is_none()
    }

    /// Records a problem (the first one is kept).
    pub fn problem(&mut self, what: String) {
        if self.first_problem.is_none() {
            self.first_problem = Some(what);
        }
    }
}

fn check_head(head: &[u8]) -> Result<(), String> {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let status = lines.next().unwrap_or("");
    if !(status.starts_with("HTTP/1.1 200") || status.starts_with("HTTP/1.0 200")) {
        return Err(format!("host answered {status:?} instead of 200"));
    }
    let event_stream = lines.any(|l| {
        l.split_once(':').is_some_and(|(name, value)| {
            name.trim().eq_ignore_ascii_case("content-type")
                && value.trim().starts_with("text/event-stream")
        })
    });
    if !event_stream {
        return Err("response has no Content-Type: text/event-stream".into());
    }
    Ok(())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &[u8] =
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n\r\n";

    fn feed_all(parser: &mut ClientParser, chunks: &[&[u8]]) -> Vec<u64> {
        let mut seen = Vec::new();
        for chunk in chunks {
            parser.feed(chunk, |ts| seen.push(ts)).unwrap();
        }
        seen
    }

    #[test]
    fn event_data_has_timestamp_and_size() {
        let data = event_data(1_700_000_000_123_456_789, 64);
        assert_eq!(data.len(), 64);
        assert!(data.starts_with("1700000000123456789 xx"));
        assert_eq!(event_data(12, 1), "12 ");
    }

    #[test]
    fn parses_head_then_events_in_one_read() {
        let mut stream = HEAD.to_vec();
        stream.extend_from_slice(b"data: 123 xx\n\ndata: 456 yy\n\n");
        let mut p = ClientParser::default();
        assert_eq!(feed_all(&mut p, &[&stream]), vec![123, 456]);
        assert!(p.is_streaming());
        assert_eq!(p.received, 2);
    }

    #[test]
    fn parses_every_split_point() {
        let mut stream = HEAD.to_vec();
        stream.extend_from_slice(b"retry: 10\n\n: comment\n\ndata: 42 pad\r\n\r\ndata: 7\n\n");
        for cut in 0..stream.len() {
            for cut2 in cut..stream.len() {
                let mut p = ClientParser::default();
                let seen = feed_all(
                    &mut p,
                    &[&stream[..cut], &stream[cut..cut2], &stream[cut2..]],
                );
                assert_eq!(seen, vec![42, 7], "cuts at {cut}, {cut2}");
            }
        }
    }

    #[test]
    fn rejects_non_sse_answers_and_bad_lines() {
        let mut p = ClientParser::default();
        assert!(p
            .feed(b"HTTP/1.1 503 Service Unavailable\r\n\r\n", |_| {})
            .is_err());
        let mut p = ClientParser::default();
        assert!(p
            .feed(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n",
                |_| {}
            )
            .is_err());
        let mut p = ClientParser::default();
        p.feed(HEAD, |_| {}).unwrap();
        assert!(p.feed(b"data: hello\n", |_| {}).is_err());
    }

    /// Events as `(ts, id, name)` triples, fed in the given chunks.
    fn events_of(
        parser: &mut ClientParser,
        chunks: &[&[u8]],
    ) -> Vec<(Option<u64>, String, String)> {
        let mut seen = Vec::new();
        for chunk in chunks {
            parser
                .feed_events(chunk, |e| {
                    let text =
                        |b: Option<&[u8]>| String::from_utf8_lossy(b.unwrap_or(b"")).into_owned();
                    seen.push((e.ts, text(e.id), text(e.name)));
                })
                .unwrap();
        }
        seen
    }

    #[test]
    fn events_carry_ids_names_and_the_last_event_id() {
        let mut stream = HEAD.to_vec();
        stream.extend_from_slice(
            b"retry: 10\n\nid: ep-1\ndata: 11 x\n\n: beat\n\nid:ep-2\r\ndata:12\r\n\r\n\
              event: sse-gap\ndata: {\"lastEventId\": \"ep-9\"}\n\ndata: 13\n\nid: ep-4\n\n",
        );
        let expected = vec![
            (Some(11), "ep-1".to_string(), String::new()),
            (Some(12), "ep-2".to_string(), String::new()),
            (None, String::new(), "sse-gap".to_string()),
            (Some(13), String::new(), String::new()),
        ];
        for cut in 0..stream.len() {
            let mut p = ClientParser::default();
            let seen = events_of(&mut p, &[&stream[..cut], &stream[cut..]]);
            assert_eq!(seen, expected, "cut at {cut}");
            // An id-only event without data still sets the last event id.
            assert_eq!(p.last_event_id(), b"ep-4");
        }
        // Until the blank line, an event is not complete and its id not yet the last one.
        let mut p = ClientParser::default();
        let mut partial = HEAD.to_vec();
        partial.extend_from_slice(b"id: a-1\ndata: 5\n\nid: a-2\ndata: 6\n");
        assert_eq!(events_of(&mut p, &[&partial]).len(), 1);
        assert_eq!(p.last_event_id(), b"a-1");
        // The line-based feed still counts data lines at once, and skips named events.
        let mut p = ClientParser::default();
        assert_eq!(feed_all(&mut p, &[&stream]), vec![11, 12, 13]);
    }

    #[test]
    fn an_event_named_message_is_an_ordinary_message() {
        let mut stream = HEAD.to_vec();
        stream.extend_from_slice(b"event: message\nid: 7\ndata: 42 x\n\nevent: other\ndata: 9\n\n");
        let mut p = ClientParser::default();
        assert_eq!(feed_all(&mut p, &[&stream]), vec![42]);
        let mut p = ClientParser::default();
        let seen = events_of(&mut p, &[&stream]);
        assert_eq!(seen[0], (Some(42), "7".to_string(), String::new()));
        assert_eq!(seen[1].2, "other");
    }

    #[test]
    fn engine_ids() {
        assert_eq!(
            engine_seq(b"mhx3k2a1q7z-42"),
            Some((&b"mhx3k2a1q7z"[..], 42))
        );
        assert_eq!(engine_seq(b"a-b-7"), Some((&b"a-b"[..], 7)));
        for bad in [
            &b""[..],
            b"42",
            b"-42",
            b"ep-",
            b"ep-4x",
            b"ep-99999999999999999999",
        ] {
            assert_eq!(engine_seq(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn sequence_check() {
        let mut c = SeqCheck::new(5);
        for seq in [5, 6, 7] {
            c.see(seq);
        }
        assert!(c.ok() && c.complete(7) && !c.complete(8));
        c.see(9); // 8 lost
        c.see(8); // late: out of order
        c.see(9); // duplicate
        assert_eq!((c.received, c.lost, c.duplicates), (6, 1, 2));
        assert!(!c.ok());
        assert!(c
            .first_problem
            .as_deref()
            .unwrap()
            .contains("8 was expected"));
        let mut c = SeqCheck::new(1);
        c.see(1);
        c.finish(4);
        assert_eq!(c.lost, 3);
        assert!(!c.ok());
    }

    #[test]
    fn quantiles_and_median() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(quantile(&v, 0.5), 50);
        assert_eq!(quantile(&v, 0.99), 99);
        assert_eq!(quantile(&v, 1.0), 100);
        assert_eq!(quantile(&[], 0.5), 0);
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
    }

    #[test]
    fn reads_cpu_ticks() {
        let stat = "42 (a b) c) S 1 2 3 4 5 6 7 8 9 10 250 30 0 0 20 0 1";
        assert_eq!(parse_cpu_ticks(stat), Some(280));
        assert!(cpu_time(std::process::id()).is_ok());
    }

    #[test]
    fn reads_vm_rss() {
        let status = "Name:\tx\nVmRSS:\t    2048 kB\nThreads: 1\n";
        assert_eq!(parse_vm_rss(status), Some(2 * 1024 * 1024));
        assert!(rss_bytes(std::process::id()).unwrap() > 0);
    }
}
