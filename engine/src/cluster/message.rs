//! What one node tells the others about a publish: the payload of the publish script
//! (kept in the channel's stream and PUBLISHed), encoded here and read back there.
//!
//! Layout (all lengths little-endian u32):
//!
//! ```text
//! version (1) | target tag (1) | target | flags (1) | [event] [id] [retry u64] [filter] | data
//! ```
//!
//! where `target` is a length-prefixed name (channel or user), nothing (all) or a u64
//! (client); each optional field is present when its flag bit is set, strings
//! length-prefixed; `data` runs to the end. Whatever comes from Redis is untrusted: a
//! payload that is truncated, too long, of another version, not UTF-8, or whose event
//! or names the engine would refuse, is an error, never a delivery.

use crate::error::{Error, Result};
use crate::event::{validate_channel, validate_user, Event};

/// The layout's version; a payload of any other is foreign.
const VERSION: u8 = 1;

const TARGET_CHANNEL: u8 = 1;
const TARGET_ALL: u8 = 2;
const TARGET_USER: u8 = 3;
const TARGET_CLIENT: u8 = 4;

const HAS_EVENT: u8 = 1;
const HAS_ID: u8 = 2;
const HAS_RETRY: u8 = 4;
const HAS_FILTER: u8 = 8;
const KNOWN_FLAGS: u8 = HAS_EVENT | HAS_ID | HAS_RETRY | HAS_FILTER;

/// Who a published event is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The members of a channel (with a metadata filter, as JSON text, when set).
    Channel {
        name: String,
        filter: Option<String>,
    },
    /// Every client of every node.
    All,
    /// Every connection of a user.
    User(String),
    /// One client, on whichever node has it.
    Client(u64),
}

/// A publish as the nodes exchange it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub target: Target,
    pub event: Event,
}

impl Message {
    /// The payload for the publish script. A name, id or filter of 4 GiB or more is
    /// an error (the layout's lengths are 32 bits).
    pub fn encode(&self) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(16 + self.event.data.len());
        out.push(VERSION);
        let filter = match &self.target {
            Target::Channel { name, filter } => {
                out.push(TARGET_CHANNEL);
                put_text(&mut out, name)?;
                filter.as_deref()
            }
            Target::All => {
                out.push(TARGET_ALL);
                None
            }
            Target::User(user) => {
                out.push(TARGET_USER);
                put_text(&mut out, user)?;
                None
            }
            Target::Client(id) => {
                out.push(TARGET_CLIENT);
                out.extend_from_slice(&id.to_le_bytes());
                None
            }
        };
        let event = &self.event;
        let flags = flag(event.event.is_some(), HAS_EVENT)
            | flag(event.id.is_some(), HAS_ID)
            | flag(event.retry.is_some(), HAS_RETRY)
            | flag(filter.is_some(), HAS_FILTER);
        out.push(flags);
        if let Some(name) = &event.event {
            put_text(&mut out, name)?;
        }
        if let Some(id) = &event.id {
            put_text(&mut out, id)?;
        }
        if let Some(retry) = event.retry {
            out.extend_from_slice(&retry.to_le_bytes());
        }
        if let Some(filter) = filter {
            put_text(&mut out, filter)?;
        }
        out.extend_from_slice(event.data.as_bytes());
        Ok(out)
    }

    /// Reads a payload back, checking everything the engine checks before a publish.
    pub fn decode(payload: &[u8]) -> Result<Message> {
        let mut r = Reader { rest: payload };
        let version = r.byte("version")?;
        if version != VERSION {
            return Err(foreign(format!("version {version}, not {VERSION}")));
        }
        let target = match r.byte("target")? {
            TARGET_CHANNEL => Target::Channel {
                name: r.text("channel")?,
                filter: None,
            },
            TARGET_ALL => Target::All,
            TARGET_USER => Target::User(r.text("user")?),
            TARGET_CLIENT => Target::Client(r.u64("client")?),
            other => return Err(foreign(format!("unknown target {other}"))),
        };
        let flags = r.byte("flags")?;
        if flags & !KNOWN_FLAGS != 0 {
            return Err(foreign(format!("unknown flags {flags:#04x}")));
        }
        let event_name = (flags & HAS_EVENT != 0)
            .then(|| r.text("event"))
            .transpose()?;
        let id = (flags & HAS_ID != 0).then(|| r.text("id")).transpose()?;
        let retry = (flags & HAS_RETRY != 0)
            .then(|| r.u64("retry"))
            .transpose()?;
        let filter = (flags & HAS_FILTER != 0)
            .then(|| r.text("filter"))
            .transpose()?;
        let data = String::from_utf8(r.rest.to_vec()).map_err(|_| foreign("data is not UTF-8"))?;
        let target = match (target, filter) {
            (Target::Channel { name, .. }, filter) => Target::Channel { name, filter },
            (_, Some(_)) => return Err(foreign("a filter on a target that is not a channel")),
            (target, None) => target,
        };
        match &target {
            Target::Channel { name, .. } => validate_channel(name)?,
            Target::User(user) => validate_user(user)?,
            Target::All | Target::Client(_) => {}
        }
        let event = Event {
            event: event_name,
            id,
            retry,
            data,
        };
        event.validate()?;
        Ok(Message { target, event })
    }
}

