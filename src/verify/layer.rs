use std::{fmt, sync::Arc};

use serde::de::DeserializeOwned;
use tower::Layer;

use super::service::Shared;
use crate::{
    DefaultRejectionResponse, VerifyWebhook, WebhookEvent,
    decode::{Decode, Json, Nothing, Strict},
    meter::Meter,
    scheme::Scheme,
};

/// The default body limit: 2 MiB, like axum's `DefaultBodyLimit`.
pub const DEFAULT_MAX_BODY_SIZE: usize = 2 * 1024 * 1024;

/// A [`Layer`] that verifies webhook signatures and inserts a [`Verified`](crate::Verified) event
/// before the inner service runs.
///
/// Type parameters: the signature scheme `Sc`, the event type `E` (`()` until
/// [`event`](Self::event) or [`decode_with`](Self::decode_with) picks one) and the rejection
/// response `R`.
///
/// See the [crate docs](crate) for an example.
#[must_use]
pub struct VerifyWebhookLayer<Sc, E = (), R = DefaultRejectionResponse> {
    /// What each service it makes shares with its requests.
    shared: Shared<Sc, E, R>,
}

/// [`WebhookEvent::event_type`] of a decoded event.
pub(crate) type EventTypeFn<E> = fn(&E) -> &str;

impl<Sc: Scheme> VerifyWebhookLayer<Sc> {
    /// A layer that verifies with `scheme`, keeps bodies up to [`DEFAULT_MAX_BODY_SIZE`], and
    /// decodes nothing (the handler gets `Verified<()>` with the signed bytes).
    pub fn new(scheme: Sc) -> Self {
        let provider: Arc<str> = Arc::from(scheme.name());
        Self {
            shared: Shared {
                meter: Meter::new(&provider),
                provider,
                scheme: Arc::new(scheme),
                max_body_size: DEFAULT_MAX_BODY_SIZE,
                decode: Arc::new(Nothing),
                event_type: None,
                rejection: DefaultRejectionResponse,
                label_tenants: false,
            },
        }
    }
}

impl<Sc, E, R> VerifyWebhookLayer<Sc, E, R> {
    /// The largest body accepted, in bytes. A `Content-Length` above it is refused with 413
    /// before anything is read; a body without one stops being read once it passes the limit.
    ///
    /// It bounds the received body. A scheme that verifies a re-serialised form (VideoAIditor's
    /// `JSON.stringify` fallback) bounds that form itself; see
    /// [`Part::BodyOrJsonStringify`](crate::scheme::Part::BodyOrJsonStringify).
    ///
    /// In axum, a limit above 2 MiB also needs axum's own `DefaultBodyLimit` raised if the
    /// handler reads the body with an extractor.
    pub fn max_body_size(mut self, bytes: usize) -> Self {
        self.shared.max_body_size = bytes;
        self
    }

    /// Parses the verified body as JSON into `T` (with [`Json`]); the handler gets
    /// `Verified<T>`. A body that verifies but does not parse is refused with 400.
    ///
    /// The presets' layers decode their event types with
    /// [`Lossless`](crate::decode::Lossless) instead, which delivers every JSON body: calling
    /// `event` on a preset's layer replaces that with `Json`.
    pub fn event<T>(self) -> VerifyWebhookLayer<Sc, T, R>
    where
        T: DeserializeOwned + Clone + Send + Sync + 'static,
    {
        self.decode_with(Json::<T>::new())
    }

    /// Decodes the verified body with `decoder` (any [`Decode`], including a
    /// `Fn(&Bytes) -> Result<T, DecodeError>`); the handler gets `Verified<T>`. An error is
    /// answered with 400.
    pub fn decode_with<T, D>(self, decoder: D) -> VerifyWebhookLayer<Sc, T, R>
    where
        T: Clone + Send + Sync + 'static,
        D: Decode<T>,
    {
        self.rebuild(|_, _, rejection| (Arc::new(decoder), None, rejection))
    }

