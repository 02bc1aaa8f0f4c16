//! Metadata filters for `broadcast_where`.
//!
//! A filter is a JSON object. Each key names a metadata field; its value is either a
//! JSON value the field must equal, or `{"$in": [v1, v2, ...]}`, a list the field must
//! equal one of. Every key must match (AND); a client without the field does not match.
//! Numbers compare by value (see [`crate::json::equal`]).
//! `{}` matches every client.

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::json;

#[derive(Debug, Clone, PartialEq)]
enum Condition {
    Equals(Value),
    In(Vec<Value>),
}

/// A parsed, validated metadata filter.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    conditions: Vec<(String, Condition)>,
}

impl Filter {
    /// Parses a filter from JSON text.
    pub fn parse(text: &str) -> Result<Filter> {
        let fields = crate::json::parse_object(text, "filter")?;
        let mut conditions = Vec::with_capacity(fields.len());
        for (key, value) in fields {
            let condition = match value {
                Value::Object(op) => {
                    let mut op = op.into_iter();
                    match (op.next(), op.next()) {
                        (Some((name, Value::Array(list))), None) if name == "$in" => {
                            Condition::In(list)
                        }
                        (Some((name, _)), None) if name == "$in" => {
                            return Err(Error::invalid(format!(
                                "filter field {key:?}: $in takes a JSON array"
                            )))
                        }
                        _ => {
                            return Err(Error::invalid(format!(
                                "filter field {key:?}: an object value must be {{\"$in\": [...]}} (the only operator)"
                            )))
                        }
                    }
                }
                other => Condition::Equals(other),
            };
            conditions.push((key, condition));
        }
        Ok(Filter { conditions })
    }

    /// Whether a client's metadata matches.
    pub fn matches(&self, metadata: Option<&Map<String, Value>>) -> bool {
        self.conditions.iter().all(|(key, condition)| {
            let Some(value) = metadata.and_then(|m| m.get(key)) else {
                return false;
            };
            match condition {
                Condition::Equals(expected) => json::equal(value, expected),
                Condition::In(list) => list.iter().any(|v| json::equal(value, v)),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(text: &str) -> Map<String, Value> {
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn equality_in_and_missing_fields() {
        let f = Filter::parse(r#"{"role":"admin","tier":{"$in":[1,2]}}"#).unwrap();
        assert!(f.matches(Some(&meta(r#"{"role":"admin","tier":2,"x":0}"#))));
        assert!(!f.matches(Some(&meta(r#"{"role":"admin","tier":3}"#))));
        assert!(!f.matches(Some(&meta(r#"{"role":"user","tier":1}"#))));
        assert!(!f.matches(Some(&meta(r#"{"tier":1}"#))));
        assert!(!f.matches(None));
        assert!(Filter::parse("{}").unwrap().matches(None));
    }

    #[test]
    fn bad_filters_are_errors() {
        for bad in [
            "[]",
            "1",
            "{",
            r#"{"a":{"$in":1}}"#,
            r#"{"a":{"$gt":1}}"#,
            r#"{"a":{"$in":[1],"$nin":[2]}}"#,
            r#"{"a":{}}"#,
        ] {
            assert!(Filter::parse(bad).is_err(), "{bad}");
        }
    }
}
