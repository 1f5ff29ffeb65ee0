//! HTTPS on the API listener with certificates made by `openssl` here: the
//! certificate rotated on disk while a client keeps one connection and
//! requests going (none fails, that connection is not dropped, new
//! connections get the new certificate), a broken rotation keeps the last
//! good pair, and mutual TLS refuses a client without a certificate.

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{free_port, install_crypto, tempdir, Aetos, Recorder};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A test CA, and `name.pem` / `name.key` issued by it for `usage`
/// (`serverAuth` with SAN 127.0.0.1, or `clientAuth`).
struct Pki<'a> {
    dir: &'a Path,
}

impl<'a> Pki<'a> {
    fn new(dir: &'a Path) -> Pki<'a> {
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=aetos test CA",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        );
        Pki { dir }
    }

    fn issue(&self, name: &str, serial: &str, usage: &str) {
        let ext = format!("{name}.ext");
        let san = if usage == "serverAuth" {
            "subjectAltName=IP:127.0.0.1\n"
        } else {
            ""
        };
        std::fs::write(
            self.dir.join(&ext),
            format!("{san}basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage={usage}\n"),
        )
        .unwrap();
        let (key, csr, pem) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
        );
        openssl(
            self.dir,
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                &key,
                "-out",
                &csr,
                "-subj",
                &format!("/CN={name}"),
            ],
        );
        openssl(
            self.dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-set_serial",
                serial,
                "-days",
                "2",
                "-out",
                &pem,
                "-extfile",
                &ext,
            ],
        );
    }

    fn der(&self, name: &str) -> Vec<u8> {
        CertificateDer::from_pem_file(self.dir.join(format!("{name}.pem")))
            .unwrap()
            .to_vec()
    }

    fn ca(&self) -> reqwest::Certificate {
        reqwest::Certificate::from_pem(&std::fs::read(self.dir.join("ca.pem")).unwrap()).unwrap()
    }
}

/// Puts `name`'s pair where aetos reads it, each file replaced atomically
/// (as a Kubernetes Secret volume swaps its files).
fn install(dir: &Path, name: &str) {
    for (from, to) in [
        (format!("{name}.pem"), "tls.crt"),
        (format!("{name}.key"), "tls.key"),
    ] {
        let tmp = dir.join(format!("{to}.tmp"));
        std::fs::copy(dir.join(from), &tmp).unwrap();
        std::fs::rename(&tmp, dir.join(to)).unwrap();
    }
}

fn https_client(pki: &Pki<'_>) -> reqwest::Client {
    install_crypto();
    reqwest::Client::builder()
        .no_proxy()
        .add_root_certificate(pki.ca())
        .tls_info(true)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn peer(r: &reqwest::Response) -> Vec<u8> {
    r.extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|t| t.peer_certificate())
        .expect("a TLS answer carries the peer certificate")
        .to_vec()
}

