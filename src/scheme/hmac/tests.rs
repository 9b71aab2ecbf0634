use http::Request;

use super::*;
use crate::ConfigError;

/// The signature header's value `scheme` puts on `body`.
fn sign(scheme: &Hmac, body: &[u8]) -> HeaderValue {
    scheme.sign(body, None, &HeaderMap::new())[scheme.header()].clone()
}

fn head(values: &[&[u8]]) -> Parts {
    let mut request = Request::post("/").body(()).unwrap();
    for value in values {
        request
            .headers_mut()
            .append("x-sig", HeaderValue::from_bytes(value).unwrap());
    }
    request.into_parts().0
}

fn scheme(encoding: Encoding, prefix: &str) -> Hmac {
    Hmac::sha256("X-Sig")
        .encoding(encoding)
        .grammar(Grammar::prefixed(prefix))
        .secret("key")
        .build()
        .unwrap()
}

#[test]
fn sign_then_verify_round_trips_in_every_format() {
    for (encoding, prefix) in [
        (Encoding::Hex, ""),
        (Encoding::Hex, "sha256="),
        (Encoding::Base64, ""),
        (Encoding::Base64, "v1,"),
    ] {
        let scheme = scheme(encoding, prefix);
        let body = Bytes::from_static(b"{\"a\":1}");
        let value = sign(&scheme, &body);
        let signature = scheme.signature(&head(&[value.as_bytes()])).unwrap();
        assert_eq!(scheme.verify(&signature, &body), Ok(Signed::RawBody));
        let request = scheme.signed_request(body.clone(), None, &HeaderMap::new());
        let (parts, _) = request.into_parts();
        let signature = scheme.signature(&parts).unwrap();
        assert_eq!(scheme.verify(&signature, &body), Ok(Signed::RawBody));
        let other = Bytes::from_static(b"{\"a\":2}");
        assert_eq!(
            scheme.verify(&signature, &other),
            Err(SignatureError::Mismatch)
        );
    }
}

#[test]
fn hex_signature_matches_a_known_hmac() {
    // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
    let scheme = Hmac::sha256("x-sig").secret("Jefe").build().unwrap();
    assert_eq!(
        sign(&scheme, b"what do ya want for nothing?"),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
}

#[test]
fn malformed_values_are_refused_before_any_mac() {
    let hex = scheme(Encoding::Hex, "sha256=");
    let good = sign(&hex, b"x");
    let good = good.as_bytes();
    let upper = good.to_ascii_uppercase();
    let cases: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        good[7..].to_vec(),                        // no prefix
        [b"SHA256=", &good[7..]].concat(),         // prefix in another case
        upper,                                     // upper-case hex
        good[..good.len() - 1].to_vec(),           // 63 digits
        [good, b"0"].concat(),                     // 65 digits
        [&good[..20], b" ", &good[20..]].concat(), // space inside
        [&good[..good.len() - 1], b"g"].concat(),  // not hex
    ];
    for value in cases {
        assert_eq!(
            hex.signature(&head(&[&value])).unwrap_err().to_string(),
            "malformed webhook signature in header `x-sig`: \
             expected `sha256=` followed by 64 lower-case hex digits",
            "{:?}",
            String::from_utf8_lossy(&value)
        );
    }
}

#[test]
fn surrounding_white_space_is_not_part_of_the_value() {
    let hex = scheme(Encoding::Hex, "");
    let good = sign(&hex, b"x");
    let padded = [b" \t", good.as_bytes(), b"\t "].concat();
    let signature = hex.signature(&head(&[&padded])).unwrap();
    assert_eq!(
        hex.verify(&signature, &Bytes::from_static(b"x")),
        Ok(Signed::RawBody)
    );
}

#[test]
fn base64_must_be_canonical_padded_standard() {
    let b64 = scheme(Encoding::Base64, "");
    let good = sign(&b64, b"x");
    let good = good.to_str().unwrap();
    assert!(b64.signature(&head(&[good.as_bytes()])).is_ok());
    let unpadded = good.trim_end_matches('=');
    let url_safe = good.replace('+', "-").replace('/', "_");
    for value in [unpadded, &url_safe, &format!("{good}="), &good[1..]] {
        if value == good {
            continue;
        }
        assert!(
            b64.signature(&head(&[value.as_bytes()])).is_err(),
            "{value}"
        );
    }
}

