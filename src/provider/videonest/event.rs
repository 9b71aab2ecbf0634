use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize, Serializer};

use crate::event::KeyParts;
use crate::provider::RawEvent;
use crate::provider::raw::{self, FromEnvelope, Members};

/// A VideoNest webhook event.
///
/// The VideoNest document says: "All webhook payloads are JSON and share the
/// same top-level structure": `{"event": ..., "timestamp": ..., "data": {...}}`.
/// This type reads that envelope (keys in any order, unknown keys ignored),
/// then chooses the variant from the `event` string.
///
/// A known event type whose `timestamp` is a string or `null` and whose `data`
/// is an object matching its struct gets its typed variant. Anything else that
/// is a JSON object with an `event` — an unknown type, a known type of another
/// shape, a repeated envelope key — becomes [`Event::Raw`] with its type, id and
/// raw data, and is never refused (a [`strict`](crate::VerifyWebhookLayer::strict)
/// layer refuses the shapes that do not fit). Reading fails only for a body
/// that is not a JSON object; the preset's layer delivers even those, as raw.
///
/// It is read with `serde_json` (the raw members are kept as
/// [`RawValue`](serde_json::value::RawValue)s). Serializing writes the same
/// wire shape, `{"event":..,"timestamp":..,"data":..}`.
///
/// Adding a typed variant for a new event type is a breaking change, so `match`
/// can be exhaustive: `Raw` is the one catch-all.
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
///     Event::VideoPublished(_) | Event::VideoFailed(_) => {}
///     Event::DistributionCompleted(_) | Event::DistributionFailed(_) => {}
///     Event::Raw(raw) => println!("{} kept raw: {:?}", raw.event_type(), raw.shape_error()),
/// }
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
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
    /// Any other `event` string, or a known one whose body does not fit its typed
    /// form, kept raw (see [`RawEvent::shape_error`]).
    ///
    /// This includes the test ping: the document says "VideoNest will
    /// immediately send a test ping to verify the endpoint is reachable" but
    /// does not give its event type or body.
    Raw(RawEvent),
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

    /// The `event` string as sent on the wire, e.g. `"video.processed"` (empty for a raw body
    /// without one).
    pub fn event_type(&self) -> &str {
        match self {
            Event::VideoProcessed(_) => Self::VIDEO_PROCESSED,
            Event::VideoPublished(_) => Self::VIDEO_PUBLISHED,
            Event::VideoFailed(_) => Self::VIDEO_FAILED,
            Event::DistributionCompleted(_) => Self::DISTRIBUTION_COMPLETED,
            Event::DistributionFailed(_) => Self::DISTRIBUTION_FAILED,
            Event::Raw(raw) => raw.event_type(),
        }
    }

    /// `data.id` (for [`Event::Raw`], `data.id` of the raw data if it is a string).
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
            Event::Raw(raw) => raw.id(),
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
            Event::Raw(raw) => raw.timestamp(),
        }
    }

    /// `data.feed_id` of a distribution event.
    fn feed_id(&self) -> Option<&str> {
        match self {
            Event::DistributionCompleted(p) | Event::DistributionFailed(p) => {
                p.data.feed_id.as_deref()
            }
            _ => None,
        }
    }
}

raw::preset_event! {
    Event;

    /// `event`, `data.id`, `data.feed_id` (distribution events) and `timestamp`, as a JSON array:
    /// VideoNest sends no event id, and the same video can legitimately be processed twice.
    /// `None` when `data.id` is not a string. An event kept raw contributes its members as
    /// received, so a numeric `timestamp` or a lone surrogate still tells two events apart.
    fn idempotency_key(&self) -> Option<String> {
        let Event::Raw(raw) = self else {
            return Some(
                KeyParts::new()
                    .text(Some(self.event_type()))
                    .text(Some(self.id()?))
                    .text(self.feed_id())
                    .text(self.timestamp())
                    .finish(),
            );
        };
        let id = raw
            .data_member("id")
            .filter(|id| id.get().starts_with('"'))?;
        Some(
            KeyParts::new()
                .raw(raw.raw_event())
                .raw(Some(&id))
                .raw(raw.data_member("feed_id").as_deref())
                .raw(raw.raw_timestamp())
                .finish(),
        )
    }
}

