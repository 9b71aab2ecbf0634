//! Events kept raw: types the crate does not know, and known types whose fields do not have the
//! documented shape. A verified body that is JSON is never refused for its shape.

use std::fmt;

use bytes::Bytes;
use http::request::Parts;
use serde::de::{
    self, Deserialize, DeserializeOwned, DeserializeSeed, Deserializer, IgnoredAny, MapAccess,
    Visitor,
};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::value::RawValue;

use crate::{DecodeError, decode::Decode};

/// A verified event delivered without a typed form, with its type, id and raw data.
///
/// A preset's `Event::Raw` holds one when
///
/// - the `event` string is not a type the crate knows (VideoNest's test ping, types a provider
///   adds later): [`shape_error`](Self::shape_error) is `None`;
/// - or the body is JSON but does not fit the typed form: a field of a type the provider
///   documents differently (a numeric `timestamp`, an `error` object), a string with a lone UTF-16
///   surrogate (which `JSON.stringify` emits for a title cut inside an emoji), a repeated envelope
///   key, or a body that is not an object at all. [`shape_error`](Self::shape_error) says what
///   did not fit. A layer made [`strict`](crate::VerifyWebhookLayer::strict) refuses these
///   with 400 instead.
///
/// Nothing is lost either way: [`data`](Self::data) is the `data` member exactly as received,
/// and `Verified::body` holds every signed byte.
///
/// Strings are decoded exactly where they are valid Unicode; a lone surrogate in `event`, the id
/// or `timestamp` is replaced there by U+FFFD characters (the raw JSON keeps it, and the
/// idempotency key is built from the raw JSON).
///
/// # Example
///
/// ```
/// use tower_webhook::{WebhookEvent, provider::videonest::Event};
///
/// // `timestamp` is documented as a string; this one is a number.
/// let body = r#"{"event":"video.processed","timestamp":1767225600,"data":{"id":"vid_1"}}"#;
/// let event: Event = serde_json::from_str(body)?;
/// let Event::Raw(raw) = &event else { unreachable!() };
/// assert_eq!(raw.event_type(), "video.processed");
/// assert_eq!(raw.id(), Some("vid_1"));
/// assert!(raw.shape_error().unwrap().contains("timestamp"));
/// assert_eq!(raw.raw_timestamp().unwrap().get(), "1767225600");
/// assert_eq!(raw.data().unwrap().get(), r#"{"id":"vid_1"}"#);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone)]
pub struct RawEvent {
    pub(crate) event: String,
    pub(crate) raw_event: Option<Box<RawValue>>,
    pub(crate) id: Option<String>,
    pub(crate) timestamp: Option<String>,
    pub(crate) raw_timestamp: Option<Box<RawValue>>,
    pub(crate) data: Option<Box<RawValue>>,
    pub(crate) shape_error: Option<String>,
}

impl RawEvent {
    /// The `event` string as received; empty when the body has no string `event`.
    pub fn event_type(&self) -> &str {
        &self.event
    }

    /// The provider's id (VideoNest `data.id`, VideoAIditor `data._id`) when `data` is an
    /// object holding it as a string.
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// The top-level `timestamp` when it is a string.
    pub fn timestamp(&self) -> Option<&str> {
        self.timestamp.as_deref()
    }

    /// The top-level `timestamp`, exactly as received (any JSON value).
    pub fn raw_timestamp(&self) -> Option<&RawValue> {
        self.raw_timestamp.as_deref()
    }

    /// The top-level `data`, exactly as received (any JSON value).
    pub fn data(&self) -> Option<&RawValue> {
        self.data.as_deref()
    }

    /// The top-level `event`, exactly as received (any JSON value).
    pub fn raw_event(&self) -> Option<&RawValue> {
        self.raw_event.as_deref()
    }

    /// The member `key` of [`data`](Self::data), exactly as received, when `data` is an object
    /// that has it (the last one, if repeated).
    pub fn data_member(&self, key: &str) -> Option<Box<RawValue>> {
        member(self.data.as_deref()?, key)
    }

