//! SendGrid's signed Event Webhook: `X-Twilio-Email-Event-Webhook-Signature: <base64 DER>`, an
//! ECDSA P-256 / SHA-256 signature of `"{timestamp}{body}"` (no separator), with the timestamp in
//! `X-Twilio-Email-Event-Webhook-Timestamp`.
//!
//! SendGrid signs with its private key; the receiver holds the public "Verification Key" the
//! dashboard shows, the base64 of its DER SubjectPublicKeyInfo
//! ([`PublicKey::p256_base64`](crate::scheme::PublicKey::p256_base64)). Several keys rotate. A
//! signed timestamp more than 5 minutes from the receiver's clock, either way, is refused after
//! the signature verified (SendGrid's own verifiers check no time at all, so a captured batch
//! could be replayed forever). A malformed signature (not base64, not DER, raw `r‖s`) is refused
//! as such (401), where `@sendgrid/eventwebhook` throws. The body is a JSON array of events, so
//! there is no single event type or delivery id: deduplicate on each event's `sg_event_id`.
//!
//! # Example
//!
//! ```
//! use std::time::{SystemTime, UNIX_EPOCH};
//! use tower_webhook::{provider::sendgrid, scheme::{Scheme, SigningKey}};
//!
//! // A test key (the vectors'): SendGrid keeps its own private.
//! let pem = "-----BEGIN PRIVATE KEY-----
//! MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgNTSAH1w9Hy0qI5Sx
//! 9KJrRY3FkZ62ZtY6IAhIHx8E/RGhRANCAARQ5xWUyJ+4QU/DYVenesE7Fj7RVtdA
//! DzSLk5/WAy6xK5KMRrXrMjUaEUiHIpTZvgRdMwpmxzppgJmBAKvXoPs6
//! -----END PRIVATE KEY-----";
//! let key = SigningKey::p256_pkcs8_pem(pem)?;
//! let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
//! let request = sendgrid::signed_request(&key, r#"[{"event":"delivered"}]"#, now)?;
//! let layer = sendgrid::layer([key.public_key()])?;
//! let (head, _) = request.into_parts();
//! assert!(layer.scheme().signature(&head).is_ok());
//! # Ok::<_, tower_webhook::ConfigError>(())
//! ```

use super::generic::Event;
use crate::scheme::{Encoding, Hmac, HmacBuilder, Part, TimestampSource};

/// The header SendGrid sends its signature in.
pub const SIGNATURE_HEADER: &str = "X-Twilio-Email-Event-Webhook-Signature";
/// The header holding the signed timestamp (Unix seconds).
pub const TIMESTAMP_HEADER: &str = "X-Twilio-Email-Event-Webhook-Timestamp";

/// A builder for the SendGrid scheme (tolerance 5 minutes, system clock); add public keys and
/// build it, or pass it to [`generic::layer`](super::generic::layer).
pub fn scheme() -> HmacBuilder {
    Hmac::ecdsa_p256(SIGNATURE_HEADER)
        .name("sendgrid")
        .encoding(Encoding::Base64)
        .timestamp(TimestampSource::Header(
            TIMESTAMP_HEADER.parse().expect("a valid header name"),
        ))
        .signs([Part::Timestamp, Part::Body])
}

super::preset!(provider: "SendGrid", event: Event, public_keys, signs: timestamp);
