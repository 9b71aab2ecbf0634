//! Buffering the request body with a limit, without copying a body that arrives in one frame.

use std::{
    pin::Pin,
    task::{Context, Poll, ready},
};

use bytes::{Buf, Bytes};
use http_body::Body;

use crate::{BodyError, BoxError, Rejection};

/// How many frames one `poll` reads before yielding to the executor, so a body that always has a
/// frame ready cannot monopolise the thread.
const FRAMES_PER_POLL: usize = 64;

/// Collects data frames into one `Bytes`, refusing to grow past `limit`.
///
/// A single frame is kept as it arrived (no copy); a second frame starts one contiguous buffer.
/// Once the total would exceed the limit, the body is not polled again.
#[derive(Debug)]
pub(crate) struct Collector {
    limit: usize,
    first: Option<Bytes>,
    rest: Vec<u8>,
}

impl Collector {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            limit,
            first: None,
            rest: Vec::new(),
        }
    }

    fn len(&self) -> usize {
        if self.rest.is_empty() {
            self.first.as_ref().map_or(0, Bytes::len)
        } else {
            self.rest.len()
        }
    }

    fn push(&mut self, mut data: impl Buf) -> Result<(), Rejection> {
        let n = data.remaining();
        if n == 0 {
            return Ok(());
        }
        if n > self.limit - self.len() {
            return Err(Rejection::PayloadTooLarge { limit: self.limit });
        }
        if self.rest.is_empty() {
            match self.first.take() {
                None => {
                    self.first = Some(data.copy_to_bytes(n));
                    return Ok(());
                }
                Some(first) => {
                    self.grow(first.len() + n);
                    self.rest.extend_from_slice(&first);
                }
            }
        }
        self.grow(n);
        while data.has_remaining() {
            let chunk = data.chunk();
            let len = chunk.len();
            self.rest.extend_from_slice(chunk);
            data.advance(len);
        }
        Ok(())
    }

    /// Makes room for `additional` more bytes (within the limit, which `push` checked): the
    /// capacity doubles as the body grows, but never past the limit, so a body that stops just
    /// short of it holds at most the limit.
    fn grow(&mut self, additional: usize) {
        let needed = self.rest.len() + additional;
        if needed > self.rest.capacity() {
            let target = needed.max(self.rest.capacity() * 2).min(self.limit);
            self.rest.reserve_exact(target - self.rest.len());
        }
    }

    fn finish(&mut self) -> Bytes {
        if self.rest.is_empty() {
            self.first.take().unwrap_or_default()
        } else {
            Bytes::from(std::mem::take(&mut self.rest))
        }
    }

    /// Polls `body` until it ends, fails or goes over the limit.
    pub(crate) fn poll_collect<B>(
        &mut self,
        mut body: Pin<&mut B>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Bytes, Rejection>>
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        for _ in 0..FRAMES_PER_POLL {
            match ready!(body.as_mut().poll_frame(cx)) {
                None => return Poll::Ready(Ok(self.finish())),
                Some(Err(err)) => return Poll::Ready(Err(BodyError::new(err).into())),
                Some(Ok(frame)) => {
                    // Trailers carry nothing that is signed; they are dropped.
                    if let Ok(data) = frame.into_data()
                        && let Err(rejection) = self.push(data)
                    {
                        return Poll::Ready(Err(rejection));
                    }
                }
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use std::{collections::VecDeque, io, task::Waker};

    use http_body::Frame;
    use http_body_util::Full;

    use super::*;

    /// A body that yields the given frames, then ends.
    struct Frames(VecDeque<Result<Bytes, io::Error>>);

    impl Body for Frames {
        type Data = Bytes;
        type Error = io::Error;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
            Poll::Ready(self.0.pop_front().map(|frame| frame.map(Frame::data)))
        }
    }

    fn frames(chunks: &[&'static [u8]]) -> Frames {
        Frames(chunks.iter().map(|c| Ok(Bytes::from_static(c))).collect())
    }

    fn collect<B>(mut body: B, limit: usize) -> Result<Bytes, Rejection>
    where
        B: Body + Unpin,
        B::Error: Into<BoxError>,
    {
        let mut collector = Collector::new(limit);
        let mut cx = Context::from_waker(Waker::noop());
        loop {
            if let Poll::Ready(result) = collector.poll_collect(Pin::new(&mut body), &mut cx) {
                return result;
            }
        }
    }

    #[test]
    fn one_frame_is_not_copied() {
        let bytes = Bytes::from_static(b"hello");
        let out = collect(Full::new(bytes.clone()), 5).unwrap();
        assert_eq!(out.as_ptr(), bytes.as_ptr());
    }

    #[test]
    fn several_frames_are_joined_in_order() {
        let out = collect(frames(&[b"ab", b"", b"cd", b"e"]), 5).unwrap();
        assert_eq!(out, "abcde");
    }

    #[test]
    fn the_buffer_never_grows_past_the_limit() {
        for limit in [1, 7, 64, 1000, 65_536] {
            for step in [1, 3, limit / 5 + 1, limit / 2 + 1] {
                let mut collector = Collector::new(limit);
                let chunk = vec![b'x'; step];
                let mut pushed = 0;
                while collector.push(&chunk[..]).is_ok() {
                    pushed += step;
                    assert!(
                        collector.rest.capacity() <= limit,
                        "limit {limit}, step {step}: capacity {}",
                        collector.rest.capacity()
                    );
                }
                assert_eq!(collector.finish().len(), pushed);
            }
        }
    }

    #[test]
    fn empty_body_is_empty() {
        assert!(collect(frames(&[]), 0).unwrap().is_empty());
    }

    #[test]
    fn limit_is_inclusive_and_reading_stops_past_it() {
        assert!(collect(frames(&[b"123", b"45"]), 5).is_ok());
        let mut body = frames(&[b"123", b"456", b"789"]);
        let mut collector = Collector::new(5);
        let mut cx = Context::from_waker(Waker::noop());
        let result = collector.poll_collect(Pin::new(&mut body), &mut cx);
        assert!(matches!(
            result,
            Poll::Ready(Err(Rejection::PayloadTooLarge { limit: 5 }))
        ));
        assert_eq!(body.0.len(), 1, "the frame after the limit was never read");
    }

    #[test]
    fn body_errors_are_bad_requests() {
        let body = Frames(VecDeque::from([
            Ok(Bytes::from_static(b"x")),
            Err(io::Error::other("reset")),
        ]));
        assert!(matches!(collect(body, 10), Err(Rejection::Body(_))));
    }

    #[test]
    fn a_body_always_ready_yields_to_the_executor() {
        let mut body = Frames(
            (0..=FRAMES_PER_POLL)
                .map(|_| Ok(Bytes::from_static(b"x")))
                .collect(),
        );
        let mut collector = Collector::new(1 << 20);
        let mut cx = Context::from_waker(Waker::noop());
        assert!(
            collector
                .poll_collect(Pin::new(&mut body), &mut cx)
                .is_pending()
        );
        assert!(matches!(
            collector.poll_collect(Pin::new(&mut body), &mut cx),
            Poll::Ready(Ok(bytes)) if bytes.len() == FRAMES_PER_POLL + 1
        ));
    }
}
