//! The actix application: the request-id and access-log middleware,
//! listening, and start/stop. What a request needs is in [`crate::state`].
//!
//! Every path is answered by [`crate::api::handle`], both at `/…` and below
//! `[api] root_path`, so any catalog URL form works.

pub mod tls;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{web, App, HttpServer};
use tracing::Instrument;

use crate::api;
use crate::metrics::RequestLabels;
use crate::state::State;

/// Header carrying the request id on every answer.
pub const REQUEST_ID_HEADER: &str = "x-openstack-request-id";
const REQUEST_ID_NAME: HeaderName = HeaderName::from_static(REQUEST_ID_HEADER);

/// Wraps every request: a fresh `req-<uuid>`, a tracing span carrying it
/// (so every log line of the request has it), the response header, and one
/// access-log line.
pub(crate) fn with_request_id<S, B>(
    req: ServiceRequest,
    srv: &S,
) -> impl std::future::Future<Output = Result<ServiceResponse<B>, actix_web::Error>> + 'static
where
    S: actix_web::dev::Service<
        ServiceRequest,
        Response = ServiceResponse<B>,
        Error = actix_web::Error,
    >,
    S::Future: 'static,
    B: MessageBody,
{
    let id = new_request_id();
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        global_request_id = tracing::field::Empty
    );
    match req.headers().get(REQUEST_ID_NAME).map(global_request_id) {
        Some(Ok(global)) => {
            span.record("global_request_id", tracing::field::display(global));
        }
        Some(Err(shown)) => span.in_scope(|| {
            tracing::debug!(
                header = %shown,
                "X-OpenStack-Request-ID ignored: not req-<uuid>"
            )
        }),
        None => {}
    }
    let scoped_id = id.clone();
    let method = req.method().clone();
    // Shares the request's URI bytes: nothing copied unless a line is logged.
    let uri = req.uri().clone();
    let started = Instant::now();
    let state = req.app_data::<web::Data<State>>().cloned();
    let metrics = state.as_ref().map(|s| s.metrics.clone());
    // Only requests from a browser (with Origin) need their headers kept for CORS.
    let cors_request = req
        .headers()
        .contains_key(actix_web::http::header::ORIGIN)
        .then(|| req.headers().clone());
    if let Some(m) = &metrics {
        m.in_flight.inc();
    }
    let fut = crate::telemetry::with_request_id(scoped_id, srv.call(req));
    async move {
        let (res, learned) = fut.await;
        let elapsed = started.elapsed().as_secs_f64();
        let elapsed_ms = elapsed * 1000.0;
        if let Some(m) = &metrics {
            m.in_flight.dec();
        }
        match res {
            Ok(mut res) => {
                if let Ok(v) = HeaderValue::from_str(&id) {
                    res.headers_mut().insert(REQUEST_ID_NAME, v);
                }
                if let (Some(h), Some(s)) = (&cors_request, &state) {
                    s.cors.decorate(h, res.headers_mut());
                }
                let status = res.status().as_u16();
                if let Some(m) = &metrics {
                    let route = learned.route.unwrap_or("other");
                    m.count_request(RequestLabels {
                        route,
                        // Only standard methods: arbitrary ones would grow the label set.
                        method: method_label(&method),
                        status,
                        access: learned.access.unwrap_or("none"),
                    });
                    m.observe_request(route, elapsed);
                }
                tracing::info!(
                    method = %method,
                    path = %uri.path(),
                    status,
                    api = learned.route.unwrap_or("-"),
                    access = learned.access.unwrap_or("-"),
                    elapsed_ms = format!("{elapsed_ms:.1}"),
                    "request"
                );
                Ok(res)
            }
            Err(e) => {
                tracing::error!(method = %method, path = %uri.path(), "request failed: {e}");
                Err(e)
            }
        }
    }
    .instrument(span)
}

