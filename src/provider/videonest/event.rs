use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::provider::UnknownEvent;
use crate::provider::unknown::{
    RawEnvelope, WireRef, known_data, raw_str_field, raw_unknown, strict_timestamp,
};

/// A VideoNest webhook event.
///
/// The VideoNest document says: "All webhook payloads are JSON and share the
/// same top-level structure": `{"event": ..., "timestamp": ..., "data": {...}}`.
/// This type reads that envelope (keys in any order, unknown keys ignored),
/// then chooses the variant from the `event` string. It is an error if the body
/// is not a JSON object, if `event` is missing or not a string, or if a known
/// event type's `timestamp` is present and neither a string nor `null`, or its
/// `data` is missing or does not match its struct. Any other `event` string
/// becomes [`Event::Unknown`] and is never refused: a `timestamp` there that is
/// not a string is dropped (the raw bytes stay in `Verified::body`).
///
/// Serializing writes the same wire shape, `{"event":..,"timestamp":..,"data":..}`,
/// leaving out `timestamp` when it is `None`.
///
/// # Example
///
/// ```
/// use tower_webhook::provider::videonest::Event;
///
/// let body = r#"{"event":"video.processed","timestamp":"2026-03-30T10:15:00Z",
///     "data":{"id":"vid_abc123","title":"My Video Title","status":"ready",
///     "duration":142,"channel_id":"ch_abc123"}}"#;
/// let event: Event = serde_json::from_str(body)?;
/// assert_eq!(event.event_type(), "video.processed");
/// assert_eq!(event.id(), Some("vid_abc123"));
/// match event {
///     Event::VideoProcessed(payload) => {
///         assert_eq!(payload.timestamp.as_deref(), Some("2026-03-30T10:15:00Z"));
///         assert_eq!(payload.data.duration, Some(142.0));
///     }
///     Event::DistributionFailed(payload) => {
///         let _partner = payload.data.partner_name;
///     }
///     Event::Unknown(unknown) => {
///         let _type = unknown.event;
///     }
///     _ => {}
/// }
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// `video.processed`: "A video has finished transcoding and is ready for playback."
    VideoProcessed(Payload<VideoData>),
    /// `video.published`: "A video has been published and is live on one or more
    /// distribution feeds."
    VideoPublished(Payload<VideoData>),
    /// `video.failed`: "A video failed to process. Includes an error code in the payload."
    VideoFailed(Payload<VideoData>),
    /// `distribution.completed`: "A distribution push to a specific partner
    /// completed successfully."
    DistributionCompleted(Payload<DistributionData>),
    /// `distribution.failed`: "A distribution push to a specific partner failed.
    /// Includes partner ID and error detail."
    DistributionFailed(Payload<DistributionData>),
    /// Any other `event` string, kept raw.
    ///
    /// This includes the test ping: the document says "VideoNest will
    /// immediately send a test ping to verify the endpoint is reachable" but
    /// does not give its event type or body.
    Unknown(UnknownEvent),
}

impl Event {
    /// Wire name of [`Event::VideoProcessed`].
    pub const VIDEO_PROCESSED: &'static str = "video.processed";
    /// Wire name of [`Event::VideoPublished`].
    pub const VIDEO_PUBLISHED: &'static str = "video.published";
    /// Wire name of [`Event::VideoFailed`].
    pub const VIDEO_FAILED: &'static str = "video.failed";
    /// Wire name of [`Event::DistributionCompleted`].
    pub const DISTRIBUTION_COMPLETED: &'static str = "distribution.completed";
    /// Wire name of [`Event::DistributionFailed`].
    pub const DISTRIBUTION_FAILED: &'static str = "distribution.failed";

    /// The `event` string as sent on the wire, e.g. `"video.processed"`.
    pub fn event_type(&self) -> &str {
        match self {
            Event::VideoProcessed(_) => Self::VIDEO_PROCESSED,
            Event::VideoPublished(_) => Self::VIDEO_PUBLISHED,
            Event::VideoFailed(_) => Self::VIDEO_FAILED,
            Event::DistributionCompleted(_) => Self::DISTRIBUTION_COMPLETED,
            Event::DistributionFailed(_) => Self::DISTRIBUTION_FAILED,
            Event::Unknown(u) => &u.event,
        }
    }