    /// Parses [`data`](Self::data) into `T`; a missing `data` parses as JSON `null`.
    ///
    /// # Errors
    ///
    /// When `data` does not fit `T`.
    pub fn data_as<T: serde::de::DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.data.as_deref().map_or("null", RawValue::get))
    }

    /// Why the body was not delivered in its typed form; `None` when its event type is simply
    /// one the crate does not know.
    pub fn shape_error(&self) -> Option<&str> {
        self.shape_error.as_deref()
    }

    /// A raw event for a verified body that is JSON but not an object with an `event`.
    pub(crate) fn not_an_event(reason: impl fmt::Display) -> Self {
        Self {
            event: String::new(),
            raw_event: None,
            id: None,
            timestamp: None,
            raw_timestamp: None,
            data: None,
            shape_error: Some(shorten(format!("not a webhook event: {reason}"))),
        }
    }
}

impl fmt::Debug for RawEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawEvent")
            .field("event", &self.event)
            .field("id", &self.id)
            .field(
                "timestamp",
                &self.raw_timestamp.as_deref().map(RawValue::get),
            )
            .field("data", &self.data.as_deref().map(RawValue::get))
            .field("shape_error", &self.shape_error)
            .finish()
    }
}

impl PartialEq for RawEvent {
    fn eq(&self, other: &Self) -> bool {
        fn raw(value: &Option<Box<RawValue>>) -> Option<&str> {
            value.as_deref().map(RawValue::get)
        }
        self.event == other.event
            && raw(&self.raw_event) == raw(&other.raw_event)
            && self.id == other.id
            && raw(&self.raw_timestamp) == raw(&other.raw_timestamp)
            && raw(&self.data) == raw(&other.data)
            && self.shape_error == other.shape_error
    }
}

/// Writes the wire shape, `{"event":..,"timestamp":..,"data":..}`, with the raw members as
/// received, so that decoding the output again gives the same event.
impl Serialize for RawEvent {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        if let Some(event) = &self.raw_event {
            map.serialize_entry("event", event)?;
        }
        if let Some(timestamp) = &self.raw_timestamp {
            map.serialize_entry("timestamp", timestamp)?;
        }
        if let Some(data) = &self.data {
            map.serialize_entry("data", data)?;
        }
        map.end()
    }
}

/// How an [`Envelope`] holds a member: a copy (`Box<RawValue>`, from any deserializer) or a
/// slice of the body (`&RawValue`, when it is read from the body's text).
pub(crate) trait Raw: std::ops::Deref<Target = RawValue> {
    /// The member as an owned value, for [`RawEvent`].
    fn into_box(self) -> Box<RawValue>;
}

impl Raw for Box<RawValue> {
    fn into_box(self) -> Box<RawValue> {
        self
    }
}

impl Raw for &RawValue {
    fn into_box(self) -> Box<RawValue> {
        self.to_owned()
    }
}

/// An event type read from a webhook body's envelope: the presets' events. Each reads its typed
/// form with [`typed`](Self::typed), once for both readings of the body: in one pass
/// ([`OnePass`]), or from an [`Envelope`], which also gives the raw form.
pub(crate) trait FromEnvelope: From<RawEvent> + Sized {
    /// The member of `data` that holds the provider's id, for [`RawEvent::id`].
    const ID: &'static str;

    /// Whether the typed form reads `timestamp` (a string or `null`); otherwise any value is
    /// skipped.
    const TYPED_TIMESTAMP: bool;

    /// The typed form of a known `event`, read from `members`; `None`, without reading
    /// anything, for a type the crate does not know. An error keeps the body raw.
    fn typed<M: Members>(event: &str, members: M) -> Result<Option<Self>, M::Error>;
}

/// Where [`FromEnvelope::typed`] reads a known event's members from: the body being read in one
/// pass, or an [`Envelope`] (whose errors are the raw form's shape error).
pub(crate) trait Members {
    /// Why a member does not have its documented shape.
    type Error;

    /// The top-level `timestamp`: a string, or `None` when it is absent or `null`.
    fn timestamp(&mut self) -> Result<Option<String>, Self::Error>;

    /// `data`: a JSON object, read into `T`.
    fn data<T: DeserializeOwned>(self) -> Result<T, Self::Error>;
}

/// The members of the body being read in one pass: the `timestamp` read before `data`, and the
/// map whose next value is `data`.
struct MapMembers<'m, 'de, A> {
    timestamp: Option<String>,
    map: &'m mut A,
    de: std::marker::PhantomData<&'de ()>,
}

