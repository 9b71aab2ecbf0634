//! Exact JavaScript `JSON.stringify(JSON.parse(text))`, for providers that sign the re-serialised
//! payload rather than the bytes they send.
//!
//! `text` is the body decoded the way Node's `Buffer#toString("utf8")` does (invalid UTF-8 becomes
//! U+FFFD, a byte-order mark is kept, and so makes `JSON.parse` fail). The result reproduces V8:
//!
//! - objects list integer-like keys ("array indices", `0` to `4294967294` written canonically)
//!   first in ascending order, then the other keys in first-insertion order; a repeated key keeps
//!   the position of its first occurrence and the value of its last;
//! - numbers become the nearest double and print as `Number#toString` does (shortest round-trip
//!   digits, the even one of two equally near, exponent form below 1e-6 and from 1e21, `-0` as
//!   `0`, overflow to infinity as `null`), so integers above 2^53 lose precision exactly as they do
//!   in JavaScript;
//! - strings are sequences of UTF-16 code units, printed with `JSON.stringify`'s escapes (`\"`,
//!   `\\`, `\b`, `\f`, `\n`, `\r`, `\t`, `\u00xx` for other controls, `\udxxx` for lone surrogates)
//!   and everything else raw, so `\/` and `\u00e9` come out unescaped and surrogate pairs become
//!   UTF-8.
//!
//! Nesting deeper than [`MAX_DEPTH`] is refused, so no input can exhaust the stack; time and memory
//! are linear in the input.

use std::{collections::HashMap, fmt::Write as _};

/// The deepest nesting of arrays and objects accepted (serde_json's default recursion limit too).
pub(crate) const MAX_DEPTH: usize = 128;

/// The bytes `JSON.stringify(JSON.parse(body.toString("utf8")))` produces in JavaScript, or `None`
/// where `JSON.parse` would throw or the nesting is deeper than [`MAX_DEPTH`].
pub(crate) fn stringify_parsed(body: &[u8]) -> Option<Vec<u8>> {
    let text = String::from_utf8_lossy(body);
    let mut parser = Parser {
        input: text.as_bytes(),
        pos: 0,
        depth: 0,
    };
    parser.skip_white_space();
    let value = parser.value()?;
    parser.skip_white_space();
    if parser.pos != parser.input.len() {
        return None;
    }
    let mut out = Vec::with_capacity(body.len());
    value.write(&mut out);
    Some(out)
}

/// A parsed value. Scalars and keys are kept in their final, already-escaped output form; since
/// that form is canonical, two keys are the same JavaScript string exactly when their bytes are
/// equal.
enum Value {
    Scalar(Vec<u8>),
    Array(Vec<Value>),
    Object(Vec<(Vec<u8>, Value)>),
}

impl Value {
    fn write(&self, out: &mut Vec<u8>) {
        match self {
            Self::Scalar(bytes) => out.extend_from_slice(bytes),
            Self::Array(items) => {
                out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    item.write(out);
                }
                out.push(b']');
            }
            Self::Object(members) => {
                let mut indices: Vec<(u32, usize)> = members
                    .iter()
                    .enumerate()
                    .filter_map(|(i, (key, _))| array_index(key).map(|index| (index, i)))
                    .collect();
                indices.sort_unstable();
                let others = members
                    .iter()
                    .enumerate()
                    .filter(|(_, (key, _))| array_index(key).is_none())
                    .map(|(i, _)| i);
                out.push(b'{');
                for (n, i) in indices.iter().map(|&(_, i)| i).chain(others).enumerate() {
                    if n > 0 {
                        out.push(b',');
                    }
                    let (key, value) = &members[i];
                    out.extend_from_slice(key);
                    out.push(b':');
                    value.write(out);
                }
                out.push(b'}');
            }
        }
    }
}

/// The numeric value of a quoted key that is a JavaScript array index: the canonical decimal form
/// of an integer from 0 to 2^32 - 2.
fn array_index(quoted: &[u8]) -> Option<u32> {
    let digits = &quoted[1..quoted.len() - 1];
    if digits.is_empty()
        || digits.len() > 10
        || !digits.iter().all(u8::is_ascii_digit)
        || (digits[0] == b'0' && digits.len() > 1)
    {
        return None;
    }
    let value = digits
        .iter()
        .fold(0u64, |acc, d| acc * 10 + u64::from(d - b'0'));
    u32::try_from(value).ok().filter(|&v| v != u32::MAX)
}

