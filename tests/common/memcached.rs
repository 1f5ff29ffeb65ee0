//! A memcached of a test's own, on a free port (never the stack's): for
//! tests that share one between replicas, pause it or kill it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Memcached {
    child: Child,
    /// `127.0.0.1:PORT`, for `memcached_servers`.
    pub addr: String,
}

impl Memcached {
    pub fn start() -> Memcached {
        let port = super::free_port();
        let port_arg = port.to_string();
        // `-u`: memcached refuses to run as root without it.
        let args = [
            "-l",
            "127.0.0.1",
            "-p",
            &port_arg,
            "-U",
            "0",
            "-m",
            "64",
            "-u",
            "nobody",
        ];
        let child = Command::new("memcached")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("memcached (Debian package memcached) is installed");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "memcached did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Memcached {
            child,
            addr: format!("127.0.0.1:{port}"),
        }
    }

    /// Sends `sig` (`-STOP`, `-CONT`, …) to the memcached process.
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig}");
    }

    /// One value of memcached's `stats` (e.g. `curr_items`), asked directly.
    pub fn stat(&self, name: &str) -> u64 {
        let mut s = TcpStream::connect(&self.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(b"stats\r\n").unwrap();
        let mut text = Vec::new();
        let mut buf = [0u8; 4096];
        while !text.ends_with(b"END\r\n") {
            let n = s.read(&mut buf).expect("memcached answers stats");
            assert!(n > 0, "memcached closed the stats connection");
            text.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8_lossy(&text);
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("STAT {name} ")))
            .unwrap_or_else(|| panic!("no {name} in memcached's stats:\n{text}"))
            .trim()
            .parse()
            .unwrap()
    }
}

impl Drop for Memcached {
    fn drop(&mut self) {
        // A paused one is woken first, so that it can be killed and reaped.
        self.signal("-CONT");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