impl<'de, A: MapAccess<'de>> Members for MapMembers<'_, 'de, A> {
    type Error = A::Error;

    fn timestamp(&mut self) -> Result<Option<String>, A::Error> {
        Ok(self.timestamp.take())
    }

    fn data<T: DeserializeOwned>(self) -> Result<T, A::Error> {
        self.map.next_value_seed(Object::new())
    }
}

/// The members of an [`Envelope`] whose `event` is `event`.
struct EnvelopeMembers<'a, V> {
    envelope: &'a Envelope<V>,
    event: &'a str,
}

impl<V: Raw> Members for EnvelopeMembers<'_, V> {
    type Error = String;

    #[inline]
    fn timestamp(&mut self) -> Result<Option<String>, String> {
        self.envelope.string_timestamp()
    }

    #[inline]
    fn data<T: DeserializeOwned>(self) -> Result<T, String> {
        self.envelope.known_data(self.event)
    }
}

/// Reads a preset's event with any deserializer: its [`Envelope`], members copied, then the
/// typed or raw form. What the presets' `Deserialize` impls do.
pub(crate) fn deserialize<'de, E, D>(deserializer: D) -> Result<E, D::Error>
where
    E: FromEnvelope,
    D: Deserializer<'de>,
{
    Ok(Envelope::<Box<RawValue>>::deserialize(deserializer)?.decode())
}

/// The impls a preset's event type has alike, for an enum with a `Raw(RawEvent)` variant and
/// inherent `event_type` and `id` methods: `From<RawEvent>` (the `Raw` variant), `Deserialize`
/// (with [`deserialize`]), and `WebhookEvent`: the inherent `event_type` and `id`, the `Raw`
/// variant's shape error, and the methods given after the type (such as `idempotency_key`).
macro_rules! preset_event {
    ($event:ident $(; $($method:tt)*)?) => {
        impl From<$crate::provider::RawEvent> for $event {
            fn from(raw: $crate::provider::RawEvent) -> Self {
                $event::Raw(raw)
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $event {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                $crate::provider::raw::deserialize(deserializer)
            }
        }

        impl $crate::WebhookEvent for $event {
            fn event_type(&self) -> &str {
                $event::event_type(self)
            }

            fn id(&self) -> Option<&str> {
                $event::id(self)
            }

            fn shape_error(&self) -> Option<&str> {
                match self {
                    $event::Raw(raw) => raw.shape_error(),
                    _ => None,
                }
            }

            $($($method)*)?
        }
    };
}

pub(crate) use preset_event;

/// Reads a JSON object, and only an object, into `T` (a derived struct alone would also take
/// an array, by position).
pub(crate) struct Object<T>(std::marker::PhantomData<fn() -> T>);

impl<T> Object<T> {
    pub(crate) fn new() -> Self {
        Self(std::marker::PhantomData)
    }
}

impl<'de, T: Deserialize<'de>> DeserializeSeed<'de> for Object<T> {
    type Value = T;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<T, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for Object<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        T::deserialize(de::value::MapAccessDeserializer::new(map))
    }
}

/// The one-pass reading of the usual body: `event` (a known type, a string without escapes)
/// before `data`, `timestamp` (when the type reads it) before `data` too, no key repeated, each
/// member of its documented shape. `None`, or an error, for anything else: such a body is read
/// again through the [`Envelope`], which gives every other outcome.
struct OnePass<E>(Option<E>);

impl<'de, E: FromEnvelope> Deserialize<'de> for OnePass<E> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(OnePassVisitor(std::marker::PhantomData))
    }
}

struct OnePassVisitor<E>(std::marker::PhantomData<fn() -> E>);

