//! Server-side verification of AWS Signature Version 4, written from the
//! specification independently of the `aws-sigv4` crate that aetos signs
//! with, so that a shared misreading cannot make both sides agree.
//!
//! What is checked, as AWS services check it: the algorithm, the
//! credential scope (date, region, service, `aws4_request`), the request
//! time (`X-Amz-Date` within 5 minutes of now, same day as the scope), the
//! access key (known, not expired, with its session token sent), that
//! `host` and `x-amz-date` are signed, the body hash (recomputed from the
//! body actually received; an `x-amz-content-sha256` header must match
//! it), and finally the signature over the canonical request rebuilt from
//! the method, path, query string and signed headers as received.
//!
//! The query string is decoded strictly (`%XX` only; a `+` is a plus):
//! a client that sends form encoding (`+` for a space) while signing
//! `%20` is caught here.

use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use super::Registry;

/// What a verified request was signed with.
#[derive(Debug, Clone)]
pub struct Verified {
    pub akid: String,
    pub principal: String,
    pub signed_headers: String,
    pub canonical_request: String,
}

/// The parts of a received request the signature covers.
pub struct Received<'a> {
    pub method: &'a str,
    /// The path as received, still percent-encoded.
    pub raw_path: &'a str,
    /// The query string as received, without `?`.
    pub raw_query: &'a str,
    /// Every header as received (names in any case; repeated names kept).
    pub headers: Vec<(String, String)>,
    pub body: &'a [u8],
}

impl Received<'_> {
    fn header_values(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.header_values(name).first().copied()
    }
}

/// HMAC-SHA256 (RFC 2104), enough of it for SigV4.
pub fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut ipad = [0x36u8; 64];
    let mut opad = [0x5cu8; 64];
    for i in 0..64 {
        ipad[i] ^= k[i];
        opad[i] ^= k[i];
    }
    let inner = Sha256::new()
        .chain_update(ipad)
        .chain_update(msg)
        .finalize();
    Sha256::new()
        .chain_update(opad)
        .chain_update(inner)
        .finalize()
        .into()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SigV4's URI encoding: everything but `A-Z a-z 0-9 - _ . ~` as `%XX`.
fn uri_encode(bytes: &[u8]) -> String {
    let mut out = String::new();
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Strict percent-decoding (no `+` → space).
fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let hexval = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hexval(b[i + 1]), hexval(b[i + 2])) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// Canonical URI of a non-S3 service: each segment of the path as
/// received URI-encoded once more ("double encoding"), after removing
/// `.` and empty segments (RFC 3986 normalization).
pub fn canonical_uri(raw_path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for seg in raw_path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = String::from("/");
    out.push_str(
        &segments
            .iter()
            .map(|s| uri_encode(s.as_bytes()))
            .collect::<Vec<_>>()
            .join("/"),
    );
    if raw_path.ends_with('/') && !segments.is_empty() {
        out.push('/');
    }
    out
}

/// Canonical query: pairs decoded strictly, re-encoded, sorted.
pub fn canonical_query(raw_query: &str) -> String {
    let mut pairs: Vec<(String, String)> = raw_query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                uri_encode(&percent_decode(k)),
                uri_encode(&percent_decode(v)),
            )
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn collapse_spaces(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn parse_amz_date(s: &str) -> Option<SystemTime> {
    if s.len() != 16 || &s[8..9] != "T" || !s.ends_with('Z') {
        return None;
    }
    let text = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &s[0..4],
        &s[4..6],
        &s[6..8],
        &s[9..11],
        &s[11..13],
        &s[13..15]
    );
    humantime::parse_rfc3339(&text).ok()
}

