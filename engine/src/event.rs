//! Events and their wire encoding (WHATWG HTML §9.2 "Server-sent events").
//!
//! An event is validated and encoded once into a shared [`Bytes`] frame; every
//! recipient's queue holds a reference to that one frame.

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::{Error, Result};

/// Longest channel name, user key or event name accepted, in bytes.
pub const MAX_NAME_LEN: usize = 1024;
/// Longest event id (and `Last-Event-ID`) accepted, in bytes. Ids are printable ASCII:
/// a long or odd id would force a CORS preflight in browsers.
pub const MAX_ID_LEN: usize = 256;

/// One server-sent event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Event {
    /// The `event:` field (the listener name in the browser). `None` = "message".
    pub event: Option<String>,
    /// The `id:` field; the browser echoes it back as `Last-Event-ID`.
    pub id: Option<String>,
    /// The `retry:` field, in milliseconds.
    pub retry: Option<u64>,
    /// The payload. Line breaks (CRLF, LF, lone CR) become separate `data:` lines.
    pub data: String,
}

impl Event {
    /// An unnamed event (`message` in the browser) carrying `data`.
    pub fn new(data: impl Into<String>) -> Self {
        Event {
            data: data.into(),
            ..Event::default()
        }
    }

    /// Sets the `event:` name.
    pub fn named(mut self, event: impl Into<String>) -> Self {
        self.event = Some(event.into());
        self
    }

    /// Sets the `id:`.
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Sets the `retry:` hint in milliseconds.
    pub fn with_retry(mut self, retry_ms: u64) -> Self {
        self.retry = Some(retry_ms);
        self
    }

    /// Checks every field against the wire-format rules.
    pub fn validate(&self) -> Result<()> {
        if let Some(name) = &self.event {
            if name.is_empty() {
                return Err(Error::invalid("event name must not be empty"));
            }
            if name.len() > MAX_NAME_LEN {
                return Err(Error::invalid(format!(
                    "event name is longer than {MAX_NAME_LEN} bytes"
                )));
            }
            if name.contains(['\r', '\n']) {
                return Err(Error::invalid(
                    "event name must not contain CR or LF characters",
                ));
            }
        }
        if let Some(id) = &self.id {
            validate_event_id(id)?;
        }
        Ok(())
    }

    /// Validates and encodes the event into one wire frame (ending in a blank line).
    pub fn encode(&self) -> Result<Bytes> {
        self.validate()?;
        Ok(self.encode_with_id(self.id.as_deref()))
    }

    /// Encodes a validated event with the given id (the engine's own, or the caller's).
    /// The `id:` line comes first, so the engine can tell from a frame's first bytes
    /// whether it carries an id.
    pub(crate) fn encode_with_id(&self, id: Option<&str>) -> Bytes {
        let mut buf =
            BytesMut::with_capacity(self.encoded_len_hint() + id.map_or(0, |i| i.len() + 5));
        if let Some(id) = id {
            put_field(&mut buf, "id", id);
        }
        if let Some(name) = &self.event {
            put_field(&mut buf, "event", name);
        }
        if let Some(retry) = self.retry {
            put_field(&mut buf, "retry", &retry.to_string());
        }
        for line in split_lines(&self.data) {
            put_field(&mut buf, "data", line);
        }
        buf.put_u8(b'\n');
        buf.freeze()
    }

    fn encoded_len_hint(&self) -> usize {
        let fields = self.event.as_ref().map_or(0, |e| e.len() + 8) + self.retry.map_or(0, |_| 28);
        // "data: " + "\n" per line; count line breaks cheaply by bytes.
        let breaks = self
            .data
            .bytes()
            .filter(|b| *b == b'\n' || *b == b'\r')
            .count();
        fields + self.data.len() + 7 * (breaks + 1) + 1
    }
}

/// Rules for an event id: at most [`MAX_ID_LEN`] bytes of printable ASCII (space
/// included; so no CR, LF or NUL). An empty id is allowed: it resets the browser's
/// last event id.
pub fn validate_event_id(id: &str) -> Result<()> {
    if id.contains(['\r', '\n']) {
        return Err(Error::invalid(
            "event id must not contain CR or LF characters",
        ));
    }
    if id.contains('\0') {
        return Err(Error::invalid("event id must not contain NUL characters"));
    }
    if id.len() > MAX_ID_LEN {
        return Err(Error::invalid(format!(
            "event id is longer than {MAX_ID_LEN} bytes"
        )));
    }
    if !id.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err(Error::invalid(
            "event id must be printable ASCII (no control or non-ASCII characters)",
        ));
    }
    Ok(())
}