impl<'de, E: FromEnvelope> Visitor<'de> for OnePassVisitor<E> {
    type Value = OnePass<E>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a webhook body: a JSON object with a string `event`")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OnePass<E>, A::Error> {
        const KEYS: &[&str] = &["event", "timestamp", "data"];
        let mut event: Option<&'de str> = None;
        let mut timestamp: Option<Option<String>> = None;
        let mut typed: Option<E> = None;
        // Returning early leaves the map unread: serde_json then fails the whole reading.
        while let Some(key) = map.next_key_seed(KeyIn(KEYS))? {
            match key {
                Some(0) if event.is_none() => event = Some(map.next_value()?),
                Some(1) if timestamp.is_none() && typed.is_none() => {
                    timestamp = Some(if E::TYPED_TIMESTAMP {
                        map.next_value()?
                    } else {
                        map.next_value::<IgnoredAny>()?;
                        None
                    });
                }
                Some(1) if timestamp.is_none() && !E::TYPED_TIMESTAMP => {
                    map.next_value::<IgnoredAny>()?;
                    timestamp = Some(None);
                }
                Some(2) if typed.is_none() => {
                    let Some(event) = event else {
                        return Ok(OnePass(None));
                    };
                    let members = MapMembers {
                        timestamp: timestamp.clone().flatten(),
                        map: &mut map,
                        de: std::marker::PhantomData,
                    };
                    match E::typed(event, members)? {
                        Some(event) => typed = Some(event),
                        None => return Ok(OnePass(None)),
                    }
                }
                Some(_) => return Ok(OnePass(None)),
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(OnePass(typed))
    }
}

/// The presets' decoder: the same events as [`Lossless`](crate::decode::Lossless) gives, from an
/// envelope whose members are slices of the body instead of copies.
pub(crate) struct Preset<E>(std::marker::PhantomData<fn() -> E>);

impl<E> Preset<E> {
    pub(crate) fn new() -> Self {
        Self(std::marker::PhantomData)
    }
}

impl<E: FromEnvelope + 'static> Decode<E> for Preset<E> {
    fn decode(&self, _head: &Parts, body: &Bytes) -> Result<E, DecodeError> {
        // JSON is UTF-8 (RFC 8259): checked once here, so no string is checked again.
        let text = std::str::from_utf8(body)
            .map_err(|err| DecodeError::new(format!("the body is not UTF-8: {err}")))?;
        if let Ok(OnePass(Some(event))) = serde_json::from_str::<OnePass<E>>(text) {
            return Ok(event);
        }
        match serde_json::from_str::<Envelope<&RawValue>>(text) {
            Ok(envelope) => Ok(envelope.decode()),
            // JSON, but not an object the event type reads: delivered raw, never lost.
            Err(err) if serde_json::from_str::<IgnoredAny>(text).is_ok() => {
                Ok(E::from(RawEvent::not_an_event(err)))
            }
            Err(err) => Err(DecodeError::new(err)),
        }
    }
}

/// The envelope of a webhook body, its members kept as raw JSON.
///
/// Reading it never fails on a JSON object: a repeated `event`, `timestamp` or `data` keeps the
/// last value (as `JSON.parse` does) and is noted in `repeated`. Other keys are skipped.
pub(crate) struct Envelope<V = Box<RawValue>> {
    pub(crate) event: Option<V>,
    pub(crate) timestamp: Option<V>,
    pub(crate) data: Option<V>,
    pub(crate) repeated: Option<&'static str>,
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Envelope<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(EnvelopeVisitor(std::marker::PhantomData))
    }
}

struct EnvelopeVisitor<V>(std::marker::PhantomData<V>);

impl<'de, V: Deserialize<'de>> Visitor<'de> for EnvelopeVisitor<V> {
    type Value = Envelope<V>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a webhook body: a JSON object with a string `event`")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Envelope<V>, A::Error> {
        let mut envelope = Envelope {
            event: None,
            timestamp: None,
            data: None,
            repeated: None,
        };
        // Keys are read as bytes: a key holding a lone surrogate is just another key.
        const KEYS: &[&str] = &["event", "timestamp", "data"];
        while let Some(key) = map.next_key_seed(KeyIn(KEYS))? {
            let (slot, name) = match key {
                Some(0) => (&mut envelope.event, "event"),
                Some(1) => (&mut envelope.timestamp, "timestamp"),
                Some(_) => (&mut envelope.data, "data"),
                None => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            if slot.replace(map.next_value()?).is_some() {
                envelope.repeated.get_or_insert(name);
            }
        }
        Ok(envelope)
    }
}

impl<V: Raw> Envelope<V> {
    /// Parses the envelope's `event` string; any problem is the first shape error.
    fn event(&self) -> Result<String, String> {
        match self.event.as_deref() {
            None => Err("missing field `event`".to_owned()),
            Some(raw) => match lossy_string(raw) {
                Some(Lossy::Exact(event)) => Ok(event),
                Some(Lossy::Replaced(_)) => Err("`event` holds a lone UTF-16 surrogate".to_owned()),
                None => Err(format!(
                    "invalid type for `event`: expected a string, found {}",
                    excerpt(raw)
                )),
            },
        }
    }

