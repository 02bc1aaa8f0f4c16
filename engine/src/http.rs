//! The HTTP rules of an event stream, in one place: the response head (socket mode and
//! stream mode, HTTP/1.1 and HTTP/2), the `503` answer to a refused hand-over, which
//! headers a caller may add, and where a client's `Last-Event-ID` comes from.
//!
//! The engine writes the socket-mode head and the socket-mode `503` from here; the
//! bindings (Node, Python, C) give the same rules to hosts that write a response
//! through their framework (stream mode), so no binding types a status line or an SSE
//! header itself.
//!
//! ```
//! use sse_engine::http;
//! // Stream mode over HTTP/2: the framework writes status and headers itself.
//! let head = http::stream_head(&[("X-Trace".into(), "7".into())], true)?;
//! assert_eq!(head.status, 200);
//! assert!(head.headers.iter().all(|(name, _)| name != "Connection"));
//! // The client's resume point: the header wins, else the query's first value.
//! assert_eq!(http::last_event_id(None, Some("lastEventId=%20e-7%20")), Some("e-7".into()));
//! # Ok::<(), sse_engine::Error>(())
//! ```

use bytes::BufMut;

use crate::error::{Error, Result};

/// Headers the engine always writes itself (lower case). In socket mode a caller may
/// not give them again (an error); in stream mode [`stream_head`] drops them from the
/// headers a framework already set, so the engine's values win.
pub const ENGINE_HEADERS: [&str; 6] = [
    "content-type",
    "cache-control",
    "connection",
    "x-accel-buffering",
    "content-length",
    "transfer-encoding",
];

/// Connection-specific headers an HTTP/2 response must not carry (RFC 9113 §8.2.2), lower
/// case; [`stream_head`] drops them from the caller's headers over HTTP/2.
pub const HTTP2_FORBIDDEN_HEADERS: [&str; 5] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
];

/// The request header that carries the client's last event id (sent on reconnects).
pub const LAST_EVENT_ID_HEADER: &str = "Last-Event-ID";
/// The query parameter a page passes its last event id in on a first connection
/// (`EventSource` cannot set headers).
pub const LAST_EVENT_ID_PARAM: &str = "lastEventId";

/// The text of the `503` answer to a hand-over refused by a limit.
pub const BUSY_BODY: &str = "the server is at capacity, retry later\n";

/// A response head (and, for the `503` answer, its short body), as a host writes it
/// through its framework or as the engine writes it on a socket ([`Response::to_http1`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code: 200 for an event stream, 503 for a refusal.
    pub status: u16,
    /// Reason phrase of the status (`OK`, `Service Unavailable`).
    pub reason: &'static str,
    /// Header names and values, in the order they are written.
    pub headers: Vec<(String, String)>,
    /// The body: empty for an event stream's head (the stream follows).
    pub body: &'static str,
}

impl Response {
    /// Appends the response as HTTP/1.1 bytes: status line, headers, blank line, body.
    pub fn write_http1(&self, out: &mut impl BufMut) {
        out.put_slice(b"HTTP/1.1 ");
        out.put_slice(self.status.to_string().as_bytes());
        out.put_u8(b' ');
        out.put_slice(self.reason.as_bytes());
        out.put_slice(b"\r\n");
        for (name, value) in &self.headers {
            out.put_slice(name.as_bytes());
            out.put_slice(b": ");
            out.put_slice(value.as_bytes());
            out.put_slice(b"\r\n");
        }
        out.put_slice(b"\r\n");
        out.put_slice(self.body.as_bytes());
    }

    /// The response as HTTP/1.1 bytes.
    pub fn to_http1(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_http1(&mut out);
        out
    }
}