/// Rules for a channel name.
pub fn validate_channel(channel: &str) -> Result<()> {
    if channel.is_empty() {
        return Err(Error::invalid("channel name must not be empty"));
    }
    if channel.len() > MAX_NAME_LEN {
        return Err(Error::invalid(format!(
            "channel name is longer than {MAX_NAME_LEN} bytes"
        )));
    }
    Ok(())
}

/// Rules for a user key.
pub fn validate_user(user: &str) -> Result<()> {
    if user.is_empty() {
        return Err(Error::invalid("user key must not be empty"));
    }
    if user.len() > MAX_NAME_LEN {
        return Err(Error::invalid(format!(
            "user key is longer than {MAX_NAME_LEN} bytes"
        )));
    }
    Ok(())
}

/// The heartbeat: a comment line, ignored by every client.
pub(crate) fn heartbeat_frame() -> Bytes {
    Bytes::from_static(b":\n\n")
}

fn put_field(buf: &mut BytesMut, name: &str, value: &str) {
    buf.put_slice(name.as_bytes());
    buf.put_slice(b": ");
    buf.put_slice(value.as_bytes());
    buf.put_u8(b'\n');
}

/// Splits on CRLF, LF and lone CR, as the client's parser does. An empty string is one empty line.
fn split_lines(data: &str) -> impl Iterator<Item = &str> {
    let bytes = data.as_bytes();
    let mut start = 0;
    let mut i = 0;
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        while i < bytes.len() {
            match bytes[i] {
                b'\n' => {
                    let line = &data[start..i];
                    i += 1;
                    start = i;
                    return Some(line);
                }
                b'\r' => {
                    let line = &data[start..i];
                    i += if bytes.get(i + 1) == Some(&b'\n') {
                        2
                    } else {
                        1
                    };
                    start = i;
                    return Some(line);
                }
                _ => i += 1,
            }
        }
        done = true;
        Some(&data[start..])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(ev: &Event) -> String {
        String::from_utf8(ev.encode().unwrap().to_vec()).unwrap()
    }

    #[test]
    fn plain_data() {
        assert_eq!(wire(&Event::new("hello")), "data: hello\n\n");
    }

    #[test]
    fn empty_data_is_one_empty_data_line() {
        assert_eq!(wire(&Event::new("")), "data: \n\n");
    }

    #[test]
    fn all_fields_in_order() {
        let ev = Event::new("x").named("tick").with_id("7").with_retry(1500);
        assert_eq!(wire(&ev), "id: 7\nevent: tick\nretry: 1500\ndata: x\n\n");
    }

    #[test]
    fn line_breaks_of_every_kind_split_data() {
        assert_eq!(
            wire(&Event::new("a\r\nb\nc\rd\n")),
            "data: a\ndata: b\ndata: c\ndata: d\ndata: \n\n"
        );
        assert_eq!(wire(&Event::new("\r\r\n")), "data: \ndata: \ndata: \n\n");
    }

    #[test]
    fn leading_space_survives() {
        assert_eq!(wire(&Event::new(" x")), "data:  x\n\n");
    }

    #[test]
    fn invalid_fields_are_rejected() {
        for ev in [
            Event::new("x").named(""),
            Event::new("x").named("a\nb"),
            Event::new("x").named("a\rb"),
            Event::new("x").with_id("a\nb"),
            Event::new("x").with_id("a\rb"),
            Event::new("x").with_id("a\0b"),
            Event::new("x").with_id("a".repeat(MAX_ID_LEN + 1)),
            Event::new("x").with_id("caf\u{e9}"),
            Event::new("x").with_id("a\tb"),
        ] {
            let err = ev.encode().unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::InvalidArgument, "{ev:?}");
        }
    }

    #[test]
    fn channel_and_user_rules() {
        assert!(validate_channel("").is_err());
        assert!(validate_channel(&"c".repeat(MAX_NAME_LEN + 1)).is_err());
        assert!(validate_channel("news").is_ok());
        assert!(validate_user("").is_err());
        assert!(validate_user("u1").is_ok());
    }
}
