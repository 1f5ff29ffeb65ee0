//! AWS credentials from the two metadata services the SDKs fall back on.
//!
//! * **Container credentials** — what ECS tasks and EKS Pod Identity give a
//!   workload: `GET` a URL named by `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`
//!   (relative to `http://169.254.170.2`) or `AWS_CONTAINER_CREDENTIALS_FULL_URI`,
//!   with an `Authorization` header taken from the file named by
//!   `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE` (read again for every fetch:
//!   EKS rotates it) or from `AWS_CONTAINER_AUTHORIZATION_TOKEN`. As in the
//!   SDKs, a full URI over plain HTTP must point at a loopback address or
//!   at the ECS/EKS link-local agents, so the token is never sent across a
//!   network in clear.
//! * **EC2 instance metadata (IMDSv2)** — the instance profile's role:
//!   `PUT /latest/api/token` for a session token, then `GET
//!   /latest/meta-data/iam/security-credentials/` for the role name and
//!   `GET …/<role>` for its credentials, each with the session token.
//!   IMDSv1 (no session token) is not used.
//!
//! Both answer with the same JSON (`AccessKeyId`, `SecretAccessKey`,
//! `Token`, `Expiration`); the result is cached and refreshed before it
//! expires by the caller's [`crate::backend::refresh::Refreshing`].

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::time::Duration;

use aws_credential_types::Credentials;
use serde::Deserialize;
use url::Url;

use crate::backend::client::root_cause;
use crate::backend::env::{env_var, Env};
use crate::backend::refresh::Expiring;
use crate::config::Secret;

/// Host of the ECS agent, for `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`.
pub const ECS_CONTAINER_HOST: &str = "http://169.254.170.2";

/// The EC2 instance metadata service, unless configured otherwise.
pub const DEFAULT_IMDS_ENDPOINT: &str = "http://169.254.169.254";

/// Lifetime asked for an IMDSv2 session token: one fetch needs seconds.
const IMDS_TOKEN_TTL_SECONDS: &str = "60";

/// Upper bound on each metadata call: the services are local and fast, and a
/// host that is not on EC2 must not hold a request for the whole client timeout.
const METADATA_TIMEOUT: Duration = Duration::from_secs(5);

/// Where container credentials are fetched, and with what authorization.
#[derive(Debug, Clone)]
pub struct ContainerSource {
    pub url: Url,
    pub token_file: Option<PathBuf>,
    /// `AWS_CONTAINER_AUTHORIZATION_TOKEN`, when no token file is named.
    pub token: Option<Secret>,
}

/// The container credentials source named by the environment, if any.
/// `Err` when a variable is set but cannot be used (the message names it).
pub fn container_source(env: &Env) -> Result<Option<ContainerSource>, String> {
    let var = |name: &str| env_var(env, name);
    let url = if let Some(rel) = var("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") {
        let joined = format!("{ECS_CONTAINER_HOST}{}", ensure_leading_slash(rel));
        Url::parse(&joined).map_err(|e| {
            format!("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: {rel:?} makes no URL ({e})")
        })?
    } else if let Some(full) = var("AWS_CONTAINER_CREDENTIALS_FULL_URI") {
        let u = Url::parse(full).map_err(|e| {
            format!("AWS_CONTAINER_CREDENTIALS_FULL_URI: invalid URL {full:?} ({e})")
        })?;
        check_full_uri(&u)?;
        u
    } else {
        return Ok(None);
    };
    Ok(Some(ContainerSource {
        url,
        token_file: var("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE").map(PathBuf::from),
        token: var("AWS_CONTAINER_AUTHORIZATION_TOKEN").map(Secret::new),
    }))
}

fn ensure_leading_slash(s: &str) -> String {
    if s.starts_with('/') {
        s.to_owned()
    } else {
        format!("/{s}")
    }
}

