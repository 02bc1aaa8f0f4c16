//! The settings ([`Config`](crate::Config)) and counters ([`Stats`](crate::Stats)) declared once, as tables: each
//! field's name, type, unit, default and meaning.
//!
//! The bindings follow these tables and their tests check that they do: the C header's
//! `sse_config` and `sse_stats` (ffi-c), Node's `EngineOptions` and `Stats` types and the
//! options `new Engine()` takes, Python's `Engine(...)` keywords, its docstring and
//! typed dicts. Each of those tests fails when a field of a table is missing from its
//! binding, is named otherwise, or is documented with another default. The tests below
//! check the tables against `Config::default()` and `Stats` themselves, so a field
//! added to either does not compile until it has a row here.
//!
//! Names are the engine's, in snake_case, without a unit; nested settings are
//! flattened (`history_max_events` is `Config::history.max_events`), and so are the
//! disconnect counters (`disconnects_slow` is `Stats::disconnects_by(Slow)`). Each
//! binding adds the unit to a name by its own rule (README.md, "Settings and units").
//! Durations are given here in milliseconds, except `busy_retry_after`, which is whole
//! seconds (the unit of the `Retry-After` header it fills).

use serde_json::{json, Value as Json};

/// The type of a field's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A non-negative integer (a count, a size or a duration, by its [`Unit`]).
    Uint,
    Bool,
    Text,
}

/// The unit of a field's value and default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A flag or a name.
    None,
    /// A number of the things the name says (threads, clients, events).
    Count,
    Bytes,
    Millis,
    Secs,
}

/// A default value, in the field's unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value {
    /// Unset (`None` in `Config`): the field's [`Field::off`] says what that means.
    None,
    Uint(u64),
    Bool(bool),
    Text(&'static str),
}

/// One field of [`Config`](crate::Config) or [`Stats`](crate::Stats).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    /// snake_case, without a unit.
    pub name: &'static str,
    pub kind: Kind,
    pub unit: Unit,
    /// The default (for a counter: its value in a new engine, 0).
    pub default: Value,
    /// For a setting that may be unset (`None`; `0` or `NULL` in C): what unset means.
    pub off: Option<&'static str>,
    /// What it is, in a sentence.
    pub doc: &'static str,
}

const fn setting(
    name: &'static str,
    kind: Kind,
    unit: Unit,
    default: Value,
    off: Option<&'static str>,
    doc: &'static str,
) -> Field {
    Field {
        name,
        kind,
        unit,
        default,
        off,
        doc,
    }
}

const fn counter(name: &'static str, unit: Unit, doc: &'static str) -> Field {
    Field {
        name,
        kind: Kind::Uint,
        unit,
        default: Value::Uint(0),
        off: None,
        doc,
    }
}

use Kind::{Bool, Text, Uint};
use Unit::{Bytes, Count, Millis, Secs};

/// The fields of [`Config`](crate::Config), in its order.
#[rustfmt::skip]
pub const CONFIG_FIELDS: &[Field] = &[
    setting("threads", Uint, Count, Value::Uint(1), None,
        "Reactor threads (at most 64); clients are spread over them."),
    setting("heartbeat", Uint, Millis, Value::Uint(15_000), Some("no heartbeats"),
        "Interval of the comment line sent to a client that got nothing meanwhile."),
    setting("retry", Uint, Millis, Value::None, Some("no hint"),
        "`retry:` hint sent to every client right after connecting."),
    setting("max_queue_bytes", Uint, Bytes, Value::Uint(1024 * 1024), None,
        "Bytes a client may have queued (at least 1024); past it the client is dropped as `slow`."),
    setting("max_clients", Uint, Count, Value::None, Some("no limit"),
        "Most clients connected at once; beyond it a hand-over is refused (503)."),
    setting("max_clients_per_channel", Uint, Count, Value::None, Some("no limit"),
        "Most clients in one channel; beyond it a hand-over is refused (503)."),
    setting("write_timeout", Uint, Millis, Value::Uint(30_000), Some("never"),
        "A client with queued bytes that accepts none this long is dropped as `timeout` (also TCP_USER_TIMEOUT and keepalive)."),
    setting("busy_retry_after", Uint, Secs, Value::Uint(5), None,
        "`Retry-After` of the 503 answer to a refused hand-over."),
    setting("auto_ids", Bool, Unit::None, Value::Bool(true), None,
        "Give channel and broadcast-to-all events an engine id when the caller gives none."),
    setting("history_max_events", Uint, Count, Value::Uint(1000), None,
        "Events kept per channel (and for broadcast-to-all) for replay; 0 turns history off."),
    setting("history_max_age", Uint, Millis, Value::Uint(300_000), None,
        "Age past which history events are dropped; 0 turns history off."),
    setting("max_replay", Uint, Count, Value::Uint(1000), None,
        "Most events replayed to a reconnecting client at once (at least 1); the rest follows as it drains."),
    setting("gap_event", Text, Unit::None, Value::Text("sse-gap"), Some("no gap event"),
        "Event sent to a client whose Last-Event-ID is not in history."),
];