    /// `data.id` (for [`Event::Unknown`], `data.id` of the raw data if it is a string).
    ///
    /// The document's best practices say: "Store the event `id` and skip
    /// processing if you receive the same event twice (idempotency)." The only
    /// `id` its payload schema shows is the one inside `data`; the document does
    /// not say whether it is unique per event or shared by events about the
    /// same video.
    pub fn id(&self) -> Option<&str> {
        match self {
            Event::VideoProcessed(p) | Event::VideoPublished(p) | Event::VideoFailed(p) => {
                p.data.id.as_deref()
            }
            Event::DistributionCompleted(p) | Event::DistributionFailed(p) => p.data.id.as_deref(),
            Event::Unknown(u) => raw_str_field(u, "id"),
        }
    }

    /// The top-level `timestamp` string, if the body had one.
    pub fn timestamp(&self) -> Option<&str> {
        match self {
            Event::VideoProcessed(p) | Event::VideoPublished(p) | Event::VideoFailed(p) => {
                p.timestamp.as_deref()
            }
            Event::DistributionCompleted(p) | Event::DistributionFailed(p) => {
                p.timestamp.as_deref()
            }
            Event::Unknown(u) => u.timestamp.as_deref(),
        }
    }
}

impl Event {
    fn is_known(event: &str) -> bool {
        matches!(
            event,
            Self::VIDEO_PROCESSED
                | Self::VIDEO_PUBLISHED
                | Self::VIDEO_FAILED
                | Self::DISTRIBUTION_COMPLETED
                | Self::DISTRIBUTION_FAILED
        )
    }
}

impl<'de> Deserialize<'de> for Event {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let RawEnvelope {
            event,
            timestamp,
            data,
        } = RawEnvelope::deserialize(deserializer)?;
        if !Self::is_known(&event) {
            // An unknown type (the undocumented test ping, types added later) is never refused:
            // a `timestamp` that is not a string is dropped here; the raw bytes stay available
            // through `Verified::body`.
            let timestamp = match timestamp {
                Some(Value::String(s)) => Some(s),
                _ => None,
            };
            return Ok(Event::Unknown(raw_unknown(event, timestamp, data)));
        }
        let timestamp = strict_timestamp(timestamp)?;
        Ok(match event.as_str() {
            Self::VIDEO_PROCESSED => Event::VideoProcessed(Payload {
                timestamp,
                data: known_data(&event, data)?,
            }),
            Self::VIDEO_PUBLISHED => Event::VideoPublished(Payload {
                timestamp,
                data: known_data(&event, data)?,
            }),
            Self::VIDEO_FAILED => Event::VideoFailed(Payload {
                timestamp,
                data: known_data(&event, data)?,
            }),
            Self::DISTRIBUTION_COMPLETED => Event::DistributionCompleted(Payload {
                timestamp,
                data: known_data(&event, data)?,
            }),
            Self::DISTRIBUTION_FAILED => Event::DistributionFailed(Payload {
                timestamp,
                data: known_data(&event, data)?,
            }),
            _ => Event::Unknown(raw_unknown(event, timestamp, data)),
        })
    }
}

impl Serialize for Event {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        fn wire<'a, T: Serialize>(event: &'a str, p: &'a Payload<T>) -> WireRef<'a, T> {
            WireRef {
                event,
                timestamp: p.timestamp.as_deref(),
                data: &p.data,
            }
        }
        let event = self.event_type();
        match self {
            Event::VideoProcessed(p) | Event::VideoPublished(p) | Event::VideoFailed(p) => {
                wire(event, p).serialize(serializer)
            }
            Event::DistributionCompleted(p) | Event::DistributionFailed(p) => {
                wire(event, p).serialize(serializer)
            }
            Event::Unknown(u) => u.serialize(serializer),
        }
    }
}

/// The top-level `timestamp` and the typed `data` of a known VideoNest event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Payload<D> {
    /// Top-level `timestamp`, e.g. `"2026-03-30T10:15:00Z"` in the document's
    /// sample. The document does not state its format or which moment it
    /// records; it is kept as the string received.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    /// The event's `data` object.
    pub data: D,
}

