//! GitHub: `X-Hub-Signature-256: sha256=<lower-case hex HMAC-SHA256 of the raw body>`.
//!
//! The key is the webhook secret's UTF-8 bytes. GitHub signs no timestamp, so there is no replay
//! window, and neither the delivery id (`X-GitHub-Delivery`) nor the event type
//! (`X-GitHub-Event`) is signed: they are recorded, but whoever replays a captured delivery can
//! change them, so the deduplication key is the SHA-256 of the signed body (GitHub's
//! redeliveries send the same body). A repeated signature header is refused rather than guessed at. The legacy
//! SHA-1 `X-Hub-Signature` header is ignored.
//!
//! # Example
//!
//! ```
//! use tower_webhook::{Verified, provider::{generic, github}, scheme::Scheme};
//!
//! // GitHub's documented test values.
//! let request = github::signed_request("It's a Secret to Everybody", "Hello, World!")?;
//! assert_eq!(
//!     request.headers()[github::SIGNATURE_HEADER],
//!     "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
//! );
//! let layer = github::layer(["It's a Secret to Everybody"])?;
//! let (head, _) = request.into_parts();
//! assert!(layer.scheme().signature(&head).is_ok());
//! # Ok::<_, tower_webhook::ConfigError>(())
//! ```

use super::generic::Event;
use crate::scheme::{Encoding, Field, Grammar, Hmac, HmacBuilder};

/// The header GitHub sends its SHA-256 signature in.
pub const SIGNATURE_HEADER: &str = "X-Hub-Signature-256";
/// The header naming the event type (`push`, `pull_request`, …).
pub const EVENT_HEADER: &str = "X-GitHub-Event";
/// The header holding the delivery's GUID.
pub const DELIVERY_HEADER: &str = "X-GitHub-Delivery";

/// A builder for the GitHub scheme; add secrets and build it, or pass it to
/// [`generic::layer`](super::generic::layer).
pub fn scheme() -> HmacBuilder {
    Hmac::sha256(SIGNATURE_HEADER)
        .name("github")
        .grammar(Grammar::prefixed("sha256="))
        .encoding(Encoding::Hex)
        .event_type([Field::header(EVENT_HEADER)])
        .delivery_id([Field::header(DELIVERY_HEADER)])
}

super::preset!(provider: "GitHub", event: Event, signs: body);
