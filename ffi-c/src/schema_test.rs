//! `sse_config` and `sse_stats` against the engine's tables (`sse_engine::schema`): a
//! field of `Config` or `Stats` missing from the C structs, named there without its C
//! unit, documented in the header with another default, or filled by `sse_config_init`
//! with another value, fails here. It reads the committed header (`make header-check`
//! keeps that the one cbindgen generates).
//!
//! C names: the engine's name, plus `_ms` or `_s` for a duration; unset is 0 (`NULL`
//! for text).

use std::collections::BTreeSet;
use std::ffi::CStr;
use std::mem::MaybeUninit;

use ::sse_engine::schema::{Field, Kind, Unit, Value, CONFIG_FIELDS, STATS_FIELDS};
use ::sse_engine::Config;

use crate::config::{config_of, sse_config, sse_config_init};
use crate::status::sse_status;

const HEADER: &str = include_str!("../../include/sse_engine.h");

fn c_name(field: &Field) -> String {
    match field.unit {
        Unit::Millis => format!("{}_ms", field.name),
        Unit::Secs => format!("{}_s", field.name),
        _ => field.name.to_string(),
    }
}

/// A default as the header writes it.
fn c_default(field: &Field) -> String {
    match (field.default, field.kind) {
        (Value::None, Kind::Text) => "NULL".into(),
        (Value::None, _) => "0".into(),
        (Value::Uint(n), _) => n.to_string(),
        (Value::Bool(b), _) => b.to_string(),
        (Value::Text(s), _) => format!("\"{s}\""),
    }
}

/// The fields of `typedef struct <name> { ... } <name>;` in the header, each with the
/// text of the comment before it (empty when it has none).
fn header_struct(name: &str) -> Vec<(String, String)> {
    let open = format!("typedef struct {name} {{");
    let start = HEADER
        .find(&open)
        .unwrap_or_else(|| panic!("no `{open}` in the header"));
    let body = &HEADER[start + open.len()..];
    let mut rest = &body[..body
        .find(&format!("}} {name};"))
        .expect("end of the struct")];
    let mut fields = Vec::new();
    let mut comment = String::new();
    loop {
        rest = rest.trim_start();
        if rest.is_empty() {
            return fields;
        }
        if let Some(after) = rest.strip_prefix("/**") {
            let end = after.find("*/").expect("end of a comment");
            let lines = after[..end].lines();
            let words = lines.map(|l| l.trim().trim_start_matches('*').trim());
            comment = words.collect::<Vec<_>>().join(" ");
            rest = &after[end + 2..];
        } else {
            let end = rest.find(';').expect("end of a field");
            let field = rest[..end].rsplit([' ', '*']).next().unwrap();
            fields.push((field.to_string(), std::mem::take(&mut comment)));
            rest = &rest[end + 1..];
        }
    }
}

/// The default a comment states: the word after its first "default ".
fn stated_default(comment: &str) -> Option<&str> {
    let rest = &comment[comment.find("default ")? + "default ".len()..];
    Some(&rest[..rest.find([';', ',', ')', ' ']).unwrap_or(rest.len())])
}

fn names<'a>(names: impl IntoIterator<Item = &'a str>) -> BTreeSet<&'a str> {
    names.into_iter().collect()
}

#[test]
fn sse_config_has_every_setting_with_its_default_documented() {
    let header = header_struct("sse_config");
    let expected: Vec<String> = CONFIG_FIELDS.iter().map(c_name).collect();
    assert_eq!(
        names(header.iter().map(|(n, _)| n.as_str())),
        names(expected.iter().map(String::as_str)),
        "sse_config's fields are CONFIG_FIELDS' names with the C unit"
    );
    for field in CONFIG_FIELDS {
        let name = c_name(field);
        let (_, comment) = header.iter().find(|(n, _)| *n == name).unwrap();
        assert_eq!(
            stated_default(comment),
            Some(c_default(field).as_str()),
            "the header's comment of sse_config.{name} must say `default {}`: {comment:?}",
            c_default(field)
        );
    }
}

#[test]
fn sse_config_init_fills_in_the_engine_defaults() {
    let mut config = MaybeUninit::<sse_config>::uninit();
    assert_eq!(sse_config_init(config.as_mut_ptr()), sse_status::SSE_OK);
    // SAFETY: sse_config_init returned SSE_OK: it wrote the whole struct.
    let config = unsafe { config.assume_init() };
    assert_eq!(config_of(&config).unwrap(), Config::default());
    // No `..`: a field added to sse_config does not compile here until it is listed.
    let sse_config {
        threads,
        heartbeat_ms,
        retry_ms,
        write_timeout_ms,
        busy_retry_after_s,
        max_queue_bytes,
        max_clients,
        max_clients_per_channel,
        auto_ids,
        history_max_events,
        history_max_age_ms,
        max_replay,
        gap_event,
    } = config;
    // SAFETY: sse_config_init sets gap_event to a static NUL-terminated string.
    let gap_event = unsafe { CStr::from_ptr(gap_event) }.to_str().unwrap();
    let values = [
        ("threads", threads.to_string()),
        ("heartbeat_ms", heartbeat_ms.to_string()),
        ("retry_ms", retry_ms.to_string()),
        ("write_timeout_ms", write_timeout_ms.to_string()),
        ("busy_retry_after_s", busy_retry_after_s.to_string()),
        ("max_queue_bytes", max_queue_bytes.to_string()),
        ("max_clients", max_clients.to_string()),
        (
            "max_clients_per_channel",
            max_clients_per_channel.to_string(),
        ),
        ("auto_ids", auto_ids.to_string()),
        ("history_max_events", history_max_events.to_string()),
        ("history_max_age_ms", history_max_age_ms.to_string()),
        ("max_replay", max_replay.to_string()),
        ("gap_event", format!("\"{gap_event}\"")),
    ];
    let expected: Vec<String> = CONFIG_FIELDS.iter().map(c_name).collect();
    assert_eq!(
        names(values.iter().map(|(n, _)| *n)),
        names(expected.iter().map(String::as_str))
    );
    for field in CONFIG_FIELDS {
        let name = c_name(field);
        let (_, value) = values.iter().find(|(n, _)| *n == name).unwrap();
        assert_eq!(*value, c_default(field), "sse_config_init: {name}");
    }
}

#[test]
fn sse_stats_has_every_counter() {
    let header = header_struct("sse_stats");
    assert_eq!(
        names(header.iter().map(|(n, _)| n.as_str())),
        names(STATS_FIELDS.iter().map(|f| f.name)),
        "sse_stats' fields are STATS_FIELDS' names"
    );
}

#[test]
fn the_header_parser_reads_fields_and_comments() {
    let fields = header_struct("sse_header");
    assert_eq!(
        fields,
        [
            ("name".into(), String::new()),
            ("value".into(), String::new())
        ]
    );
    assert_eq!(
        stated_default("Threads (default 1, at most 64)."),
        Some("1")
    );
    assert_eq!(
        stated_default("(default \"x\"; NULL = none)"),
        Some("\"x\"")
    );
    assert_eq!(stated_default("no such word"), None);
}