/// `data` of the `video.*` events.
///
/// The document's payload schema shows these fields for `video.processed`:
/// `"id": "vid_abc123"`, `"title": "My Video Title"`, `"status": "ready"`,
/// `"duration": 142`, `"channel_id": "ch_abc123"`. It does not show the `data`
/// of `video.published` or `video.failed` separately; this crate reads them with
/// the same struct. Every field is optional: a missing field is `None`, never an
/// error. Unknown fields are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct VideoData {
    /// `id`, e.g. `"vid_abc123"` in the document's sample.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `title`, e.g. `"My Video Title"` in the document's sample.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// `status`, e.g. `"ready"` in the document's sample; the document lists no
    /// other values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// `duration`, e.g. `142` in the document's sample; the document does not
    /// state its unit. A fractional number is accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<f64>,
    /// `channel_id`, e.g. `"ch_abc123"` in the document's sample.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel_id: Option<String>,
    /// `error_code`. The document says `video.failed` "Includes an error code in
    /// the payload" without naming the field; the name is taken from the
    /// distribution events ("(on failure) error_code and error_message").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// `error_message`. The document does not mention an error message for
    /// `video.failed`; the name is taken from the distribution events
    /// ("(on failure) error_code and error_message").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
}

/// `data` of the `distribution.*` events.
///
/// The document says: "For distribution.completed and distribution.failed, the
/// data object includes feed_id, partner_name, and (on failure) error_code and
/// error_message." Every field is optional: a missing field is `None`, never an
/// error. Unknown fields are ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct DistributionData {
    /// `id`, from the top-level structure all payloads share. The document does
    /// not say what it identifies in distribution events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `feed_id`; the document names the field but shows no example value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feed_id: Option<String>,
    /// `partner_name`. The event table says `distribution.failed` "Includes
    /// partner ID", but the only partner field the document names is
    /// `partner_name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partner_name: Option<String>,
    /// `error_code`, sent "(on failure)" per the document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    /// `error_message`, sent "(on failure)" per the document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    /// The payload-schema sample from the VideoNest document, verbatim.
    const DOC_SAMPLE: &str = r#"{