fn start(dir: &Path, recorder: &Recorder, extra: &str) -> Aetos {
    let port = free_port();
    let conf = format!(
        "[DEFAULT]\nauth_mode = noauth\ndebug = true\n[api]\nhost = 127.0.0.1\nport = {port}\n\
         workers = 2\ntls_cert_file = {crt}\ntls_key_file = {key}\n{extra}\n\
         [prometheus]\nhost = 127.0.0.1\nport = {}\n",
        recorder.port,
        crt = dir.join("tls.crt").display(),
        key = dir.join("tls.key").display(),
    );
    Aetos::start_with_config(port, &conf, None)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_certificate_rotates_without_dropping_a_connection_or_failing_a_request() {
    let dir = tempdir::Dir::new("tls");
    let pki = Pki::new(dir.path());
    pki.issue("server-1", "1", "serverAuth");
    pki.issue("server-2", "2", "serverAuth");
    install(dir.path(), "server-1");
    let recorder = Recorder::start();
    let aetos = start(dir.path(), &recorder, "");
    let base = format!("https://127.0.0.1:{}", aetos.port);
    let (one, two) = (pki.der("server-1"), pki.der("server-2"));

    // Plain HTTP is not served on the TLS port.
    let plain = common::client()
        .get(format!("{}/-/healthy", aetos.url))
        .send()
        .await;
    assert!(plain.map_or(true, |r| !r.status().is_success()));

    // One client, one kept-alive connection, requests back to back.
    let keeper = https_client(&pki);
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let peers = Arc::new(Mutex::new(HashSet::<Vec<u8>>::new()));
    let task = {
        let (stop, done, failures, peers) =
            (stop.clone(), done.clone(), failures.clone(), peers.clone());
        let base = base.clone();
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let r = keeper
                    .get(format!("{base}/prometheus/api/v1/query?query=up"))
                    .header("X-Project-Id", "p")
                    .header("X-Roles", "admin")
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status() == 200 => {
                        peers.lock().unwrap().insert(peer(&r));
                        let _ = r.bytes().await;
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(r) => failures
                        .lock()
                        .unwrap()
                        .push(format!("status {}", r.status())),
                    Err(e) => failures.lock().unwrap().push(format!("{e:?}")),
                }
            }
        })
    };
    let wait_for = |n: usize| {
        let done = done.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(30);
            while done.load(Ordering::Relaxed) < n {
                assert!(Instant::now() < deadline, "the keeper made no progress");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    wait_for(20).await;
    assert_eq!(*peers.lock().unwrap(), HashSet::from([one.clone()]));

    // Rotate while the keeper keeps going; new connections get the new one.
    install(dir.path(), "server-2");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = https_client(&pki)
            .get(format!("{base}/-/healthy"))
            .send()
            .await
            .unwrap();
        if peer(&r) == two {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the new certificate was never served"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let after = done.load(Ordering::Relaxed);
    wait_for(after + 20).await;

    // A broken rotation (a truncated certificate) keeps the last good pair.
    let refusals = || aetos.logs().matches("TLS certificate not reloaded").count();
    let before = refusals();
    std::fs::write(
        dir.path().join("tls.crt"),
        "-----BEGIN CERTIFICATE-----\nnot base64\n",
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while refusals() == before {
        let r = https_client(&pki)
            .get(format!("{base}/-/healthy"))
            .send()
            .await
            .unwrap();
        assert_eq!(peer(&r), two);
        assert!(
            Instant::now() < deadline,
            "the broken certificate was never looked at"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let r = https_client(&pki)
        .get(format!("{base}/-/healthy"))
        .send()
        .await
        .unwrap();
    assert_eq!((r.status().as_u16(), peer(&r)), (200, two.clone()));

    stop.store(true, Ordering::Relaxed);
    task.await.unwrap();
    assert_eq!(*failures.lock().unwrap(), Vec::<String>::new());
    // Every answer of the keeper came over its first connection.
    assert_eq!(*peers.lock().unwrap(), HashSet::from([one]));
    assert!(
        aetos.logs().contains("TLS certificate reloaded"),
        "{}",
        aetos.logs()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_refuses_a_client_without_a_certificate_of_the_ca() {
    let dir = tempdir::Dir::new("mtls");
    let pki = Pki::new(dir.path());
    pki.issue("server-1", "1", "serverAuth");
    pki.issue("client", "3", "clientAuth");
    install(dir.path(), "server-1");
    let recorder = Recorder::start();
    let ca = dir.path().join("ca.pem");
    let aetos = start(
        dir.path(),
        &recorder,
        &format!("tls_client_ca_file = {}\n", ca.display()),
    );
    let url = format!("https://127.0.0.1:{}/-/healthy", aetos.port);
    let anonymous = https_client(&pki).get(&url).send().await;
    assert!(anonymous.is_err(), "{anonymous:?}");
    let mut pem = std::fs::read(dir.path().join("client.pem")).unwrap();
    pem.extend(std::fs::read(dir.path().join("client.key")).unwrap());
    install_crypto();
    let with_cert = reqwest::Client::builder()
        .no_proxy()
        .add_root_certificate(pki.ca())
        .identity(reqwest::Identity::from_pem(&pem).unwrap())
        .build()
        .unwrap();
    let r = with_cert.get(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
}
