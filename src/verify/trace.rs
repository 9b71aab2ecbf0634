//! What the layer tells `tracing` (feature `tracing`): one `webhook` span per verified request,
//! and a debug event per refusal; and, through [`Meter`], what it tells `metrics` (feature
//! `metrics`). Without the features, the same calls compile to nothing.
//!
//! Fields hold metadata only: the provider, the tenant (with
//! [`label_tenants`](crate::VerifyWebhookLayer::label_tenants) only), the event type and delivery id (as the scheme or
//! the event reports them), the status and the outcome. Never a secret, a signature value, a
//! header value or any of the body: a decoder's message, which may quote the body, is left out
//! of the reason.

use crate::{Rejection, meter::Meter};

/// The span of one verified request, entered while the inner service runs.
#[derive(Debug)]
pub(crate) struct Trace {
    #[cfg(feature = "tracing")]
    span: tracing::Span,
}

impl Trace {
    /// Opens the span of a request whose signature was verified.
    #[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
    pub(crate) fn verified(
        provider: &str,
        event_type: Option<&str>,
        delivery_id: Option<&str>,
        tenant: Option<&str>,
    ) -> Self {
        Self {
            #[cfg(feature = "tracing")]
            span: tracing::info_span!(
                "webhook",
                provider,
                tenant,
                event_type,
                delivery_id,
                status = tracing::field::Empty,
                outcome = tracing::field::Empty,
            ),
        }
    }

    /// Runs `f` inside the span.
    pub(crate) fn in_scope<T>(&self, f: impl FnOnce() -> T) -> T {
        #[cfg(feature = "tracing")]
        let _entered = self.span.enter();
        f()
    }

    /// The inner service answered with `status`.
    #[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
    pub(crate) fn handled(&self, status: http::StatusCode) {
        // A span no subscriber wants records nothing: skip looking its fields up by name.
        #[cfg(feature = "tracing")]
        if !self.span.is_disabled() {
            self.span.record("status", status.as_u16());
            self.span.record("outcome", "handled");
        }
    }

    /// The inner service failed (its error goes to the server).
    pub(crate) fn failed(&self) {
        #[cfg(feature = "tracing")]
        if !self.span.is_disabled() {
            self.span.record("outcome", "error");
        }
    }

    /// Verified, then refused (the body is not an event of the configured type).
    #[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
    pub(crate) fn refused(&self, rejection: &Rejection) {
        #[cfg(feature = "tracing")]
        {
            let status = rejection.status().as_u16();
            self.span.record("status", status);
            self.span.record("outcome", "refused");
            self.in_scope(|| {
                tracing::debug!(status, reason = %Reason(rejection), "webhook refused");
            });
        }
    }
}

/// A request refused before its signature was verified: a debug event, no span, and a count.
#[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
pub(crate) fn refused(provider: &str, meter: &Meter, rejection: &Rejection) {
    meter.refused(rejection);
    #[cfg(feature = "tracing")]
    tracing::debug!(
        provider,
        status = rejection.status().as_u16(),
        reason = %Reason(rejection),
        "webhook refused"
    );
}

/// A rejection's reason without anything taken from the body.
#[cfg(feature = "tracing")]
struct Reason<'a>(&'a Rejection);

#[cfg(feature = "tracing")]
impl std::fmt::Display for Reason<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            // The decoder's message may quote the body.
            Rejection::Decode(_) => f.write_str("webhook body is not a valid event"),
            other => std::fmt::Display::fmt(other, f),
        }
    }
}