#[test]
fn missing_and_repeated_headers() {
    let hex = scheme(Encoding::Hex, "");
    let good = sign(&hex, b"x");
    assert!(matches!(
        hex.signature(&head(&[])),
        Err(SignatureError::Missing { .. })
    ));
    assert!(matches!(
        hex.signature(&head(&[good.as_bytes(), good.as_bytes()])),
        Err(SignatureError::Repeated { .. })
    ));
    assert!(matches!(
        hex.signature(&head(&[&[0xff, 0xfe]])),
        Err(SignatureError::Malformed { .. })
    ));
}

#[test]
fn any_configured_secret_verifies() {
    let new = Hmac::sha256("x-sig").secret("new").build().unwrap();
    let old = Hmac::sha256("x-sig").secret("old").build().unwrap();
    let both = Hmac::sha256("x-sig")
        .secrets(["new", "old"])
        .build()
        .unwrap();
    let body = Bytes::from_static(b"payload");
    for sender in [&new, &old] {
        let value = sign(sender, &body);
        let signature = both.signature(&head(&[value.as_bytes()])).unwrap();
        assert_eq!(both.verify(&signature, &body), Ok(Signed::RawBody));
    }
    let value = sign(&old, &body);
    let signature = new.signature(&head(&[value.as_bytes()])).unwrap();
    assert_eq!(new.verify(&signature, &body), Err(SignatureError::Mismatch));
}

#[test]
fn configuration_errors() {
    assert_eq!(
        Hmac::sha256("x-sig").build().unwrap_err(),
        ConfigError::NoSecret
    );
    assert_eq!(
        Hmac::sha256("x-sig")
            .secrets(["ok", ""])
            .build()
            .unwrap_err(),
        ConfigError::EmptySecret { index: 1 }
    );
    assert!(matches!(
        Hmac::sha256("bad header").secret("k").build(),
        Err(ConfigError::InvalidHeaderName { .. })
    ));
    // A prefix that cannot occur, or never at the start of a trimmed value.
    for prefix in ["a\nb", " v0=", "\tv0="] {
        assert!(matches!(
            Hmac::sha256("x-sig")
                .grammar(Grammar::prefixed(prefix))
                .secret("k")
                .build(),
            Err(ConfigError::InvalidPrefix { .. })
        ));
    }
}

#[test]
fn debug_output_never_shows_secrets() {
    let builder = Hmac::sha256("x-sig").secret("hunter2-secret");
    assert!(!format!("{builder:?}").contains("hunter2"));
    let scheme = builder.build().unwrap();
    let debug = format!("{scheme:?}");
    assert!(!debug.contains("hunter2"), "{debug}");
    assert!(debug.contains("x-sig"), "{debug}");
}

#[test]
fn reserialised_json_only_when_asked_for() {
    let signed_form = br#"{"a":1,"b":[1,2]}"#;
    let sent = Bytes::from_static(b"{ \"a\": 1.0, \"b\": [1, 2] }");
    let plain = Hmac::sha256("x-sig").secret("k").build().unwrap();
    let fallback = Hmac::sha256("x-sig")
        .secret("k")
        .signs([Part::body_or_json_stringify()])
        .build()
        .unwrap();
    let value = sign(&plain, signed_form);
    let signature = plain.signature(&head(&[value.as_bytes()])).unwrap();
    assert_eq!(
        plain.verify(&signature, &sent),
        Err(SignatureError::Mismatch)
    );
    assert_eq!(
        fallback.verify(&signature, &sent),
        Ok(Signed::Reserialized(Bytes::from_static(signed_form)))
    );
}

#[test]
fn reserialised_json_only_up_to_the_fallback_cap() {
    let signed_form = br#"{"a":1}"#;
    let sent = Bytes::from_static(b"{ \"a\" : 1 }");
    let scheme = |max: Option<usize>| {
        let part = match max {
            Some(max) => Part::BodyOrJsonStringify { max },
            None => Part::body_or_json_stringify(),
        };
        Hmac::sha256("x-sig")
            .secret("k")
            .signs([part])
            .build()
            .unwrap()
    };
    let default = scheme(None);
    let value = sign(&default, signed_form);
    let signature = default.signature(&head(&[value.as_bytes()])).unwrap();
    let reserialized = Ok(Signed::Reserialized(Bytes::from_static(signed_form)));
    assert_eq!(default.verify(&signature, &sent), reserialized);
    assert_eq!(
        scheme(Some(sent.len())).verify(&signature, &sent),
        reserialized
    );
    assert_eq!(
        scheme(Some(sent.len() - 1)).verify(&signature, &sent),
        Err(SignatureError::Mismatch)
    );
    // The default leaves room for any VideoAIditor payload, and no more than needed.
    assert_eq!(Part::DEFAULT_JSON_STRINGIFY_MAX, 256 * 1024);
}