/// The SSE headers of an event stream's response, in the order the engine writes them:
/// `Content-Type: text/event-stream`, `Cache-Control: no-cache`, `Connection:
/// keep-alive` (HTTP/1.1 only: HTTP/2 has no `Connection` header) and
/// `X-Accel-Buffering: no` (tells nginx not to buffer the stream).
pub fn sse_headers(http2: bool) -> Vec<(&'static str, &'static str)> {
    let mut headers = vec![
        ("Content-Type", "text/event-stream"),
        ("Cache-Control", "no-cache"),
    ];
    if !http2 {
        headers.push(("Connection", "keep-alive"));
    }
    headers.push(("X-Accel-Buffering", "no"));
    headers
}

fn is_engine_header(name: &str) -> bool {
    ENGINE_HEADERS.iter().any(|h| h.eq_ignore_ascii_case(name))
}

/// Checks one header a caller adds to an event stream's response: the name is an HTTP
/// token (RFC 9110 §5.1), not one of [`ENGINE_HEADERS`], and the value has no control
/// character other than a tab (so no CR, LF or NUL: no header injection).
pub fn validate_header(name: &str, value: &str) -> Result<()> {
    check_header(name, value)?;
    if is_engine_header(name) {
        return Err(Error::invalid(format!(
            "header {name:?} is written by the engine and must not be given again"
        )));
    }
    Ok(())
}

/// Name and value rules without the [`ENGINE_HEADERS`] check.
fn check_header(name: &str, value: &str) -> Result<()> {
    let is_tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() || !name.bytes().all(is_tchar) {
        return Err(Error::invalid(format!(
            "header name {name:?} is not a valid HTTP token"
        )));
    }
    if value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        return Err(Error::invalid(format!(
            "value of header {name:?} must not contain CR, LF, NUL or another control character"
        )));
    }
    Ok(())
}

/// The headers a framework already set on a response plus the caller's, made fit for an
/// event stream: names in [`ENGINE_HEADERS`] are dropped (the engine's values win), over
/// HTTP/2 also the [`HTTP2_FORBIDDEN_HEADERS`]; every other header is checked as
/// [`validate_header`] does and kept in order (repeated names stay repeated).
pub fn extra_headers(headers: &[(String, String)], http2: bool) -> Result<Vec<(String, String)>> {
    let mut kept = Vec::with_capacity(headers.len());
    for (name, value) in headers {
        let forbidden = is_engine_header(name)
            || (http2
                && HTTP2_FORBIDDEN_HEADERS
                    .iter()
                    .any(|h| h.eq_ignore_ascii_case(name)));
        if forbidden {
            continue;
        }
        check_header(name, value)?;
        kept.push((name.clone(), value.clone()));
    }
    Ok(kept)
}

fn stream_response(headers: Vec<(String, String)>, http2: bool) -> Response {
    let mut all: Vec<(String, String)> = sse_headers(http2)
        .into_iter()
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect();
    all.extend(headers);
    Response {
        status: 200,
        reason: "OK",
        headers: all,
        body: "",
    }
}

/// The head the engine writes on a handed-over socket (HTTP/1.1): `200 OK`, the
/// [`sse_headers`], then the caller's `headers`, each checked by [`validate_header`]
/// (an engine header given again is an error here, not dropped).
pub fn socket_head(headers: &[(String, String)]) -> Result<Response> {
    for (name, value) in headers {
        validate_header(name, value)?;
    }
    Ok(stream_response(headers.to_vec(), false))
}

/// The head a host writes through its framework in stream mode: status 200, the
/// [`sse_headers`] (no `Connection` over HTTP/2), then `headers` (what the framework
/// already set, then the caller's) as [`extra_headers`] leaves them.
pub fn stream_head(headers: &[(String, String)], http2: bool) -> Result<Response> {
    Ok(stream_response(extra_headers(headers, http2)?, http2))
}