impl FromEnvelope for Event {
    const ID: &'static str = "id";
    const TYPED_TIMESTAMP: bool = true;

    #[inline]
    fn typed<M: Members>(event: &str, members: M) -> Result<Option<Self>, M::Error> {
        Ok(Some(match event {
            Self::VIDEO_PROCESSED => Event::VideoProcessed(Payload::read(members)?),
            Self::VIDEO_PUBLISHED => Event::VideoPublished(Payload::read(members)?),
            Self::VIDEO_FAILED => Event::VideoFailed(Payload::read(members)?),
            Self::DISTRIBUTION_COMPLETED => Event::DistributionCompleted(Payload::read(members)?),
            Self::DISTRIBUTION_FAILED => Event::DistributionFailed(Payload::read(members)?),
            _ => return Ok(None),
        }))
    }
}

impl Serialize for Event {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let event = self.event_type();
        match self {
            Event::VideoProcessed(p) | Event::VideoPublished(p) | Event::VideoFailed(p) => {
                p.wire(event).serialize(serializer)
            }
            Event::DistributionCompleted(p) | Event::DistributionFailed(p) => {
                p.wire(event).serialize(serializer)
            }
            Event::Raw(raw) => raw.serialize(serializer),
        }
    }
}

/// The wire shape of a known event, for serializing.
#[derive(Serialize)]
struct Wire<'a, T> {
    event: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    timestamp: Option<&'a str>,
    data: &'a T,
}

impl<D: DeserializeOwned> Payload<D> {
    /// `timestamp` (a string or `null`), then `data`.
    #[inline(always)]
    fn read<M: Members>(mut members: M) -> Result<Self, M::Error> {
        Ok(Payload {
            timestamp: members.timestamp()?,
            data: members.data()?,
        })
    }
}

impl<D> Payload<D> {
    fn wire<'a>(&'a self, event: &'a str) -> Wire<'a, D> {
        Wire {
            event,
            timestamp: self.timestamp.as_deref(),
            data: &self.data,
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
    use crate::WebhookEvent;
    use crate::provider::raw::tests::{assert_kept_raw, assert_refused};
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
        let Event::Raw(u) = &e else { panic!("{e:?}") };
        assert_eq!(u.event_type(), "webhook.test");
        assert_eq!(
            u.data_as::<Value>().unwrap(),
            json!({"id": "ping_1", "n": 1})
        );
        assert_eq!(u.shape_error(), None);
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
            assert!(
                matches!(&e, Event::Raw(r) if r.shape_error().is_none()),
                "{e:?}"
            );
            assert_eq!(e.timestamp(), timestamp, "{body}");
            assert_eq!(e.id(), Some("p1"));
        }
    }

