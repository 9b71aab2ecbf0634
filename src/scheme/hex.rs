//! Lower-case hexadecimal: decoding a MAC into a stack buffer in vectorized blocks, and the
//! crate's one encoder.

/// Appends `bytes` to `out` as lower-case hex digits: 32 bytes at a time, written into a
/// buffer on the stack and appended at once (pushing the digits one `char` at a time cost
/// several times more).
pub(crate) fn encode_lower(bytes: &[u8], out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.reserve(bytes.len() * 2);
    for chunk in bytes.chunks(32) {
        let mut digits = [0u8; 64];
        for (pair, byte) in digits.chunks_exact_mut(2).zip(chunk) {
            pair[0] = HEX[usize::from(byte >> 4)];
            pair[1] = HEX[usize::from(byte & 0x0f)];
        }
        // Hex digits are ASCII: always valid.
        out.push_str(std::str::from_utf8(&digits[..2 * chunk.len()]).unwrap_or_default());
    }
}

/// Decodes `encoded`, exactly `2 * out.len()` lower-case hex digits, into `out`. Returns `false`
/// (with `out` partly written) when the length is wrong or any byte is not a lower-case digit.
///
/// Thirty-two digits at a time, with no branch on the digits' values, in loops of fixed length
/// that the compiler vectorizes: every digit is classified and converted, the bytes that are not
/// digits are or-ed into one mark checked at the end. A shorter tail is padded with `'0'`.
pub(super) fn decode_lower(encoded: &[u8], out: &mut [u8]) -> bool {
    if encoded.len() != out.len() * 2 {
        return false;
    }
    let mut invalid = 0u8;
    let (blocks, digits) = encoded.as_chunks::<BLOCK>();
    let (outs, out) = out.as_chunks_mut::<{ BLOCK / 2 }>();
    for (out, block) in outs.iter_mut().zip(blocks) {
        let (bytes, bad) = decode_block(block);
        invalid |= bad;
        *out = bytes;
    }
    // The tail: twice as many digits as bytes, like the whole.
    if !digits.is_empty() {
        let mut block = [b'0'; BLOCK];
        block[..digits.len()].copy_from_slice(digits);
        let (bytes, bad) = decode_block(&block);
        invalid |= bad;
        out.copy_from_slice(&bytes[..out.len()]);
    }
    invalid == 0
}

/// Digits decoded at a time.
const BLOCK: usize = 32;

/// The bytes that a block of hex digits encodes, and a non-zero mark when any is not a
/// lower-case hex digit.
fn decode_block(block: &[u8; BLOCK]) -> ([u8; BLOCK / 2], u8) {
    let mut nibbles = [0u8; BLOCK];
    let mut invalid = 0u8;
    for (nibble, byte) in nibbles.iter_mut().zip(block) {
        let digit = byte.wrapping_sub(b'0');
        let letter = byte.wrapping_sub(b'a');
        let (is_digit, is_letter) = (digit < 10, letter < 6);
        invalid |= u8::from(!(is_digit | is_letter));
        *nibble = if is_digit {
            digit
        } else {
            letter.wrapping_add(10)
        };
    }
    let mut bytes = [0u8; BLOCK / 2];
    for (byte, pair) in bytes.iter_mut().zip(nibbles.chunks_exact(2)) {
        *byte = (pair[0] << 4) | (pair[1] & 0x0f);
    }
    (bytes, invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_lower_case_of_the_exact_length_only() {
        let mut out = [0u8; 3];
        assert!(decode_lower(b"00ff9a", &mut out));
        assert_eq!(out, [0x00, 0xff, 0x9a]);
        // Upper case, any other byte: see the test of every byte in every lane.
        assert!(!decode_lower(b"00FF9a", &mut out));
        // One digit short, one too many.
        assert!(!decode_lower(b"00ff9", &mut out));
        assert!(!decode_lower(b"00ff9a0", &mut out));
    }

    /// The value of a lower-case hex digit, as a plain match reads it.
    fn digit(byte: u8) -> Option<u8> {
        match byte {
            b'0'..=b'9' => Some(byte - b'0'),
            b'a'..=b'f' => Some(byte - b'a' + 10),
            _ => None,
        }
    }

    #[test]
    fn every_byte_in_every_lane_is_classified_as_the_plain_match_does() {
        // 20 digits: two whole words of eight and a padded tail of four, so that every lane
        // of a word and of a tail is tried with every byte.
        for at in 0..20 {
            for byte in 0..=255u8 {
                let mut encoded = *b"0123456789abcdef0a1b";
                encoded[at] = byte;
                let mut out = [0u8; 10];
                let ok = decode_lower(&encoded, &mut out);
                let expected: Option<Vec<u8>> = encoded
                    .chunks(2)
                    .map(|pair| Some((digit(pair[0])? << 4) | digit(pair[1])?))
                    .collect();
                assert_eq!(ok.then(|| out.to_vec()), expected, "{byte:#x} at {at}");
            }
        }
    }

    #[test]
    fn decodes_what_the_encoder_writes_at_every_length() {
        for len in 0..=70 {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
            let mut text = String::new();
            encode_lower(&bytes, &mut text);
            let plain: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
            assert_eq!(text, plain);
            let mut out = vec![0u8; len];
            assert!(decode_lower(text.as_bytes(), &mut out), "{len}");
            assert_eq!(out, bytes);
        }
    }
}