/// The SDKs' rule for `AWS_CONTAINER_CREDENTIALS_FULL_URI`: HTTPS anywhere;
/// plain HTTP only to loopback or to the ECS (169.254.170.2) and EKS Pod
/// Identity (169.254.170.23, fd00:ec2::23) agents.
fn check_full_uri(u: &Url) -> Result<(), String> {
    match u.scheme() {
        "https" => return Ok(()),
        "http" => {}
        other => {
            return Err(format!(
                "AWS_CONTAINER_CREDENTIALS_FULL_URI: scheme {other:?} is not http or https"
            ))
        }
    }
    let allowed = match u.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => {
            ip.is_loopback()
                || ip == Ipv4Addr::new(169, 254, 170, 2)
                || ip == Ipv4Addr::new(169, 254, 170, 23)
        }
        Some(url::Host::Ipv6(ip)) => {
            ip.is_loopback() || ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x23)
        }
        None => false,
    };
    if allowed {
        Ok(())
    } else {
        Err(format!(
            "AWS_CONTAINER_CREDENTIALS_FULL_URI: plain http is only allowed to a loopback address \
             or the ECS/EKS agents (169.254.170.2, 169.254.170.23, fd00:ec2::23), not {:?}",
            u.host_str().unwrap_or_default()
        ))
    }
}

/// The JSON both services answer with.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct MetadataCredentials {
    /// IMDS says `Success`; the container endpoints omit it.
    code: Option<String>,
    message: Option<String>,
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    token: Option<String>,
    expiration: Option<String>,
}

/// Reads a credentials answer of either service; `what` names it in errors.
fn parse_credentials(
    text: &str,
    what: &str,
    provider: &'static str,
) -> Result<Expiring<Credentials>, String> {
    // serde's message may quote a value of the answer: only its position is kept.
    let c: MetadataCredentials = serde_json::from_str(text).map_err(|e| {
        format!(
            "{what}: the answer is not credentials JSON (line {}, column {})",
            e.line(),
            e.column()
        )
    })?;
    if let Some(code) = c.code.as_deref().filter(|c| *c != "Success") {
        return Err(format!(
            "{what}: {code}: {}",
            c.message
                .unwrap_or_default()
                .chars()
                .take(300)
                .collect::<String>()
        ));
    }
    let need = |v: Option<String>, name: &str| {
        v.filter(|v| !v.is_empty())
            .ok_or_else(|| format!("{what}: the answer has no {name}"))
    };
    let expiration = need(c.expiration, "Expiration")?;
    let expires_at = humantime::parse_rfc3339_weak(&expiration)
        .map_err(|_| format!("{what}: unreadable Expiration {expiration:?}"))?;
    Ok(Expiring {
        value: Credentials::new(
            need(c.access_key_id, "AccessKeyId")?,
            need(c.secret_access_key, "SecretAccessKey")?,
            c.token.filter(|t| !t.is_empty()),
            Some(expires_at),
            provider,
        ),
        expires_at: Some(expires_at),
    })
}

/// The body of a successful answer, or an error naming `what` and the status.
async fn text_of(
    resp: Result<reqwest::Response, reqwest::Error>,
    what: &str,
) -> Result<String, String> {
    let resp = resp.map_err(|e| format!("{what}: {}", root_cause(&e)))?;
    let status = resp.status();
    let text = resp
        .text()
        .await
        .map_err(|e| format!("{what}: cannot read the answer: {e}"))?;
    if status.is_success() {
        Ok(text)
    } else {
        let detail: String = text.chars().take(300).collect();
        Err(format!("{what} answered {status}: {}", detail.trim()))
    }
}

/// Container credentials from `src`.
pub async fn container_credentials(
    http: &reqwest::Client,
    src: &ContainerSource,
) -> Result<Expiring<Credentials>, String> {
    let what = format!("container credentials at {}", src.url);
    let authorization = match (&src.token_file, &src.token) {
        (Some(file), _) => {
            let t = tokio::fs::read_to_string(file).await.map_err(|e| {
                format!(
                    "cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE {}: {e}",
                    file.display()
                )
            })?;
            Some(t.trim().to_owned())
        }
        (None, token) => token.as_ref().map(|t| t.expose().to_owned()),
    };
    let mut rb = http.get(src.url.clone()).timeout(METADATA_TIMEOUT);
    if let Some(a) = authorization.filter(|a| !a.is_empty()) {
        if a.contains(['\r', '\n']) {
            return Err("the container authorization token contains a line break".into());
        }
        rb = rb.header("authorization", a);
    }
    let text = text_of(rb.send().await, &what).await?;
    parse_credentials(&text, &what, "container")
}