    /// The typed form of the event, or its raw form with the shape error that kept it raw.
    pub(crate) fn decode<E: FromEnvelope>(self) -> E {
        let (event, mut shape_error) = match self.event() {
            Ok(event) => (event, None),
            Err(reason) => (
                self.event
                    .as_deref()
                    .and_then(lossy_string)
                    .map(Lossy::into_string)
                    .unwrap_or_default(),
                Some(reason),
            ),
        };
        if shape_error.is_none() {
            if let Some(key) = self.repeated {
                shape_error = Some(format!("the body repeats the key `{key}`"));
            } else {
                let members = EnvelopeMembers {
                    envelope: &self,
                    event: &event,
                };
                match E::typed(&event, members) {
                    Ok(Some(typed)) => return typed,
                    Ok(None) => {}
                    Err(reason) => shape_error = Some(reason),
                }
            }
        }
        let id = self
            .data
            .as_deref()
            .and_then(|data| string_member(data, E::ID));
        let timestamp = self
            .timestamp
            .as_deref()
            .and_then(lossy_string)
            .map(Lossy::into_string);
        E::from(RawEvent {
            event,
            raw_event: self.event.map(Raw::into_box),
            id,
            timestamp,
            raw_timestamp: self.timestamp.map(Raw::into_box),
            data: self.data.map(Raw::into_box),
            shape_error,
        })
    }

    /// `timestamp` as a string: absent or `null` is `None`, any other value is a shape error.
    fn string_timestamp(&self) -> Result<Option<String>, String> {
        let Some(raw) = self.timestamp.as_deref() else {
            return Ok(None);
        };
        if raw.get() == "null" {
            return Ok(None);
        }
        match lossy_string(raw) {
            Some(Lossy::Exact(timestamp)) => Ok(Some(timestamp)),
            Some(Lossy::Replaced(_)) => Err("`timestamp` holds a lone UTF-16 surrogate".into()),
            None => Err(format!(
                "invalid type for `timestamp`: expected a string or null, found {}",
                excerpt(raw)
            )),
        }
    }

    /// `data` of a known event type: present, a JSON object, and matching `T`.
    fn known_data<T: DeserializeOwned>(&self, event: &str) -> Result<T, String> {
        match self.data.as_deref() {
            None => Err(format!("missing field `data` for `{event}` event")),
            // A derived struct would also accept a JSON array (fields by position).
            Some(raw) if !raw.get().starts_with('{') => Err(format!(
                "invalid `data` for `{event}` event: expected a JSON object"
            )),
            Some(raw) => serde_json::from_str(raw.get())
                .map_err(|e| shorten(format!("invalid `data` for `{event}` event: {e}"))),
        }
    }
}

/// A JSON string decoded exactly, or with lone surrogates replaced by U+FFFD.
enum Lossy {
    Exact(String),
    Replaced(String),
}

impl Lossy {
    fn into_string(self) -> String {
        match self {
            Self::Exact(s) | Self::Replaced(s) => s,
        }
    }
}

/// Decodes a raw JSON string; `None` when `raw` is not a string.
fn lossy_string(raw: &RawValue) -> Option<Lossy> {
    if !raw.get().starts_with('"') {
        return None;
    }
    if let Ok(exact) = serde_json::from_str::<String>(raw.get()) {
        return Some(Lossy::Exact(exact));
    }
    // serde_json refuses lone surrogates in a `String` but accepts them in bytes (as WTF-8).
    struct Bytes;
    impl Visitor<'_> for Bytes {
        type Value = String;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string")
        }
        fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<String, E> {
            Ok(String::from_utf8_lossy(v).into_owned())
        }
    }
    let mut deserializer = serde_json::Deserializer::from_str(raw.get());
    deserializer
        .deserialize_bytes(Bytes)
        .ok()
        .map(Lossy::Replaced)
}

