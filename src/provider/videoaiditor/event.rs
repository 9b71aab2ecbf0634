use std::fmt;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

use crate::provider::RawEvent;
use crate::provider::raw::{self, FromEnvelope, Members};

/// A VideoAIditor webhook event.
///
/// The VideoAIditor document says: "When an event occurs, you'll receive a POST
/// request with the following payload structure": `{"event": ..., "data": {...}}`.
/// It shows no top-level `timestamp`. This type reads that envelope (keys in
/// any order, unknown keys ignored), then chooses the variant from the `event`
/// string.
///
/// A known event type whose `data` is an object matching [`RenderData`] gets
/// its typed variant (a top-level `timestamp` is ignored there). Anything else
/// that is a JSON object with an `event` — an unknown type, a known type of
/// another shape (an `error` object, a string with a lone UTF-16 surrogate,
/// which `JSON.stringify` emits for a title cut inside an emoji), a repeated
/// envelope key — becomes [`Event::Raw`] with its type, id and raw data, and is
/// never refused (a [`strict`](crate::VerifyWebhookLayer::strict) layer refuses
/// the shapes that do not fit). Reading fails only for a body that is not a
/// JSON object; the preset's layer delivers even those, as raw.
///
/// The document's sample payload is not valid JSON as printed (there is no
/// comma after `"videoVersion": 1`, and `videoData` holds a
/// `// ... complete video data` comment); a body like that fails to parse.
///
/// It is read with `serde_json`. Serializing writes `{"event":..,"data":..}`.
/// Adding a typed variant for a new event type is a breaking change, so `match`
/// can be exhaustive: `Raw` is the one catch-all.
///
/// # Example
///
/// ```
/// use tower_webhook::provider::videoaiditor::Event;
///
/// let body = r#"{"event":"render.completed","data":{"_id":"render-id",
///     "status":"completed","outputUrl":"https://cdn.example.com/video.mp4",
///     "videoId":"video-id","videoVersion":1}}"#;
/// let event: Event = serde_json::from_str(body)?;
/// assert_eq!(event.event_type(), "render.completed");
/// assert_eq!(event.id(), Some("render-id"));
/// match event {
///     Event::RenderCompleted(render) => {
///         assert_eq!(render.output_url.as_deref(), Some("https://cdn.example.com/video.mp4"));
///         assert_eq!(render.video_version, Some(1));
///     }
///     Event::RenderFailed(render) => println!("failed: {:?}", render.error),
///     Event::Raw(raw) => println!("{} kept raw: {:?}", raw.event_type(), raw.shape_error()),
/// }
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// `render.completed`: "Triggered when a video render completes successfully".
    RenderCompleted(RenderData),
    /// `render.failed`: "Triggered when a video render fails".
    ///
    /// The document's only sample payload is a `render.completed` one; it does
    /// not show the `data` of `render.failed`. This crate reads it with the same
    /// struct.
    RenderFailed(RenderData),
    /// Any other `event` string, or a known one whose body does not fit its typed
    /// form, kept raw (see [`RawEvent::shape_error`]).
    Raw(RawEvent),
}

impl Event {
    /// Wire name of [`Event::RenderCompleted`].
    pub const RENDER_COMPLETED: &'static str = "render.completed";
    /// Wire name of [`Event::RenderFailed`].
    pub const RENDER_FAILED: &'static str = "render.failed";

    /// The `event` string as sent on the wire, e.g. `"render.completed"` (empty for a raw body
    /// without one).
    pub fn event_type(&self) -> &str {
        match self {
            Event::RenderCompleted(_) => Self::RENDER_COMPLETED,
            Event::RenderFailed(_) => Self::RENDER_FAILED,
            Event::Raw(raw) => raw.event_type(),
        }
    }

    /// `data._id`, the render ID (for [`Event::Raw`], `data._id` of the raw
    /// data if it is a string).
    ///
    /// The document's best practices say: "Handle duplicate events (use the
    /// render ID as an idempotency key)".
    pub fn id(&self) -> Option<&str> {
        match self {
            Event::RenderCompleted(d) | Event::RenderFailed(d) => d.id.as_deref(),
            Event::Raw(raw) => raw.id(),
        }
    }
}