/// A fresh `req-<uuid4>`. Request ids must be unique, not secret: the
/// random bits come from SipHash, keyed per thread from the OS, of a
/// per-thread counter — no system call per request (`Uuid::new_v4` makes one).
fn new_request_id() -> std::sync::Arc<str> {
    use std::hash::BuildHasher;
    thread_local! {
        static IDS: (std::collections::hash_map::RandomState, std::cell::Cell<u64>) =
            Default::default();
    }
    let bytes = IDS.with(|(keys, n)| {
        let c = n.get();
        n.set(c.wrapping_add(1));
        let hi = keys.hash_one((c, 0u8));
        let lo = keys.hash_one((c, 1u8));
        (u128::from(hi) << 64 | u128::from(lo)).to_be_bytes()
    });
    let id = uuid::Builder::from_random_bytes(bytes).into_uuid();
    let mut buf = [0u8; 40];
    buf[..4].copy_from_slice(b"req-");
    id.hyphenated().encode_lower(&mut buf[4..]);
    // `req-` and a hyphenated UUID: ASCII.
    std::str::from_utf8(&buf).unwrap_or("req-").into()
}

/// The `method` label: only standard methods, as the route table's own
/// strings (arbitrary ones would grow the label set).
fn method_label(m: &actix_web::http::Method) -> &'static str {
    const STANDARD: [&str; 7] = ["GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS"];
    STANDARD
        .into_iter()
        .find(|s| *s == m.as_str())
        .unwrap_or("OTHER")
}

/// An incoming `X-OpenStack-Request-ID`, accepted as the global request
/// id only in oslo.context's form `req-<uuid>` (lower-case, hyphenated);
/// otherwise a short, escaped form of it for the debug log.
pub(crate) fn global_request_id(value: &HeaderValue) -> Result<&str, String> {
    let bytes = value.as_bytes();
    let is_uuid = |u: &[u8]| {
        u.len() == 36
            && u.iter().enumerate().all(|(i, c)| match i {
                8 | 13 | 18 | 23 => *c == b'-',
                _ => c.is_ascii_digit() || (b'a'..=b'f').contains(c),
            })
    };
    match bytes.strip_prefix(b"req-") {
        Some(u) if is_uuid(u) => value.to_str().map_err(|e| e.to_string()),
        _ => {
            let text = String::from_utf8_lossy(bytes);
            let short: String = text.chars().take(48).collect();
            Err(format!("{short:?}"))
        }
    }
}

/// Listening settings.
#[derive(Debug, Clone)]
pub struct ListenOptions {
    pub addr: SocketAddr,
    /// `[api] internal_listen`: the unauthenticated probes-and-metrics
    /// listener, if any.
    pub internal: Option<SocketAddr>,
    /// HTTPS on `addr` (`[api] tls_*`), else plain HTTP.
    pub tls: Option<rustls::ServerConfig>,
    pub workers: usize,
    pub shutdown_timeout: Duration,
    /// `[api] client_header_timeout`: longest time to receive a request's
    /// head (request line and headers); then 408 and the connection closed.
    pub client_header_timeout: Duration,
}

/// Builds and starts the server; resolves when it has stopped (SIGTERM /
/// SIGINT drain in-flight requests for up to `shutdown_timeout`).
pub async fn run(state: State, listen: ListenOptions) -> std::io::Result<()> {
    let state = web::Data::new(state);
    let probes_state = state.clone();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(web::PayloadConfig::new(usize::MAX))
            .wrap_fn(with_request_id)
            .default_service(web::to(api::handle))
    })
    // Answers are often written in several small pieces (streamed bodies):
    // without TCP_NODELAY, Nagle's algorithm meets the client's delayed ACK
    // and a piece waits ~40 ms. (On every accepted socket, TLS or not.)
    .tcp_nodelay(true)
    .client_request_timeout(listen.client_header_timeout)
    .workers(listen.workers.max(1))
    .shutdown_timeout(listen.shutdown_timeout.as_secs());
    let server = match listen.tls.clone() {
        Some(tls) => server.bind_rustls_0_23(listen.addr, tls),
        None => server.bind(listen.addr),
    }
    .map_err(|e| std::io::Error::new(e.kind(), format!("[api] host/port {}: {e}", listen.addr)))?;
    // Bound before either serves, so that a taken port stops start-up.
    let internal = match listen.internal {
        Some(addr) => Some(internal_server(
            probes_state,
            addr,
            listen.shutdown_timeout,
        )?),
        None => None,
    };
    let scheme = if listen.tls.is_some() {
        "https"
    } else {
        "http"
    };
    tracing::info!(addr = %listen.addr, scheme, "aetos-api listening");
    let server = server.run();
    let Some(internal) = internal else {
        return server.await;
    };
    let internal_handle = internal.handle();
    let internal_task = actix_web::rt::spawn(internal);
    let served = server.await;
    // The API has drained: the probes go with it.
    internal_handle.stop(true).await;
    let _ = internal_task.await;
    served
}

