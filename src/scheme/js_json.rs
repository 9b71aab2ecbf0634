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
//! # Cost
//!
//! This runs before the request is authenticated, so it is built to cost little on any input. It
//! works in two passes over the body and never builds a tree, a decoded copy of the body or the
//! output:
//!
//! 1. [`Stringified::parse`] checks the syntax and, for each object whose members JavaScript
//!    would reorder or merge (array-index keys out of place, repeated keys), records the offsets
//!    of the members to print, in their printed order. Other objects leave nothing behind. Keys
//!    are compared by a keyed hash of their UTF-16 code units, sorted per object, and confirmed
//!    code unit by code unit.
//! 2. [`Stringified::write`] walks the body again and hands the output to a sink in chunks of at
//!    most [`CHUNK`] bytes (except runs of string bytes longer than that, which are passed as
//!    slices of the body), jumping through the recorded offsets where an object is reordered.
//!
//! Time is O(n log n) in the body length n (the sort of each object's keys; everything else is
//! linear, and every byte is read a bounded number of times whatever the nesting). Numbers are
//! printed without allocating: an integer of at most 15 digits is copied as it is written, others
//! of at most 15 significant digits are laid out from their digits, the rest printed by ryu-js
//! from the double the standard library parses (Ryu: a bounded number of machine operations, no
//! arbitrary-precision fallback). Besides the sink's chunk, memory is 8 bytes per
//! member of the objects still open, and 4 bytes per printed member and 12 bytes per object of the
//! reordered ones. Since a member takes at least 5 bytes of body and a reordered object at least
//! 11, and no vector grows beyond what the body could need, that is at most 3.5 bytes per body
//! byte whatever the input, and nothing that grows with the body for objects printed in the order
//! they came (typical payloads). Nesting deeper than [`MAX_DEPTH`] is refused, so no input can
//! exhaust the stack.

use std::hash::{BuildHasher as _, RandomState};

/// The deepest nesting of arrays and objects accepted. (serde_json's default recursion limit is
/// the same number, but it refuses the 128th level: it accepts one level fewer.)
pub(crate) const MAX_DEPTH: usize = 128;

/// How much output [`Stringified::write`] gathers before handing it to its sink.
pub(crate) const CHUNK: usize = 8 * 1024;

/// The longest body handled: offsets are kept in 31 bits.
const MAX_INPUT: usize = (1 << 31) - 1;

/// Marks a [`Member`] whose key is an array index.
const INDEX_FLAG: u32 = 1 << 31;

/// The bytes `JSON.stringify(JSON.parse(body.toString("utf8")))` produces in JavaScript, or `None`
/// where `JSON.parse` would throw or the nesting is deeper than [`MAX_DEPTH`].
#[cfg(any(test, fuzzing))]
pub(crate) fn stringify_parsed(body: &[u8]) -> Option<Vec<u8>> {
    Some(Stringified::parse(body)?.to_vec())
}

/// A body that `JSON.parse` accepts, with what it takes to print it as `JSON.stringify` would.
pub(crate) struct Stringified<'a> {
    input: &'a [u8],
    /// The objects whose members are printed in another order than they appear (or not all of
    /// them), sorted by the offset of their `{`.
    plans: Vec<Plan>,
    /// For each plan, the offsets of the keys to print, in printed order.
    order: Vec<u32>,
}

/// How to print one reordered object: `order[first..first + len]` are its keys.
#[derive(Clone, Copy)]
struct Plan {
    object: u32,
    first: u32,
    len: u32,
}

/// An object member while its object is open: the offset of its key's opening quote (with
/// [`INDEX_FLAG`] when the key is an array index) and the index's value or a hash of the key.
/// Once the object's keys are merged, `tag` becomes the index's value or the offset of the key's
/// first occurrence, and `key` the offset of its last one.
#[derive(Clone, Copy)]
struct Member {
    key: u32,
    tag: u32,
}

impl Member {
    fn offset(self) -> usize {
        (self.key & !INDEX_FLAG) as usize
    }

    fn is_index(self) -> bool {
        self.key & INDEX_FLAG != 0
    }
}

impl<'a> Stringified<'a> {
    /// Checks `body` the way `JSON.parse(body.toString("utf8"))` does and plans the reordering of
    /// its objects. `None` where JavaScript would throw, where nesting is deeper than
    /// [`MAX_DEPTH`], or for bodies of 2 GiB and more.
    pub(crate) fn parse(body: &'a [u8]) -> Option<Self> {
        if body.len() > MAX_INPUT {
            return None;
        }
        let mut planner = Planner {
            input: body,
            pos: 0,
            depth: 0,
            members: Vec::new(),
            plans: Vec::new(),
            order: Vec::new(),
            // A member takes at least 5 bytes (`"":0,`), a reordered object at least 11
            // (`{"":0,"":0}`).
            max_members: body.len() / 5 + 1,
            max_plans: body.len() / 11 + 1,
            hasher: RandomState::new(),
        };
        planner.skip_white_space();
        planner.value()?;
        planner.skip_white_space();
        if planner.pos != body.len() {
            return None;
        }
        let Planner {
            mut plans, order, ..
        } = planner;
        plans.sort_unstable_by_key(|plan| plan.object);
        Some(Self {
            input: body,
            plans,
            order,
        })
    }

