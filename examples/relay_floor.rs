//! The framework floor of `tools/bench.sh`: actix-web relaying every
//! request to one Prometheus over hyper's HTTP/1 client, with the
//! connection reuse and allocator aetos has, and nothing else: no
//! authentication, no policy, no tenancy, no metrics, no request id, no
//! timeouts. What this costs per request, aetos cannot cost less than while
//! it is an actix-web service with a hyper client; what aetos costs above it
//! is its own.
//!
//!     relay_floor PORT UPSTREAM_HOST:PORT
//!
//! A benchmark tool only (it trusts its upstream and panics on errors):
//! never deploy it.

use std::cell::RefCell;
use std::sync::OnceLock;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::{BodyDataStream, Empty};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

type Sender = hyper::client::conn::http1::SendRequest<Empty<Bytes>>;

static UPSTREAM: OnceLock<String> = OnceLock::new();

thread_local! {
    /// This thread's connections to the upstream, ready or busy.
    static POOL: RefCell<Vec<Sender>> = const { RefCell::new(Vec::new()) };
}

fn upstream() -> &'static str {
    UPSTREAM.get().expect("set in main")
}

async fn connect() -> Sender {
    let tcp = tokio::net::TcpStream::connect(upstream())
        .await
        .expect("the upstream accepts connections");
    tcp.set_nodelay(true).expect("TCP_NODELAY");
    let (sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
        .await
        .expect("the HTTP/1 handshake");
    tokio::task::spawn_local(async move {
        let _ = conn.await;
    });
    sender
}

async fn relay(req: HttpRequest) -> HttpResponse {
    let target = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let target = target.strip_prefix("/prometheus").unwrap_or(target);
    let request = http::Request::get(target)
        .header(http::header::HOST, upstream())
        .body(Empty::new())
        .expect("an origin-form target");
    let ready = POOL.with_borrow_mut(|pool| {
        let i = pool.iter().rposition(|s| s.is_ready())?;
        Some(pool.swap_remove(i))
    });
    let mut sender = match ready {
        Some(s) => s,
        None => connect().await,
    };
    let response = sender
        .send_request(request)
        .await
        .expect("the upstream answers");
    POOL.with_borrow_mut(|pool| pool.push(sender));
    let (head, body) = response.into_parts();
    let status =
        actix_web::http::StatusCode::from_u16(head.status.as_u16()).expect("a valid status");
    let mut out = HttpResponse::build(status);
    if let Some(ct) = head.headers.get(http::header::CONTENT_TYPE) {
        out.insert_header(("content-type", ct.as_bytes()));
    }
    out.streaming(BodyDataStream::new(body).map(|r| r.map_err(actix_web::error::ErrorBadGateway)))
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(port), Some(up)) = (args.next(), args.next()) else {
        eprintln!("usage: relay_floor PORT UPSTREAM_HOST:PORT");
        std::process::exit(2);
    };
    let port: u16 = port.parse().expect("a port number");
    UPSTREAM.set(up).expect("set once");
    actix_web::rt::System::new().block_on(async move {
        HttpServer::new(|| App::new().default_service(web::to(relay)))
            .workers(1)
            .tcp_nodelay(true)
            .bind(("127.0.0.1", port))?
            .run()
            .await
    })
}
