//! What every verified event can tell about itself, whichever provider sent it.

/// Builds an idempotency key as a JSON array of its parts, so that two different lists of parts
/// never give the same key, whatever the parts hold.
pub(crate) struct KeyParts(String);

impl KeyParts {
    pub(crate) fn new() -> Self {
        Self(String::from("["))
    }

    fn separate(&mut self) {
        if self.0.len() > 1 {
            self.0.push(',');
        }
    }

    /// A string part (`null` when absent).
    pub(crate) fn text(mut self, part: Option<&str>) -> Self {
        self.separate();
        match part {
            Some(text) => self
                .0
                .push_str(&serde_json::to_string(text).expect("a string serialises")),
            None => self.0.push_str("null"),
        }
        self
    }

    /// A part kept as the raw JSON it was received as (`null` when absent).
    pub(crate) fn raw(mut self, part: Option<&serde_json::value::RawValue>) -> Self {
        self.separate();
        self.0.push_str(part.map_or("null", |raw| raw.get()));
        self
    }

    pub(crate) fn finish(mut self) -> String {
        self.0.push(']');
        self.0
    }
}

/// An event type that layers after verification (deduplication, a queue, logging) can read
/// without knowing the provider.
///
/// Implemented by every preset's event type; implement it for your own to use those layers with
/// it.
///
/// ```
/// use tower_webhook::{WebhookEvent, provider::videoaiditor::Event};
///
/// fn describe(event: &impl WebhookEvent) -> String {
///     format!("{} {}", event.event_type(), event.id().unwrap_or("-"))
/// }
///
/// let event: Event = serde_json::from_str(r#"{"event":"render.failed","data":{"_id":"r1"}}"#)?;
/// assert_eq!(describe(&event), "render.failed r1");
/// assert_eq!(event.idempotency_key().as_deref(), Some(r#"["render.failed","r1"]"#));
/// # Ok::<(), serde_json::Error>(())
/// ```
pub trait WebhookEvent {
    /// The provider's event type, e.g. `"video.processed"` (empty when the body has none).
    fn event_type(&self) -> &str;

    /// The provider's id for the event or the object it is about, when the body has one.
    fn id(&self) -> Option<&str>;

    /// A key that is the same for every delivery of one event and differs between events, for
    /// deduplication; `None` when the event carries nothing to build it from.
    ///
    /// By default the event type and [`id`](Self::id), as a JSON array (`["type","id"]`): an
    /// encoding that no choice of parts can make ambiguous.
    ///
    /// Build it from signed data only: whoever replays a captured delivery can change anything
    /// the signature does not cover, and so get a new key for the same event. The default suits
    /// events parsed from the signed body; [`generic::Event`](crate::provider::generic::Event)
    /// overrides it to leave out an unsigned event type or id.
    fn idempotency_key(&self) -> Option<String> {
        let id = self.id()?;
        Some(
            KeyParts::new()
                .text(Some(self.event_type()))
                .text(Some(id))
                .finish(),
        )
    }

    /// Why the event was delivered without its typed form (a body of a shape the provider
    /// does not document); `None` for typed events and for event types that are merely unknown.
    ///
    /// A [`strict`](crate::VerifyWebhookLayer::strict) layer refuses events for which this is
    /// `Some`.
    fn shape_error(&self) -> Option<&str> {
        None
    }
}