/// The fields of [`Stats`](crate::Stats), in its order, `disconnects` flattened by reason.
#[rustfmt::skip]
pub const STATS_FIELDS: &[Field] = &[
    counter("connections_open", Count, "Clients connected now."),
    counter("connections_total", Count, "Clients accepted since start."),
    counter("refused_total", Count, "Hand-overs refused by a limit (answered 503)."),
    counter("disconnects_closed", Count, "Clients that closed the connection."),
    counter("disconnects_error", Count, "Clients dropped on a socket error."),
    counter("disconnects_slow", Count, "Clients dropped because their queue passed its limit."),
    counter("disconnects_timeout", Count, "Clients dropped for accepting nothing for `write_timeout`."),
    counter("disconnects_server", Count, "Clients the host disconnected."),
    counter("disconnects_shutdown", Count, "Clients closed by the shutdown."),
    counter("events_published", Count, "Events published (each send or broadcast call that reached the engine)."),
    counter("frames_queued", Count, "Frames queued to clients (one per recipient per event, heartbeats included)."),
    counter("bytes_written", Bytes, "Bytes written to client sockets."),
    counter("write_calls", Count, "`sendmsg` calls on client sockets."),
    counter("heartbeats", Count, "Heartbeat comments queued."),
    counter("queue_high_water", Bytes, "The most bytes any one client has had queued."),
    counter("events_replayed", Count, "Events sent from history to reconnecting clients."),
    counter("gaps", Count, "Reconnects whose Last-Event-ID was not in history."),
    counter("reactor_failures", Count, "Reactor threads that stopped on a panic (the engine failed closed)."),
];

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Uint => "uint",
            Kind::Bool => "bool",
            Kind::Text => "text",
        }
    }
}

impl Unit {
    /// `""`, `"count"`, `"bytes"`, `"ms"` or `"s"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::None => "",
            Unit::Count => "count",
            Unit::Bytes => "bytes",
            Unit::Millis => "ms",
            Unit::Secs => "s",
        }
    }
}

impl Value {
    pub fn to_json(self) -> Json {
        match self {
            Value::None => Json::Null,
            Value::Uint(n) => json!(n),
            Value::Bool(b) => json!(b),
            Value::Text(s) => json!(s),
        }
    }
}

impl Field {
    /// `{"name", "kind", "unit", "default", "off", "doc"}`: how the bindings hand the
    /// tables to their tests.
    pub fn to_json(&self) -> Json {
        json!({
            "name": self.name,
            "kind": self.kind.as_str(),
            "unit": self.unit.as_str(),
            "default": self.default.to_json(),
            "off": self.off,
            "doc": self.doc,
        })
    }
}