"event": "video.processed",
"timestamp": "2026-03-30T10:15:00Z",
"data": {
"id": "vid_abc123",
"title": "My Video Title",
"status": "ready",
"duration": 142,
"channel_id": "ch_abc123"
}
}"#;

    fn parse(body: &str) -> Event {
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{body}: {e}"))
    }

    fn body(event: &str, data: Value) -> String {
        json!({"event": event, "timestamp": "2026-03-30T10:15:00Z", "data": data}).to_string()
    }

    #[test]
    fn document_sample() {
        let e = parse(DOC_SAMPLE);
        let Event::VideoProcessed(p) = &e else {
            panic!("{e:?}")
        };
        assert_eq!(p.timestamp.as_deref(), Some("2026-03-30T10:15:00Z"));
        assert_eq!(p.data.id.as_deref(), Some("vid_abc123"));
        assert_eq!(p.data.title.as_deref(), Some("My Video Title"));
        assert_eq!(p.data.status.as_deref(), Some("ready"));
        assert_eq!(p.data.duration, Some(142.0));
        assert_eq!(p.data.channel_id.as_deref(), Some("ch_abc123"));
        assert_eq!(p.data.error_code, None);
        assert_eq!(p.data.error_message, None);
        assert_eq!(e.event_type(), "video.processed");
        assert_eq!(e.id(), Some("vid_abc123"));
        assert_eq!(e.timestamp(), Some("2026-03-30T10:15:00Z"));
    }

    #[test]
    fn every_video_type() {
        let data = json!({"id": "vid_1", "status": "ready", "duration": 12.5});
        for (name, want) in [
            (Event::VIDEO_PROCESSED, "VideoProcessed"),
            (Event::VIDEO_PUBLISHED, "VideoPublished"),
            (Event::VIDEO_FAILED, "VideoFailed"),
        ] {
            let e = parse(&body(name, data.clone()));
            let p = match &e {
                Event::VideoProcessed(p) if want == "VideoProcessed" => p,
                Event::VideoPublished(p) if want == "VideoPublished" => p,
                Event::VideoFailed(p) if want == "VideoFailed" => p,
                other => panic!("{name}: {other:?}"),
            };
            assert_eq!(p.data.duration, Some(12.5));
            assert_eq!(e.event_type(), name);
            assert_eq!(e.id(), Some("vid_1"));
            assert_eq!(e.timestamp(), Some("2026-03-30T10:15:00Z"));
        }
    }

    #[test]
    fn video_failed_error_fields() {
        let e = parse(&body(
            "video.failed",
            json!({"id": "vid_2", "error_code": "TRANSCODE", "error_message": "bad codec"}),
        ));
        let Event::VideoFailed(p) = e else { panic!() };
        assert_eq!(p.data.error_code.as_deref(), Some("TRANSCODE"));
        assert_eq!(p.data.error_message.as_deref(), Some("bad codec"));
    }

    #[test]
    fn every_distribution_type() {
        // Body of the `valid_distribution_failed` case in the shared test vectors.
        let failed = r#"{"event":"distribution.failed","timestamp":"2026-03-30T10:20:00Z","data":{"id":"vid_abc123","feed_id":"feed_9","partner_name":"Roku","error_code":"PARTNER_TIMEOUT","error_message":"Partner did not respond"}}"#;
        let e = parse(failed);
        let Event::DistributionFailed(p) = &e else {
            panic!("{e:?}")
        };
        assert_eq!(p.data.feed_id.as_deref(), Some("feed_9"));
        assert_eq!(p.data.partner_name.as_deref(), Some("Roku"));
        assert_eq!(p.data.error_code.as_deref(), Some("PARTNER_TIMEOUT"));
        assert_eq!(
            p.data.error_message.as_deref(),
            Some("Partner did not respond")
        );
        assert_eq!(e.event_type(), "distribution.failed");
        assert_eq!(e.id(), Some("vid_abc123"));
        assert_eq!(e.timestamp(), Some("2026-03-30T10:20:00Z"));

        let e = parse(&body(
            "distribution.completed",
            json!({"id": "d1", "feed_id": "f1", "partner_name": "P"}),
        ));
        let Event::DistributionCompleted(p) = &e else {
            panic!("{e:?}")
        };
        assert_eq!(p.data.partner_name.as_deref(), Some("P"));
        assert_eq!(p.data.error_code, None);
        assert_eq!(e.event_type(), "distribution.completed");
        assert_eq!(e.id(), Some("d1"));
    }

    #[test]
    fn unknown_type_kept_raw() {
        let e = parse(r#"{"event":"webhook.test","timestamp":"t","data":{"id":"ping_1","n":1}}"#);
        let Event::Unknown(u) = &e else {
            panic!("{e:?}")
        };
        assert_eq!(u.event, "webhook.test");
        assert_eq!(u.data, json!({"id": "ping_1", "n": 1}));
        assert_eq!(e.event_type(), "webhook.test");
        assert_eq!(e.id(), Some("ping_1"));
        assert_eq!(e.timestamp(), Some("t"));

        // A non-string id in raw data is not an id.
        let e = parse(r#"{"event":"x","data":{"id":7}}"#);
        assert_eq!(e.id(), None);
    }

    #[test]
    fn unknown_type_is_never_refused_for_its_timestamp() {
        for (body, timestamp) in [
            (
                r#"{"event":"webhook.test","timestamp":1767225600,"data":{"id":"p1"}}"#,
                None,
            ),
            (
                r#"{"event":"webhook.test","timestamp":{"t":1},"data":{"id":"p1"}}"#,
                None,
            ),
            (
                r#"{"event":"webhook.test","timestamp":"t","data":{"id":"p1"}}"#,
                Some("t"),
            ),
        ] {
            let e = parse(body);
            assert!(matches!(&e, Event::Unknown(_)), "{e:?}");
            assert_eq!(e.timestamp(), timestamp, "{body}");
            assert_eq!(e.id(), Some("p1"));
        }
    }

    #[test]
    fn unknown_without_data_is_null() {
        let e = parse(r#"{"event":"ping"}"#);
        let Event::Unknown(u) = &e else {
            panic!("{e:?}")
        };
        assert_eq!(u.data, Value::Null);
        assert_eq!(u.timestamp, None);
        assert_eq!(e.id(), None);
        assert_eq!(e.timestamp(), None);
    }

    #[test]
    fn data_before_event_and_extra_fields() {
        let e = parse(
            r#"{"data":{"id":"v","extra":{"deep":[1]},"title":"T"},"note":"x","timestamp":"ts","event":"video.published"}"#,
        );
        let Event::VideoPublished(p) = &e else {
            panic!("{e:?}")
        };
        assert_eq!(p.data.id.as_deref(), Some("v"));
        assert_eq!(p.data.title.as_deref(), Some("T"));
        assert_eq!(p.timestamp.as_deref(), Some("ts"));
    }

    #[test]
    fn missing_optional_fields_are_none() {
        let e = parse(r#"{"event":"video.processed","data":{}}"#);
        let Event::VideoProcessed(p) = &e else {
            panic!("{e:?}")
        };
        assert_eq!(p.timestamp, None);
        assert_eq!(p.data.id, None);
        assert_eq!(e.id(), None);
        let e = parse(r#"{"event":"distribution.completed","timestamp":null,"data":{}}"#);
        assert_eq!(e.id(), None);
        assert_eq!(e.timestamp(), None);
    }

    #[test]
    fn errors() {
        for body in [
            r#"{"timestamp":"t","data":{}}"#,
            r#"{"event":5,"data":{}}"#,
            r#"{"event":["video.processed"],"data":{}}"#,
            r#"{"event":null,"data":{}}"#,
            r#"["video.processed","t",{}]"#,
            r#"[]"#,
            r#"null"#,
            r#"42"#,
            "",
            "not json",
            r#"{"event":"video.processed","data":{}"#,
            r#"{"event":"video.processed"}"#,
            r#"{"event":"video.processed","data":null}"#,
            r#"{"event":"video.processed","data":"x"}"#,
            r#"{"event":"video.processed","data":{"duration":"142"}}"#,
            r#"{"event":"distribution.failed","data":{"partner_name":1}}"#,
            r#"{"event":"distribution.completed","data":[]}"#,
            r#"{"event":"video.processed","timestamp":1,"data":{}}"#,
            r#"{"event":"video.processed","event":"x","data":{}}"#,
        ] {
            assert!(
                serde_json::from_str::<Event>(body).is_err(),
                "accepted {body}"
            );
        }
    }

    #[test]
    fn error_messages_name_the_problem() {
        let e = serde_json::from_str::<Event>(r#"{"event":"video.failed"}"#).unwrap_err();
        assert!(e.to_string().contains("missing field `data`"), "{e}");
        let e = serde_json::from_str::<Event>(r#"{"data":{}}"#).unwrap_err();
        assert!(e.to_string().contains("missing field `event`"), "{e}");
    }

    #[test]
    fn round_trip() {
        let bodies = [
            DOC_SAMPLE.to_string(),
            body("video.failed", json!({"id": "v", "error_code": "E"})),
            body(
                "distribution.completed",
                json!({"id": "d", "feed_id": "f", "partner_name": "p"}),
            ),
            body(
                "distribution.failed",
                json!({"feed_id": "f", "error_message": "m"}),
            ),
            r#"{"event":"video.published","data":{}}"#.to_string(),
            r#"{"event":"new.thing","timestamp":"t","data":[1,{"a":null}]}"#.to_string(),
            r#"{"event":"ping"}"#.to_string(),
        ];
        for b in bodies {
            let e = parse(&b);
            let text = serde_json::to_string(&e).unwrap();
            assert_eq!(parse(&text), e, "{text}");
        }
    }

    #[test]
    fn serializes_wire_shape() {
        let e = parse(r#"{"data":{"id":"v","junk":1},"event":"video.processed"}"#);
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            json!({"event": "video.processed", "data": {"id": "v"}})
        );
        // `duration` is an f64, so 142 is written back as 142.0 (the same JSON number).
        let e = parse(DOC_SAMPLE);
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"event":"video.processed","timestamp":"2026-03-30T10:15:00Z","data":{"id":"vid_abc123","title":"My Video Title","status":"ready","duration":142.0,"channel_id":"ch_abc123"}}"#
        );
    }
}
