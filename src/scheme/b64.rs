//! Standard base64 decoding of a MAC into a stack buffer, a table lookup per character: the
//! canonical form only (padding to a multiple of four, no bits set past the last byte), as the
//! `base64` crate's `STANDARD` engine reads it.

/// The value of each byte as a standard base64 character; `INVALID` for every other byte,
/// `=` included.
const VALUES: [u8; 256] = {
    let mut table = [INVALID; 256];
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut i = 0;
    while i < 64 {
        table[alphabet[i] as usize] = i as u8;
        i += 1;
    }
    table
};

/// Marks a byte that is not a base64 character: the high bit set.
const INVALID: u8 = 0x80;

/// Decodes `encoded`, the canonical padded base64 of exactly `out.len()` bytes, into `out`.
/// Returns `false` (with `out` partly written) for any other length, a character outside the
/// alphabet, padding that is missing, misplaced or too long, or bits set past the last byte.
///
/// Branch-light: four characters at a time are looked up and combined into three bytes, and the
/// invalid marks are or-ed together and checked once at the end.
pub(super) fn decode_canonical(encoded: &[u8], out: &mut [u8]) -> bool {
    if encoded.len() != out.len().div_ceil(3) * 4 {
        return false;
    }
    let value = |c: u8| u32::from(VALUES[usize::from(c)]);
    let groups = out.len() / 3;
    let (whole, last) = encoded.split_at(groups * 4);
    let (out_whole, out_last) = out.split_at_mut(groups * 3);
    let mut marks = 0u32;
    for (chars, bytes) in whole.chunks_exact(4).zip(out_whole.chunks_exact_mut(3)) {
        let (a, b, c, d) = (
            value(chars[0]),
            value(chars[1]),
            value(chars[2]),
            value(chars[3]),
        );
        marks |= a | b | c | d;
        let n = (a << 18) | (b << 12) | (c << 6) | d;
        bytes.copy_from_slice(&n.to_be_bytes()[1..]);
    }
    // The last group: nothing, or one or two bytes before `==` or `=`, whose unused low bits
    // must be zero.
    let tail = match (out_last.len(), last) {
        (0, []) => 0,
        (1, &[a, b, b'=', b'=']) => {
            let (a, b) = (value(a), value(b));
            marks |= a | b;
            let n = (a << 18) | (b << 12);
            out_last[0] = (n >> 16) as u8;
            n & 0xffff
        }
        (2, &[a, b, c, b'=']) => {
            let (a, b, c) = (value(a), value(b), value(c));
            marks |= a | b | c;
            let n = (a << 18) | (b << 12) | (c << 6);
            out_last[0] = (n >> 16) as u8;
            out_last[1] = (n >> 8) as u8;
            n & 0xff
        }
        _ => return false,
    };
    marks & u32::from(INVALID) == 0 && tail == 0
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use proptest::prelude::*;

    use super::*;

    /// What the `base64` crate's `STANDARD` engine decodes `encoded` to, when it is `len` bytes.
    fn reference(encoded: &[u8], len: usize) -> Option<Vec<u8>> {
        let mut buf = vec![0; len + 3];
        let n = base64::engine::general_purpose::STANDARD
            .decode_slice(encoded, &mut buf)
            .ok()?;
        (n == len && encoded.len() == len.div_ceil(3) * 4).then(|| buf[..len].to_vec())
    }

    fn ours(encoded: &[u8], len: usize) -> Option<Vec<u8>> {
        let mut out = vec![0; len];
        decode_canonical(encoded, &mut out).then_some(out)
    }

    #[test]
    fn decodes_what_the_base64_crate_encodes() {
        for len in [0, 1, 2, 3, 20, 31, 32, 33] {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let encoded = base64::engine::general_purpose::STANDARD.encode(&bytes);
            assert_eq!(ours(encoded.as_bytes(), len), Some(bytes));
        }
    }

    #[test]
    fn refuses_non_canonical_forms() {
        // 32 bytes: 43 characters and one `=`.
        let good = base64::engine::general_purpose::STANDARD.encode([0xab; 32]);
        assert!(ours(good.as_bytes(), 32).is_some());
        let unpadded = good.trim_end_matches('=');
        assert_eq!(ours(unpadded.as_bytes(), 32), None);
        // The last character carries two bits past the end: set one.
        let mut trailing = good.clone().into_bytes();
        trailing[42] = b'v';
        assert_eq!(ours(&trailing, 32), reference(&trailing, 32));
        assert_eq!(ours(&trailing, 32), None);
        let url_safe = good.replace('+', "-").replace('/', "_");
        assert_eq!(
            ours(url_safe.as_bytes(), 32),
            reference(url_safe.as_bytes(), 32)
        );
        assert_eq!(ours(b"====", 1), None);
        assert_eq!(ours(b"AA==", 1), Some(vec![0]));
        assert_eq!(ours(b"AB==", 1), None);
    }

    proptest! {
        #[test]
        fn agrees_with_the_base64_crate(
            len in prop_oneof![Just(1usize), Just(2), Just(3), Just(20), Just(32)],
            encoded in proptest::collection::vec(
                prop_oneof![
                    8 => proptest::sample::select(
                        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".to_vec()
                    ),
                    1 => Just(b'='),
                    1 => any::<u8>(),
                ],
                0..48,
            ),
        ) {
            prop_assert_eq!(ours(&encoded, len), reference(&encoded, len));
        }

        #[test]
        fn agrees_with_the_base64_crate_at_the_right_length(
            len in prop_oneof![Just(1usize), Just(2), Just(20), Just(32)],
            seed in proptest::collection::vec(any::<u8>(), 44),
            at in 0usize..44,
            with in prop_oneof![Just(b'='), Just(b'A'), Just(b'v'), Just(b'/'), Just(b'-'), any::<u8>()],
        ) {
            // A valid encoding of some bytes, then one character changed.
            let mut encoded = base64::engine::general_purpose::STANDARD
                .encode(&seed[..len])
                .into_bytes();
            let at = at % encoded.len();
            encoded[at] = with;
            prop_assert_eq!(ours(&encoded, len), reference(&encoded, len));
        }

        #[test]
        fn decodes_any_bytes_encoded(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            let encoded = base64::engine::general_purpose::STANDARD.encode(&bytes);
            prop_assert_eq!(ours(encoded.as_bytes(), bytes.len()), Some(bytes));
        }
    }
}