struct Parser<'a> {
    input: &'a [u8],
    pos: usize,
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.input.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.pos += 1;
        Some(byte)
    }

    fn eat(&mut self, byte: u8) -> bool {
        let found = self.peek() == Some(byte);
        self.pos += usize::from(found);
        found
    }

    fn skip_white_space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn value(&mut self) -> Option<Value> {
        match self.peek()? {
            b'{' => self.nested(Self::object),
            b'[' => self.nested(Self::array),
            b'"' => self.string().map(Value::Scalar),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.number().map(Value::Scalar),
            _ => None,
        }
    }

    fn nested(&mut self, parse: fn(&mut Self) -> Option<Value>) -> Option<Value> {
        if self.depth == MAX_DEPTH {
            return None;
        }
        self.depth += 1;
        let value = parse(self);
        self.depth -= 1;
        value
    }

    fn literal(&mut self, word: &'static [u8]) -> Option<Value> {
        if !self.input[self.pos..].starts_with(word) {
            return None;
        }
        self.pos += word.len();
        Some(Value::Scalar(word.to_vec()))
    }

    fn array(&mut self) -> Option<Value> {
        self.pos += 1; // '['
        let mut items = Vec::new();
        self.skip_white_space();
        if self.eat(b']') {
            return Some(Value::Array(items));
        }
        loop {
            self.skip_white_space();
            items.push(self.value()?);
            self.skip_white_space();
            match self.next()? {
                b',' => {}
                b']' => return Some(Value::Array(items)),
                _ => return None,
            }
        }
    }

    fn object(&mut self) -> Option<Value> {
        self.pos += 1; // '{'
        let mut members: Vec<(Vec<u8>, Value)> = Vec::new();
        let mut positions: HashMap<Vec<u8>, usize> = HashMap::new();
        self.skip_white_space();
        if self.eat(b'}') {
            return Some(Value::Object(members));
        }
        loop {
            self.skip_white_space();
            if self.peek()? != b'"' {
                return None;
            }
            let key = self.string()?;
            self.skip_white_space();
            if !self.eat(b':') {
                return None;
            }
            self.skip_white_space();
            let value = self.value()?;
            match positions.get(&key) {
                // A repeated key keeps its first position and takes the last value.
                Some(&i) => members[i].1 = value,
                None => {
                    positions.insert(key.clone(), members.len());
                    members.push((key, value));
                }
            }
            self.skip_white_space();
            match self.next()? {
                b',' => {}
                b'}' => return Some(Value::Object(members)),
                _ => return None,
            }
        }
    }

    /// Parses a string literal into its `JSON.stringify` form, quotes included.
    fn string(&mut self) -> Option<Vec<u8>> {
        self.pos += 1; // '"'
        let mut out = vec![b'"'];
        // A high surrogate from a `\u` escape, waiting to see whether a low one follows.
        let mut high: Option<u16> = None;
        loop {
            let byte = self.next()?;
            match byte {
                b'"' => {
                    flush_surrogate(&mut high, &mut out);
                    out.push(b'"');
                    return Some(out);
                }
                b'\\' => {
                    let unit = match self.next()? {
                        b'"' => 0x22,
                        b'\\' => 0x5c,
                        b'/' => 0x2f,
                        b'b' => 0x08,
                        b'f' => 0x0c,
                        b'n' => 0x0a,
                        b'r' => 0x0d,
                        b't' => 0x09,
                        b'u' => self.hex4()?,
                        _ => return None,
                    };
                    push_code_unit(unit, &mut high, &mut out);
                }
                0x00..=0x1f => return None,
                _ => {
                    flush_surrogate(&mut high, &mut out);
                    // Raw characters need no escaping unless they are `"` or `\` (handled above)
                    // or controls (refused above); multi-byte UTF-8 is copied byte by byte.
                    out.push(byte);
                }
            }
        }
    }

    fn hex4(&mut self) -> Option<u16> {
        let digits = self.input.get(self.pos..self.pos + 4)?;
        self.pos += 4;
        digits.iter().try_fold(0u16, |acc, &d| {
            let v = char::from(d).to_digit(16)?;
            Some(acc << 4 | v as u16)
        })
    }

    /// Parses a number token and prints it the way JavaScript does.
    fn number(&mut self) -> Option<Vec<u8>> {
        let start = self.pos;
        self.eat(b'-');
        match self.next()? {
            b'0' => {}
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if self.eat(b'.') {
            self.digits1()?;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if !self.eat(b'+') {
                self.eat(b'-');
            }
            self.digits1()?;
        }
        let token = std::str::from_utf8(&self.input[start..self.pos]).ok()?;
        let mut out = NumberBuf::default();
        write_js_number(token.parse::<f64>().ok()?, &mut out);
        Some(out.as_bytes().to_vec())
    }

    fn digits(&mut self) {
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
    }

    fn digits1(&mut self) -> Option<()> {
        let start = self.pos;
        self.digits();
        (self.pos > start).then_some(())
    }
}