/// Reads a JSON object key and tells which of the names it is (`Some(index)`), comparing its
/// decoded bytes (WTF-8: a key holding a lone surrogate is kept, not refused, and matches no
/// name). Nothing is allocated.
struct KeyIn<'n>(&'n [&'n str]);

impl<'de> DeserializeSeed<'de> for KeyIn<'_> {
    type Value = Option<usize>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_bytes(self)
    }
}

impl Visitor<'_> for KeyIn<'_> {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
        Ok(self.0.iter().position(|name| name.as_bytes() == v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        self.visit_bytes(v.as_bytes())
    }
}

/// The member `key` of a raw JSON object (the last one, if repeated), as received.
pub(crate) fn member(object: &RawValue, key: &str) -> Option<Box<RawValue>> {
    struct Member<'k>(&'k str);
    impl<'de> Visitor<'de> for Member<'_> {
        type Value = Option<Box<RawValue>>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut found = None;
            while let Some(key) = map.next_key_seed(KeyIn(&[self.0]))? {
                if key.is_some() {
                    found = Some(map.next_value()?);
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(found)
        }
    }
    if !object.get().starts_with('{') {
        return None;
    }
    let mut deserializer = serde_json::Deserializer::from_str(object.get());
    deserializer.deserialize_map(Member(key)).ok()?
}

/// The string member `key` of a raw JSON object (the last one, if repeated).
fn string_member(object: &RawValue, key: &str) -> Option<String> {
    lossy_string(&member(object, key)?).map(Lossy::into_string)
}

/// Cuts a reason that quotes the body (serde's messages quote whole strings) to a short line.
pub(crate) fn shorten(mut reason: String) -> String {
    const MAX: usize = 150;
    if reason.len() > MAX {
        let mut end = MAX;
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
        reason.push('…');
    }
    reason
}

