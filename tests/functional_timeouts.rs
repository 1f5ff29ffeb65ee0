//! Timeouts that say what they bound, end to end with the real binary and
//! real Keystone tokens:
//!
//! * `[prometheus] timeout` bounds the wait for the backend's answer head
//!   (504 after it), not the body: an answer that keeps flowing arrives
//!   whole however long it takes;
//! * `[prometheus] read_timeout` bounds each gap in the body: a stalled
//!   answer is cut and the caller sees an error, never a clean truncated 200;
//! * `[api] client_body_timeout` and `client_header_timeout` bound a caller
//!   that stops sending: 408 and the connection closed.
//!
//! The slow backend is a tiny local server started per test (no real
//! Prometheus can be told to stall); its answers are Prometheus JSON.
#![cfg(feature = "functional")]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::time::Duration;

use common::{json_of, raw, token, Aetos};
use tokio::io::AsyncWriteExt;

/// How the slow backend answers every request.
#[derive(Clone, Copy)]
enum Slow {
    /// The head after `delay`, then a small complete answer.
    Head { delay: Duration },
    /// The head at once, then `series` series of a vector result, one every
    /// `gap`, then the end of the JSON and a clean close.
    Trickle { series: usize, gap: Duration },
    /// The head and `series` series at once, then nothing for `stall`, then
    /// a clean close: without a read timeout, a truncated body that ends
    /// "normally".
    Stall { series: usize, stall: Duration },
}

const OPEN: &str = r#"{"status":"success","data":{"resultType":"vector","result":["#;
const CLOSE: &str = "]}}";

fn series(i: usize) -> String {
    format!(
        r#"{}{{"metric":{{"__name__":"up","instance":"slow-{i}"}},"value":[1700000000,"1"]}}"#,
        if i == 0 { "" } else { "," }
    )
}

/// Starts the slow backend on a free port: its base URL.
fn slow_backend(how: Slow) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            std::thread::spawn(move || answer(stream, how));
        }
    });
    format!("http://127.0.0.1:{port}")
}

fn answer(mut stream: std::net::TcpStream, how: Slow) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
    }
    // No Content-Length: the body ends when the connection closes.
    let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n";
    let mut send = |s: &str| {
        let _ = stream.write_all(s.as_bytes());
        let _ = stream.flush();
    };
    match how {
        Slow::Head { delay } => {
            std::thread::sleep(delay);
            send(head);
            send(OPEN);
            send(CLOSE);
        }
        Slow::Trickle { series: n, gap } => {
            send(head);
            send(OPEN);
            for i in 0..n {
                std::thread::sleep(gap);
                send(&series(i));
            }
            send(CLOSE);
        }
        Slow::Stall { series: n, stall } => {
            send(head);
            send(OPEN);
            for i in 0..n {
                send(&series(i));
            }
            std::thread::sleep(stall);
        }
    }
}

fn aetos_with(backend: &str, extra: &str) -> Aetos {
    Aetos::start(&format!("[prometheus]\nurl = {backend}\n{extra}\n"), None)
}

#[tokio::test]
async fn an_answer_flowing_for_longer_than_timeout_arrives_whole() {
    // 12 series 250 ms apart: 3 s of body, three times `timeout`.
    let backend = slow_backend(Slow::Trickle {
        series: 12,
        gap: Duration::from_millis(250),
    });
    let a = aetos_with(&backend, "timeout = 1\nread_timeout = 5\n");
    let (st, v) = json_of(
        a.get("/api/v1/query?query=up", Some(&token("demo-reader").await))
            .await,
    )
    .await;
    assert_eq!(st, 200, "{v}\n{}", a.logs());
    let result = v["data"]["result"].as_array().unwrap();
    assert_eq!(result.len(), 12, "{v}");
    assert_eq!(result[11]["metric"]["instance"], "slow-11");
    assert!(!a.logs().contains("backend answer cut"));
}

