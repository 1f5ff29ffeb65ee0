//! AWS Signature Version 4 for Amazon Managed Service for Prometheus.
//!
//! Every request is signed with the `aws-sigv4` crate over its method, path,
//! query string, the headers we choose to sign, and a SHA-256 of the body
//! that is actually sent (a form-encoded POST is signed over its form body,
//! not over an empty one). This file only signs: which credentials, and
//! their refreshing, is [`super`]'s business.
//!
//! The query string is re-encoded before sending with SigV4's own rules
//! (RFC 3986: only `A–Z a–z 0–9 - _ . ~` stay as they are, a space is
//! `%20`), so that what is sent and what is signed cannot differ in how a
//! `+` or a space is read.

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    sign, PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings,
};
use aws_sigv4::sign::v4;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC};

/// Characters SigV4 percent-encodes: everything but the unreserved set.
const SIGV4_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// Re-encodes a query string the way SigV4 canonicalizes it (pairs keep
/// their order; `+` and `%20` both mean a space, as every form decoder
/// reads them, and become `%20`).
pub fn canonical_query_for_sending(query: &str) -> String {
    url::form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| {
            format!(
                "{}={}",
                percent_encoding::utf8_percent_encode(&k, SIGV4_ENCODE),
                percent_encoding::utf8_percent_encode(&v, SIGV4_ENCODE)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// One request to sign, as it will be sent.
#[derive(Debug, Clone, Copy)]
pub struct ToSign<'a> {
    pub method: &'a str,
    /// Absolute URL with the query string exactly as it will be sent.
    pub url: &'a str,
    /// Headers to cover by the signature (`host` is added from the URL).
    pub headers: &'a [(&'a str, &'a str)],
    pub body: &'a [u8],
}

/// Signs `req` and returns the headers to add (`authorization`,
/// `x-amz-date`, and `x-amz-security-token` for temporary credentials;
/// `x-amz-content-sha256` too when `body_hash_header`).
pub fn signature_headers(
    creds: &Credentials,
    region: &str,
    service: &str,
    time: SystemTime,
    req: ToSign<'_>,
    body_hash_header: bool,
) -> Result<Vec<(&'static str, String)>, String> {
    // aws-sigv4 expects a host in the URL (it panics otherwise).
    let parsed = url::Url::parse(req.url).map_err(|e| format!("cannot sign {}: {e}", req.url))?;
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err("cannot sign a URL without a host".to_owned());
    }
    let mut settings = SigningSettings::default();
    if body_hash_header {
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    }
    let identity = creds.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(settings)
        .build()
        .map_err(|e| format!("signing parameters: {e}"))?
        .into();
    let signable = SignableRequest::new(
        req.method,
        req.url,
        req.headers.iter().copied(),
        SignableBody::Bytes(req.body),
    )
    .map_err(|e| format!("cannot sign the request: {e}"))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| format!("cannot sign the request: {e}"))?
        .into_parts();
    let (headers, _params) = instructions.into_parts();
    Ok(headers
        .into_iter()
        .map(|h| (h.name(), h.value().to_owned()))
        .collect())
}

#[cfg(test)]
mod tests {
    //! The signer against AWS's published SigV4 test suite (the CRT signing
    //! test suite, awslabs/aws-c-auth `tests/aws-signing-test-suite/v4`, as
    //! shipped with aws-sigv4 1.6), copied under `tests/data/sigv4/`.
    use super::*;
    use std::path::PathBuf;
    use std::time::Duration;

    fn suite_dir(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/sigv4")
            .join(name)
    }

    struct Vector {
        method: String,
        url: String,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        creds: Credentials,
        region: String,
        service: String,
        time: SystemTime,
        sign_body: bool,
        expected_authorization: String,
    }