    /// Refuses, with 400, verified bodies that are delivered without their typed form: those
    /// for which [`WebhookEvent::shape_error`] is `Some` (a known event type of an undocumented
    /// shape, JSON that is not an event object). Event types the crate does not know are still
    /// delivered.
    ///
    /// By default nothing verified is refused for its shape: the provider would retry a 400
    /// and then drop the event. It wraps the decoder in place now, so call it after
    /// [`event`](Self::event) or [`decode_with`](Self::decode_with), which replace the decoder.
    ///
    /// ```
    /// use tower_webhook::provider::videonest;
    ///
    /// let layer = videonest::layer(["vn_signing_secret"])?.strict();
    /// # let _ = layer;
    /// # Ok::<_, tower_webhook::ConfigError>(())
    /// ```
    pub fn strict(mut self) -> Self
    where
        E: WebhookEvent + 'static,
    {
        self.shared.decode = Arc::new(Strict(self.shared.decode));
        self.shared.event_type = Some(E::event_type);
        self
    }

    /// Records the event type of each decoded event in the `tracing` span (feature
    /// `tracing`), when the scheme does not report one itself. The presets' layers do.
    pub(crate) fn trace_event_types(mut self) -> Self
    where
        E: WebhookEvent + 'static,
    {
        self.shared.event_type = Some(E::event_type);
        self
    }

    /// Records the tenant of each verified request ([`Verified::tenant`](crate::Verified::tenant),
    /// for a layer with secrets per tenant: see [`tenant`](crate::tenant)) in its `tracing` span
    /// (field `tenant`, feature `tracing`) and as a `tenant` label of the verified-request
    /// metrics (feature `metrics`). Off by default: every tenant adds time series, and a
    /// metrics backend may not take that many. Only tenants whose secret verified a request are
    /// ever recorded, never the id an unverified request names.
    pub fn label_tenants(mut self) -> Self {
        self.shared.label_tenants = true;
        self
    }

    /// Replaces the response sent for refused requests; see
    /// [`RejectionResponse`](crate::RejectionResponse).
    pub fn rejection_response<R2>(self, rejection: R2) -> VerifyWebhookLayer<Sc, E, R2> {
        self.rebuild(|decode, event_type, _| (decode, event_type, rejection))
    }

    /// The same scheme and limit, with the decoder, event type reader and rejection response
    /// that `change` makes of the current ones.
    fn rebuild<E2, R2>(
        self,
        change: impl FnOnce(
            Arc<dyn Decode<E>>,
            Option<EventTypeFn<E>>,
            R,
        ) -> (Arc<dyn Decode<E2>>, Option<EventTypeFn<E2>>, R2),
    ) -> VerifyWebhookLayer<Sc, E2, R2> {
        let shared = self.shared;
        let (decode, event_type, rejection) =
            change(shared.decode, shared.event_type, shared.rejection);
        VerifyWebhookLayer {
            shared: Shared {
                scheme: shared.scheme,
                provider: shared.provider,
                max_body_size: shared.max_body_size,
                decode,
                event_type,
                rejection,
                meter: shared.meter,
                label_tenants: shared.label_tenants,
            },
        }
    }

    /// The signature scheme.
    pub fn scheme(&self) -> &Sc {
        &self.shared.scheme
    }
}

impl<S, Sc, E, R: Clone> Layer<S> for VerifyWebhookLayer<Sc, E, R> {
    type Service = VerifyWebhook<S, Sc, E, R>;

    fn layer(&self, inner: S) -> Self::Service {
        VerifyWebhook {
            inner,
            shared: Arc::new(self.shared.clone()),
        }
    }
}

impl<Sc, E, R: Clone> Clone for VerifyWebhookLayer<Sc, E, R> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<Sc: fmt::Debug, E, R> fmt::Debug for VerifyWebhookLayer<Sc, E, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyWebhookLayer")
            .field("scheme", &self.shared.scheme)
            .field("max_body_size", &self.shared.max_body_size)
            .field("event", &std::any::type_name::<E>())
            .finish_non_exhaustive()
    }
}