#[tokio::test]
async fn a_stalled_answer_is_cut_and_the_caller_sees_an_error() {
    // Half an answer, then 20 s of silence, then a clean close: were the
    // stall not noticed, the caller would get a truncated body that ends
    // normally.
    let backend = slow_backend(Slow::Stall {
        series: 3,
        stall: Duration::from_secs(20),
    });
    let a = aetos_with(&backend, "timeout = 5\nread_timeout = 1\n");
    let r = a
        .get("/api/v1/query?query=up", Some(&token("demo-reader").await))
        .await;
    assert_eq!(r.status(), 200, "the head had been forwarded");
    let body = r.bytes().await;
    assert!(
        body.is_err(),
        "a cut answer must not end cleanly: {:?}",
        body.map(|b| String::from_utf8_lossy(&b).into_owned())
    );
    // The same on the wire: a chunked answer without its last chunk, then
    // the connection closed.
    let t = token("demo-reader").await;
    let ans = raw::get(a.port, "/prometheus/api/v1/query?query=up", &t).await;
    assert_eq!(ans.status, 200, "{ans:?}");
    assert!(
        ans.head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "{ans:?}"
    );
    let text = ans.body_text();
    assert!(
        text.contains("slow-2"),
        "the part that came is forwarded: {text}"
    );
    assert!(!text.ends_with("0\r\n\r\n"), "ended cleanly: {text:?}");
    assert!(
        a.logs()
            .contains("backend answer cut: no data for 1s ([prometheus] read_timeout)"),
        "{}",
        a.logs()
    );
}

#[tokio::test]
async fn a_head_later_than_timeout_is_a_504() {
    let backend = slow_backend(Slow::Head {
        delay: Duration::from_secs(10),
    });
    let a = aetos_with(&backend, "timeout = 1\nread_timeout = 30\n");
    let (st, v) = json_of(
        a.get("/api/v1/query?query=up", Some(&token("demo-reader").await))
            .await,
    )
    .await;
    assert_eq!(st, 504, "{v}");
    assert_eq!(v["status"], "error");
    assert_eq!(v["errorType"], "timeout");
    assert_eq!(v["error"], "backend did not answer within 1s");
}

#[tokio::test]
async fn a_request_body_that_stalls_is_answered_408_and_closed() {
    let a = Aetos::start("[api]\nclient_body_timeout = 1\n", None);
    let t = token("demo-reader").await;
    let mut sock = tokio::net::TcpStream::connect(("127.0.0.1", a.port))
        .await
        .unwrap();
    let head = format!(
        "POST /prometheus/api/v1/query HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Auth-Token: {t}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\n"
    );
    sock.write_all(head.as_bytes()).await.unwrap();
    sock.write_all(b"query=up&x").await.unwrap();
    // Then nothing: the other 990 bytes never come.
    let ans = raw::read_answer(&mut sock, Duration::from_secs(30)).await;
    assert!(ans.closed, "still open after 30 s: {ans:?}");
    assert_eq!(ans.status, 408, "{ans:?}\n{}", a.logs());
    let v = ans.json();
    assert_eq!(v["status"], "error");
    assert_eq!(v["errorType"], "timeout");
    assert_eq!(v["error"], "request body not received within 1s");
    assert!(a.logs().contains("([api] client_body_timeout)"));
    // A body that does arrive is unaffected.
    let (st, v) = json_of(a.post_form("/api/v1/query", "query=up", Some(&t)).await).await;
    assert_eq!(st, 200, "{v}");
}

#[tokio::test]
async fn a_request_head_that_stalls_is_cut_after_client_header_timeout() {
    let t = token("demo-reader").await;
    let partial = format!(
        "GET /prometheus/api/v1/query?query=up HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Auth-Token: {t}\r\n"
    );
    let a = Aetos::start("[api]\nclient_header_timeout = 1\n", None);
    let ans = raw::exchange(a.port, partial.as_bytes(), Duration::from_secs(30)).await;
    assert!(ans.closed, "still open after 30 s: {ans:?}");
    assert!(ans.status == 408 || ans.status == 0, "{ans:?}");
    drop(a);
    // Configurable: 30 s keeps the same client waiting past actix' 5 s default.
    let a = Aetos::start("[api]\nclient_header_timeout = 30\n", None);
    let ans = raw::exchange(a.port, partial.as_bytes(), Duration::from_secs(8)).await;
    assert!(!ans.closed, "cut before client_header_timeout: {ans:?}");
}