/// Both tables as JSON: `{"config": [field...], "stats": [field...]}`.
pub fn to_json() -> Json {
    let table = |fields: &[Field]| Json::Array(fields.iter().map(Field::to_json).collect());
    json!({ "config": table(CONFIG_FIELDS), "stats": table(STATS_FIELDS) })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{Config, DisconnectReason, HistoryLimits, Stats};

    /// A `Config` value as the table states it: its default, whether it may be unset,
    /// its kind, and whether it is a `Duration` (which the table gives in ms).
    trait AsField {
        fn value(&self) -> Value;
        fn kind() -> Kind;
        const OPTIONAL: bool = false;
        const DURATION: bool = false;
    }
    macro_rules! uints {
        ($($t:ty),*) => {$(
            impl AsField for $t {
                fn value(&self) -> Value { Value::Uint(*self as u64) }
                fn kind() -> Kind { Kind::Uint }
            }
        )*};
    }
    uints!(usize, u32, u64);
    impl AsField for bool {
        fn value(&self) -> Value {
            Value::Bool(*self)
        }
        fn kind() -> Kind {
            Kind::Bool
        }
    }
    impl AsField for String {
        fn value(&self) -> Value {
            // Leaked: a test's few bytes, so that `Value` stays `Copy`.
            Value::Text(self.clone().leak())
        }
        fn kind() -> Kind {
            Kind::Text
        }
    }
    impl AsField for Duration {
        fn value(&self) -> Value {
            Value::Uint(self.as_millis() as u64)
        }
        fn kind() -> Kind {
            Kind::Uint
        }
        const DURATION: bool = true;
    }
    impl<T: AsField> AsField for Option<T> {
        fn value(&self) -> Value {
            self.as_ref().map_or(Value::None, T::value)
        }
        fn kind() -> Kind {
            T::kind()
        }
        const OPTIONAL: bool = true;
        const DURATION: bool = T::DURATION;
    }

    struct Actual {
        name: &'static str,
        default: Value,
        kind: Kind,
        optional: bool,
        duration: bool,
    }
    fn actual<T: AsField>(name: &'static str, value: &T) -> Actual {
        Actual {
            name,
            default: value.value(),
            kind: T::kind(),
            optional: T::OPTIONAL,
            duration: T::DURATION,
        }
    }

    #[test]
    fn config_fields_state_config_default() {
        // No `..`: a field added to `Config` (or `HistoryLimits`) does not compile here
        // until it has a row in CONFIG_FIELDS (and a line below).
        let Config {
            threads,
            heartbeat,
            retry,
            max_queue_bytes,
            max_clients,
            max_clients_per_channel,
            write_timeout,
            busy_retry_after_secs,
            auto_ids,
            history:
                HistoryLimits {
                    max_events,
                    max_age,
                },
            max_replay,
            gap_event,
        } = Config::default();
        let fields = [
            actual("threads", &threads),
            actual("heartbeat", &heartbeat),
            actual("retry", &retry),
            actual("max_queue_bytes", &max_queue_bytes),
            actual("max_clients", &max_clients),
            actual("max_clients_per_channel", &max_clients_per_channel),
            actual("write_timeout", &write_timeout),
            actual("busy_retry_after", &busy_retry_after_secs),
            actual("auto_ids", &auto_ids),
            actual("history_max_events", &max_events),
            actual("history_max_age", &max_age),
            actual("max_replay", &max_replay),
            actual("gap_event", &gap_event),
        ];
        let names: Vec<_> = CONFIG_FIELDS.iter().map(|f| f.name).collect();
        let expected: Vec<_> = fields.iter().map(|f| f.name).collect();
        assert_eq!(
            names, expected,
            "CONFIG_FIELDS must list Config's fields in order"
        );
        for (row, field) in CONFIG_FIELDS.iter().zip(&fields) {
            let name = row.name;
            assert_eq!(row.default, field.default, "{name}: default");
            assert_eq!(row.kind, field.kind, "{name}: kind");
            assert_eq!(
                row.off.is_some(),
                field.optional,
                "{name}: `off` iff it is an Option"
            );
            if field.duration {
                assert_eq!(row.unit, Unit::Millis, "{name}: durations are in ms here");
            }
            match row.kind {
                Kind::Uint => assert_ne!(row.unit, Unit::None, "{name}: a number has a unit"),
                _ => assert_eq!(row.unit, Unit::None, "{name}: only numbers have a unit"),
            }
        }
    }

    #[test]
    fn stats_fields_name_every_counter() {
        // Again no `..`: a field added to `Stats` does not compile here until it is
        // listed (and has a row in STATS_FIELDS).
        macro_rules! stats_names {
            ($($field:ident),* $(,)?) => {{
                let Stats { $($field: _),* } = Stats::default();
                [$(stringify!($field)),*]
            }};
        }
        let declared = stats_names![
            connections_open,
            connections_total,
            refused_total,
            disconnects,
            events_published,
            frames_queued,
            bytes_written,
            write_calls,
            heartbeats,
            queue_high_water,
            events_replayed,
            gaps,
            reactor_failures,
        ];
        let mut expected = Vec::new();
        for name in declared {
            if name == "disconnects" {
                let reasons = DisconnectReason::ALL.iter();
                expected.extend(reasons.map(|r| format!("disconnects_{}", r.as_str())));
            } else {
                expected.push(name.to_string());
            }
        }
        let names: Vec<_> = STATS_FIELDS.iter().map(|f| f.name.to_string()).collect();
        assert_eq!(
            names, expected,
            "STATS_FIELDS must list Stats' fields in order"
        );
        for row in STATS_FIELDS {
            assert_eq!(
                (row.kind, row.default, row.off),
                (Kind::Uint, Value::Uint(0), None)
            );
            assert!(
                matches!(row.unit, Unit::Count | Unit::Bytes),
                "{}",
                row.name
            );
        }
    }

    /// The tables as README.md shows them ("Settings, counters and units").
    fn markdown(fields: &[Field], config: bool) -> String {
        let cell = |v: Value| match v {
            Value::None => "unset".to_string(),
            Value::Uint(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Text(s) => format!("`\"{s}\"`"),
        };
        let mut out = String::new();
        if config {
            out.push_str(
                "| setting | unit | default | unset means | what |\n|---|---|---|---|---|\n",
            );
        } else {
            out.push_str("| counter | unit | what |\n|---|---|---|\n");
        }
        for f in fields {
            let unit = match f.unit {
                Unit::None => "—",
                unit => unit.as_str(),
            };
            if config {
                let off = f.off.unwrap_or("—");
                let default = cell(f.default);
                out.push_str(&format!(
                    "| `{}` | {unit} | {default} | {off} | {} |\n",
                    f.name, f.doc
                ));
            } else {
                out.push_str(&format!("| `{}` | {unit} | {} |\n", f.name, f.doc));
            }
        }
        out
    }

    /// README.md's text between `<!-- schema:NAME -->` and `<!-- /schema:NAME -->`.
    fn readme_section(name: &str) -> &'static str {
        const README: &str = include_str!("../../README.md");
        let (begin, end) = (
            format!("<!-- schema:{name} -->\n"),
            format!("<!-- /schema:{name} -->"),
        );
        let start = README
            .find(&begin)
            .unwrap_or_else(|| panic!("README.md has no {begin}"));
        let rest = &README[start + begin.len()..];
        &rest[..rest
            .find(&end)
            .unwrap_or_else(|| panic!("README.md has no {end}"))]
    }

    #[test]
    fn readme_shows_the_tables() {
        for (name, fields, config) in [
            ("config", CONFIG_FIELDS, true),
            ("stats", STATS_FIELDS, false),
        ] {
            let expected = markdown(fields, config);
            assert!(
                readme_section(name) == expected,
                "README.md's {name} table is not the schema's; replace it with:\n{expected}"
            );
        }
    }

    #[test]
    fn json_has_both_tables() {
        let j = to_json();
        assert_eq!(j["config"].as_array().unwrap().len(), CONFIG_FIELDS.len());
        assert_eq!(j["stats"].as_array().unwrap().len(), STATS_FIELDS.len());
        let heartbeat = &j["config"][1];
        assert_eq!(heartbeat["name"], "heartbeat");
        assert_eq!(heartbeat["unit"], "ms");
        assert_eq!(heartbeat["default"], 15_000);
        assert_eq!(j["config"][2]["default"], Json::Null);
    }
}
