//! The `JSON.stringify` fallback runs before a request is authenticated, so the memory it takes
//! must stay small whatever the body: this counts every allocation while a well-formed but wrong
//! signature is checked against bodies shaped to be expensive, and bounds the peak.
//!
//! One test only: the counting allocator is global to this binary, and tests run in parallel.

#[path = "shapes/mod.rs"]
mod shapes;

use bytes::Bytes;
use http::Request;
use peak_alloc::PeakAlloc;
use serde::Deserialize as _;
use tower_webhook::scheme::{Hmac, Part, Scheme, SignatureError};

/// Wraps the system allocator, counting the bytes allocated and their peak (a reallocation counts
/// the old and the new block together, as a moving one holds both). The crate forbids `unsafe`,
/// which implementing `GlobalAlloc` needs, hence the small dependency.
#[global_allocator]
static ALLOCATOR: PeakAlloc = PeakAlloc;

/// Large enough for every shape to be itself (128-deep nesting repeated, thousands of keys), small
/// enough for a debug build.
const SIZE: usize = 512 * 1024;

/// The most the fallback may allocate at once, per byte of body.
const MAX_RATIO: f64 = 4.0;

#[test]
fn fallback_memory_is_bounded_for_every_shape() {
    let scheme = Hmac::sha256("x-signature")
        .secret("s")
        .signs([Part::BodyOrJsonStringify { max: SIZE }])
        .build()
        .unwrap();
    let (head, ()) = Request::post("/")
        .header("x-signature", "0".repeat(64))
        .body(())
        .unwrap()
        .into_parts();
    let signature = scheme.signature(&head).unwrap();

    let bodies = shapes::SHAPES
        .iter()
        .map(|&(name, make)| (name, make(SIZE)))
        .chain([("provider_2k_pretty", shapes::provider_body())]);
    let mut report = Vec::new();
    for (name, body) in bodies {
        // Valid JSON (for JSON.parse, which decodes invalid UTF-8 to U+FFFD), so the fallback
        // goes all the way through it.
        let text = String::from_utf8_lossy(&body);
        let mut json = serde_json::Deserializer::from_str(&text);
        assert!(
            serde::de::IgnoredAny::deserialize(&mut json).is_ok() && json.end().is_ok(),
            "{name} is not valid JSON"
        );
        drop(text);
        let body = Bytes::from(body);
        ALLOCATOR.reset_peak_usage();
        let before = ALLOCATOR.current_usage();
        let result = scheme.verify(&signature, &body);
        let extra = ALLOCATOR.peak_usage() - before;
        assert_eq!(result, Err(SignatureError::Mismatch), "{name}");
        let ratio = extra as f64 / body.len() as f64;
        report.push(format!(
            "{name}: {} bytes, peak extra {extra} bytes ({ratio:.3}x)",
            body.len()
        ));
        assert!(
            ratio <= MAX_RATIO,
            "{name}: peak extra heap {extra} bytes for a {} byte body ({ratio:.2}x)",
            body.len()
        );
    }
    eprintln!("{}", report.join("\n"));
}
