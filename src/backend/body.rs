//! The body of a backend answer, streamed to the caller with every gap
//! bounded by `[prometheus] read_timeout`: a backend that stops sending
//! mid-answer makes the caller's connection abort, rather than a truncated
//! answer that looks complete.

use std::time::Duration;

use bytes::Bytes;

use super::client::root_cause;

/// The body of `resp` with every gap between two pieces bounded by `idle`:
/// when a gap is longer, the stream ends with an error (logged), so that the
/// caller's connection is aborted rather than a truncated answer ended cleanly.
pub(super) fn idle_limited(resp: reqwest::Response, idle: Duration) -> reqwest::Response {
    use futures_util::StreamExt;
    type Body = std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<Bytes>> + Send>>;
    let mut head = http::Response::builder()
        .status(resp.status())
        .version(resp.version());
    if let Some(h) = head.headers_mut() {
        *h = resp.headers().clone();
    }
    let body: Body = Box::pin(resp.bytes_stream());
    let limited = futures_util::stream::unfold(Some(body), move |body| async move {
        let mut body = body?;
        match tokio::time::timeout(idle, body.next()).await {
            Ok(Some(Ok(chunk))) => Some((Ok(chunk), Some(body))),
            Ok(Some(Err(e))) => {
                let why = root_cause(&e);
                tracing::warn!("backend answer cut: {why}");
                Some((Err(std::io::Error::other(why)), None))
            }
            Ok(None) => None,
            Err(_) => {
                tracing::warn!(
                    "backend answer cut: no data for {idle:?} ([prometheus] read_timeout)"
                );
                Some((
                    Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("backend sent no data for {idle:?}"),
                    )),
                    None,
                ))
            }
        }
    });
    match head.body(reqwest::Body::wrap_stream(limited)) {
        Ok(r) => reqwest::Response::from(r),
        // Not reachable: status, version and headers come from a valid answer.
        Err(e) => unreachable!("rebuilding a backend answer: {e}"),
    }
}