    /// Hands the output to `sink`, in order, in pieces.
    pub(crate) fn write(&self, sink: impl FnMut(&[u8])) {
        let mut emitter = Emitter {
            input: self.input,
            plans: &self.plans,
            order: &self.order,
            buf: Vec::with_capacity(CHUNK.min(self.input.len()) + 64),
            sink,
        };
        let pos = emitter.skip_white_space(0);
        emitter.value(pos);
        emitter.flush();
    }

    /// The whole output.
    pub(crate) fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.input.len());
        self.write(|chunk| out.extend_from_slice(chunk));
        out
    }
}

/// Grows `vec` by doubling, but never beyond `max` elements (what the body could ever need).
fn reserve_one<T>(vec: &mut Vec<T>, max: usize) {
    if vec.len() == vec.capacity() {
        let target = (vec.capacity() * 2).max(16).min(max).max(vec.len() + 1);
        vec.reserve_exact(target - vec.len());
    }
}

/// The first pass: syntax check and reordering plans.
struct Planner<'a> {
    input: &'a [u8],
    pos: usize,
    depth: usize,
    /// The members of every open object, innermost last.
    members: Vec<Member>,
    plans: Vec<Plan>,
    order: Vec<u32>,
    max_members: usize,
    max_plans: usize,
    hasher: RandomState,
}

