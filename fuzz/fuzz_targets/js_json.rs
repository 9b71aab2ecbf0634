//! The `JSON.stringify(JSON.parse(body))` re-serialisation that VideoAIditor's fallback runs on
//! unauthenticated bodies. For any input it must:
//!
//! - never panic;
//! - stay within a memory budget: peak extra heap at most 4 bytes per input byte plus 64 KiB
//!   (counted by the allocator below);
//! - stay within a time budget: 5 ms plus 1 µs per input byte (at least 1 MB/s even with the
//!   fuzzer's instrumentation; a case over budget is timed again before it counts, so that a
//!   preempted run does not fail). The denial of service found in review (subnormal numbers at
//!   about 80 µs each, 8 µs per byte) breaks it;
//! - print valid JSON (serde_json reads it, unless it holds a lone surrogate, which only
//!   JavaScript strings can) that is its own re-serialisation (JavaScript's form is a fixed point);
//! - agree with `serde_json` on what the value is, wherever `serde_json` reads the input: the
//!   same structure, strings and keys (the last duplicate key wins in both), and numbers equal
//!   as doubles.
#![no_main]

use std::{
    alloc::{GlobalAlloc, Layout, System},
    sync::atomic::{AtomicUsize, Ordering},
    time::{Duration, Instant},
};

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use tower_webhook::scheme::__fuzz_js_stringify as stringify;

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator, only counting sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = CURRENT.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(now, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size > layout.size() {
            let now = CURRENT.fetch_add(new_size - layout.size(), Ordering::Relaxed) + new_size
                - layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        } else {
            CURRENT.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs the re-serialisation, with its time and peak extra heap.
fn measured(data: &[u8]) -> (Option<Vec<u8>>, Duration, usize) {
    let base = CURRENT.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let started = Instant::now();
    let out = stringify(data);
    let elapsed = started.elapsed();
    let peak = PEAK.load(Ordering::Relaxed).saturating_sub(base);
    (out, elapsed, peak)
}

fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::Bool(a), Value::Bool(b)) => a == b,
        (Value::String(a), Value::String(b)) => a == b,
        (Value::Number(a), Value::Number(b)) => {
            // Both parsed correctly rounded (serde_json's `float_roundtrip`), as JavaScript does.
            a.as_f64() == b.as_f64()
        }
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(a, b)| same(a, b))
        }
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len() && a.iter().all(|(k, v)| b.get(k).is_some_and(|w| same(v, w)))
        }
        _ => false,
    }
}

fuzz_target!(|data: &[u8]| {
    let budget_time = Duration::from_millis(5) + Duration::from_micros(data.len() as u64);
    let budget_heap = 4 * data.len() + 64 * 1024;
    let (out, mut elapsed, peak) = measured(data);
    if elapsed > budget_time {
        elapsed = elapsed.min(measured(data).1);
    }
    assert!(
        elapsed <= budget_time,
        "{} bytes took {elapsed:?} (budget {budget_time:?})",
        data.len()
    );
    assert!(
        peak <= budget_heap,
        "{} bytes peaked at {peak} extra heap bytes (budget {budget_heap})",
        data.len()
    );
    let Some(out) = out else {
        return;
    };
    assert_eq!(stringify(&out).as_deref(), Some(&out[..]), "a fixed point");
    // JavaScript strings may hold lone surrogates, which `JSON.stringify` escapes as `\udxxx`
    // (the only `\ud` escapes it prints): valid JSON that serde_json (Rust strings) cannot hold.
    let lone_surrogate = out
        .windows(4)
        .any(|w| w[..3] == *b"\\ud" && matches!(w[3], b'8'..=b'9' | b'a'..=b'f'));
    if lone_surrogate {
        return;
    }
    let printed = match serde_json::from_slice::<Value>(&out) {
        Ok(printed) => printed,
        Err(err) => panic!("the output is not JSON: {err}"),
    };
    if let Ok(input) = serde_json::from_slice::<Value>(data) {
        assert!(
            same(&input, &printed),
            "not the same value: serde_json read {input} and the output is {}",
            String::from_utf8_lossy(&out)
        );
    }
});