    #[test]
    fn unknown_without_data_is_null() {
        let e = parse(r#"{"event":"ping"}"#);
        let Event::Raw(u) = &e else { panic!("{e:?}") };
        assert!(u.data().is_none());
        assert_eq!(u.timestamp(), None);
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
        assert_refused::<Event>(&[
            r#"["video.processed","t",{}]"#,
            r#"[]"#,
            r#"null"#,
            r#"42"#,
            "",
            "not json",
            r#"{"event":"video.processed","data":{}"#,
        ]);
    }

    #[test]
    fn shapes_that_do_not_fit_are_kept_raw_with_the_reason() {
        let cases = [
            (r#"{"timestamp":"t","data":{}}"#, "missing field `event`"),
            (r#"{"event":5,"data":{}}"#, "expected a string"),
            (
                r#"{"event":["video.processed"],"data":{}}"#,
                "expected a string",
            ),
            (r#"{"event":null,"data":{}}"#, "expected a string"),
            (r#"{"event":"video.processed"}"#, "missing field `data`"),
            (
                r#"{"event":"video.processed","data":null}"#,
                "expected a JSON object",
            ),
            (
                r#"{"event":"video.processed","data":"x"}"#,
                "expected a JSON object",
            ),
            (
                r#"{"event":"video.processed","data":{"duration":"142"}}"#,
                "string \"142\"",
            ),
            (
                r#"{"event":"distribution.failed","data":{"partner_name":1}}"#,
                "integer `1`",
            ),
            (
                r#"{"event":"distribution.completed","data":[]}"#,
                "expected a JSON object",
            ),
            (
                r#"{"event":"video.processed","timestamp":1,"data":{"id":"v"}}"#,
                "timestamp",
            ),
            (
                r#"{"event":"video.failed","data":{"id":"v","error_code":42}}"#,
                "integer `42`",
            ),
            (
                r#"{"event":"video.processed","event":"x","data":{}}"#,
                "repeats the key `event`",
            ),
        ];
        assert_kept_raw(&cases, |e: &Event| match e {
            Event::Raw(raw) => Some(raw),
            _ => None,
        });
        let e =
            parse(r#"{"event":"video.failed","timestamp":7,"data":{"id":"v1","error_code":42}}"#);
        assert_eq!((e.event_type(), e.id()), ("video.failed", Some("v1")));
        assert_eq!(e.timestamp(), None);
    }

    #[test]
    fn idempotency_key_covers_type_id_feed_and_timestamp() {
        let key = |body: &str| parse(body).idempotency_key();
        let a = key(
            r#"{"event":"distribution.completed","timestamp":"t1","data":{"id":"v","feed_id":"f1"}}"#,
        );
        assert_eq!(
            a.as_deref(),
            Some(r#"["distribution.completed","v","f1","t1"]"#)
        );
        for other in [
            // Parts that hold the old separator cannot be shifted from one part to another.
            r#"{"event":"distribution.completed","timestamp":"t1","data":{"id":"v\u001ff1","feed_id":""}}"#,
            r#"{"event":"distribution.completed","data":{"id":"v","feed_id":"f1"}}"#,
            r#"{"event":"distribution.completed","timestamp":"","data":{"id":"v","feed_id":"f1"}}"#,
            r#"{"event":"distribution.failed","timestamp":"t1","data":{"id":"v","feed_id":"f1"}}"#,
            r#"{"event":"distribution.completed","timestamp":"t2","data":{"id":"v","feed_id":"f1"}}"#,
            r#"{"event":"distribution.completed","timestamp":"t1","data":{"id":"v","feed_id":"f2"}}"#,
            r#"{"event":"distribution.completed","timestamp":"t1","data":{"id":"w","feed_id":"f1"}}"#,
        ] {
            assert_ne!(key(other), a, "{other}");
        }
        assert_eq!(key(r#"{"event":"video.processed","data":{}}"#), None);
    }

    #[test]
    fn raw_events_keep_every_key_part_apart() {
        let key = |body: &str| {
            let event = parse(body);
            assert!(matches!(event, Event::Raw(_)), "{body}");
            event.idempotency_key().expect("a string id")
        };
        let keys = [
            // A numeric timestamp keeps the raw variant; two of them are two events.
            key(r#"{"event":"video.processed","timestamp":1767225600,"data":{"id":"vid_1"}}"#),
            key(r#"{"event":"video.processed","timestamp":1767229999,"data":{"id":"vid_1"}}"#),
            // So do distribution events that differ only by feed.
            key(
                r#"{"event":"distribution.completed","data":{"id":"v","feed_id":"a","partner_name":1}}"#,
            ),
            key(
                r#"{"event":"distribution.completed","data":{"id":"v","feed_id":"b","partner_name":1}}"#,
            ),
            // Lone surrogates are not folded into one replacement character.
            key(r#"{"event":"video.failed","data":{"id":"\ud800","error_code":1}}"#),
            key(r#"{"event":"video.failed","data":{"id":"\udbff","error_code":1}}"#),
        ];
        for (i, a) in keys.iter().enumerate() {
            for b in &keys[i + 1..] {
                assert_ne!(a, b);
            }
        }
        // The same body gives the same key.
        assert_eq!(
            keys[0],
            key(r#"{"event":"video.processed","timestamp":1767225600,"data":{"id":"vid_1"}}"#)
        );
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
