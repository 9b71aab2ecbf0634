//! Slack: `X-Slack-Signature: v0=<lower-case hex HMAC-SHA256 of "v0:{timestamp}:{body}">`, with
//! the timestamp in `X-Slack-Request-Timestamp`.
//!
//! The key is the app's signing secret. A timestamp more than 5 minutes from the receiver's
//! clock, in the past or in the future, is refused (after the signature matched). Bodies are
//! form-encoded (slash commands, interactivity) or JSON (Events API): the event type is the
//! Events API `event.type` or `type`, or a slash command's `command`; the id is the Events API
//! `event_id`, or a form's `trigger_id`.
//!
//! # Example
//!
//! ```
//! use std::time::{Duration, UNIX_EPOCH};
//! use bytes::Bytes;
//! use tower_webhook::{provider::slack, scheme::Scheme};
//!
//! let body = Bytes::from_static(b"token=xyzz0WbapA4vBCDEFasx0q6G&command=%2Fweather&text=94070");
//! let request = slack::signed_request("8f742231b10e8888abcd99yyyzzz85a5", body.clone(), 1_531_420_618)?;
//! // Verify as of the signing time (a test clock; the default is the system clock).
//! let scheme = slack::scheme()
//!     .clock(|| UNIX_EPOCH + Duration::from_secs(1_531_420_618))
//!     .secret("8f742231b10e8888abcd99yyyzzz85a5")
//!     .build()?;
//! let (head, _) = request.into_parts();
//! let signature = scheme.signature(&head).expect("well-formed headers");
//! assert!(scheme.verify(&signature, &body).is_ok());
//! # Ok::<_, tower_webhook::ConfigError>(())
//! ```

use super::generic::Event;
use crate::scheme::{Encoding, Field, Grammar, Hmac, HmacBuilder, Part, TimestampSource};

/// The header Slack sends its signature in.
pub const SIGNATURE_HEADER: &str = "X-Slack-Signature";
/// The header holding the signed timestamp (Unix seconds).
pub const TIMESTAMP_HEADER: &str = "X-Slack-Request-Timestamp";

/// A builder for the Slack scheme (tolerance 5 minutes, system clock); add secrets and build
/// it, or pass it to [`generic::layer`](super::generic::layer).
pub fn scheme() -> HmacBuilder {
    Hmac::sha256(SIGNATURE_HEADER)
        .name("slack")
        .grammar(Grammar::prefixed("v0="))
        .encoding(Encoding::Hex)
        .timestamp(TimestampSource::Header(
            TIMESTAMP_HEADER.parse().expect("a valid header name"),
        ))
        .signs([
            Part::literal("v0:"),
            Part::Timestamp,
            Part::literal(":"),
            Part::Body,
        ])
        .event_type([
            Field::json("/event/type"),
            Field::json("/type"),
            Field::form("command"),
        ])
        .delivery_id([Field::json("/event_id"), Field::form("trigger_id")])
}

super::preset!(provider: "Slack", event: Event, signs: timestamp);
