//! Local stand-ins for the cloud services aetos talks to, for tests only.
//!
//! No cloud is reachable from the test machines, so each service is
//! replaced by a small HTTP server on 127.0.0.1 that speaks the real
//! protocol and checks what it receives as strictly as the real one:
//!
//! * [`sts::StsStandin`] — AWS STS `AssumeRoleWithWebIdentity` and
//!   `AssumeRole` (form POSTs, STS XML answers; AssumeRole must be SigV4
//!   signed for service `sts`);
//! * [`azure::AzureAdStandin`] — the Azure AD v2 token endpoint, for the
//!   client-credentials grant with a client secret and with a federated
//!   client assertion;
//! * [`azure::ImdsStandin`] — the instance metadata service's managed
//!   identity token endpoint (`Metadata: true` required);
//! * [`aws_metadata::ContainerCredentialsStandin`] — the EKS Pod Identity
//!   (and ECS) container credentials endpoint, `Authorization` required;
//! * [`aws_metadata::Ec2ImdsStandin`] — the EC2 instance metadata service
//!   with IMDSv2 session tokens required;
//! * [`google::GoogleOAuthStandin`] — Google's OAuth token endpoint for the
//!   JWT bearer grant, verifying the RS256 signature with the key's public
//!   half; [`google::GceMetadataStandin`] — the GCE/GKE metadata server;
//! * [`backend::PrometheusStandin`] — a managed-Prometheus front door that
//!   verifies the SigV4 signature (independently of the `aws-sigv4` crate
//!   aetos signs with, see [`sigv4_verify`]) or the bearer token of every
//!   request, then forwards it to the stack's real Prometheus.
//!
//! Credentials issued by one stand-in are accepted by another through a
//! shared [`Registry`], as the cloud's own services would.
#![allow(dead_code)]

pub mod aws_metadata;
pub mod azure;
pub mod backend;
pub mod google;
pub mod sigv4_verify;
pub mod sts;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use actix_web::dev::ServerHandle;
use actix_web::web;

/// A stand-in HTTP server running on its own thread until dropped.
pub struct Server {
    pub port: u16,
    handle: ServerHandle,
}

impl Server {
    /// Starts an actix app on 127.0.0.1 and a free port: `state` is its
    /// shared data (`web::Data<T>`), `configure` adds its routes.
    pub fn start<T: Send + Sync + 'static>(
        state: Arc<T>,
        configure: fn(&mut web::ServiceConfig),
    ) -> Server {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = actix_web::HttpServer::new(move || {
                    actix_web::App::new()
                        .app_data(web::Data::from(state.clone()))
                        .configure(configure)
                })
                .workers(2)
                .disable_signals()
                .bind(("127.0.0.1", 0))
                .expect("stand-in binds");
                let port = server.addrs()[0].port();
                let running = server.run();
                tx.send((port, running.handle())).expect("report port");
                let _ = running.await;
            })
        });
        let (port, handle) = rx.recv().expect("stand-in started");
        Server { port, handle }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // The stop command is sent now; its completion is not awaited.
        drop(self.handle.stop(false));
    }
}

/// An AWS access key a stand-in issued or was given.
#[derive(Debug, Clone)]
pub struct AwsKey {
    pub secret: String,
    pub session_token: Option<String>,
    pub expires: Option<SystemTime>,
    /// Who the key acts as (a role ARN or a user), for assertions.
    pub principal: String,
}

/// A bearer token a stand-in issued.
#[derive(Debug, Clone)]
pub struct Bearer {
    pub expires: SystemTime,
    /// The resource the token is for (`https://prometheus.monitor.azure.com`).
    pub audience: String,
    pub principal: String,
}

/// Credentials known to the stand-ins: what STS and Azure AD issued.
#[derive(Default)]
pub struct Registry {
    aws: Mutex<HashMap<String, AwsKey>>,
    bearers: Mutex<HashMap<String, Bearer>>,
}

/// A random token-looking string.
pub fn random(prefix: &str, len: usize) -> String {
    let mut s = prefix.to_owned();
    while s.len() < len {
        s.push_str(&uuid::Uuid::new_v4().simple().to_string().to_uppercase());
    }
    s.truncate(len);
    s
}

impl Registry {
    pub fn add_aws_key(&self, akid: &str, key: AwsKey) {
        self.aws.lock().unwrap().insert(akid.to_owned(), key);
    }

    pub fn aws_key(&self, akid: &str) -> Option<AwsKey> {
        self.aws.lock().unwrap().get(akid).cloned()
    }

    /// New temporary credentials for `principal`: (akid, key).
    pub fn issue_aws(&self, principal: &str, lifetime: Duration) -> (String, AwsKey) {
        let akid = random("ASIA", 20);
        let key = AwsKey {
            secret: random("", 40),
            session_token: Some(random("IQoJb3JpZ2luX2VjE", 120)),
            expires: Some(SystemTime::now() + lifetime),
            principal: principal.to_owned(),
        };
        self.add_aws_key(&akid, key.clone());
        (akid, key)
    }

    /// Every secret the registry knows (keys, session tokens, bearer
    /// tokens), to check none of them reaches a log.
    pub fn secrets(&self) -> Vec<String> {
        let mut out = Vec::new();
        for k in self.aws.lock().unwrap().values() {
            out.push(k.secret.clone());
            out.extend(k.session_token.clone());
        }
        out.extend(self.bearers.lock().unwrap().keys().cloned());
        out
    }

    pub fn issue_bearer(&self, audience: &str, principal: &str, lifetime: Duration) -> String {
        let token = format!("eyJ0eXAiOiJKV1Qi.{}.standin", random("", 64));
        self.bearers.lock().unwrap().insert(
            token.clone(),
            Bearer {
                expires: SystemTime::now() + lifetime,
                audience: audience.to_owned(),
                principal: principal.to_owned(),
            },
        );
        token
    }

    pub fn bearer(&self, token: &str) -> Option<Bearer> {
        self.bearers.lock().unwrap().get(token).cloned()
    }
}

/// Form fields of a request body, last value wins.
pub fn form(body: &[u8]) -> HashMap<String, String> {
    url::form_urlencoded::parse(body).into_owned().collect()
}