/// Appends one UTF-16 code unit from an escape, pairing surrogates where JavaScript would.
fn push_code_unit(unit: u16, high: &mut Option<u16>, out: &mut Vec<u8>) {
    if let Some(h) = high.take() {
        if (0xdc00..=0xdfff).contains(&unit) {
            let code = 0x10000 + ((u32::from(h) - 0xd800) << 10) + (u32::from(unit) - 0xdc00);
            let c = char::from_u32(code).expect("a surrogate pair is a valid code point");
            out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
            return;
        }
        escape_unit(h, out);
    }
    match unit {
        0xd800..=0xdbff => *high = Some(unit),
        0xdc00..=0xdfff => escape_unit(unit, out),
        _ => {
            let c = char::from_u32(u32::from(unit)).expect("not a surrogate");
            match c {
                '"' => out.extend_from_slice(b"\\\""),
                '\\' => out.extend_from_slice(b"\\\\"),
                '\u{08}' => out.extend_from_slice(b"\\b"),
                '\u{0c}' => out.extend_from_slice(b"\\f"),
                '\n' => out.extend_from_slice(b"\\n"),
                '\r' => out.extend_from_slice(b"\\r"),
                '\t' => out.extend_from_slice(b"\\t"),
                '\u{00}'..='\u{1f}' => escape_unit(unit, out),
                _ => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
            }
        }
    }
}

/// Writes a high surrogate that no low surrogate followed, as JavaScript does: escaped.
fn flush_surrogate(high: &mut Option<u16>, out: &mut Vec<u8>) {
    if let Some(h) = high.take() {
        escape_unit(h, out);
    }
}

/// `\uxxxx` with lower-case hex digits.
fn escape_unit(unit: u16, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.extend_from_slice(b"\\u");
    for shift in [12, 8, 4, 0] {
        out.push(HEX[usize::from((unit >> shift) & 0xf)]);
    }
}

/// A stack buffer large enough for any number `Number::toString` prints (at most 25 bytes, as in
/// `-1.2345678901234567e-308` or `-0.000001234567890123456`) and for Rust's `{:e}` form.
#[derive(Default)]
struct NumberBuf {
    bytes: [u8; 32],
    len: usize,
}

impl NumberBuf {
    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    fn push(&mut self, byte: u8) {
        self.bytes[self.len] = byte;
        self.len += 1;
    }

    fn extend(&mut self, bytes: &[u8]) {
        self.bytes[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }

    fn zeros(&mut self, n: usize) {
        self.bytes[self.len..self.len + n].fill(b'0');
        self.len += n;
    }
}

impl std::fmt::Write for NumberBuf {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let bytes = s.as_bytes();
        if self.len + bytes.len() > self.bytes.len() {
            return Err(std::fmt::Error);
        }
        self.extend(bytes);
        Ok(())
    }
}

/// ECMAScript `Number::toString(x)` (radix 10), with JSON's `null` for non-finite values.
fn write_js_number(x: f64, out: &mut NumberBuf) {
    if !x.is_finite() {
        out.extend(b"null");
        return;
    }
    if x == 0.0 {
        out.push(b'0');
        return;
    }
    if x < 0.0 {
        out.push(b'-');
    }
    let (mut digits, mut exponent) = shortest_digits(x.abs());
    if let Some((even, even_exponent)) = even_of_tie(x.abs(), digits.as_bytes(), exponent) {
        digits = NumberBuf::default();
        write!(digits, "{even}").expect("17 digits fit");
        exponent = even_exponent;
    }
    // `digits` has k (at most 17) digits, the first at 10^(n - 1).
    let digits = digits.as_bytes();
    let k = digits.len() as i32;
    let n = exponent + k;
    if k <= n && n <= 21 {
        out.extend(digits);
        out.zeros((n - k) as usize);
    } else if 0 < n && n <= 21 {
        out.extend(&digits[..n as usize]);
        out.push(b'.');
        out.extend(&digits[n as usize..]);
    } else if -6 < n && n <= 0 {
        out.extend(b"0.");
        out.zeros((-n) as usize);
        out.extend(digits);
    } else {
        out.push(digits[0]);
        if k > 1 {
            out.push(b'.');
            out.extend(&digits[1..]);
        }
        out.push(b'e');
        out.push(if n > 0 { b'+' } else { b'-' });
        write!(out, "{}", (n - 1).unsigned_abs()).expect("three digits fit");
    }
}

