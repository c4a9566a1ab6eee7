//! Bodies passed through unchanged while the audit keeps a bounded copy: the request's as the
//! handler reads it (so what the handler decoded is what is recorded, and nothing is buffered
//! ahead of it), the response's as it is sent, with a hook when the response is over.

use axum::body::Body;
use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

/// A copy of a body up to a bound; past it, nothing (a partial object is no object).
#[derive(Debug)]
pub struct Capture {
    bytes: Vec<u8>,
    limit: usize,
    overflowed: bool,
    complete: bool,
}

impl Capture {
    pub fn new(limit: usize) -> Self {
        Capture { bytes: Vec::new(), limit, overflowed: false, complete: false }
    }

    fn push(&mut self, data: &[u8]) {
        if self.overflowed {
            return;
        }
        if self.bytes.len() + data.len() > self.limit {
            self.overflowed = true;
            self.bytes = Vec::new();
        } else {
            self.bytes.extend_from_slice(data);
        }
    }

    /// The whole body, if it was read to its end within the bound.
    pub fn whole(&self) -> Option<&[u8]> {
        (self.complete && !self.overflowed).then_some(self.bytes.as_slice())
    }
}

/// Record `frame`'s data in `capture`, or the end of the body (hyper stops polling a body that
/// says it has ended, so that counts as its end too).
fn observe(capture: &mut Capture, polled: &Poll<Option<Result<Frame<Bytes>, axum::Error>>>, ended: bool) {
    if let Poll::Ready(Some(Ok(frame))) = polled
        && let Some(data) = frame.data_ref()
    {
        capture.push(data);
    }
    if matches!(polled, Poll::Ready(None)) || ended {
        capture.complete = true;
    }
}

/// The request body, copied into a capture the audit reads once the response is made.
pub struct TeeBody {
    inner: Body,
    capture: Arc<Mutex<Capture>>,
}

impl TeeBody {
    pub fn wrap(inner: Body, limit: usize) -> (Body, Arc<Mutex<Capture>>) {
        let capture = Arc::new(Mutex::new(Capture::new(limit)));
        (Body::new(TeeBody { inner, capture: capture.clone() }), capture)
    }
}

impl HttpBody for TeeBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        let ended = self.inner.is_end_stream();
        observe(&mut self.capture.lock().unwrap_or_else(PoisonError::into_inner), &polled, ended);
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Called once the response has been sent, or abandoned: with the body if it was copied whole.
pub type Finish = Box<dyn FnOnce(Option<&[u8]>) + Send>;

/// The response body, optionally copied, calling its [`Finish`] when over.
pub struct WatchedBody {
    inner: Body,
    capture: Option<Capture>,
    finish: Option<Finish>,
}

impl WatchedBody {
    /// `limit`: copy up to that many bytes (`None`: copy nothing).
    pub fn wrap(inner: Body, limit: Option<usize>, finish: Finish) -> Body {
        Body::new(WatchedBody { inner, capture: limit.map(Capture::new), finish: Some(finish) })
    }

    fn done(&mut self) {
        if let Some(finish) = self.finish.take() {
            finish(self.capture.as_ref().and_then(Capture::whole));
        }
    }
}

impl HttpBody for WatchedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        let ended = self.inner.is_end_stream();
        if let Some(capture) = self.capture.as_mut() {
            observe(capture, &polled, ended);
        }
        if matches!(polled, Poll::Ready(None)) {
            self.done();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for WatchedBody {
    fn drop(&mut self) {
        self.done();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn a_request_body_is_copied_as_it_is_read() {
        let (body, capture) = TeeBody::wrap(Body::from("{\"a\":1}"), 100);
        assert_eq!(capture.lock().expect("lock").whole(), None, "not read yet");
        let read = body.collect().await.expect("read").to_bytes();
        assert_eq!(&read[..], b"{\"a\":1}");
        assert_eq!(capture.lock().expect("lock").whole(), Some(&b"{\"a\":1}"[..]));

        let (body, capture) = TeeBody::wrap(Body::from("0123456789"), 4);
        body.collect().await.expect("read");
        assert_eq!(capture.lock().expect("lock").whole(), None, "over the bound");
    }

    #[tokio::test]
    async fn a_response_finishes_once_sent_or_dropped() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let hook = |seen: &Arc<Mutex<Vec<Option<Vec<u8>>>>>| -> Finish {
            let seen = seen.clone();
            Box::new(move |b| seen.lock().expect("lock").push(b.map(<[u8]>::to_vec)))
        };
        let body = WatchedBody::wrap(Body::from("ok"), Some(10), hook(&seen));
        assert_eq!(&body.collect().await.expect("read").to_bytes()[..], b"ok");
        let body = WatchedBody::wrap(Body::from("streamed"), None, hook(&seen));
        drop(body);
        // As hyper sends a whole body: one frame, then no poll once it says it has ended.
        let mut body = WatchedBody::wrap(Body::from("whole"), Some(10), hook(&seen));
        assert!(body.frame().await.is_some_and(|f| f.is_ok()));
        assert!(body.is_end_stream());
        drop(body);
        let seen = seen.lock().expect("lock");
        assert_eq!(*seen, vec![Some(b"ok".to_vec()), None, Some(b"whole".to_vec())]);
    }
}