impl Planner<'_> {
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

    fn value(&mut self) -> Option<()> {
        match self.peek()? {
            b'{' => self.nested(Self::object),
            b'[' => self.nested(Self::array),
            b'"' => self.string(),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    fn nested(&mut self, parse: fn(&mut Self) -> Option<()>) -> Option<()> {
        if self.depth == MAX_DEPTH {
            return None;
        }
        self.depth += 1;
        let parsed = parse(self);
        self.depth -= 1;
        parsed
    }

    fn literal(&mut self, word: &'static [u8]) -> Option<()> {
        if !self.input[self.pos..].starts_with(word) {
            return None;
        }
        self.pos += word.len();
        Some(())
    }

    fn array(&mut self) -> Option<()> {
        self.pos += 1; // '['
        self.skip_white_space();
        if self.eat(b']') {
            return Some(());
        }
        loop {
            self.skip_white_space();
            self.value()?;
            self.skip_white_space();
            match self.next()? {
                b',' => {}
                b']' => return Some(()),
                _ => return None,
            }
        }
    }

    fn object(&mut self) -> Option<()> {
        let object = self.pos;
        self.pos += 1; // '{'
        let base = self.members.len();
        // Whether the keys so far are already in JavaScript's order: array indices first, ascending.
        let mut in_order = true;
        let mut last_index = None;
        let mut other_seen = false;
        self.skip_white_space();
        if !self.eat(b'}') {
            loop {
                self.skip_white_space();
                if self.peek()? != b'"' {
                    return None;
                }
                let member = self.key()?;
                if member.is_index() {
                    in_order &= !other_seen && last_index.is_none_or(|last| last < member.tag);
                    last_index = Some(member.tag);
                } else {
                    other_seen = true;
                }
                reserve_one(&mut self.members, self.max_members);
                self.members.push(member);
                self.skip_white_space();
                if !self.eat(b':') {
                    return None;
                }
                self.skip_white_space();
                self.value()?;
                self.skip_white_space();
                match self.next()? {
                    b',' => {}
                    b'}' => break,
                    _ => return None,
                }
            }
        }
        self.close_object(object, base, in_order);
        Some(())
    }

    /// Merges repeated keys of the object at `object`, whose members are `members[base..]`, and
    /// records a plan if it is not printed as it stands.
    fn close_object(&mut self, object: usize, base: usize, in_order: bool) {
        let input = self.input;
        let members = &mut self.members[base..];
        if members.len() < 2 {
            self.members.truncate(base);
            return;
        }
        // Equal keys have equal tags and flags: sort them together, each run by offset.
        members.sort_unstable_by_key(|m| (u64::from(m.tag) << 32) | u64::from(m.key));
        let mut merged = 0;
        let mut start = 0;
        while start < members.len() {
            let run = &members[start..];
            let end = start
                + run
                    .iter()
                    .position(|m| m.tag != run[0].tag || m.is_index() != run[0].is_index())
                    .unwrap_or(run.len());
            if members[start].is_index() {
                // The same index is the same key: keep the last occurrence.
                members[merged] = Member {
                    key: members[end - 1].key,
                    tag: members[start].tag,
                };
                merged += 1;
            } else {
                // The same hash is almost always the same key; check, key by key.
                let first_of_run = merged;
                for i in start..end {
                    let member = members[i];
                    let same = (first_of_run..merged)
                        .find(|&j| same_key(input, members[j].offset(), member.offset()));
                    match same {
                        // Later in the body: this occurrence's value is the one printed.
                        Some(j) => members[j].key = member.key,
                        None => {
                            members[merged] = Member {
                                key: member.key,
                                tag: member.key,
                            };
                            merged += 1;
                        }
                    }
                }
            }
            start = end;
        }
        if merged == members.len() && in_order {
            self.members.truncate(base);
            return;
        }
        let members = &mut members[..merged];
        // Array indices first, ascending, then the other keys where they first appeared.
        members.sort_unstable_by_key(|m| {
            if m.is_index() {
                u64::from(m.tag)
            } else {
                (1 << 32) | u64::from(m.tag)
            }
        });
        let first = self.order.len() as u32;
        for member in members.iter() {
            reserve_one(&mut self.order, self.max_members);
            self.order.push(member.offset() as u32);
        }
        reserve_one(&mut self.plans, self.max_plans);
        self.plans.push(Plan {
            object: object as u32,
            first,
            len: merged as u32,
        });
        self.members.truncate(base);
    }

    /// Reads a key, returning it as an unmerged [`Member`].
    fn key(&mut self) -> Option<Member> {
        let offset = self.pos as u32;
        let mut units = Units::new(self.input, self.pos);
        let mut hasher = BlockHasher::new(self.hasher.build_hasher());
        let mut index = Some(0u64);
        let mut digits = 0;
        loop {
            match units.next_unit() {
                Step::Unit(unit) => {
                    hasher.write(&unit.to_le_bytes());
                    index = match (index, unit) {
                        (Some(value), 0x30..=0x39) if digits < 10 && (digits == 0 || value > 0) => {
                            Some(value * 10 + u64::from(unit - 0x30))
                        }
                        _ => None,
                    };
                    digits += 1;
                }
                Step::End => break,
                Step::Invalid => return None,
            }
        }
        self.pos = units.pos;
        Some(match index {
            Some(value) if digits > 0 && value < u64::from(u32::MAX) => Member {
                key: offset | INDEX_FLAG,
                tag: value as u32,
            },
            _ => {
                let hash = hasher.finish();
                Member {
                    key: offset,
                    tag: (hash ^ (hash >> 32)) as u32,
                }
            }
        })
    }

    /// Checks a string literal.
    fn string(&mut self) -> Option<()> {
        self.pos += 1; // '"'
        loop {
            match self.next()? {
                b'"' => return Some(()),
                b'\\' => match self.next()? {
                    b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {}
                    b'u' => {
                        hex4(self.input, self.pos)?;
                        self.pos += 4;
                    }
                    _ => return None,
                },
                0x00..=0x1f => return None,
                // Anything else, invalid UTF-8 included, is (or decodes to) a character.
                _ => {}
            }
        }
    }

    /// Checks a number token.
    fn number(&mut self) -> Option<()> {
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
        Some(())
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

/// The value of the four hex digits at `pos`.
fn hex4(input: &[u8], pos: usize) -> Option<u16> {
    let digits = input.get(pos..pos + 4)?;
    digits.iter().try_fold(0u16, |acc, &d| {
        let v = char::from(d).to_digit(16)?;
        Some(acc << 4 | v as u16)
    })
}

/// Feeds a hasher in fixed blocks, so that the hash depends only on the bytes and not on how they
/// were split (which `Hasher::write` does not promise).
struct BlockHasher<H> {
    hasher: H,
    block: [u8; 64],
    len: usize,
}

impl<H: std::hash::Hasher> BlockHasher<H> {
    fn new(hasher: H) -> Self {
        Self {
            hasher,
            block: [0; 64],
            len: 0,
        }
    }

    fn write(&mut self, bytes: &[u8; 2]) {
        self.block[self.len..self.len + 2].copy_from_slice(bytes);
        self.len += 2;
        if self.len == self.block.len() {
            self.hasher.write(&self.block);
            self.len = 0;
        }
    }

    fn finish(mut self) -> u64 {
        self.hasher.write(&self.block[..self.len]);
        self.hasher.finish()
    }
}

/// Whether the (valid) string literals at `a` and `b` are the same JavaScript string.
fn same_key(input: &[u8], a: usize, b: usize) -> bool {
    if a == b {
        return true;
    }
    let (mut a, mut b) = (Units::new(input, a), Units::new(input, b));
    loop {
        match (a.next_unit(), b.next_unit()) {
            (Step::Unit(x), Step::Unit(y)) if x == y => {}
            (Step::End, Step::End) => return true,
            _ => return false,
        }
    }
}

/// One step of [`Units`].
enum Step {
    Unit(u16),
    End,
    Invalid,
}

/// The UTF-16 code units of a string literal, as `JSON.parse` sees them after the body was decoded
/// with U+FFFD for invalid UTF-8. Two keys are the same JavaScript string exactly when these are
/// equal.
struct Units<'a> {
    input: &'a [u8],
    /// Past the opening quote, then past what has been read.
    pos: usize,
    /// The low half of a surrogate pair decoded from raw UTF-8, still to be returned.
    low: Option<u16>,
}

impl<'a> Units<'a> {
    /// The string literal whose opening quote is at `quote`.
    fn new(input: &'a [u8], quote: usize) -> Self {
        Self {
            input,
            pos: quote + 1,
            low: None,
        }
    }

    fn next_unit(&mut self) -> Step {
        if let Some(low) = self.low.take() {
            return Step::Unit(low);
        }
        let Some(&byte) = self.input.get(self.pos) else {
            return Step::Invalid;
        };
        self.pos += 1;
        match byte {
            b'"' => Step::End,
            b'\\' => {
                let Some(&escape) = self.input.get(self.pos) else {
                    return Step::Invalid;
                };
                self.pos += 1;
                Step::Unit(match escape {
                    b'"' => 0x22,
                    b'\\' => 0x5c,
                    b'/' => 0x2f,
                    b'b' => 0x08,
                    b'f' => 0x0c,
                    b'n' => 0x0a,
                    b'r' => 0x0d,
                    b't' => 0x09,
                    b'u' => match hex4(self.input, self.pos) {
                        Some(unit) => {
                            self.pos += 4;
                            unit
                        }
                        None => return Step::Invalid,
                    },
                    _ => return Step::Invalid,
                })
            }
            0x00..=0x1f => Step::Invalid,
            0x20..=0x7f => Step::Unit(u16::from(byte)),
            _ => {
                let Some((c, len)) = lossy_char(self.input, self.pos - 1) else {
                    return Step::Invalid;
                };
                self.pos += len - 1;
                let mut pair = [0; 2];
                let units = c.encode_utf16(&mut pair);
                if let [high, low] = *units {
                    self.low = Some(low);
                    Step::Unit(high)
                } else {
                    Step::Unit(units[0])
                }
            }
        }
    }
}

/// The character that starts at `pos` (a byte of 0x80 or more) as `String::from_utf8_lossy` reads
/// it, and how many bytes it takes: an invalid sequence, as long as WHATWG's decoder (and so Node)
/// takes it, is U+FFFD. `None` if the input ends inside the sequence.
fn lossy_char(input: &[u8], pos: usize) -> Option<(char, usize)> {
    let window = &input[pos..input.len().min(pos + 4)];
    let valid = match std::str::from_utf8(window) {
        Ok(valid) => valid,
        Err(error) if error.valid_up_to() > 0 => {
            std::str::from_utf8(&window[..error.valid_up_to()]).ok()?
        }
        Err(error) => return Some((char::REPLACEMENT_CHARACTER, error.error_len()?)),
    };
    let c = valid.chars().next()?;
    Some((c, c.len_utf8()))
}

/// The second pass: prints a body the [`Planner`] accepted, so it does no checking of its own
/// beyond what keeps it from panicking.
struct Emitter<'a, F> {
    input: &'a [u8],
    plans: &'a [Plan],
    order: &'a [u32],
    buf: Vec<u8>,
    sink: F,
}

impl<F: FnMut(&[u8])> Emitter<'_, F> {
    fn flush(&mut self) {
        if !self.buf.is_empty() {
            (self.sink)(&self.buf);
            self.buf.clear();
        }
    }

    /// Flushes once a chunk's worth has gathered.
    fn check(&mut self) {
        if self.buf.len() >= CHUNK {
            self.flush();
        }
    }

    fn put(&mut self, bytes: &[u8]) {
        if bytes.len() >= CHUNK {
            self.flush();
            (self.sink)(bytes);
        } else {
            self.buf.extend_from_slice(bytes);
            self.check();
        }
    }

    fn skip_white_space(&self, mut pos: usize) -> usize {
        while matches!(self.input.get(pos), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            pos += 1;
        }
        pos
    }

    /// Prints the value at `pos`; returns the offset just after it.
    fn value(&mut self, pos: usize) -> usize {
        let end = match self.input[pos] {
            b'{' => self.object(pos),
            b'[' => self.array(pos),
            b'"' => self.string(pos),
            b't' => self.literal(b"true", pos),
            b'f' => self.literal(b"false", pos),
            b'n' => self.literal(b"null", pos),
            _ => self.number(pos),
        };
        self.check();
        end
    }

    fn literal(&mut self, word: &[u8], pos: usize) -> usize {
        self.buf.extend_from_slice(word);
        pos + word.len()
    }

    fn array(&mut self, pos: usize) -> usize {
        self.buf.push(b'[');
        let mut pos = self.skip_white_space(pos + 1);
        if self.input[pos] != b']' {
            loop {
                pos = self.value(pos);
                pos = self.skip_white_space(pos);
                if self.input[pos] != b',' {
                    break;
                }
                self.buf.push(b',');
                pos = self.skip_white_space(pos + 1);
            }
        }
        self.buf.push(b']');
        pos + 1
    }

    fn object(&mut self, pos: usize) -> usize {
        self.buf.push(b'{');
        if let Ok(i) = self
            .plans
            .binary_search_by_key(&(pos as u32), |plan| plan.object)
        {
            let plan = self.plans[i];
            let keys = &self.order[plan.first as usize..][..plan.len as usize];
            // The member that comes last in the body is printed (a repeated key's last occurrence
            // is), and the object ends after it.
            let (mut last, mut end) = (0, pos + 1);
            for (n, &key) in keys.iter().enumerate() {
                if n > 0 {
                    self.buf.push(b',');
                }
                let after = self.member(key as usize);
                if key >= last {
                    (last, end) = (key, after);
                }
            }
            self.buf.push(b'}');
            return self.skip_white_space(end) + 1;
        }
        let mut pos = self.skip_white_space(pos + 1);
        if self.input[pos] != b'}' {
            loop {
                pos = self.member(pos);
                pos = self.skip_white_space(pos);
                if self.input[pos] != b',' {
                    break;
                }
                self.buf.push(b',');
                pos = self.skip_white_space(pos + 1);
            }
        }
        self.buf.push(b'}');
        pos + 1
    }

    /// Prints the member whose key starts at `pos`; returns the offset just after its value.
    fn member(&mut self, pos: usize) -> usize {
        let pos = self.string(pos);
        let pos = self.skip_white_space(pos);
        self.buf.push(b':');
        let pos = self.skip_white_space(pos + 1);
        self.value(pos)
    }

    /// Prints the string literal at `pos`; returns the offset just after it.
    fn string(&mut self, pos: usize) -> usize {
        self.buf.push(b'"');
        let mut pos = pos + 1;
        // A high surrogate from a `\u` escape, waiting to see whether a low one follows.
        let mut high: Option<u16> = None;
        loop {
            let run = pos
                + self.input[pos..]
                    .iter()
                    .position(|&b| b == b'"' || b == b'\\')
                    .unwrap_or(self.input.len() - pos);
            if run > pos {
                self.flush_surrogate(&mut high);
                self.raw(&self.input[pos..run]);
            }
            pos = run;
            match self.input.get(pos) {
                Some(b'\\') => {}
                _ => break,
            }
            let (unit, len) = match self.input[pos + 1] {
                b'"' => (0x22, 2),
                b'\\' => (0x5c, 2),
                b'/' => (0x2f, 2),
                b'b' => (0x08, 2),
                b'f' => (0x0c, 2),
                b'n' => (0x0a, 2),
                b'r' => (0x0d, 2),
                b't' => (0x09, 2),
                _ => (hex4(self.input, pos + 2).unwrap_or(0xfffd), 6),
            };
            pos += len;
            self.push_code_unit(unit, &mut high);
        }
        self.flush_surrogate(&mut high);
        self.buf.push(b'"');
        pos + 1
    }

    /// Prints raw string bytes (no quote, backslash or control): valid UTF-8 as it is, each
    /// invalid sequence as U+FFFD.
    fn raw(&mut self, mut bytes: &'_ [u8]) {
        loop {
            match std::str::from_utf8(bytes) {
                Ok(_) => return self.put(bytes),
                Err(error) => {
                    let (valid, rest) = bytes.split_at(error.valid_up_to());
                    self.put(valid);
                    self.put("\u{fffd}".as_bytes());
                    // Without an error length the run ends inside a sequence, which a quote or a
                    // backslash cuts short: one U+FFFD for all of it.
                    let skip = error.error_len().unwrap_or(rest.len());
                    bytes = &rest[skip..];
                    if bytes.is_empty() {
                        return;
                    }
                }
            }
        }
    }

    /// Prints one UTF-16 code unit from an escape, pairing surrogates where JavaScript would.
    fn push_code_unit(&mut self, unit: u16, high: &mut Option<u16>) {
        if let Some(h) = high.take() {
            if (0xdc00..=0xdfff).contains(&unit) {
                let code = 0x10000 + ((u32::from(h) - 0xd800) << 10) + (u32::from(unit) - 0xdc00);
                let c = char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER);
                self.buf
                    .extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                return;
            }
            escape_unit(h, &mut self.buf);
        }
        match unit {
            0xd800..=0xdbff => *high = Some(unit),
            0xdc00..=0xdfff => escape_unit(unit, &mut self.buf),
            _ => {
                let c = char::from_u32(u32::from(unit)).unwrap_or(char::REPLACEMENT_CHARACTER);
                let out = &mut self.buf;
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
        self.check();
    }

    /// Writes a high surrogate that no low surrogate followed, as JavaScript does: escaped.
    fn flush_surrogate(&mut self, high: &mut Option<u16>) {
        if let Some(h) = high.take() {
            escape_unit(h, &mut self.buf);
        }
    }

    /// Prints the number token at `pos`; returns the offset just after it. Kept out of line:
    /// inlined into [`value`](Self::value), it made deeply nested arrays 5% slower to print.
    #[inline(never)]
    fn number(&mut self, pos: usize) -> usize {
        let end = pos
            + self.input[pos..]
                .iter()
                .position(|b| !matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
                .unwrap_or(self.input.len() - pos);
        let token = &self.input[pos..end];
        if prints_as_written(token) {
            self.buf.extend_from_slice(token);
        } else {
            let mut out = NumberBuf::default();
            write_number(token, &mut out);
            self.buf.extend_from_slice(out.as_bytes());
        }
        end
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

/// A stack buffer for one number: `Number::toString` prints at most 25 bytes (as in
/// `-1.2345678901234567e-308`). [`Emitter::number`] copies it into its chunk; handing the chunk
/// itself to [`write_number`] made every level of a deeply nested body slower to print (the chunk's
/// length no longer stays in a register across the recursion).
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

    /// Appends `n` zeros, at most 20.
    fn zeros(&mut self, n: usize) {
        // A copy, where a loop of `push` is slower.
        self.extend(&[b'0'; 20][..n]);
    }
}

/// Whether `Number::toString` prints a (valid) JSON number token exactly as it is written: an
/// integer of at most 15 digits, the most common number in a webhook body. Its double is the
/// integer itself, below 1e21, which ECMAScript prints in plain digits; `-0` is not one (it
/// prints as `0`), and neither is a fraction or an exponent.
fn prints_as_written(token: &[u8]) -> bool {
    let digits = token.strip_prefix(b"-").unwrap_or(token);
    match digits {
        [b'1'..=b'9', rest @ ..] => rest.len() < 15 && rest.iter().all(u8::is_ascii_digit),
        _ => token == b"0",
    }
}

/// Prints what `JSON.stringify` gives for the double that `JSON.parse` reads from a (valid) JSON
/// number token: `Number::toString` of it, or `null` where the token overflows to infinity
/// (`1e400`). A token of at most 15 significant digits is laid out from its own digits
/// ([`write_short_number`]); any other goes through the double the standard library parses and
/// ryu-js, which prints it as ECMAScript does to the digit (shortest round-trip digits, the even
/// one of two equally near, exponent form below 1e-6 and from 1e21, `-0` as `0`).
fn write_number(token: &[u8], out: &mut NumberBuf) {
    if write_short_number(token, out) {
        return;
    }
    let x = std::str::from_utf8(token)
        .ok()
        .and_then(|token| token.parse::<f64>().ok())
        .unwrap_or(f64::NAN);
    if x.is_finite() {
        out.extend(ryu_js::Buffer::new().format_finite(x).as_bytes());
    } else {
        out.extend(b"null");
    }
}

/// Prints `Number::toString` of a number written with at most 15 significant digits and whose
/// value is 0 or lies between 1e-307 and 1e308, straight from its digits, and returns `true`;
/// returns `false`, printing nothing, for any other valid JSON number token.
///
/// Any decimal of at most 15 significant digits in the range of normal doubles comes back from
/// the nearest double when that double is rounded to 15 digits (15 is `f64::DIGITS`). So no other
/// decimal of at most 15 digits has the same nearest double: the token's own digits, without
/// trailing zeros, are the shortest that round-trip, and the only ones of their length.
fn write_short_number(token: &[u8], out: &mut NumberBuf) -> bool {
    let (negative, token) = match token.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, token),
    };
    let mut digits = [0u8; 15];
    let mut len = 0;
    // Zeros after the last nonzero digit so far: significant only if another one follows.
    let mut zeros = 0;
    // The value is 0.digits · 10^n.
    let mut n: i64 = 0;
    let mut fraction = false;
    let mut i = 0;
    while let Some(&b) = token.get(i) {
        match b {
            b'.' => fraction = true,
            b'0' if len == 0 => n -= i64::from(fraction),
            b'0'..=b'9' => {
                n += i64::from(!fraction);
                if b == b'0' {
                    zeros += 1;
                } else {
                    if len + zeros >= digits.len() {
                        return false;
                    }
                    // Rare, and `fill` would call `memset` for every digit.
                    while zeros > 0 {
                        digits[len] = b'0';
                        len += 1;
                        zeros -= 1;
                    }
                    digits[len] = b;
                    len += 1;
                }
            }
            _ => break,
        }
        i += 1;
    }
    if len == 0 {
        out.push(b'0');
        return true;
    }
    if let Some(exponent) = token.get(i + 1..) {
        let (sign, exponent) = match exponent.split_first() {
            Some((b'-', rest)) => (-1, rest),
            Some((b'+', rest)) => (1, rest),
            _ => (1, exponent),
        };
        let value = exponent.iter().fold(0i64, |value, &d| {
            (value * 10 + i64::from(d - b'0')).min(1 << 20)
        });
        n += sign * value;
    }
    if !(-306..=308).contains(&n) {
        return false;
    }
    if negative {
        out.push(b'-');
    }
    write_digits(&digits[..len], n as i32, out);
    true
}

/// Lays out `digits` (no trailing zero), the first of which is at 10^(n - 1), as
/// `Number::toString` does.
fn write_digits(digits: &[u8], n: i32, out: &mut NumberBuf) {
    let k = digits.len() as i32;
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
        // At most three digits: `n - 1` is between -307 and 307.
        let e = (n - 1).unsigned_abs();
        if e >= 100 {
            out.push(b'0' + (e / 100) as u8);
        }
        if e >= 10 {
            out.push(b'0' + (e / 10 % 10) as u8);
        }
        out.push(b'0' + (e % 10) as u8);
    }
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
    fn nested_objects_are_reordered_and_merged_at_every_level() {
        assert_eq!(
            js(br#"[{"b":{"1":1,"0":2},"0":{"b":1,"b":2}},{"1":1,"a":2,"1":3,"0":4},{"a":{"x":[1,{"2":0,"1":0}]},"b":0,"a":{"1":0,"0":0}},{ "b" : 1 , "0" : [ 1 , 2 ] , "4294967294":0, "4294967295":1}]"#).unwrap(),
            r#"[{"0":{"b":2},"b":{"0":2,"1":1}},{"0":4,"1":3,"a":2},{"a":{"0":0,"1":0},"b":0},{"0":[1,2],"4294967294":0,"b":1,"4294967295":1}]"#
        );
    }

    #[test]
    fn keys_are_the_same_when_their_code_units_are() {
        assert_eq!(
            js(r#"[{"é":1,"\u00e9":2},{"\ud83d\ude00":1,"😀":2},{"\ud800":1,"\uD800":2,"\udc00":3}]"#.as_bytes()).unwrap(),
            r#"[{"é":2},{"😀":2},{"\ud800":2,"\udc00":3}]"#
        );
        // Every invalid sequence is U+FFFD, escaped or not.
        assert_eq!(
            js(b"{\"\xff\":1,\"\xfe\":2,\"\\ufffd\":3,\"\xe2\x82\":4,\"a\xed\xa0\x80\":5,\"a\\ufffd\\ufffd\\ufffd\":6}").unwrap(),
            "{\"\u{fffd}\":4,\"a\u{fffd}\u{fffd}\u{fffd}\":6}"
        );
    }

    #[test]
    fn output_larger_than_a_chunk_is_whole() {
        let long = "x".repeat(3 * CHUNK);
        let body = format!(
            r#"{{"b":"{long}\u00e9{long}","1":[{}0]}}"#,
            "1e20,".repeat(CHUNK)
        );
        let expected = format!(
            r#"{{"1":[{}0],"b":"{long}é{long}"}}"#,
            "100000000000000000000,".repeat(CHUNK)
        );
        assert_eq!(js(body.as_bytes()).unwrap(), expected);
        let form = Stringified::parse(body.as_bytes()).unwrap();
        let mut largest = 0;
        form.write(|chunk| largest = largest.max(chunk.len()));
        // Chunks are bounded, except slices of a long run of string bytes.
        assert_eq!(largest, 3 * CHUNK);
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
    fn numbers_print_as_ecmascript_number_to_string() {
        // Every layout of `Number::toString`, the extremes, 2^53's neighbourhood and overflow;
        // each expected output was printed by Node.
        let cases: &[(&str, &str)] = &[
            ("1e21", "1e+21"),
            ("999999999999999999999", "1e+21"),
            ("1e20", "100000000000000000000"),
            ("123456789012345680000", "123456789012345680000"),
            ("1.2345e25", "1.2345e+25"),
            ("1e-7", "1e-7"),
            ("1.5e-7", "1.5e-7"),
            ("1e-6", "0.000001"),
            ("0.0000012345", "0.0000012345"),
            ("123e-20", "1.23e-18"),
            ("-0", "0"),
            ("-0.0e5", "0"),
            ("5e-324", "5e-324"),
            ("4.9e-324", "5e-324"),
            ("2e-323", "2e-323"),
            ("2.2250738585072014e-308", "2.2250738585072014e-308"),
            ("-1.2345678901234567e-308", "-1.2345678901234567e-308"),
            ("1.7976931348623157e308", "1.7976931348623157e+308"),
            ("9007199254740991", "9007199254740991"),
            ("9007199254740992", "9007199254740992"),
            ("9007199254740993", "9007199254740992"),
            ("-9007199254740993", "-9007199254740992"),
            ("18014398509481985", "18014398509481984"),
            ("4294967295", "4294967295"),
            // 0.1 + 0.2 in JavaScript.
            ("0.30000000000000004", "0.30000000000000004"),
            ("0.1", "0.1"),
            ("9.5", "9.5"),
            // Exactly halfway between two shortest candidates: the even one.
            ("1296966906839723.25", "1296966906839723.2"),
            ("1296966906839723.75", "1296966906839723.8"),
            // Halfway too, but 2^-24 is a power of two: only ...063 reads back as it.
            ("5.9604644775390625e-8", "5.960464477539063e-8"),
            ("1e400", "null"),
            ("-1e400", "null"),
        ];
        for &(token, javascript) in cases {
            assert_eq!(js(token.as_bytes()).unwrap(), javascript, "{token}");
        }
    }

    /// The number tokens outside strings in a JSON text, in order.
    fn number_tokens(text: &str) -> Vec<&str> {
        let bytes = text.as_bytes();
        let mut tokens = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'"' => {
                    i += 1;
                    while bytes[i] != b'"' {
                        i += if bytes[i] == b'\\' { 2 } else { 1 };
                    }
                    i += 1;
                }
                b'-' | b'0'..=b'9' => {
                    let start = i;
                    while i < bytes.len()
                        && matches!(bytes[i], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
                    {
                        i += 1;
                    }
                    tokens.push(&text[start..i]);
                }
                _ => i += 1,
            }
        }
        tokens
    }

    #[test]
    fn numbers_agree_with_node_on_the_recorded_fixtures() {
        // serde_json's pretty output of generated values and what Node's
        // `JSON.stringify(JSON.parse(body))` printed for it. Objects may be reordered, so the
        // numbers are compared as sorted lists: those printed here, and those ryu-js alone prints
        // from the parsed double.
        let cases: Vec<(String, String)> =
            serde_json::from_str(include_str!("../../tests/fixtures/js_stringify.json")).unwrap();
        let (mut numbers, mut fractions) = (0, 0);
        for (body, javascript) in &cases {
            let tokens = number_tokens(body);
            let mut ours: Vec<String> = tokens
                .iter()
                .map(|token| {
                    let mut out = NumberBuf::default();
                    write_number(token.as_bytes(), &mut out);
                    String::from_utf8(out.as_bytes().to_vec()).unwrap()
                })
                .collect();
            let mut ryu_js: Vec<String> = tokens
                .iter()
                .map(|token| {
                    ryu_js::Buffer::new()
                        .format(token.parse::<f64>().unwrap())
                        .to_owned()
                })
                .collect();
            let mut node = number_tokens(javascript);
            ours.sort_unstable();
            ryu_js.sort_unstable();
            node.sort_unstable();
            assert_eq!(ours, node, "{body}");
            assert_eq!(ryu_js, node, "{body}");
            numbers += node.len();
            fractions += node.iter().filter(|n| n.contains(['.', 'e'])).count();
        }
        assert!(
            numbers > 500 && fractions > 200,
            "{numbers} numbers, {fractions} fractions"
        );
    }

    #[test]
    fn short_numbers_and_plain_integers_print_as_ryu_js_prints_their_double() {
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        let mut tokens: Vec<String> = [
            "0",
            "-0",
            "0.0",
            "-0.000e5",
            "1",
            "-1",
            "10",
            "1000",
            "1e20",
            "1e21",
            "9.5e20",
            "0.000001",
            "0.0000001",
            "1.50",
            "123456789012345",
            "1234567890123456",
            "0.1e-305",
            "1e-306",
            "1e-307",
            "9.99e307",
            "1e308",
            "1e309",
            "5e-324",
            "100e-2",
            "0.00e-400",
            "1E+2",
            "-7.07e-322",
            "999999999999999e293",
        ]
        .iter()
        .map(|t| t.to_string())
        .collect();
        for _ in 0..20_000 {
            let digits: String = (0..1 + next(17))
                .map(|_| char::from(b'0' + next(10) as u8))
                .collect();
            let digits = digits.trim_start_matches('0');
            let digits = if digits.is_empty() { "0" } else { digits };
            let split = next(digits.len() as u64 + 1) as usize;
            let mut token = if split > 0 && split < digits.len() {
                format!("{}.{}", &digits[..split], &digits[split..])
            } else {
                digits.to_string()
            };
            if next(2) == 0 {
                token = format!("{token}e{}", next(660) as i64 - 330);
            }
            tokens.push(token);
        }
        let negated: Vec<String> = tokens
            .iter()
            .filter(|t| !t.starts_with('-'))
            .map(|t| format!("-{t}"))
            .collect();
        tokens.extend(negated);
        let (mut short, mut as_written) = (0, 0);
        for token in tokens {
            let x: f64 = token.parse().unwrap();
            let ryu_js = ryu_js::Buffer::new().format(x).to_owned();
            let mut fast = NumberBuf::default();
            if write_short_number(token.as_bytes(), &mut fast) {
                assert_eq!(fast.as_bytes(), ryu_js.as_bytes(), "{token}");
                short += 1;
            }
            if prints_as_written(token.as_bytes()) {
                assert_eq!(token, ryu_js);
                as_written += 1;
            }
        }
        assert!(short > 10_000 && as_written > 1_000, "{short} {as_written}");
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