/// The shortest digits that round-trip to the positive finite `x`, without trailing zeros, and
/// the power of ten of the last one: what Rust's `{:e}` prints. Where two such digit strings are
/// equally near `x`, this may be either; see [`even_of_tie`].
fn shortest_digits(x: f64) -> (NumberBuf, i32) {
    let mut text = NumberBuf::default();
    write!(text, "{x:e}").expect("a double's `{:e}` form fits in 32 bytes");
    let mut digits = NumberBuf::default();
    let mut exponent: i32 = 0;
    let mut negative = false;
    let mut in_exponent = false;
    for &b in text.as_bytes() {
        match b {
            b'e' => in_exponent = true,
            b'-' => negative = true,
            b'.' => {}
            _ if in_exponent => exponent = exponent * 10 + i32::from(b - b'0'),
            _ => digits.push(b),
        }
    }
    let exponent = if negative { -exponent } else { exponent };
    let count = digits.len as i32;
    (digits, exponent - (count - 1))
}

/// ECMAScript prints, of two shortest digit strings equally near `x`, the even one. When `digits`
/// (`d`, odd) scaled by `10^k` is one of two such strings, returns the other, `d ± 1`.
///
/// Write `x = q · 2^f` with `q` odd. `x` is halfway between `(d - 1) · 10^k` and `d · 10^k` (or
/// `d · 10^k` and `(d + 1) · 10^k`) exactly when `2x = (2d ∓ 1) · 10^k`, that is
/// `q · 2^(f + 1) = (2d ∓ 1) · 5^k · 2^k`. As `2d ∓ 1` and `q` are odd, this needs `k = f + 1`,
/// and then `q = (2d ∓ 1) · 5^k` for `k ≥ 0` or `(2d ∓ 1) = q · 5^-k` for `k < 0`. With
/// `1 ≤ q < 2^53` and `2d + 1 < 2^58` (`d` has at most 17 digits), that can hold only for
/// `-25 < k < 23`, where both sides stay below 2^117, so the comparison is exact in `u128`. Every
/// other double, subnormals and all whose exact value has many more digits than its shortest form,
/// returns at the first tests, for the cost of a few integer operations.
///
/// The other candidate is at the same distance from `x`, so it rounds to `x` too unless `x` is a
/// power of two (whose neighbour below is nearer): parsing it settles that.
fn even_of_tie(x: f64, digits: &[u8], k: i32) -> Option<(u64, i32)> {
    if digits.last()? % 2 == 0 {
        return None;
    }
    let bits = x.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    let fraction = bits & ((1 << 52) - 1);
    let (m, e) = if biased == 0 {
        (fraction, -1074)
    } else {
        (fraction | 1 << 52, biased - 1075)
    };
    let zeros = m.trailing_zeros();
    let (q, f) = (u128::from(m >> zeros), e + zeros as i32);
    if k != f + 1 || !(-25 < k && k < 23) {
        return None;
    }
    let d = digits
        .iter()
        .fold(0u64, |d, &digit| d * 10 + u64::from(digit - b'0'));
    let five = 5u128.pow(k.unsigned_abs());
    let halfway = |twice: u128| {
        if k >= 0 {
            q == twice * five
        } else {
            twice == q * five
        }
    };
    let twice = 2 * u128::from(d);
    let (mut other, mut k) = if halfway(twice - 1) {
        (d - 1, k)
    } else if halfway(twice + 1) {
        (d + 1, k)
    } else {
        return None;
    };
    if other == 0 {
        return None;
    }
    // Cannot happen when `other` round-trips (a shorter string would have been the shortest), but
    // keeps the digits canonical whatever.
    while other % 10 == 0 {
        other /= 10;
        k += 1;
    }
    let mut text = NumberBuf::default();
    write!(text, "{other}e{k}").expect("fits");
    let round_trips = std::str::from_utf8(text.as_bytes())
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        == Some(x);
    round_trips.then_some((other, k))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `JSON.stringify(JSON.parse(input))`; every expected output below was printed by Node.
    fn js(input: &[u8]) -> Option<String> {
        stringify_parsed(input).map(|out| String::from_utf8(out).expect("output is UTF-8"))
    }

    #[test]
    fn pretty_printed_provider_body_becomes_compact() {
        let body = "{\n  \"event\": \"render.completed\",\n  \"data\": {\n    \"_id\": \"render-id\",\n    \"status\": \"completed\",\n    \"outputUrl\": \"https://cdn.example.com/video.mp4\",\n    \"error\": \"\",\n    \"videoId\": \"video-id\",\n    \"videoVersion\": 1,\n    \"videoData\": {\n      \"title\": \"Demo\",\n      \"scenes\": 3\n    },\n    \"createdAt\": \"2024-03-20T10:30:00Z\",\n    \"updatedAt\": \"2024-03-20T10:31:00Z\"\n  }\n}";
        assert_eq!(
            js(body.as_bytes()).unwrap(),
            r#"{"event":"render.completed","data":{"_id":"render-id","status":"completed","outputUrl":"https://cdn.example.com/video.mp4","error":"","videoId":"video-id","videoVersion":1,"videoData":{"title":"Demo","scenes":3},"createdAt":"2024-03-20T10:30:00Z","updatedAt":"2024-03-20T10:31:00Z"}}"#
        );
    }

    #[test]
    fn integer_like_keys_come_first_in_ascending_order() {
        assert_eq!(
            js(br#"{"b":1,"10":"ten","2":"two","a":2,"1":"one"}"#).unwrap(),
            r#"{"1":"one","2":"two","10":"ten","b":1,"a":2}"#
        );
        // Only canonical integers up to 2^32 - 2 are array indices.
        assert_eq!(
            js(br#"{"01":1,"-1":2,"4294967295":3,"4294967294":4,"0":5}"#).unwrap(),
            r#"{"0":5,"4294967294":4,"01":1,"-1":2,"4294967295":3}"#
        );
        // An escaped digit is still a digit.
        assert_eq!(js(br#"{"b":1,"\u0031":2}"#).unwrap(), r#"{"1":2,"b":1}"#);
    }

    #[test]
    fn repeated_keys_keep_the_first_position_and_the_last_value() {
        assert_eq!(js(br#"{"a":1,"b":2,"a":3}"#).unwrap(), r#"{"a":3,"b":2}"#);
        assert_eq!(
            js(br#"{"a":1,"b":2,"\u0061":[3]}"#).unwrap(),
            r#"{"a":[3],"b":2}"#
        );
    }

    #[test]
    fn numbers_print_as_javascript_does() {
        assert_eq!(
            js(b"[1.0,1e2,1.50,-0,1E21,0.0000001,123456789012345678901234,12345678901234567890,5e-324,0.000001,1e400]").unwrap(),
            "[1,100,1.5,0,1e+21,1e-7,1.2345678901234569e+23,12345678901234567000,5e-324,0.000001,null]"
        );
        assert_eq!(
            js(b"[-1.5e-7,1e20,123.456,-0.0,9007199254740993,1e-400,0.1]").unwrap(),
            "[-1.5e-7,100000000000000000000,123.456,0,9007199254740992,0,0.1]"
        );
    }

    #[test]
    fn exact_ties_round_to_the_even_digit() {
        assert_eq!(
            js(b"[1296966906839723.25,1296966906839723.75,2.5,0.5,1e23]").unwrap(),
            "[1296966906839723.2,1296966906839723.8,2.5,0.5,1e+23]"
        );
        // Exact binary fractions halfway between two shortest candidates, where Rust's shortest
        // form ends in 3.
        assert_eq!(
            js(b"[8.7818756103515625,97257.733642578125,789899550.70703125,8796093054599.563]")
                .unwrap(),
            "[8.781875610351562,97257.73364257812,789899550.7070312,8796093054599.562]"
        );
        // 2^-24 is halfway between ...062e-23 and ...063e-23, but its lower neighbour is nearer
        // (a power of two), so only ...063 rounds back to it.
        assert_eq!(
            js(b"[5.9604644775390625e-8]").unwrap(),
            "[5.960464477539063e-8]"
        );
    }

    #[test]
    fn subnormals_extremes_and_large_integers() {
        assert_eq!(
            js(b"[5e-324,1e-323,7.07e-322,4.9406564584124654e-324,2.225073858507201e-308,2.2250738585072014e-308,1.7976931348623157e308]").unwrap(),
            "[5e-324,1e-323,7.07e-322,5e-324,2.225073858507201e-308,2.2250738585072014e-308,1.7976931348623157e+308]"
        );
        assert_eq!(
            js(b"[9007199254740991,9007199254740993,9007199254740995,18014398509481985,4503599627370497.5,123456789012345678901234567890,1e21,9.5,1e20,9e20]").unwrap(),
            "[9007199254740991,9007199254740992,9007199254740996,18014398509481984,4503599627370498,1.2345678901234568e+29,1e+21,9.5,100000000000000000000,900000000000000000000]"
        );
    }

    #[test]
    fn ties_are_decided_exactly() {
        let tie = |x: f64| {
            let (digits, exponent) = shortest_digits(x);
            even_of_tie(x, digits.as_bytes(), exponent)
        };
        // 1296966906839723.25 = (2 · 12969669068397233 - 1) · 10^-1 / 2.
        let x = 1296966906839723.0 + 0.25;
        assert_eq!(tie(x), Some((12969669068397232, -1)));
        // Not ties: exactly representable in the shortest form, or far from halfway.
        assert_eq!(tie(1296966906839723.5), None);
        assert_eq!(tie(0.1), None);
        // Halfway, but the other candidate does not round back (2^-24 is a power of two).
        assert_eq!(tie(2f64.powi(-24)), None);
        // Subnormals and large exponents return at the first test.
        for x in [
            5e-324,
            7.07e-322,
            2.225073858507201e-308,
            1e300,
            f64::MAX,
            2f64.powi(60),
        ] {
            assert_eq!(tie(x), None, "{x:e}");
        }
    }

    #[test]
    fn strings_are_escaped_as_javascript_does() {
        assert_eq!(
            js(br#""\u00e9\/\ud83d\ude00\ud800\u2028\u0001\u007f""#).unwrap(),
            "\"\u{e9}/\u{1f600}\\ud800\u{2028}\\u0001\u{7f}\""
        );
        assert_eq!(
            js(br#""\b\f\n\r\t\"\\\u0008\u001F\uDE00x""#).unwrap(),
            r#""\b\f\n\r\t\"\\\b\u001f\ude00x""#
        );
        // A high surrogate followed by a non-surrogate escape stays lone.
        assert_eq!(js(br#""\ud800\u0041""#).unwrap(), r#""\ud800A""#);
    }

    #[test]
    fn invalid_utf8_becomes_replacement_characters_and_a_bom_is_refused() {
        assert_eq!(js(b"\"a\xffb\xe2\x82\"").unwrap(), "\"a\u{fffd}b\u{fffd}\"");
        assert_eq!(js(b"\xef\xbb\xbf{}"), None);
    }

    #[test]
    fn whatever_json_parse_refuses_is_none() {
        for input in [
            &b""[..],
            b"   ",
            b"[1,]",
            b"{'a':1}",
            b"01",
            b"1.",
            b".5",
            b"+1",
            b"NaN",
            b"\"a\tb\"",
            b"\"abc",
            b"{\"a\" 1}",
            b"[1] 2",
            b"tru",
            b"\"\\x\"",
            b"\"\\u12\"",
            b"\x0c1",
        ] {
            assert_eq!(js(input), None, "{:?}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn top_level_scalars_and_white_space() {
        assert_eq!(js(b" \t\r\n 42 \n").unwrap(), "42");
        assert_eq!(js(b"\"x\"").unwrap(), "\"x\"");
        assert_eq!(js(b"null").unwrap(), "null");
        assert_eq!(js(b"[ ]").unwrap(), "[]");
        assert_eq!(js(b"{ }").unwrap(), "{}");
    }

    #[test]
    fn nesting_is_bounded() {
        let at_limit = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert_eq!(js(at_limit.as_bytes()).unwrap(), at_limit);
        let over = format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1));
        assert_eq!(js(over.as_bytes()), None);
        // Far deeper input is refused without exhausting the stack.
        assert_eq!(js("[".repeat(1_000_000).as_bytes()), None);
    }

    #[test]
    fn many_repeated_keys_stay_linear() {
        let mut body = String::from("{");
        for i in 0..50_000 {
            body.push_str(&format!("\"k{}\":{i},", i % 1000));
        }
        body.push_str("\"end\":0}");
        let out = js(body.as_bytes()).unwrap();
        assert!(
            out.starts_with("{\"k0\":49000,\"k1\":49001,"),
            "{}",
            &out[..40]
        );
    }
}
