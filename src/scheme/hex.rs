//! Lower-case hexadecimal: decoding a MAC into a stack buffer, a table lookup per digit, and the
//! crate's one encoder.

/// Appends `bytes` to `out` as lower-case hex digits.
pub(crate) fn encode_lower(bytes: &[u8], out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.reserve(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
}

/// The value of each byte as a lower-case hex digit; `INVALID` for every other byte.
const DIGITS: [u8; 256] = {
    let mut table = [INVALID; 256];
    let mut c = 0;
    while c < 256 {
        let byte = c as u8;
        table[c] = match byte {
            b'0'..=b'9' => byte - b'0',
            b'a'..=b'f' => byte - b'a' + 10,
            _ => INVALID,
        };
        c += 1;
    }
    table
};

/// Marks a byte that is not a lower-case hex digit: any bit of the high nibble set.
const INVALID: u8 = 0xf0;

/// Decodes `encoded`, exactly `2 * out.len()` lower-case hex digits, into `out`. Returns `false`
/// (with `out` partly written) when the length is wrong or any byte is not a lower-case digit.
///
/// Branch-light: every pair is looked up and combined, and the invalid marks are or-ed together
/// and checked once at the end.
pub(super) fn decode_lower(encoded: &[u8], out: &mut [u8]) -> bool {
    if encoded.len() != out.len() * 2 {
        return false;
    }
    let mut marks = 0u8;
    for (out, pair) in out.iter_mut().zip(encoded.chunks_exact(2)) {
        let (high, low) = (DIGITS[usize::from(pair[0])], DIGITS[usize::from(pair[1])]);
        marks |= high | low;
        *out = (high << 4) | (low & 0x0f);
    }
    marks & INVALID == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_lower_case_and_refuses_everything_else() {
        let mut out = [0u8; 3];
        assert!(decode_lower(b"00ff9a", &mut out));
        assert_eq!(out, [0x00, 0xff, 0x9a]);
        for bad in [
            &b"00FF9a"[..],
            b"00ff9g",
            b"00ff9",
            b"00ff9a0",
            b" 0ff9a",
            b"00ff9\xff",
        ] {
            assert!(!decode_lower(bad, &mut out), "{bad:?}");
        }
    }

    #[test]
    fn every_byte_is_classified_as_the_plain_match_does() {
        for byte in 0..=255u8 {
            let expected = match byte {
                b'0'..=b'9' => Some(byte - b'0'),
                b'a'..=b'f' => Some(byte - b'a' + 10),
                _ => None,
            };
            let mut out = [0u8; 1];
            let ok = decode_lower(&[b'0', byte], &mut out);
            assert_eq!(ok.then_some(out[0]), expected, "{byte:#x}");
            let ok = decode_lower(&[byte, b'0'], &mut out);
            assert_eq!(ok.then_some(out[0] >> 4), expected, "{byte:#x}");
        }
    }
}