fn flag(set: bool, bit: u8) -> u8 {
    if set {
        bit
    } else {
        0
    }
}

fn put_text(out: &mut Vec<u8>, text: &str) -> Result<()> {
    let len = u32::try_from(text.len())
        .map_err(|_| Error::invalid("a cluster message field must be under 4 GiB"))?;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(text.as_bytes());
    Ok(())
}

fn foreign(why: impl std::fmt::Display) -> Error {
    Error::invalid(format!("not a cluster message of this engine: {why}"))
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        if self.rest.len() < n {
            return Err(foreign(format!("truncated in {what}")));
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(head)
    }

    fn byte(&mut self, what: &str) -> Result<u8> {
        Ok(self.take(1, what)?[0])
    }

    fn u64(&mut self, what: &str) -> Result<u64> {
        let bytes = self.take(8, what)?;
        Ok(u64::from_le_bytes(bytes.try_into().expect("8 bytes")))
    }

    fn text(&mut self, what: &str) -> Result<String> {
        let len = self.take(4, what)?;
        let len = u32::from_le_bytes(len.try_into().expect("4 bytes")) as usize;
        let bytes = self.take(len, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| foreign(format!("{what} is not UTF-8")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(data: &str) -> Event {
        Event {
            event: Some("note".into()),
            id: Some("abc".into()),
            retry: Some(1500),
            data: data.into(),
        }
    }

    fn samples() -> Vec<Message> {
        vec![
            Message {
                target: Target::Channel {
                    name: "news".into(),
                    filter: Some(r#"{"plan":"pro"}"#.into()),
                },
                event: event("line 1\nline 2"),
            },
            Message {
                target: Target::Channel {
                    name: "n".into(),
                    filter: None,
                },
                event: Event::new(""),
            },
            Message {
                target: Target::All,
                event: event("é ✓ 😀"),
            },
            Message {
                target: Target::User("alice".into()),
                event: Event::new("x"),
            },
            Message {
                target: Target::Client((1 << 53) - 1),
                event: event("to one"),
            },
        ]
    }

    #[test]
    fn every_message_reads_back_the_same() {
        for message in samples() {
            let payload = message.encode().unwrap();
            assert_eq!(Message::decode(&payload).unwrap(), message);
        }
    }

    #[test]
    fn every_truncation_is_an_error_never_another_message() {
        for message in samples() {
            let payload = message.encode().unwrap();
            // Cutting into the data still reads (data runs to the end); cutting before
            // it must fail.
            let data_start = payload.len() - message.event.data.len();
            for cut in 0..data_start {
                let err = Message::decode(&payload[..cut]).unwrap_err();
                assert!(err.message().contains("not a cluster message"), "{err}");
            }
        }
    }

    #[test]
    fn foreign_or_invalid_payloads_are_errors() {
        let good = samples()[0].encode().unwrap();
        let mut other_version = good.clone();
        other_version[0] = 2;
        let mut bad_target = good.clone();
        bad_target[1] = 9;
        let flags_at = 2 + 4 + "news".len();
        let mut bad_flags = good.clone();
        bad_flags[flags_at] |= 0x80;
        let mut not_utf8 = good.clone();
        not_utf8.push(0xff);
        let mut filter_on_user = Message {
            target: Target::User("bob".into()),
            event: Event::new("x"),
        }
        .encode()
        .unwrap();
        filter_on_user[2 + 4 + 3] |= HAS_FILTER;
        filter_on_user.splice(2 + 4 + 3 + 1..2 + 4 + 3 + 1, [0, 0, 0, 0]);
        for (payload, why) in [
            (other_version, "version 2"),
            (bad_target, "unknown target 9"),
            (bad_flags, "unknown flags"),
            (not_utf8, "data is not UTF-8"),
            (filter_on_user, "a filter on a target"),
        ] {
            let err = Message::decode(&payload).unwrap_err();
            assert!(err.message().contains(why), "{why}: {err}");
        }
        // What the engine refuses before a publish is refused when read back too.
        let bad_event = Message {
            target: Target::Channel {
                name: "c".into(),
                filter: None,
            },
            event: Event {
                id: Some("a\nb".into()),
                ..Event::new("x")
            },
        };
        assert!(Message::decode(&bad_event.encode().unwrap()).is_err());
        let bad_channel = Message {
            target: Target::Channel {
                name: String::new(),
                filter: None,
            },
            event: Event::new("x"),
        };
        assert!(Message::decode(&bad_channel.encode().unwrap()).is_err());
        assert!(Message::decode(&[]).is_err());
    }
}
