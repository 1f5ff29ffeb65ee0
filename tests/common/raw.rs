//! HTTP/1.1 spoken by hand, for requests no HTTP client would send as
//! written (`..` or `\` in a path: reqwest normalises them away) and for
//! clients that stop half-way (a body or a head that never finishes).

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What came back on a connection until the server closed it.
pub struct Answer {
    /// 0 when nothing (or no status line) came back.
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
    /// Whether the server closed the connection (as opposed to `wait`
    /// running out first).
    pub closed: bool,
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Answer")
            .field("status", &self.status)
            .field("head", &self.head)
            .field("body", &self.body_text())
            .field("closed", &self.closed)
            .finish()
    }
}

impl Answer {
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|_| panic!("not JSON ({}): {}", self.status, self.body_text()))
    }
}

/// Connects to 127.0.0.1:`port`, writes `bytes`, then reads until the
/// server closes the connection, or at most `wait`.
pub async fn exchange(port: u16, bytes: &[u8], wait: Duration) -> Answer {
    let mut sock = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    sock.write_all(bytes).await.unwrap();
    read_answer(&mut sock, wait).await
}

/// Reads what the server sends until it closes the connection (a reset
/// counts as closed), or at most `wait`.
pub async fn read_answer(sock: &mut TcpStream, wait: Duration) -> Answer {
    let mut got = Vec::new();
    let mut buf = [0u8; 16384];
    let deadline = tokio::time::Instant::now() + wait;
    let closed = loop {
        match tokio::time::timeout_at(deadline, sock.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break true,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => break false,
        }
    };
    let split = got.windows(4).position(|w| w == b"\r\n\r\n");
    let (head, body) = match split {
        Some(i) => (
            String::from_utf8_lossy(&got[..i]).into_owned(),
            got[i + 4..].to_vec(),
        ),
        None => (String::from_utf8_lossy(&got).into_owned(), Vec::new()),
    };
    let status = head
        .lines()
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Answer {
        status,
        head,
        body,
        closed,
    }
}

/// A GET of the raw `target` (sent byte for byte) with `X-Auth-Token`,
/// answered within 30 s.
pub async fn get(port: u16, target: &str, token: &str) -> Answer {
    let req = format!(
        "GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Auth-Token: {token}\r\n\
         Connection: close\r\n\r\n"
    );
    let a = exchange(port, req.as_bytes(), Duration::from_secs(30)).await;
    assert!(
        a.closed,
        "no complete answer to GET {target} in 30 s: {a:?}"
    );
    a
}
