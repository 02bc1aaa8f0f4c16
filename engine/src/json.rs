//! JSON objects as the engine keeps them (metadata and filters): numbers exactly as
//! written (`serde_json`'s `arbitrary_precision`), finite only, and compared by value.

use serde_json::{Map, Number, Value};

use crate::error::{Error, Result};

/// Parses a JSON object; `what` names it in errors ("metadata", "filter").
pub(crate) fn parse_object(text: &str, what: &str) -> Result<Map<String, Value>> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| Error::invalid(format!("{what} is not valid JSON: {e}")))?;
    let Value::Object(map) = value else {
        return Err(Error::invalid(format!("{what} must be a JSON object")));
    };
    if let Some(n) = first_non_finite(&map) {
        return Err(Error::invalid(format!(
            "{what}: the number {n} is out of range (beyond a double's range)"
        )));
    }
    Ok(map)
}

fn first_non_finite(map: &Map<String, Value>) -> Option<&Number> {
    fn walk(value: &Value) -> Option<&Number> {
        match value {
            Value::Number(n) if !n.as_f64().is_some_and(f64::is_finite) => Some(n),
            Value::Array(items) => items.iter().find_map(walk),
            Value::Object(map) => map.values().find_map(walk),
            _ => None,
        }
    }
    map.values().find_map(walk)
}

/// Equality where numbers compare by value: integers exactly (whatever their size),
/// anything else as doubles (`1.5` = `1.50`, `100` = `1e2`).
pub(crate) fn equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => numbers_equal(x, y),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| equal(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, a)| y.get(k).is_some_and(|b| equal(a, b)))
        }
        _ => a == b,
    }
}

fn numbers_equal(x: &Number, y: &Number) -> bool {
    let (x, y) = (x.as_str(), y.as_str());
    match (integer_digits(x), integer_digits(y)) {
        (Some(a), Some(b)) => a == b,
        _ => x.parse::<f64>().ok() == y.parse::<f64>().ok(),
    }
}

/// An integer literal without leading zeros and sign of zero: `-0` and `0` are both "0".
fn integer_digits(text: &str) -> Option<(bool, &str)> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits = digits.trim_start_matches('0');
    Some((negative && !digits.is_empty(), digits))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn numbers_compare_by_value_and_big_integers_exactly() {
        for (a, b) in [
            ("1.5", "1.50"),
            ("100", "1e2"),
            ("1E2", "1e2"),
            ("-0", "0"),
            (
                "123456789012345678901234567890",
                "123456789012345678901234567890",
            ),
            (r#"[1, {"a": 2.0}]"#, r#"[1.0, {"a": 2}]"#),
        ] {
            assert!(equal(&v(a), &v(b)), "{a} = {b}");
        }
        for (a, b) in [
            (
                "123456789012345678901234567890",
                "123456789012345678901234567891",
            ),
            ("1", "2"),
            ("1", "\"1\""),
            ("[1]", "[1, 1]"),
        ] {
            assert!(!equal(&v(a), &v(b)), "{a} != {b}");
        }
    }

    #[test]
    fn objects_only_and_finite_numbers_only() {
        assert!(parse_object(r#"{"n": 1e308, "m": [1]}"#, "metadata").is_ok());
        for bad in [
            "[]",
            "1",
            "{",
            r#"{"n": 1e400}"#,
            r#"{"a": [{"b": -1e999}]}"#,
        ] {
            assert!(parse_object(bad, "metadata").is_err(), "{bad}");
        }
        let err = parse_object(r#"{"n": 1e400}"#, "filter").unwrap_err();
        assert!(err.message().contains("out of range"), "{err}");
    }
}
