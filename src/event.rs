//! What every verified event can tell about itself, whichever provider sent it.

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
/// assert_eq!(event.idempotency_key().as_deref(), Some("render.failed\u{1f}r1"));
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
    /// By default the event type and [`id`](Self::id), separated by U+001F.
    fn idempotency_key(&self) -> Option<String> {
        self.id()
            .map(|id| format!("{}\u{1f}{id}", self.event_type()))
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