#[test]
fn debug_never_shows_the_mac() {
    for encoding in [Encoding::Hex, Encoding::Base64] {
        let scheme = scheme(encoding, "");
        let value = sign(&scheme, b"{}");
        let signature = scheme.signature(&head(&[value.as_bytes()])).unwrap();
        let hex: String = signature
            .tags
            .iter()
            .flat_map(|tag| tag.as_slice().to_vec())
            .map(|b| format!("{b:02x}"))
            .collect();
        for debug in [format!("{signature:?}"), format!("{signature:#?}")] {
            // No four bytes of the MAC, in hex of either case, nor the header value.
            for window in hex.as_bytes().chunks(8) {
                let window = std::str::from_utf8(window).unwrap();
                assert!(!debug.contains(window), "{debug}");
                assert!(!debug.contains(&window.to_uppercase()), "{debug}");
            }
            assert!(!debug.contains(value.to_str().unwrap()), "{debug}");
        }
        assert_eq!(
            format!("{signature:?}"),
            "HmacSignature { signatures: 1, timestamp: None, .. }"
        );
    }
}

#[test]
fn base64_macs_decode_in_their_canonical_form_only() {
    use base64::Engine as _;
    let decode = |encoded: &[u8], len: usize| {
        signature::decode(Encoding::Base64, len, encoded).map(|tag| tag.as_slice().to_vec())
    };
    for len in [20, 32] {
        let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
        let encoded = base64::engine::general_purpose::STANDARD.encode(&bytes);
        assert_eq!(decode(encoded.as_bytes(), len), Some(bytes), "{len}");
    }
    // 32 bytes: 43 characters and one `=`, with `+` and `/` in them.
    let good = base64::engine::general_purpose::STANDARD.encode([0xfb; 32]);
    assert!(good.contains(['+', '/']));
    assert!(decode(good.as_bytes(), 32).is_some());
    let unpadded = good.trim_end_matches('=');
    assert_eq!(decode(unpadded.as_bytes(), 32), None);
    // The last character carries two bits past the end: set one.
    let mut trailing = good.clone().into_bytes();
    trailing[42] = b'v';
    assert_eq!(decode(&trailing, 32), None);
    let url_safe = good.replace('+', "-").replace('/', "_");
    assert_eq!(decode(url_safe.as_bytes(), 32), None);
    // A 20-byte MAC given where a 32-byte one is expected, and the other way round.
    let short = base64::engine::general_purpose::STANDARD.encode([1; 20]);
    assert_eq!(decode(short.as_bytes(), 32), None);
    assert_eq!(decode(good.as_bytes(), 20), None);
}

#[test]
fn the_vectorized_split_gives_the_pieces_slice_split_gives() {
    let long = format!("t=1,v1={},v0=x", "ab".repeat(32));
    let values = ["", ",", ",,", "t=1", "t=1,", ",t=1", "t=1,,v1=ab", &long];
    for value in values.map(str::as_bytes) {
        let ours: Vec<&[u8]> = split(value, b',').collect();
        let slices: Vec<&[u8]> = value.split(|b| *b == b',').collect();
        assert_eq!(ours, slices, "{}", String::from_utf8_lossy(value));
    }
}

#[test]
fn only_visible_ascii_is_graphic_wherever_it_sits_in_a_block() {
    for len in [0, 1, 15, 16, 17, 31, 32, 33, 80] {
        let value = vec![b'a'; len];
        assert!(all_graphic(&value), "{len} visible bytes");
        for at in 0..len {
            for byte in [b' ', b'\t', 0, 0x7f, 0x80, 0xff] {
                let mut bad = value.clone();
                bad[at] = byte;
                assert!(!all_graphic(&bad), "byte {byte:#x} at {at} of {len}");
            }
        }
    }
    assert!(all_graphic(b"!~"));
}