/// Shortens a raw JSON value quoted in a shape error, so that a reason stays short whatever the
/// body holds.
fn excerpt(raw: &RawValue) -> String {
    const MAX: usize = 40;
    let text = raw.get();
    if text.len() <= MAX {
        return text.to_owned();
    }
    let mut end = MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &text[..end], text.len())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Asserts that `E` refuses each body: none is a whole JSON object.
    pub(crate) fn assert_refused<E: DeserializeOwned + fmt::Debug>(bodies: &[&str]) {
        for body in bodies {
            assert!(serde_json::from_str::<E>(body).is_err(), "accepted {body}");
        }
    }

    /// Asserts that `E` keeps each body raw (`raw` is its `Raw` variant) with a shape error that
    /// holds the reason given, which `WebhookEvent::shape_error` reports; and that the event,
    /// written back (the last of a repeated key only, as `JSON.parse` keeps), reads the same.
    pub(crate) fn assert_kept_raw<E>(cases: &[(&str, &str)], raw: impl Fn(&E) -> Option<&RawEvent>)
    where
        E: DeserializeOwned + Serialize + crate::WebhookEvent + PartialEq + fmt::Debug,
    {
        let parse = |body: &str| -> E {
            serde_json::from_str(body).unwrap_or_else(|e| panic!("{body}: {e}"))
        };
        for (body, reason) in cases {
            let e = parse(body);
            let Some(kept) = raw(&e) else {
                panic!("typed: {body}")
            };
            assert!(
                kept.shape_error().is_some_and(|r| r.contains(reason)),
                "{body}: {:?}",
                kept.shape_error()
            );
            assert_eq!(crate::WebhookEvent::shape_error(&e), kept.shape_error());
            if !reason.starts_with("repeats") {
                let text = serde_json::to_string(&e).unwrap();
                assert_eq!(parse(&text), e, "{text}");
            }
        }
    }

    fn raw(json: &str) -> Box<RawValue> {
        RawValue::from_string(json.to_owned()).unwrap()
    }

    #[test]
    fn lone_surrogates_are_replaced_only_where_decoded() {
        assert!(matches!(lossy_string(&raw(r#""a\u00e9""#)), Some(Lossy::Exact(s)) if s == "aé"));
        assert!(
            matches!(lossy_string(&raw(r#""Clip \ud83d""#)), Some(Lossy::Replaced(s)) if s.starts_with("Clip ") && s.ends_with('\u{fffd}'))
        );
        assert!(lossy_string(&raw("12")).is_none());
    }

    #[test]
    fn string_members() {
        let object = raw(r#"{"id":"a","x":{"id":"nested"},"_id":"b","id":"last"}"#);
        assert_eq!(string_member(&object, "id").as_deref(), Some("last"));
        assert_eq!(string_member(&object, "_id").as_deref(), Some("b"));
        assert_eq!(string_member(&object, "nope"), None);
        assert_eq!(string_member(&raw(r#"{"id":7}"#), "id"), None);
        assert_eq!(string_member(&raw("[1]"), "id"), None);
    }

    #[test]
    fn envelope_keeps_the_last_of_a_repeated_key_and_notes_it() {
        let envelope: Envelope =
            serde_json::from_str(r#"{"event":"a","z":[1],"event":"b","data":{}}"#).unwrap();
        assert_eq!(envelope.event.unwrap().get(), r#""b""#);
        assert_eq!(envelope.repeated, Some("event"));
        assert!(serde_json::from_str::<Envelope>("[1]").is_err());
    }

    /// What `Preset` and `Lossless` make of `body`: equal events, or both refusals.
    fn same_as_lossless<E>(body: &[u8])
    where
        E: FromEnvelope + serde::de::DeserializeOwned + PartialEq + fmt::Debug + 'static,
    {
        let (head, ()) = http::Request::new(()).into_parts();
        let body = Bytes::copy_from_slice(body);
        let preset = Preset::<E>::new().decode(&head, &body);
        let lossless = crate::decode::Lossless::<E>::new().decode(&head, &body);
        match (preset, lossless) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "{:?}", String::from_utf8_lossy(&body)),
            (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
            (a, b) => panic!("{body:?}: preset {a:?}, lossless {b:?}"),
        }
    }

    /// Bodies of every shape the envelope tells apart.
    const BODIES: &[&str] = &[
        r#"{"event":"video.processed","timestamp":"2026-01-01T00:00:00Z","data":{"id":"v","title":"t"}}"#,
        r#"{"data":{"id":"v"},"event":"video.published","timestamp":null}"#,
        r#"{"event":"video.failed","timestamp":1767225600,"data":{"id":"v"}}"#,
        r#"{"event":"video.processed","data":{"id":"v","title":"Clip \ud83d"}}"#,
        r#"{"event":"video.processed","event":"video.failed","data":{}}"#,
        r#"{"event":"video.processed","data":[1,2]}"#,
        r#"{"event":"video.processed"}"#,
        r#"{"event":"render.completed","data":{"_id":"r","videoData":{"title":"\ud83d"}}}"#,
        r#"{"event":"render.failed","data":{"_id":"r","error":{"code":7}}}"#,
        r#"{"event":"test.ping","data":{"id":"p","_id":"q"}}"#,
        r#"{"event":7,"data":{}}"#,
        r#"{"event":"\ud800","data":{}}"#,
        r#"  {"event":"video.processed","data":{"id":"v"}}  "#,
        r#"{"event":"video.processed","data":{"id":"v"}} x"#,
        r#"[1,2,3]"#,
        r#""just a string""#,
        r#"{"event":"video.processed","data":{"id":"v""#,
        "",
    ];

    #[test]
    fn the_presets_decoder_gives_what_lossless_gives() {
        for body in BODIES {
            same_as_lossless::<crate::provider::videonest::Event>(body.as_bytes());
            same_as_lossless::<crate::provider::videoaiditor::Event>(body.as_bytes());
        }
        same_as_lossless::<crate::provider::videonest::Event>(b"{\"event\":\"a\xff\"}");
    }

    proptest::proptest! {
        #[test]
        fn the_presets_decoder_agrees_with_lossless_on_any_bytes(
            body in proptest::string::bytes_regex(
                r#"(\{|\}|\[|\]|"|,|:|event|data|timestamp|id|_id|video\.processed|render\.completed|null|1|\\ud83d|\\u00e9|x| )*"#
            ).unwrap()
        ) {
            same_as_lossless::<crate::provider::videonest::Event>(&body);
            same_as_lossless::<crate::provider::videoaiditor::Event>(&body);
        }
    }

    /// JSON values of the shapes the envelope's members take, right and wrong.
    fn member_value() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just("null".to_owned()),
            Just("142".to_owned()),
            Just("-1.5e3".to_owned()),
            Just("true".to_owned()),
            Just(r#""video.processed""#.to_owned()),
            Just(r#""distribution.failed""#.to_owned()),
            Just(r#""render.completed""#.to_owned()),
            Just(r#""video\u002eprocessed""#.to_owned()),
            Just(r#""test.ping""#.to_owned()),
            Just(r#""2026-01-01T00:00:00Z""#.to_owned()),
            Just(r#""Clip \ud83d""#.to_owned()),
            Just(r#""caf\u00e9""#.to_owned()),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            let key = prop_oneof![
                Just("id"),
                Just("_id"),
                Just("title"),
                Just("duration"),
                Just("status"),
                Just("videoData"),
                Just("error"),
                Just("platform"),
                Just("x"),
            ];
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..3)
                    .prop_map(|items| format!("[{}]", items.join(","))),
                proptest::collection::vec((key, inner), 0..5).prop_map(|members| {
                    let members: Vec<String> = members
                        .into_iter()
                        .map(|(k, v)| format!("\"{k}\":{v}"))
                        .collect();
                    format!("{{{}}}", members.join(","))
                }),
            ]
        })
    }

    /// Webhook-like bodies: the envelope's keys in any order, some repeated or missing.
    fn envelope_body() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let key = prop_oneof![
            Just("event"),
            Just("timestamp"),
            Just("data"),
            Just("ev\\u0065nt"),
            Just("other"),
        ];
        let event = prop_oneof![
            Just(r#""video.processed""#.to_owned()),
            Just(r#""video.published""#.to_owned()),
            Just(r#""video.failed""#.to_owned()),
            Just(r#""distribution.completed""#.to_owned()),
            Just(r#""distribution.failed""#.to_owned()),
            Just(r#""render.completed""#.to_owned()),
            Just(r#""render.failed""#.to_owned()),
        ];
        let value = prop_oneof![3 => event, 5 => member_value()];
        (proptest::collection::vec((key, value), 0..5), any::<bool>()).prop_map(
            |(members, trailing)| {
                let members: Vec<String> = members
                    .into_iter()
                    .map(|(k, v)| format!("\"{k}\":{v}"))
                    .collect();
                format!(
                    "{{{}}}{}",
                    members.join(","),
                    if trailing { " " } else { "" }
                )
            },
        )
    }

    proptest::proptest! {
        #[test]
        fn the_presets_decoder_agrees_with_lossless_on_envelopes(body in envelope_body()) {
            same_as_lossless::<crate::provider::videonest::Event>(body.as_bytes());
            same_as_lossless::<crate::provider::videoaiditor::Event>(body.as_bytes());
        }
    }

    #[test]
    fn the_one_pass_reading_takes_the_usual_body_and_leaves_the_rest() {
        type Nest = crate::provider::videonest::Event;
        let read = |body: &str| {
            matches!(
                serde_json::from_str::<OnePass<Nest>>(body),
                Ok(OnePass(Some(_)))
            )
        };
        assert!(read(
            r#"{"event":"video.processed","timestamp":"t","data":{"id":"v"}}"#
        ));
        assert!(read(
            r#"{"x":[1],"event":"video.failed","data":{"id":"v"}}"#
        ));
        // Left to the envelope: data before event, timestamp after data, a repeated key, an
        // escaped event, an unknown type, data that is not an object.
        assert!(!read(r#"{"data":{"id":"v"},"event":"video.processed"}"#));
        assert!(!read(
            r#"{"event":"video.processed","data":{"id":"v"},"timestamp":"t"}"#
        ));
        assert!(!read(r#"{"event":"video.processed","data":{},"data":{}}"#));
        assert!(!read(r#"{"event":"video\u002eprocessed","data":{}}"#));
        assert!(!read(r#"{"event":"test.ping","data":{}}"#));
        assert!(!read(r#"{"event":"video.processed","data":["v"]}"#));
    }

    #[test]
    fn serialises_the_raw_members() {
        let event = RawEvent {
            event: "x".into(),
            raw_event: Some(raw(r#""x""#)),
            id: None,
            timestamp: None,
            raw_timestamp: Some(raw("17")),
            data: Some(raw(r#"{"t":"\ud83d"}"#)),
            shape_error: Some("reason".into()),
        };
        assert_eq!(
            serde_json::to_string(&event).unwrap(),
            r#"{"event":"x","timestamp":17,"data":{"t":"\ud83d"}}"#
        );
    }
}
