//! JSON bodies shaped to be expensive for the `JSON.stringify(JSON.parse(body))` fallback, shared by
//! the fallback benchmark (`benches/js_json.rs`) and the allocation-budget test
//! (`tests/fallback_budget.rs`).
//!
//! Each generator returns a valid JSON body (for `JSON.parse`) of about `size` bytes, never more.
#![allow(dead_code)]

/// Makes a body of about the given size.
pub(crate) type Generator = fn(usize) -> Vec<u8>;

/// Every shape, by name.
pub(crate) const SHAPES: &[(&str, Generator)] = &[
    ("subnormal_7.07e-322", subnormal_array),
    ("doubles_ties_subnormals", doubles),
    ("short_exponents_1e20", short_exponents),
    ("long_fractions", long_fractions),
    ("deep_arrays", deep_arrays),
    ("deep_objects_reordered", deep_objects_reordered),
    ("tiny_objects", tiny_objects),
    ("many_keys", many_keys),
    ("heavy_escaping", heavy_escaping),
    ("invalid_utf8", invalid_utf8),
];

/// A small deterministic generator (xorshift64*), so every run sees the same bodies.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed | 1)
    }

    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// `[item,item,…]` with as many items from `item` as fit in `size` bytes.
fn array_of(size: usize, mut item: impl FnMut(&mut Vec<u8>)) -> Vec<u8> {
    let mut body = Vec::with_capacity(size);
    body.push(b'[');
    let mut next = Vec::new();
    loop {
        next.clear();
        if body.len() > 1 {
            next.push(b',');
        }
        item(&mut next);
        if body.len() + next.len() + 1 > size {
            break;
        }
        body.extend_from_slice(&next);
    }
    body.push(b']');
    body
}

/// The issue's reproducer: `[7.07e-322,7.07e-322,…]`.
pub(crate) fn subnormal_array(size: usize) -> Vec<u8> {
    array_of(size, |out| out.extend_from_slice(b"7.07e-322"))
}

/// Random doubles (any bit pattern), random subnormals written with 17 digits, exact ties between
/// two shortest candidates, powers of two, and integers around 2^53.
pub(crate) fn doubles(size: usize) -> Vec<u8> {
    let mut rng = Rng::new(0x5eed);
    array_of(size, |out| {
        let text = match rng.below(6) {
            0 => {
                let x = f64::from_bits(rng.next());
                if x.is_finite() {
                    format!("{x:e}")
                } else {
                    "1".into()
                }
            }
            1 => format!("{:.16e}", f64::from_bits(rng.below(1 << 52))),
            2 => format!("{}.25", (1u64 << 50) + rng.below(1 << 50)),
            3 => format!("{}.5", (1u64 << 51) + rng.below(1 << 51)),
            4 => format!("{:e}", 2f64.powi(rng.below(2000) as i32 - 1000)),
            _ => format!("{}", (1u64 << 53) + rng.below(1000) - 500),
        };
        out.extend_from_slice(text.as_bytes());
    })
}

/// `[1e20,9e20,…]`: the shortest input for the longest output (`100000000000000000000`).
pub(crate) fn short_exponents(size: usize) -> Vec<u8> {
    let mut i = 0u8;
    array_of(size, |out| {
        out.extend_from_slice(&[b'1' + i % 9, b'e', b'2', b'0']);
        i = i.wrapping_add(1);
    })
}

/// Numbers with hundreds of digits: random fractions, and values a hair above a halfway point
/// between two doubles, which need every digit to round correctly.
pub(crate) fn long_fractions(size: usize) -> Vec<u8> {
    let mut rng = Rng::new(0xf4ac);
    array_of(size, |out| {
        if rng.below(2) == 0 {
            out.extend_from_slice(b"0.");
            for _ in 0..300 + rng.below(300) {
                out.push(b'0' + rng.below(10) as u8);
            }
        } else {
            // 2^53 + 1 is halfway between two doubles; a trailing 1 far away decides the rounding.
            out.extend_from_slice(b"9007199254740993.");
            out.resize(out.len() + 500 + rng.below(200) as usize, b'0');
            out.extend_from_slice(b"1e-3");
        }
    })
}

/// Arrays nested 128 deep (the limit), repeated.
pub(crate) fn deep_arrays(size: usize) -> Vec<u8> {
    array_of(size, |out| {
        out.extend([b'['; 127]);
        out.push(b'1');
        out.extend([b']'; 127]);
    })
}