/// The answer to a hand-over refused by a limit (`max_clients`,
/// `max_clients_per_channel`): `503 Service Unavailable` with `Retry-After`, a short
/// plain-text body ([`BUSY_BODY`]), `Cache-Control: no-cache` and, over HTTP/1.1,
/// `Connection: close`. The engine writes it on a refused socket; stream-mode hosts
/// write it through their framework. A closed engine is not answered this way: it is an
/// error the host sees.
pub fn busy_answer(retry_after_secs: u32, http2: bool) -> Response {
    let mut headers = vec![
        ("Retry-After".to_owned(), retry_after_secs.to_string()),
        (
            "Content-Type".to_owned(),
            "text/plain; charset=utf-8".to_owned(),
        ),
        ("Content-Length".to_owned(), BUSY_BODY.len().to_string()),
        ("Cache-Control".to_owned(), "no-cache".to_owned()),
    ];
    if !http2 {
        headers.push(("Connection".to_owned(), "close".to_owned()));
    }
    Response {
        status: 503,
        reason: "Service Unavailable",
        headers,
        body: BUSY_BODY,
    }
}

fn trim_ascii_whitespace(text: &str) -> &str {
    text.trim_matches(|c: char| c.is_ascii_whitespace())
}

/// The client's last event id from a request, by one rule:
///
/// 1. the `Last-Event-ID` header wins over the query parameter;
/// 2. else the **first** `lastEventId` parameter of the query string (`query`, with or
///    without its leading `?`, decoded as a form: `+` is a space, `%XX` a byte; an
///    invalid escape stays as it is);
/// 3. surrounding ASCII whitespace is trimmed from the value;
/// 4. a value that is empty after trimming means none (an empty header does not hide
///    the query parameter).
///
/// The id is not checked here; the engine checks it on connect
/// ([`crate::validate_event_id`]).
pub fn last_event_id(header: Option<&str>, query: Option<&str>) -> Option<String> {
    if let Some(value) = header.map(trim_ascii_whitespace) {
        if !value.is_empty() {
            return Some(value.to_owned());
        }
    }
    let query = query?;
    let query = query.strip_prefix('?').unwrap_or(query);
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .find_map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (form_decode(name) == LAST_EVENT_ID_PARAM).then(|| form_decode(value))
        })
        .map(|value| trim_ascii_whitespace(&value).to_owned())
        .filter(|value| !value.is_empty())
}

