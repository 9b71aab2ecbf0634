//! Bodies and helpers shared by the `verify` and `layer` benches (and the `bench_server` example).

#![allow(dead_code, unreachable_pub)]

use std::{
    future::Future,
    pin::pin,
    task::{Context, Poll, Waker},
};

/// The secret every bench signs with.
pub const SECRET: &str = "whsec_bench_0123456789abcdef";

/// The body sizes the verification benches run at.
pub const SIZES: [(usize, &str); 4] = [
    (64, "64 B"),
    (1024, "1 KiB"),
    (16 * 1024, "16 KiB"),
    (1024 * 1024, "1 MiB"),
];

/// Pads the JSON text `head + pad + tail` with `x` so that it is exactly `len` bytes long (or
/// as short as it can be, when `len` is smaller than `head + tail`).
fn padded(head: &str, tail: &str, len: usize) -> String {
    let pad = len.saturating_sub(head.len() + tail.len());
    let mut body = String::with_capacity(head.len() + pad + tail.len());
    body.push_str(head);
    body.extend(std::iter::repeat_n('x', pad));
    body.push_str(tail);
    body
}

/// A VideoNest `video.processed` body of exactly `len` bytes (at least 64) with `data.id = id`:
/// the document's fields, the rest of the length in `data.description`.
pub fn videonest_body(len: usize, id: &str) -> String {
    let full = format!(
        r#"{{"event":"video.processed","timestamp":"2026-03-30T10:15:00Z","data":{{"id":"{id}","title":"My Video Title","status":"ready","duration":142,"channel_id":"ch_abc123","description":""#
    );
    let tail = r#""}}"#;
    if full.len() + tail.len() <= len {
        return padded(&full, tail, len);
    }
    padded(
        &format!(r#"{{"event":"video.processed","data":{{"id":"{id}","d":""#),
        tail,
        len,
    )
}

/// A VideoAIditor `render.completed` body of exactly `len` bytes (at least 64), compact as
/// `JSON.stringify` writes it (so the raw bytes are what is signed), with `data._id = id`.
pub fn videoaiditor_body(len: usize, id: &str) -> String {
    let full = format!(
        r#"{{"event":"render.completed","data":{{"_id":"{id}","status":"completed","outputUrl":"https://cdn.example.com/video.mp4","error":"","videoId":"video-id","videoVersion":1,"createdAt":"2024-03-20T10:30:00Z","updatedAt":"2024-03-20T10:31:00Z","videoData":{{"description":""#
    );
    let tail = r#""}}}"#;
    if full.len() + tail.len() <= len {
        return padded(&full, tail, len);
    }
    padded(
        &format!(r#"{{"event":"render.completed","data":{{"_id":"{id}","d":""#),
        r#""}}"#,
        len,
    )
}

/// The output of a future that is ready at once (the services the benches drive are: a `Full`
/// body, a ready inner service, `MemoryStore`).
pub fn now<F: Future>(future: F) -> F::Output {
    match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the bench expects a future that is ready at once"),
    }
}