/// Verifies `req` as service `service` in `region` would, at time `now`.
pub fn verify(
    req: &Received<'_>,
    registry: &Registry,
    region: &str,
    service: &str,
    now: SystemTime,
) -> Result<Verified, String> {
    let authz = req
        .header("authorization")
        .ok_or("MissingAuthenticationToken: no Authorization header")?;
    let rest = authz
        .strip_prefix("AWS4-HMAC-SHA256 ")
        .ok_or("IncompleteSignature: unsupported algorithm")?;
    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("Credential=") {
            credential = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed_headers = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            signature = Some(v);
        }
    }
    let (credential, signed_headers, signature) = match (credential, signed_headers, signature) {
        (Some(c), Some(h), Some(s)) => (c, h, s),
        _ => {
            return Err(
                "IncompleteSignature: Credential, SignedHeaders and Signature required".into(),
            )
        }
    };
    let scope: Vec<&str> = credential.split('/').collect();
    let [akid, date, scope_region, scope_service, terminator] = scope[..] else {
        return Err(format!(
            "IncompleteSignature: bad credential scope {credential:?}"
        ));
    };
    if terminator != "aws4_request" {
        return Err("IncompleteSignature: scope must end in aws4_request".into());
    }
    if scope_region != region {
        return Err(format!(
            "SignatureDoesNotMatch: credential should be scoped to a valid region, not '{scope_region}'"
        ));
    }
    if scope_service != service {
        return Err(format!(
            "SignatureDoesNotMatch: credential should be scoped to correct service: '{service}'"
        ));
    }
    let amz_date = req
        .header("x-amz-date")
        .ok_or("IncompleteSignature: no X-Amz-Date")?;
    let signed_at = parse_amz_date(amz_date).ok_or("IncompleteSignature: bad X-Amz-Date")?;
    if &amz_date[..8] != date {
        return Err("SignatureDoesNotMatch: scope date is not the request date".into());
    }
    let skew = now
        .duration_since(signed_at)
        .or_else(|e| Ok::<_, ()>(e.duration()))
        .unwrap_or_default();
    if skew > Duration::from_secs(300) {
        return Err(format!(
            "InvalidSignatureException: Signature expired (skew {skew:?})"
        ));
    }
    let key = registry
        .aws_key(akid)
        .ok_or_else(|| format!("UnrecognizedClientException: unknown access key {akid}"))?;
    if let Some(exp) = key.expires {
        if now >= exp {
            return Err(
                "ExpiredTokenException: The security token included in the request is expired"
                    .into(),
            );
        }
    }
    if let Some(token) = &key.session_token {
        if req.header("x-amz-security-token") != Some(token.as_str()) {
            return Err("UnrecognizedClientException: The security token included in the request is invalid".into());
        }
    }
    let names: Vec<&str> = signed_headers.split(';').collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    if names != sorted || names.iter().any(|n| *n != n.to_ascii_lowercase()) {
        return Err("SignatureDoesNotMatch: SignedHeaders must be lower case and sorted".into());
    }
    for required in ["host", "x-amz-date"] {
        if !names.contains(&required) {
            return Err(format!("SignatureDoesNotMatch: {required} must be signed"));
        }
    }
    let body_hash = hex(&Sha256::digest(req.body));
    if let Some(claimed) = req.header("x-amz-content-sha256") {
        if claimed != body_hash {
            return Err("XAmzContentSHA256Mismatch: the body hash does not match the body".into());
        }
    }
    let mut canonical_headers = String::new();
    for name in &names {
        let values = req.header_values(name);
        if values.is_empty() {
            return Err(format!(
                "SignatureDoesNotMatch: signed header {name} is missing"
            ));
        }
        let joined = values
            .iter()
            .map(|v| collapse_spaces(v))
            .collect::<Vec<_>>()
            .join(",");
        canonical_headers.push_str(&format!("{name}:{joined}\n"));
    }
    let canonical_request = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method,
        canonical_uri(req.raw_path),
        canonical_query(req.raw_query),
        canonical_headers,
        signed_headers,
        body_hash
    );
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{date}/{region}/{service}/aws4_request\n{}",
        hex(&Sha256::digest(canonical_request.as_bytes()))
    );
    let k_date = hmac_sha256(format!("AWS4{}", key.secret).as_bytes(), date.as_bytes());
    let k_region = hmac_sha256(&k_date, region.as_bytes());
    let k_service = hmac_sha256(&k_region, service.as_bytes());
    let k_signing = hmac_sha256(&k_service, b"aws4_request");
    let expected = hex(&hmac_sha256(&k_signing, string_to_sign.as_bytes()));
    if expected != signature {
        return Err(
            "SignatureDoesNotMatch: The request signature we calculated does not match the \
             signature you provided."
                .into(),
        );
    }
    Ok(Verified {
        akid: akid.to_owned(),
        principal: key.principal,
        signed_headers: signed_headers.to_owned(),
        canonical_request,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        assert_eq!(
            hex(&hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