raw::preset_event!(Event);

impl FromEnvelope for Event {
    const ID: &'static str = "_id";
    const TYPED_TIMESTAMP: bool = false;

    #[inline]
    fn typed<M: Members>(event: &str, members: M) -> Result<Option<Self>, M::Error> {
        Ok(Some(match event {
            Self::RENDER_COMPLETED => Event::RenderCompleted(members.data()?),
            Self::RENDER_FAILED => Event::RenderFailed(members.data()?),
            _ => return Ok(None),
        }))
    }
}

impl Serialize for Event {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Wire<'a> {
            event: &'a str,
            data: &'a RenderData,
        }
        match self {
            Event::RenderCompleted(data) | Event::RenderFailed(data) => Wire {
                event: self.event_type(),
                data,
            }
            .serialize(serializer),
            Event::Raw(raw) => raw.serialize(serializer),
        }
    }
}

/// `data` of the `render.*` events.
///
/// Fields as in the document's sample payload, with Rust names; the JSON names
/// are the document's. Every field is optional: a missing field is `None`,
/// never an error. Unknown fields are ignored.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RenderData {
    /// `_id`, e.g. `"render-id"` in the document's sample: the render ID the
    /// document says to use as an idempotency key.
    #[serde(rename = "_id", default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `status`, e.g. `"completed"` in the document's sample; the document lists
    /// no other values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// `outputUrl`, e.g. `"https://cdn.example.com/video.mp4"` in the document's
    /// sample.
    #[serde(rename = "outputUrl", default, skip_serializing_if = "Option::is_none")]
    pub output_url: Option<String>,
    /// `error`, `""` in the document's `render.completed` sample; the document
    /// does not say what it holds when a render fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// `videoId`, e.g. `"video-id"` in the document's sample.
    #[serde(rename = "videoId", default, skip_serializing_if = "Option::is_none")]
    pub video_id: Option<String>,
    /// `videoVersion`, `1` in the document's sample.
    ///
    /// Accepts a JSON integer, or a number with an integral value written in
    /// float form (`1.0`, `1e2`); a fractional, negative or out-of-range number
    /// is an error.
    #[serde(
        rename = "videoVersion",
        default,
        deserialize_with = "integral_u64",
        skip_serializing_if = "Option::is_none"
    )]
    pub video_version: Option<u64>,
    /// `videoData`, shown in the document only as `// ... complete video data`;
    /// the document does not give its fields, so it is kept as the raw JSON
    /// received (any value: exact numbers, lone surrogates and all), never
    /// refused for its shape. Parse it with `serde_json::from_str(raw.get())`.
    #[serde(rename = "videoData", default, skip_serializing_if = "Option::is_none")]
    pub video_data: Option<Box<RawValue>>,
    /// `createdAt`, e.g. `"2024-03-20T10:30:00Z"` in the document's sample; the
    /// document does not state its format. Kept as the string received.
    #[serde(rename = "createdAt", default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// `updatedAt`, e.g. `"2024-03-20T10:31:00Z"` in the document's sample; the
    /// document does not state its format. Kept as the string received.
    #[serde(rename = "updatedAt", default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
}

impl PartialEq for RenderData {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
            && self.status == other.status
            && self.output_url == other.output_url
            && self.error == other.error
            && self.video_id == other.video_id
            && self.video_version == other.video_version
            && self.video_data.as_deref().map(RawValue::get)
                == other.video_data.as_deref().map(RawValue::get)
            && self.created_at == other.created_at
            && self.updated_at == other.updated_at
    }
}

