use std::fmt;

use serde::de::{self, DeserializeOwned, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// An event whose type this crate does not know.
///
/// Each provider's `Event` enum puts here any `event` string it does not
/// recognise: VideoNest's test ping (the VideoNest document says "VideoNest
/// will immediately send a test ping to verify the endpoint is reachable" but
/// gives neither its event type nor its body) and any type a provider adds
/// later.
///
/// The envelope is read the same way as for known events: the body must be a
/// JSON object with a string `event`; keys may come in any order; a repeated
/// `event`, `timestamp` or `data` key is an error; other keys are ignored.
///
/// Deserialized on its own, `timestamp` must be a string, `null` or absent.
///
/// Serializing writes `{"event":..,"timestamp":..,"data":..}`, leaving out
/// `timestamp` when it is `None` and `data` when it is `Null`.
///
/// # Example
///
/// ```
/// use tower_webhook::provider::UnknownEvent;
///
/// let body = r#"{"event":"endpoint.ping","data":{"id":"ping_1"}}"#;
/// let event: UnknownEvent = serde_json::from_str(body)?;
/// assert_eq!(event.event, "endpoint.ping");
/// assert_eq!(event.timestamp, None);
/// match &event.data {
///     serde_json::Value::Object(map) => assert_eq!(map["id"], "ping_1"),
///     other => println!("ping without an object `data`: {other}"),
/// }
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct UnknownEvent {
    /// The `event` string exactly as received.
    pub event: String,
    /// The top-level `timestamp` string, if the body had one.
    ///
    /// The VideoAIditor document shows no top-level `timestamp`, so for
    /// VideoAIditor this is `None` unless a body carries a string one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    /// The raw `data` value; [`Value::Null`] when the body had no `data`.
    #[serde(skip_serializing_if = "Value::is_null")]
    pub data: Value,
}

impl<'de> Deserialize<'de> for UnknownEvent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = RawEnvelope::deserialize(deserializer)?;
        let timestamp = strict_timestamp(raw.timestamp)?;
        Ok(raw_unknown(raw.event, timestamp, raw.data))
    }
}

/// The envelope of a webhook body before dispatch on `event`.
///
/// Only a JSON object is accepted (never an array); `event` must be present and
/// a string; duplicate envelope keys are rejected; unknown keys are skipped.
pub(crate) struct RawEnvelope {
    pub(crate) event: String,
    pub(crate) timestamp: Option<Value>,
    pub(crate) data: Option<Value>,
}

impl<'de> Deserialize<'de> for RawEnvelope {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(EnvelopeVisitor)
    }
}

struct EnvelopeVisitor;

impl<'de> Visitor<'de> for EnvelopeVisitor {
    type Value = RawEnvelope;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a webhook body: a JSON object with a string `event`")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawEnvelope, A::Error> {
        let mut event: Option<String> = None;
        let mut timestamp: Option<Value> = None;
        let mut data: Option<Value> = None;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "event" => {
                    if event.is_some() {
                        return Err(de::Error::duplicate_field("event"));
                    }
                    event = Some(map.next_value()?);
                }
                "timestamp" => {
                    if timestamp.is_some() {
                        return Err(de::Error::duplicate_field("timestamp"));
                    }
                    timestamp = Some(map.next_value()?);
                }
                "data" => {
                    if data.is_some() {
                        return Err(de::Error::duplicate_field("data"));
                    }
                    data = Some(map.next_value()?);
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let event = event.ok_or_else(|| de::Error::missing_field("event"))?;
        Ok(RawEnvelope {
            event,
            timestamp,
            data,
        })
    }
}

/// `timestamp` as a string: absent or `null` is `None`, any other non-string is an error.
pub(crate) fn strict_timestamp<E: de::Error>(
    timestamp: Option<Value>,
) -> Result<Option<String>, E> {
    match timestamp {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(E::custom(
            "invalid type for `timestamp`: expected a string or null",
        )),
    }
}

/// `data` of a known event type: must be present, a JSON object, and match `T`.
pub(crate) fn known_data<T: DeserializeOwned, E: de::Error>(
    event: &str,
    data: Option<Value>,
) -> Result<T, E> {
    match data {
        None => Err(E::custom(format_args!(
            "missing field `data` for `{event}` event"
        ))),
        // A derived struct would also accept a JSON array (fields by position).
        Some(value) if !value.is_object() => Err(E::custom(format_args!(
            "invalid `data` for `{event}` event: expected a JSON object"
        ))),
        Some(value) => T::deserialize(value)
            .map_err(|e| E::custom(format_args!("invalid `data` for `{event}` event: {e}"))),
    }
}

/// Builds an [`UnknownEvent`]; absent `data` becomes [`Value::Null`].
pub(crate) fn raw_unknown(
    event: String,
    timestamp: Option<String>,
    data: Option<Value>,
) -> UnknownEvent {
    UnknownEvent {
        event,
        timestamp,
        data: data.unwrap_or(Value::Null),
    }
}

/// A string field of an unknown event's raw `data`, if it is an object holding a string there.
pub(crate) fn raw_str_field<'a>(unknown: &'a UnknownEvent, field: &str) -> Option<&'a str> {
    unknown.data.get(field).and_then(Value::as_str)
}

/// The wire shape of a known event, for serializing.
#[derive(Serialize)]
pub(crate) struct WireRef<'a, T: Serialize> {
    pub(crate) event: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) timestamp: Option<&'a str>,
    pub(crate) data: &'a T,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_envelope() {
        let e: UnknownEvent =
            serde_json::from_str(r#"{"data":{"id":"x"},"timestamp":"t","event":"a.b","z":1}"#)
                .unwrap();
        assert_eq!(e.event, "a.b");
        assert_eq!(e.timestamp.as_deref(), Some("t"));
        assert_eq!(e.data, json!({"id":"x"}));
        assert_eq!(raw_str_field(&e, "id"), Some("x"));
        assert_eq!(raw_str_field(&e, "nope"), None);
    }

    #[test]
    fn missing_data_is_null() {
        let e: UnknownEvent = serde_json::from_str(r#"{"event":"ping"}"#).unwrap();
        assert_eq!(e.data, Value::Null);
        assert_eq!(e.timestamp, None);
        assert_eq!(raw_str_field(&e, "id"), None);
    }

    #[test]
    fn rejects_bad_envelopes() {
        for body in [
            r#"{"data":{}}"#,
            r#"{"event":1}"#,
            r#"{"event":null}"#,
            r#"["ping",null,{}]"#,
            r#""ping""#,
            "not json",
            "",
            r#"{"event":"a","event":"b"}"#,
            r#"{"event":"a","data":1,"data":2}"#,
            r#"{"event":"a","timestamp":5}"#,
        ] {
            assert!(
                serde_json::from_str::<UnknownEvent>(body).is_err(),
                "accepted {body}"
            );
        }
    }

    #[test]
    fn round_trip() {
        for body in [
            r#"{"event":"x","timestamp":"t","data":[1,2]}"#,
            r#"{"event":"x"}"#,
        ] {
            let e: UnknownEvent = serde_json::from_str(body).unwrap();
            let text = serde_json::to_string(&e).unwrap();
            assert_eq!(text, body);
            assert_eq!(serde_json::from_str::<UnknownEvent>(&text).unwrap(), e);
        }
    }
}