/// Objects nested 128 deep, every one of which must be reordered (an array-index key after another
/// key, and a repeated key), repeated.
pub(crate) fn deep_objects_reordered(size: usize) -> Vec<u8> {
    array_of(size, |out| {
        for _ in 0..126 {
            out.extend_from_slice(br#"{"b":0,"b":"#);
        }
        out.extend_from_slice(br#"{"b":1,"0":2}"#);
        for _ in 0..126 {
            out.extend_from_slice(br#","1":2}"#);
        }
    })
}

/// `[{},{"a":1},…]`: as many objects as possible, some of them reordered.
pub(crate) fn tiny_objects(size: usize) -> Vec<u8> {
    let items: [&[u8]; 5] = [
        b"{}",
        br#"{"a":1}"#,
        br#"{"b":2,"a":1}"#,
        br#"{"1":0,"0":0}"#,
        br#"{"a":1,"a":2}"#,
    ];
    let mut i = 0;
    array_of(size, |out| {
        out.extend_from_slice(items[i % items.len()]);
        i += 1;
    })
}

/// One object with very many keys: distinct keys, array-index keys in descending order, and keys
/// repeated many times.
pub(crate) fn many_keys(size: usize) -> Vec<u8> {
    let mut body = Vec::with_capacity(size);
    body.push(b'{');
    let mut i = 0u64;
    let mut index = (size / 8) as u64;
    let mut next = Vec::new();
    loop {
        next.clear();
        if body.len() > 1 {
            next.push(b',');
        }
        match i % 3 {
            0 => next.extend_from_slice(format!("\"k{i}\":{i}").as_bytes()),
            1 => {
                next.extend_from_slice(format!("\"{index}\":0").as_bytes());
                index = index.saturating_sub(1);
            }
            _ => next.extend_from_slice(format!("\"d{}\":[{i}]", i % 997).as_bytes()),
        }
        if body.len() + next.len() + 1 > size {
            break;
        }
        body.extend_from_slice(&next);
        i += 1;
    }
    body.push(b'}');
    body
}

/// Strings made mostly of escapes: `\u00e9`, surrogate pairs, lone surrogates, control escapes,
/// `\/`, and raw multi-byte UTF-8.
pub(crate) fn heavy_escaping(size: usize) -> Vec<u8> {
    let pieces: [&[u8]; 10] = [
        br"\u00e9",
        br"\ud83d\ude00",
        br"\ud800",
        br"\udc00x",
        br"\u0001",
        br#"\n\t\"\\"#,
        br"\/",
        "é😀".as_bytes(),
        br"\uD800\u0041",
        br"\u2028",
    ];
    let mut rng = Rng::new(0xe5c);
    array_of(size, |out| {
        out.push(b'"');
        for _ in 0..40 {
            out.extend_from_slice(pieces[rng.below(pieces.len() as u64) as usize]);
        }
        out.push(b'"');
    })
}

/// Strings (values and keys) full of invalid UTF-8, each byte of which becomes U+FFFD.
pub(crate) fn invalid_utf8(size: usize) -> Vec<u8> {
    let pieces: [&[u8]; 6] = [
        b"\xff",
        b"\xe2\x82",
        b"\xc0\xaf",
        b"\xed\xa0\x80",
        b"\xf0\x9f\x98",
        b"ok\xfe",
    ];
    let mut rng = Rng::new(0x17f8);
    array_of(size, |out| {
        let mut string = |out: &mut Vec<u8>, n: usize| {
            out.push(b'"');
            for _ in 0..n {
                out.extend_from_slice(pieces[rng.below(pieces.len() as u64) as usize]);
            }
            out.push(b'"');
        };
        out.push(b'{');
        string(out, 3);
        out.push(b':');
        string(out, 60);
        out.push(b'}');
    })
}

/// A typical pretty-printed VideoAIditor delivery of about 2 KiB.
pub(crate) fn provider_body() -> Vec<u8> {
    let mut scenes = String::new();
    for i in 0..20 {
        if i > 0 {
            scenes.push_str(",\n");
        }
        scenes.push_str(&format!(
            "        {{ \"index\": {i}, \"duration\": {}.5, \"caption\": \"Scene {i} \\u2014 caf\\u00e9\" }}",
            i + 2
        ));
    }
    format!(
        "{{\n  \"event\": \"render.completed\",\n  \"data\": {{\n    \"_id\": \"66f1c2d3e4a5b6c7d8e9f0a1\",\n    \"status\": \"completed\",\n    \"outputUrl\": \"https://cdn.example.com/renders/66f1c2d3e4a5b6c7d8e9f0a1/video.mp4\",\n    \"error\": \"\",\n    \"videoId\": \"video-66f1c2d3\",\n    \"videoVersion\": 3,\n    \"videoData\": {{\n      \"title\": \"Quarterly update\",\n      \"aspectRatio\": 1.7777777777777777,\n      \"scenes\": [\n{scenes}\n      ]\n    }},\n    \"createdAt\": \"2024-03-20T10:30:00.000Z\",\n    \"updatedAt\": \"2024-03-20T10:31:00.000Z\"\n  }}\n}}\n"
    )
    .into_bytes()
}