/// `null` -> `None`; a non-negative integer, or a float with an integral value
/// that fits in `u64`, -> `Some`; anything else is an error.
fn integral_u64<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    struct IntegralU64;

    impl<'de> Visitor<'de> for IntegralU64 {
        type Value = Option<u64>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("null or a non-negative integer (possibly written as 1.0 or 1e2)")
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(self)
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            Ok(Some(v))
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            u64::try_from(v)
                .map(Some)
                .map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
        }

        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            // 2^64 is exactly representable; every integral f64 below it fits in u64.
            const LIMIT: f64 = 18_446_744_073_709_551_616.0;
            if (0.0..LIMIT).contains(&v) && v.fract() == 0.0 {
                Ok(Some(v as u64))
            } else {
                Err(E::invalid_value(de::Unexpected::Float(v), &self))
            }
        }
    }

    deserializer.deserialize_any(IntegralU64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::WebhookEvent;
    use crate::provider::raw::tests::{assert_kept_raw, assert_refused};
    use serde_json::{Value, json};

    /// The document's sample payload, verbatim (not valid JSON).
    const DOC_SAMPLE_VERBATIM: &str = r#"{
  "event": "render.completed",
  "data": {
    "_id": "render-id",
    "status": "completed",
    "outputUrl": "https://cdn.example.com/video.mp4",
    "error": "",
    "videoId": "video-id",
    "videoVersion": 1
    "videoData": {
      // ... complete video data
    },
    "createdAt": "2024-03-20T10:30:00Z",
    "updatedAt": "2024-03-20T10:31:00Z"
  }
}"#;

    fn parse(body: &str) -> Event {
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{body}: {e}"))
    }

    fn render(event: &str, data: Value) -> String {
        json!({"event": event, "data": data}).to_string()
    }

    #[test]
    fn document_sample_verbatim_is_rejected() {
        assert!(serde_json::from_str::<Event>(DOC_SAMPLE_VERBATIM).is_err());
        // Fixing only the comma is not enough: the `//` comment is not JSON either.
        let comma_fixed =
            DOC_SAMPLE_VERBATIM.replace("\"videoVersion\": 1\n", "\"videoVersion\": 1,\n");
        assert_ne!(comma_fixed, DOC_SAMPLE_VERBATIM);
        assert!(serde_json::from_str::<Event>(&comma_fixed).is_err());
    }

    #[test]
    fn document_sample_fixed() {
        let fixed = DOC_SAMPLE_VERBATIM
            .replace("\"videoVersion\": 1\n", "\"videoVersion\": 1,\n")
            .replace("      // ... complete video data\n", "");
        let e = parse(&fixed);
        let Event::RenderCompleted(d) = &e else {
            panic!("{e:?}")
        };
        assert_eq!(d.id.as_deref(), Some("render-id"));
        assert_eq!(d.status.as_deref(), Some("completed"));
        assert_eq!(
            d.output_url.as_deref(),
            Some("https://cdn.example.com/video.mp4")
        );
        assert_eq!(d.error.as_deref(), Some(""));
        assert_eq!(d.video_id.as_deref(), Some("video-id"));
        assert_eq!(d.video_version, Some(1));
        assert_eq!(d.video_data.as_deref().map(RawValue::get), Some("{\n    }"));
        assert_eq!(d.created_at.as_deref(), Some("2024-03-20T10:30:00Z"));
        assert_eq!(d.updated_at.as_deref(), Some("2024-03-20T10:31:00Z"));
        assert_eq!(e.event_type(), "render.completed");
        assert_eq!(e.id(), Some("render-id"));
    }

    #[test]
    fn render_failed() {
        let e = parse(&render(
            "render.failed",
            json!({"_id": "r9", "status": "failed", "error": "out of memory"}),
        ));
        let Event::RenderFailed(d) = &e else {
            panic!("{e:?}")
        };
        assert_eq!(d.error.as_deref(), Some("out of memory"));
        assert_eq!(d.output_url, None);
        assert_eq!(e.event_type(), "render.failed");
        assert_eq!(e.id(), Some("r9"));
    }

    #[test]
    fn video_data_kept_raw() {
        // Body of the `valid_compact` case in the shared test vectors.
        let e = parse(
            r#"{"event":"render.completed","data":{"_id":"render-id","status":"completed","outputUrl":"https://cdn.example.com/video.mp4","error":"","videoId":"video-id","videoVersion":1,"videoData":{"title":"Demo","scenes":3},"createdAt":"2024-03-20T10:30:00Z","updatedAt":"2024-03-20T10:31:00Z"}}"#,
        );
        let Event::RenderCompleted(d) = &e else {
            panic!("{e:?}")
        };
        assert_eq!(
            d.video_data.as_deref().map(RawValue::get),
            Some(r#"{"title":"Demo","scenes":3}"#)
        );
    }

    #[test]
    fn video_data_keeps_what_serde_json_values_cannot_hold() {
        // A title cut inside an emoji (`JSON.stringify` writes the lone surrogate as an escape),
        // an integer beyond 2^64, nesting deeper than 128: still the typed variant.
        let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
        let video_data = format!(
            r#"{{"title":"Clip \ud83d","frames":123456789012345678901234567890,"deep":{deep}}}"#
        );
        let body = format!(
            r#"{{"event":"render.completed","data":{{"_id":"r","videoData":{video_data}}}}}"#
        );
        let Event::RenderCompleted(d) = parse(&body) else {
            panic!("not typed")
        };
        assert_eq!(
            d.video_data.as_deref().map(RawValue::get),
            Some(&*video_data)
        );
    }

    #[test]
    fn unknown_type_kept_raw() {
        let e = parse(r#"{"event":"render.started","data":{"_id":"r1","progress":0.5}}"#);
        let Event::Raw(u) = &e else { panic!("{e:?}") };
        assert_eq!(u.event_type(), "render.started");
        assert_eq!(u.timestamp(), None);
        assert_eq!(u.data().unwrap().get(), r#"{"_id":"r1","progress":0.5}"#);
        assert_eq!(u.shape_error(), None);
        assert_eq!(e.event_type(), "render.started");
        assert_eq!(e.id(), Some("r1"));

        // `id` (VideoNest's name) is not the render ID; non-string `_id` is no id.
        assert_eq!(parse(r#"{"event":"x","data":{"id":"r1"}}"#).id(), None);
        assert_eq!(parse(r#"{"event":"x","data":{"_id":3}}"#).id(), None);

        // A top-level timestamp is not documented: kept raw, and as a string if it is one.
        let Event::Raw(u) = parse(r#"{"event":"x","timestamp":"t"}"#) else {
            panic!()
        };
        assert_eq!(u.timestamp(), Some("t"));
        let Event::Raw(u) = parse(r#"{"event":"x","timestamp":17}"#) else {
            panic!()
        };
        assert_eq!(u.timestamp(), None);
        assert_eq!(u.raw_timestamp().unwrap().get(), "17");
    }

    #[test]
    fn unknown_without_data_is_null() {
        let e = parse(r#"{"event":"ping"}"#);
        let Event::Raw(u) = &e else { panic!("{e:?}") };
        assert!(u.data().is_none());
        assert_eq!(u.data_as::<Value>().unwrap(), Value::Null);
        assert_eq!(e.id(), None);
    }

    #[test]
    fn data_before_event_and_extra_fields() {
        let e = parse(
            r#"{"data":{"_id":"r","extra":[1,2],"outputUrl":"u"},"timestamp":123,"note":"x","event":"render.completed"}"#,
        );
        let Event::RenderCompleted(d) = &e else {
            panic!("{e:?}")
        };
        assert_eq!(d.id.as_deref(), Some("r"));
        assert_eq!(d.output_url.as_deref(), Some("u"));
    }

    #[test]
    fn missing_optional_fields_are_none() {
        let e = parse(r#"{"event":"render.failed","data":{"videoVersion":null}}"#);
        let Event::RenderFailed(d) = &e else {
            panic!("{e:?}")
        };
        assert_eq!(d.id, None);
        assert_eq!(d.video_version, None);
        assert_eq!(e.id(), None);
    }

    #[test]
    fn video_version_forms() {
        for (raw, want) in [
            ("1", 1),
            ("1.0", 1),
            ("1e2", 100),
            ("1E2", 100),
            ("0", 0),
            ("-0", 0),
            ("-0.0", 0),
            ("18446744073709551615", u64::MAX),
        ] {
            let e = parse(&format!(
                r#"{{"event":"render.completed","data":{{"videoVersion":{raw}}}}}"#
            ));
            let Event::RenderCompleted(d) = e else {
                panic!()
            };
            assert_eq!(d.video_version, Some(want), "{raw}");
        }
        for raw in [
            "1.5", "-1", "-1.0", "1e-1", "1e20", "1e400", "\"1\"", "true", "[1]",
        ] {
            let body = format!(r#"{{"event":"render.completed","data":{{"videoVersion":{raw}}}}}"#);
            let e = parse(&body);
            assert!(
                e.shape_error()
                    .is_some_and(|r| r.contains("render.completed")),
                "typed {raw}: {e:?}"
            );
        }
    }

    #[test]
    fn errors() {
        assert_refused::<Event>(&[
            r#"["render.completed",{}]"#,
            r#""render.completed""#,
            "",
            "not json",
        ]);
    }

    #[test]
    fn shapes_that_do_not_fit_are_kept_raw_with_the_reason() {
        let cases = [
            (r#"{"data":{"_id":"r"}}"#, "missing field `event`"),
            (r#"{"event":1,"data":{}}"#, "expected a string"),
            (r#"{"event":{},"data":{}}"#, "expected a string"),
            (r#"{"event":"render.completed"}"#, "missing field `data`"),
            (
                r#"{"event":"render.failed","data":null}"#,
                "expected a JSON object",
            ),
            (
                r#"{"event":"render.completed","data":[]}"#,
                "expected a JSON object",
            ),
            (
                r#"{"event":"render.completed","data":{"_id":5}}"#,
                "invalid type: integer `5`",
            ),
            (
                r#"{"event":"render.completed","data":{"outputUrl":false}}"#,
                "boolean `false`",
            ),
            (
                r#"{"event":"render.completed","data":{},"data":{}}"#,
                "repeats the key `data`",
            ),
            (
                r#"{"event":"render.failed","data":{"_id":"r","error":{"code":"E"}}}"#,
                "invalid type: map",
            ),
            (
                r#"{"event":"render.completed","data":{"_id":"r","outputUrl":"https://cdn/\ud83d"}}"#,
                "invalid `data`",
            ),
        ];
        assert_kept_raw(&cases, |e: &Event| match e {
            Event::Raw(raw) => Some(raw),
            _ => None,
        });
        // The type and id survive where they can be read.
        let e = parse(r#"{"event":"render.failed","data":{"_id":"r9","error":{"code":"E"}}}"#);
        assert_eq!((e.event_type(), e.id()), ("render.failed", Some("r9")));
    }

    #[test]
    fn round_trip() {
        let bodies = [
            render(
                "render.completed",
                json!({"_id": "r", "status": "completed", "outputUrl": "u", "error": "",
                       "videoId": "v", "videoVersion": 3, "videoData": {"a": [1, 2]},
                       "createdAt": "c", "updatedAt": "u2"}),
            ),
            render("render.failed", json!({"_id": "r", "error": "e"})),
            render("render.failed", json!({})),
            r#"{"event":"render.queued","data":{"_id":"q"}}"#.to_string(),
            r#"{"event":"ping","timestamp":"t"}"#.to_string(),
        ];
        for b in bodies {
            let e = parse(&b);
            let text = serde_json::to_string(&e).unwrap();
            assert_eq!(
                serde_json::from_str::<Value>(&text).unwrap(),
                serde_json::from_str::<Value>(&b).unwrap()
            );
            assert_eq!(parse(&text), e);
        }
    }

    #[test]
    fn serializes_wire_shape() {
        let e = parse(
            r#"{"data":{"_id":"r","videoVersion":1e2},"event":"render.completed","timestamp":"x"}"#,
        );
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"event":"render.completed","data":{"_id":"r","videoVersion":100}}"#
        );
    }
}
