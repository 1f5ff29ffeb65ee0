//! Forwarding against tiny test servers: failover between backends,
//! timeouts of the head and of the body, redirects that are not followed.

use super::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What a tiny test server does with each connection.
#[derive(Clone, Copy)]
enum Behaviour {
    Answer(u16, &'static str),
    /// Reads the request and closes without answering.
    Hangup,
    /// `302 Found` to this location.
    Redirect(&'static str),
    /// The head after this long.
    SlowHead(Duration),
    /// The head at once, then `pieces` pieces of the body `gap` apart;
    /// with `stall`, the connection is then held open without ending.
    Trickle {
        pieces: usize,
        gap: Duration,
        stall: bool,
    },
}

/// A server on a free port; every connection gets `behaviour`.
async fn serve(behaviour: Behaviour) -> u16 {
    serve_logged(behaviour).await.0
}

/// [`serve`], with the request line of every request received.
async fn serve_logged(behaviour: Behaviour) -> (u16, Arc<std::sync::Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let log = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = log.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let n = sock.read(&mut buf).await.unwrap_or(0);
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                seen.lock()
                    .unwrap()
                    .push(text.lines().next().unwrap_or("").to_owned());
                let answer = |status: u16, body: &str| {
                    format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    )
                };
                match behaviour {
                    Behaviour::Answer(status, body) => {
                        let _ = sock.write_all(answer(status, body).as_bytes()).await;
                    }
                    Behaviour::Hangup => {}
                    Behaviour::Redirect(to) => {
                        let resp = format!(
                            "HTTP/1.1 302 Found\r\nlocation: {to}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                        );
                        let _ = sock.write_all(resp.as_bytes()).await;
                    }
                    Behaviour::SlowHead(delay) => {
                        tokio::time::sleep(delay).await;
                        let _ = sock.write_all(answer(200, "late").as_bytes()).await;
                    }
                    Behaviour::Trickle { pieces, gap, stall } => {
                        let head = "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\n";
                        let _ = sock.write_all(head.as_bytes()).await;
                        for i in 0..pieces {
                            tokio::time::sleep(gap).await;
                            let _ = sock.write_all(format!("piece{i};").as_bytes()).await;
                        }
                        if stall {
                            tokio::time::sleep(Duration::from_secs(3600)).await;
                        }
                    }
                }
            });
        }
    });
    (port, log)
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The whole body of an answer, as text.
pub(crate) async fn text(r: Response) -> String {
    use futures_util::StreamExt;
    let mut body = r.into_body().into_stream();
    let mut out = Vec::new();
    while let Some(c) = body.next().await {
        out.extend_from_slice(&c.unwrap());
    }
    String::from_utf8(out).unwrap()
}

pub(crate) fn backend(ports: &[u16]) -> Backend {
    Backend::new(options(ports)).unwrap()
}

fn options(ports: &[u16]) -> BackendOptions {
    BackendOptions {
        base_urls: ports
            .iter()
            .map(|p| Url::parse(&format!("http://127.0.0.1:{p}/")).unwrap())
            .collect(),
        timeout: Duration::from_secs(5),
        read_timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(1),
        ca_file: None,
        client_cert: None,
        insecure: false,
        auth: BackendAuth::None,
        tenant: None,
        health_check_path: "/-/ready".into(),
        health_check_interval: Duration::from_secs(5),
        discovery: None,
    }
}

pub(crate) fn request(method: Method, path: &str) -> BackendRequest {
    BackendRequest {
        method,
        path: path.into(),
        params: Params {
            url: "query=up".into(),
            body: None,
        },
        headers: Vec::new(),
        project: None,
    }
}

#[tokio::test]
async fn a_refused_connection_is_retried_on_the_other_backend_for_any_method() {
    let ok = serve(Behaviour::Answer(200, "from-ok")).await;
    let b = backend(&[closed_port(), ok]);
    // Round robin starts with the first backend, the dead one.
    let r = b
        .send(request(Method::POST, "/api/v1/admin/tsdb/clean_tombstones"))
        .await
        .unwrap();
    assert_eq!(text(r).await, "from-ok");
    let report = b.report();
    assert!(!report[0].up && report[1].up);
    assert!(report[0]
        .last_error
        .as_deref()
        .unwrap()
        .contains("unreachable"));
    // Taken out of rotation: the next requests all go to the live one.
    for _ in 0..3 {
        let r = b.send(request(Method::GET, "/api/v1/query")).await.unwrap();
        assert_eq!(r.status(), 200);
    }
}

#[tokio::test]
async fn a_broken_exchange_is_retried_only_for_reads() {
    let hangup = serve(Behaviour::Hangup).await;
    let ok = serve(Behaviour::Answer(200, "from-ok")).await;
    let b = backend(&[hangup, ok]);
    let r = b.send(request(Method::GET, "/api/v1/query")).await.unwrap();
    assert_eq!(text(r).await, "from-ok");
    let b = backend(&[hangup, ok]);
    let e = b
        .send(request(Method::POST, "/api/v1/admin/tsdb/delete_series"))
        .await
        .unwrap_err();
    assert!(matches!(e, BackendError::Other(_)), "{e}");
    // A failed admin request says nothing about health: not marked down.
    assert!(b.report()[0].up);
}

