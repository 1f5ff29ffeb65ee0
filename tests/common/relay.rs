//! A recording TCP relay in front of a stack service: what aetos sends
//! upstream is kept, per connection, and each chunk may be held a while
//! before it is passed on (to keep requests in flight, or to mark them).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What aetos sent upstream on one connection.
type Wire = Arc<Mutex<Vec<u8>>>;

pub struct Relay {
    pub port: u16,
    /// Every byte sent upstream, one buffer per relayed connection.
    conns: Arc<Mutex<Vec<Wire>>>,
}

impl Relay {
    /// A relay to `upstream` (a URL: its host and port); each chunk read
    /// from aetos is recorded, then held `hold(chunk)` before it is sent.
    pub async fn start(
        upstream: &str,
        hold: impl Fn(&[u8]) -> Duration + Send + Sync + 'static,
    ) -> Relay {
        let u = url::Url::parse(upstream).unwrap();
        let upstream = format!("{}:{}", u.host_str().unwrap(), u.port().unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let conns: Arc<Mutex<Vec<Wire>>> = Arc::default();
        let (all, hold) = (conns.clone(), Arc::new(hold));
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let store = Arc::new(Mutex::new(Vec::new()));
                all.lock().unwrap().push(store.clone());
                let (upstream, hold) = (upstream.clone(), hold.clone());
                tokio::spawn(async move {
                    let Ok(server) = tokio::net::TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let _ = server.set_nodelay(true);
                    let (mut cr, mut cw) = client.into_split();
                    let (mut sr, mut sw) = server.into_split();
                    let up = async move {
                        let mut buf = vec![0u8; 64 * 1024];
                        while let Ok(n) = cr.read(&mut buf).await {
                            if n == 0 {
                                break;
                            }
                            let chunk = &buf[..n];
                            store.lock().unwrap().extend_from_slice(chunk);
                            let held = hold(chunk);
                            if !held.is_zero() {
                                tokio::time::sleep(held).await;
                            }
                            if sw.write_all(chunk).await.is_err() {
                                break;
                            }
                        }
                        let _ = sw.shutdown().await;
                    };
                    let down = async move {
                        let _ = tokio::io::copy(&mut sr, &mut cw).await;
                        let _ = cw.shutdown().await;
                    };
                    tokio::join!(up, down);
                });
            }
        });
        Relay { port, conns }
    }

    /// What was sent upstream, one text per connection.
    pub fn connections(&self) -> Vec<String> {
        self.conns
            .lock()
            .unwrap()
            .iter()
            .map(|c| String::from_utf8_lossy(&c.lock().unwrap()).into_owned())
            .collect()
    }
}
