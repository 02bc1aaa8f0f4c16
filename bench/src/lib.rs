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
/// lines. It counts `data:` lines and hands each one's leading timestamp to the caller.
/// It allocates only while a line is split across two reads (and then reuses the buffer).
#[derive(Debug, Default)]
pub struct ClientParser {
    streaming: bool,
    partial: Vec<u8>,
    /// `data:` lines seen since the last [`ClientParser::reset_count`].
    pub received: u32,
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

    /// Feeds bytes read from the socket. `on_data` gets the timestamp of every `data:`
    /// line. Returns an error for a response that is not an SSE stream or a malformed
    /// data line.
    pub fn feed(&mut self, mut bytes: &[u8], mut on_data: impl FnMut(u64)) -> Result<(), String> {
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
                    let result = self.line(&line, &mut on_data);
                    self.partial = line;
                    self.partial.clear();
                    result?;
                    bytes = &bytes[i + 1..];
                }
            }
        }
        while let Some(i) = bytes.iter().position(|&b| b == b'\n') {
            self.line(&bytes[..i], &mut on_data)?;
            bytes = &bytes[i + 1..];
        }
        self.partial.extend_from_slice(bytes);
        Ok(())
    }

    fn line(&mut self, line: &[u8], on_data: &mut impl FnMut(u64)) -> Result<(), String> {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(value) = line.strip_prefix(b"data:") else {
            // Blank lines end events; comments and other fields carry no payload here.
            return Ok(());
        };
        let value = value.strip_prefix(b" ").unwrap_or(value);
        let digits = value.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 || digits > 20 {
            return Err(format!(
                "data line without a leading timestamp: {:?}",
                String::from_utf8_lossy(&line[..line.len().min(80)])
            ));
        }
        let mut ts: u64 = 0;
        for &b in &value[..digits] {
            ts = ts
                .checked_mul(10)
                .and_then(|t| t.checked_add(u64::from(b - b'0')))
                .ok_or("timestamp in data line does not fit in 64 bits")?;
        }
        self.received += 1;
        on_data(ts);
        Ok(())
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