/// Decodes one name or value of `application/x-www-form-urlencoded` text.
fn form_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            ) {
                (Some(high), Some(low)) => {
                    out.push((high * 16 + low) as u8);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn socket_head_bytes_are_the_engine_head() {
        let head = socket_head(&pairs(&[("X-Trace", "abc")])).unwrap();
        assert_eq!(
            head.to_http1(),
            b"HTTP/1.1 200 OK\r\n\
              Content-Type: text/event-stream\r\n\
              Cache-Control: no-cache\r\n\
              Connection: keep-alive\r\n\
              X-Accel-Buffering: no\r\n\
              X-Trace: abc\r\n\r\n"
        );
    }

    #[test]
    fn socket_head_rejects_engine_headers_and_bad_ones() {
        for (name, value) in [
            ("X-A", "a\r\nInjected: 1"),
            ("X-A", "a\nb"),
            ("X-A", "a\0b"),
            ("X-A", "a\x01b"),
            ("X-A", "a\x7fb"),
            ("Bad Name", "v"),
            ("X-A:", "v"),
            ("", "v"),
            ("content-type", "text/html"),
            ("Connection", "close"),
            ("TRANSFER-ENCODING", "chunked"),
        ] {
            assert!(socket_head(&pairs(&[(name, value)])).is_err(), "{name:?}");
        }
        assert!(socket_head(&pairs(&[("X-A", "tab\tand spaces, é")])).is_ok());
    }

    #[test]
    fn stream_head_http1_has_connection_http2_does_not() {
        let h1 = stream_head(&[], false).unwrap();
        assert_eq!(h1.status, 200);
        assert_eq!(
            h1.headers,
            pairs(&[
                ("Content-Type", "text/event-stream"),
                ("Cache-Control", "no-cache"),
                ("Connection", "keep-alive"),
                ("X-Accel-Buffering", "no"),
            ])
        );
        let h2 = stream_head(&[], true).unwrap();
        assert_eq!(
            h2.headers,
            pairs(&[
                ("Content-Type", "text/event-stream"),
                ("Cache-Control", "no-cache"),
                ("X-Accel-Buffering", "no"),
            ])
        );
    }

    #[test]
    fn stream_head_drops_engine_headers_and_keeps_the_rest_in_order() {
        let given = pairs(&[
            ("content-type", "text/html"),
            ("Set-Cookie", "a=1"),
            ("Cache-Control", "max-age=9"),
            ("Set-Cookie", "b=2"),
            ("Keep-Alive", "timeout=5"),
            ("Content-Length", "0"),
        ]);
        let h1 = stream_head(&given, false).unwrap();
        assert_eq!(
            h1.headers[4..],
            pairs(&[
                ("Set-Cookie", "a=1"),
                ("Set-Cookie", "b=2"),
                ("Keep-Alive", "timeout=5")
            ])[..]
        );
        let h2 = stream_head(&given, true).unwrap();
        assert_eq!(
            h2.headers[3..],
            pairs(&[("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")])[..]
        );
        // Dropped headers are not checked; kept ones are.
        assert!(stream_head(&pairs(&[("Connection", "a\r\nb")]), false).is_ok());
        assert!(stream_head(&pairs(&[("X-A", "a\r\nb")]), false).is_err());
        assert!(stream_head(&pairs(&[("Bad Name", "v")]), true).is_err());
    }

    #[test]
    fn busy_answer_is_one_text() {
        let answer = busy_answer(7, false);
        assert_eq!(
            String::from_utf8(answer.to_http1()).unwrap(),
            format!(
                "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 7\r\n\
                 Content-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\
                 Cache-Control: no-cache\r\nConnection: close\r\n\r\n{BUSY_BODY}",
                BUSY_BODY.len()
            )
        );
        let h2 = busy_answer(7, true);
        assert_eq!(h2.status, 503);
        assert_eq!(h2.body, BUSY_BODY);
        assert!(h2.headers.iter().all(|(n, _)| n != "Connection"));
        assert_eq!(h2.headers.len(), answer.headers.len() - 1);
    }

    #[test]
    fn last_event_id_rule() {
        // The header wins, trimmed.
        assert_eq!(
            last_event_id(Some(" h-1\t"), Some("lastEventId=q-1")),
            Some("h-1".into())
        );
        // An empty (or blank) header does not hide the query.
        assert_eq!(
            last_event_id(Some("  "), Some("lastEventId=q-1")),
            Some("q-1".into())
        );
        assert_eq!(
            last_event_id(Some(""), Some("?lastEventId=q-1")),
            Some("q-1".into())
        );
        // The query's first value, decoded and trimmed.
        assert_eq!(
            last_event_id(None, Some("x=1&lastEventId=a&lastEventId=b")),
            Some("a".into())
        );
        assert_eq!(
            last_event_id(None, Some("lastEventId=%20a%2Db+c%20")),
            Some("a-b c".into())
        );
        assert_eq!(
            last_event_id(None, Some("last%45ventId=e")),
            Some("e".into())
        );
        // An invalid escape stays as it is.
        assert_eq!(
            last_event_id(None, Some("lastEventId=%zz%4")),
            Some("%zz%4".into())
        );
        // Empty means none; a first empty value is the first value.
        assert_eq!(last_event_id(None, Some("lastEventId=")), None);
        assert_eq!(last_event_id(None, Some("lastEventId")), None);
        assert_eq!(
            last_event_id(None, Some("lastEventId=+&lastEventId=b")),
            None
        );
        assert_eq!(last_event_id(None, Some("lasteventid=x")), None);
        assert_eq!(last_event_id(None, Some("")), None);
        assert_eq!(last_event_id(None, None), None);
        assert_eq!(last_event_id(Some(" x "), None), Some("x".into()));
    }
}