/// The instance profile's credentials from the IMDSv2 service at `endpoint`.
pub async fn instance_credentials(
    http: &reqwest::Client,
    endpoint: &Url,
) -> Result<Expiring<Credentials>, String> {
    let base = endpoint.as_str().trim_end_matches('/');
    let what = format!("EC2 instance metadata at {base}");
    let token = text_of(
        http.put(format!("{base}/latest/api/token"))
            .header(
                "x-aws-ec2-metadata-token-ttl-seconds",
                IMDS_TOKEN_TTL_SECONDS,
            )
            .timeout(METADATA_TIMEOUT)
            .send()
            .await,
        &format!("{what} (session token)"),
    )
    .await?;
    let token = token.trim();
    let get = |path: String| {
        http.get(format!("{base}{path}"))
            .header("x-aws-ec2-metadata-token", token)
            .timeout(METADATA_TIMEOUT)
            .send()
    };
    const CREDS: &str = "/latest/meta-data/iam/security-credentials/";
    let roles = text_of(get(CREDS.to_owned()).await, &format!("{what} (role)")).await?;
    let role = roles
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .ok_or_else(|| format!("{what}: the instance has no IAM role (instance profile)"))?;
    if role.contains(['/', '?', '#']) {
        return Err(format!("{what}: unusable role name {role:?}"));
    }
    let text = text_of(
        get(format!("{CREDS}{role}")).await,
        &format!("{what} (credentials of {role})"),
    )
    .await?;
    parse_credentials(&text, &what, "instance_metadata")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::env::env_of as env;

    #[test]
    fn container_uris_follow_the_sdk_rules() {
        assert!(container_source(&env(&[])).unwrap().is_none());
        let s = container_source(&env(&[(
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "/v2/credentials/abc",
        )]))
        .unwrap()
        .unwrap();
        assert_eq!(s.url.as_str(), "http://169.254.170.2/v2/credentials/abc");
        // The relative URI wins over the full one, as in the SDKs.
        let s = container_source(&env(&[
            ("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "v2/x"),
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:1/y"),
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(s.url.path(), "/v2/x");
        for ok in [
            "http://169.254.170.23/v1/credentials",
            "http://[fd00:ec2::23]/v1/credentials",
            "http://127.0.0.1:8080/creds",
            "http://[::1]/creds",
            "http://localhost/creds",
            "https://creds.example.com/x",
        ] {
            let s = container_source(&env(&[
                ("AWS_CONTAINER_CREDENTIALS_FULL_URI", ok),
                ("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "/var/run/token"),
            ]))
            .unwrap_or_else(|e| panic!("{ok}: {e}"))
            .unwrap();
            assert_eq!(s.token_file.unwrap(), PathBuf::from("/var/run/token"));
        }
        for bad in [
            "http://10.0.0.5/creds",
            "http://creds.example.com/x",
            "ftp://127.0.0.1/x",
            "not a url",
        ] {
            let e = container_source(&env(&[("AWS_CONTAINER_CREDENTIALS_FULL_URI", bad)]))
                .expect_err(bad);
            assert!(e.starts_with("AWS_CONTAINER_CREDENTIALS_FULL_URI"), "{e}");
        }
    }

    #[test]
    fn credentials_answers_of_both_services_are_read() {
        let ecs = r#"{"AccessKeyId":"ASIAX","SecretAccessKey":"s/+","Token":"t","Expiration":"2030-01-01T00:00:00Z","RoleArn":"arn:aws:iam::1:role/r"}"#;
        let c = parse_credentials(ecs, "test", "container").unwrap();
        assert_eq!(c.value.access_key_id(), "ASIAX");
        assert_eq!(c.value.session_token(), Some("t"));
        assert!(c.expires_at.is_some());
        let imds = r#"{"Code":"Success","LastUpdated":"2029-12-31T18:00:00Z","Type":"AWS-HMAC","AccessKeyId":"ASIAY","SecretAccessKey":"s","Token":"t","Expiration":"2030-01-01T00:00:00Z"}"#;
        assert_eq!(
            parse_credentials(imds, "test", "instance_metadata")
                .unwrap()
                .value
                .access_key_id(),
            "ASIAY"
        );
        let failed = r#"{"Code":"AssumeRoleUnauthorizedAccess","Message":"no trust","LastUpdated":"2029-12-31T18:00:00Z"}"#;
        let e = parse_credentials(failed, "imds", "instance_metadata").unwrap_err();
        assert_eq!(e, "imds: AssumeRoleUnauthorizedAccess: no trust");
        let e = parse_credentials(
            r#"{"AccessKeyId":"A","SecretAccessKey":"s"}"#,
            "x",
            "container",
        )
        .unwrap_err();
        assert!(e.contains("Expiration"), "{e}");
        let e = parse_credentials("<html>", "x", "container").unwrap_err();
        assert!(e.contains("not credentials JSON"), "{e}");
    }
}