    fn load(name: &str) -> Vector {
        let dir = suite_dir(name);
        let ctx: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("context.json")).unwrap())
                .unwrap();
        let request = std::fs::read_to_string(dir.join("request.txt")).unwrap();
        let (head, body) = request.split_once("\n\n").unwrap_or((&request, ""));
        let mut lines = head.lines();
        let first = lines.next().unwrap();
        let mut parts = first.splitn(2, ' ');
        let method = parts.next().unwrap().to_owned();
        let target = parts.next().unwrap().rsplit_once(' ').unwrap().0.to_owned();
        let mut headers = Vec::new();
        for l in lines {
            let (k, v) = l.split_once(':').unwrap();
            headers.push((k.to_owned(), v.to_owned()));
        }
        let host = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("host"))
            .unwrap()
            .1
            .clone();
        let signed = std::fs::read_to_string(dir.join("header-signed-request.txt")).unwrap();
        let expected_authorization = signed
            .lines()
            .find_map(|l| l.strip_prefix("Authorization:"))
            .unwrap()
            .to_owned();
        let c = &ctx["credentials"];
        let ts = ctx["timestamp"].as_str().unwrap();
        Vector {
            method,
            // On the wire a URL is percent-encoded (`ሴ` → `%E1%88%B4`).
            url: url::Url::parse(&format!("https://{host}{target}"))
                .unwrap()
                .to_string(),
            headers,
            body: body.as_bytes().to_vec(),
            creds: Credentials::new(
                c["access_key_id"].as_str().unwrap(),
                c["secret_access_key"].as_str().unwrap(),
                c["token"].as_str().map(str::to_owned),
                None,
                "test-suite",
            ),
            region: ctx["region"].as_str().unwrap().to_owned(),
            service: ctx["service"].as_str().unwrap().to_owned(),
            time: humantime::parse_rfc3339(ts).unwrap(),
            sign_body: ctx["sign_body"].as_bool().unwrap_or(false),
            expected_authorization,
        }
    }

    fn authorization_for(v: &Vector) -> String {
        let headers: Vec<(&str, &str)> = v
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let out = signature_headers(
            &v.creds,
            &v.region,
            &v.service,
            v.time,
            ToSign {
                method: &v.method,
                url: &v.url,
                headers: &headers,
                body: &v.body,
            },
            v.sign_body,
        )
        .unwrap();
        out.into_iter()
            .find(|(k, _)| *k == "authorization")
            .unwrap()
            .1
    }

    #[test]
    fn signer_matches_the_aws_sigv4_test_suite() {
        let names = [
            "get-vanilla",
            "get-vanilla-query",
            "get-vanilla-query-order-key-case",
            "get-vanilla-query-unreserved",
            "get-vanilla-utf8-query",
            "get-vanilla-with-session-token",
            "post-vanilla",
            "post-vanilla-query",
            "post-x-www-form-urlencoded",
            "post-x-www-form-urlencoded-parameters",
        ];
        for name in names {
            let v = load(name);
            assert_eq!(authorization_for(&v), v.expected_authorization, "{name}");
        }
    }

    #[test]
    fn signature_covers_the_real_body() {
        let v = load("post-x-www-form-urlencoded");
        let mut other = load("post-x-www-form-urlencoded");
        other.body = b"Param1=value2".to_vec();
        assert_ne!(authorization_for(&v), authorization_for(&other));
        let mut empty = load("post-x-www-form-urlencoded");
        empty.body.clear();
        assert_ne!(authorization_for(&v), authorization_for(&empty));
    }

    #[test]
    fn temporary_credentials_add_the_security_token_header() {
        let creds = Credentials::new(
            "ASIAEXAMPLE",
            "secret",
            Some("session-token".into()),
            Some(SystemTime::now() + Duration::from_secs(60)),
            "test",
        );
        let out = signature_headers(
            &creds,
            "eu-west-1",
            "aps",
            SystemTime::now(),
            ToSign {
                method: "GET",
                url: "https://aps-workspaces.eu-west-1.amazonaws.com/workspaces/ws-1/api/v1/query?query=up",
                headers: &[],
                body: b"",
            },
            false,
        )
        .unwrap();
        let get = |n: &str| out.iter().find(|(k, _)| *k == n).map(|(_, v)| v.as_str());
        assert_eq!(get("x-amz-security-token"), Some("session-token"));
        let authz = get("authorization").unwrap();
        assert!(authz.contains("/eu-west-1/aps/aws4_request"), "{authz}");
        assert!(
            authz.contains("SignedHeaders=host;x-amz-date;x-amz-security-token"),
            "{authz}"
        );
        assert!(get("x-amz-date").is_some());
    }

    #[test]
    fn query_is_reencoded_with_sigv4_rules_keeping_order() {
        assert_eq!(
            canonical_query_for_sending("query=sum+by+%28job%29+%28up%29&time=1.5"),
            "query=sum%20by%20%28job%29%20%28up%29&time=1.5"
        );
        assert_eq!(
            canonical_query_for_sending("match%5B%5D=up%7Bproject%3D%22a%22%7D&b=~x_y-z."),
            "match%5B%5D=up%7Bproject%3D%22a%22%7D&b=~x_y-z."
        );
        assert_eq!(canonical_query_for_sending(""), "");
        assert_eq!(canonical_query_for_sending("flag"), "flag=");
    }

    #[test]
    fn url_without_host_is_an_error_not_a_panic() {
        let creds = Credentials::new("a", "b", None, None, "test");
        let r = signature_headers(
            &creds,
            "r",
            "aps",
            SystemTime::now(),
            ToSign {
                method: "GET",
                url: "unix:/x",
                headers: &[],
                body: b"",
            },
            false,
        );
        assert!(r.is_err());
    }
}