/// `[api] internal_listen`: one worker answering `/metrics`, `/-/healthy`
/// and `/-/ready` without authentication, and nothing else (see
/// [`api::probes`]). Not counted in the request metrics nor access-logged:
/// scrapes and probes every few seconds would drown the API's own lines.
fn internal_server(
    state: web::Data<State>,
    addr: SocketAddr,
    shutdown_timeout: Duration,
) -> std::io::Result<actix_web::dev::Server> {
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .default_service(web::to(api::probes::internal))
    })
    .workers(1)
    // Signals are the API server's: on SIGTERM actix stops a server and then
    // the whole System, which would end the API's drain as soon as this
    // idle listener had stopped. `run` stops it once the API has drained.
    .disable_signals()
    .shutdown_timeout(shutdown_timeout.as_secs())
    .bind(addr)
    .map_err(|e| std::io::Error::new(e.kind(), format!("[api] internal_listen {addr}: {e}")))?;
    tracing::info!(addr = %addr, "internal listener (metrics, probes) listening");
    Ok(server.run())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_req_uuid_is_accepted_as_the_global_request_id() {
        let ok = "req-0f4c8a1e-2b3d-4e5f-8a9b-0c1d2e3f4a5b";
        assert_eq!(global_request_id(&HeaderValue::from_static(ok)), Ok(ok));
        for bad in [
            "",
            "req-",
            "0f4c8a1e-2b3d-4e5f-8a9b-0c1d2e3f4a5b",
            "req-0F4C8A1E-2B3D-4E5F-8A9B-0C1D2E3F4A5B",
            "req-0f4c8a1e2b3d4e5f8a9b0c1d2e3f4a5b",
            "req-0f4c8a1e-2b3d-4e5f-8a9b-0c1d2e3f4a5b0",
            "req-0f4c8a1e-2b3d-4e5f-8a9b-0c1d2e3f4a5g",
            "req-{0f4c8a1e-2b3d-4e5f-8a9b-0c1d2e3f4a5}",
            "req-0f4c8a1e-2b3d-4e5f-8a9b-0c1d2e3f4a5b injected=1",
        ] {
            assert!(
                global_request_id(&HeaderValue::from_str(bad).unwrap()).is_err(),
                "{bad:?}"
            );
        }
        let long = HeaderValue::from_str(&"x".repeat(500)).unwrap();
        assert!(global_request_id(&long).unwrap_err().len() < 60);
    }

    #[test]
    fn request_ids_are_fresh_version_4_uuids() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10_000 {
            let id = new_request_id();
            let uuid = uuid::Uuid::parse_str(id.strip_prefix("req-").unwrap()).unwrap();
            assert_eq!(uuid.get_version_num(), 4, "{id}");
            assert_eq!(*id, format!("req-{}", uuid.hyphenated()));
            assert!(seen.insert(id));
        }
        // Other threads draw from keys of their own.
        let others: Vec<std::sync::Arc<str>> = (0..4)
            .map(|_| std::thread::spawn(new_request_id).join().unwrap())
            .collect();
        for id in others {
            assert!(seen.insert(id));
        }
    }
}