#[tokio::test]
async fn a_not_ready_answer_is_retried_for_reads_and_kept_for_writes() {
    let not_ready = serve(Behaviour::Answer(503, "Service Unavailable")).await;
    let ok = serve(Behaviour::Answer(200, "from-ok")).await;
    let b = backend(&[not_ready, ok]);
    let r = b
        .send(request(Method::POST, "/api/v1/query"))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let b = backend(&[not_ready, ok]);
    let r = b
        .send(request(Method::PUT, "/api/v1/admin/tsdb/snapshot"))
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
}

#[tokio::test]
async fn a_single_backend_is_never_retried_nor_marked() {
    let b = backend(&[closed_port()]);
    let e = b
        .send(request(Method::GET, "/api/v1/query"))
        .await
        .unwrap_err();
    assert!(matches!(e, BackendError::Unreachable(_)), "{e}");
    assert!(b.report()[0].up);
}

#[tokio::test]
async fn health_checks_mark_backends_down_and_up() {
    let ok = serve(Behaviour::Answer(200, "Prometheus Server is Ready.")).await;
    let not_ready = serve(Behaviour::Answer(503, "Service Unavailable")).await;
    let b = backend(&[ok, not_ready, closed_port()]);
    let r = b.check_all().await;
    assert!(r[0].up && !r[1].up && !r[2].up);
    assert_eq!(
        r[1].last_error.as_deref(),
        Some("/-/ready answered 503 Service Unavailable")
    );
    assert!(r.iter().all(|t| t.last_check.is_some()));
}

#[test]
fn reads_are_idempotent_admin_writes_are_not() {
    assert!(request(Method::GET, "/api/v1/query").is_idempotent());
    assert!(request(Method::POST, "/api/v1/query_range").is_idempotent());
    assert!(request(Method::POST, "/api/v1/series").is_idempotent());
    assert!(!request(Method::POST, "/api/v1/admin/tsdb/delete_series").is_idempotent());
    assert!(!request(Method::PUT, "/api/v1/admin/tsdb/snapshot").is_idempotent());
}

#[test]
fn a_health_check_path_that_is_not_plain_stops_the_start() {
    let mut opts = options(&[9090]);
    opts.health_check_path = "/-/../admin".into();
    let e = Backend::new(opts).err().unwrap();
    assert!(
        e.starts_with("[prometheus] health_check_path: refusing"),
        "{e}"
    );
}

#[tokio::test]
async fn a_redirect_is_not_followed_and_becomes_an_error() {
    let (elsewhere, elsewhere_log) = serve_logged(Behaviour::Answer(200, "stolen")).await;
    let location: &'static str =
        Box::leak(format!("http://127.0.0.1:{elsewhere}/steal").into_boxed_str());
    for to in ["/other/path", "../../admin", location] {
        let (port, log) = serve_logged(Behaviour::Redirect(to)).await;
        let b = Backend::new(BackendOptions {
            auth: BackendAuth::Basic(super::auth::basic::Basic {
                username: "u".into(),
                password: crate::config::Secret::new("secret-password"),
            }),
            ..options(&[port])
        })
        .unwrap();
        let e = b
            .send(request(Method::GET, "/api/v1/query"))
            .await
            .unwrap_err();
        assert!(matches!(e, BackendError::Redirect(302)), "{e}");
        assert_eq!(
            *log.lock().unwrap(),
            vec!["GET /api/v1/query?query=up HTTP/1.1".to_owned()]
        );
    }
    assert!(elsewhere_log.lock().unwrap().is_empty());
}

#[tokio::test]
async fn timeout_bounds_the_head_only() {
    let slow = serve(Behaviour::SlowHead(Duration::from_secs(3))).await;
    let mut opts = options(&[slow]);
    opts.timeout = Duration::from_millis(300);
    let e = Backend::new(opts)
        .unwrap()
        .send(request(Method::GET, "/api/v1/query"))
        .await
        .unwrap_err();
    assert!(
        matches!(e, BackendError::Timeout(t) if t == Duration::from_millis(300)),
        "{e}"
    );
    // A body flowing for longer than `timeout`, with short gaps, arrives whole.
    let trickle = serve(Behaviour::Trickle {
        pieces: 8,
        gap: Duration::from_millis(100),
        stall: false,
    })
    .await;
    let mut opts = options(&[trickle]);
    opts.timeout = Duration::from_millis(300);
    opts.read_timeout = Duration::from_secs(5);
    let r = Backend::new(opts)
        .unwrap()
        .send(request(Method::GET, "/api/v1/query"))
        .await
        .unwrap();
    let want: String = (0..8).map(|i| format!("piece{i};")).collect();
    assert_eq!(text(r).await, want);
}

#[tokio::test]
async fn a_stalled_body_ends_with_an_error_not_a_clean_end() {
    let stall = serve(Behaviour::Trickle {
        pieces: 2,
        gap: Duration::from_millis(10),
        stall: true,
    })
    .await;
    let mut opts = options(&[stall]);
    opts.read_timeout = Duration::from_millis(300);
    let r = Backend::new(opts)
        .unwrap()
        .send(request(Method::GET, "/api/v1/query"))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut body = r.into_body().into_stream();
    let mut got = Vec::new();
    let mut failed = false;
    while let Some(chunk) = futures_util::StreamExt::next(&mut body).await {
        match chunk {
            Ok(c) => got.extend_from_slice(&c),
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    assert_eq!(String::from_utf8(got).unwrap(), "piece0;piece1;");
    assert!(failed, "a stalled body must end with an error");
    assert!(futures_util::StreamExt::next(&mut body).await.is_none());
}
