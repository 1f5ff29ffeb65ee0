//! The two STS calls aetos makes, on its own reqwest client: a form POST
//! and a few XML elements to read, which keeps `aws-config` and its ~180
//! crates (aws-lc among them) out of the build.
//!
//! * `AssumeRoleWithWebIdentity` — unsigned: the web identity token (IRSA's
//!   projected service-account token) is the credential;
//! * `AssumeRole` — signed with the base credentials ([`super::sign`]),
//!   for the central-AMP pattern (a role in another account, with an
//!   optional external id).

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use url::Url;

use super::sign::{signature_headers, ToSign};
use crate::backend::client::root_cause;
use crate::backend::refresh::Expiring;

/// STS `AssumeRole` after the base credentials.
#[derive(Debug, Clone)]
pub(super) struct AssumeRole {
    pub(super) role_arn: String,
    pub(super) external_id: Option<String>,
}

/// The STS endpoint and how requests to it are signed.
pub(super) struct Sts {
    pub(super) http: reqwest::Client,
    pub(super) endpoint: Url,
    /// Region STS requests are signed for.
    pub(super) region: String,
}

impl Sts {
    /// `AssumeRoleWithWebIdentity` (unsigned: the token is the credential).
    pub(super) async fn assume_role_with_web_identity(
        &self,
        role_arn: &str,
        session: &str,
        token: &str,
        duration: Duration,
    ) -> Result<Expiring<Credentials>, String> {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("Action", "AssumeRoleWithWebIdentity")
            .append_pair("Version", "2011-06-15")
            .append_pair("RoleArn", role_arn)
            .append_pair("RoleSessionName", session)
            .append_pair("WebIdentityToken", token)
            .append_pair("DurationSeconds", &duration.as_secs().to_string())
            .finish();
        let resp = self
            .http
            .post(self.endpoint.as_str())
            .header("content-type", FORM)
            .body(body)
            .send()
            .await;
        self.credentials_from("AssumeRoleWithWebIdentity", resp)
            .await
    }

    /// `AssumeRole`, signed with `base`.
    pub(super) async fn assume_role(
        &self,
        base: &Credentials,
        ar: &AssumeRole,
        session: &str,
        duration: Duration,
    ) -> Result<Expiring<Credentials>, String> {
        let body = {
            // The serializer is not Send: keep it out of the awaits below.
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            form.append_pair("Action", "AssumeRole")
                .append_pair("Version", "2011-06-15")
                .append_pair("RoleArn", &ar.role_arn)
                .append_pair("RoleSessionName", session)
                .append_pair("DurationSeconds", &duration.as_secs().to_string());
            if let Some(id) = &ar.external_id {
                form.append_pair("ExternalId", id);
            }
            form.finish()
        };
        let signed = signature_headers(
            base,
            &self.region,
            "sts",
            SystemTime::now(),
            ToSign {
                method: "POST",
                url: self.endpoint.as_str(),
                headers: &[("content-type", FORM)],
                body: body.as_bytes(),
            },
            false,
        )?;
        let mut rb = self
            .http
            .post(self.endpoint.as_str())
            .header("content-type", FORM);
        for (k, v) in signed {
            rb = rb.header(k, v);
        }
        let resp = rb.body(body).send().await;
        self.credentials_from("AssumeRole", resp).await
    }

    /// Reads the `<Credentials>` of an STS answer, or says why there are none.
    async fn credentials_from(
        &self,
        action: &str,
        resp: Result<reqwest::Response, reqwest::Error>,
    ) -> Result<Expiring<Credentials>, String> {
        let resp =
            resp.map_err(|e| format!("STS {action} at {}: {}", self.endpoint, root_cause(&e)))?;
        let status = resp.status();
        let text = resp
            .text()
            .await
            .map_err(|e| format!("STS {action}: cannot read the answer: {e}"))?;
        if !status.is_success() {
            let code = xml_element(&text, "Code").unwrap_or_default();
            let message = xml_element(&text, "Message").unwrap_or_default();
            return Err(format!(
                "STS {action} was refused ({status} {code}): {}",
                truncate(&message, 300)
            ));
        }
        let get = |name: &str| {
            xml_element(&text, name)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| format!("STS {action}: the answer has no {name}"))
        };
        let expiration = get("Expiration")?;
        let expires_at = humantime::parse_rfc3339_weak(&expiration)
            .map_err(|_| format!("STS {action}: unreadable Expiration {expiration:?}"))?;
        Ok(Expiring {
            value: Credentials::new(
                get("AccessKeyId")?,
                get("SecretAccessKey")?,
                Some(get("SessionToken")?),
                Some(expires_at),
                "sts",
            ),
            expires_at: Some(expires_at),
        })
    }
}

const FORM: &str = "application/x-www-form-urlencoded; charset=utf-8";

fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

/// The text of the first `<name>…</name>` element of an XML document, with
/// entities decoded. STS answers are small, machine-written documents whose
/// leaf elements carry no attributes: this is all they need.
pub fn xml_element(doc: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = doc.find(&open)? + open.len();
    let end = start + doc[start..].find(&close)?;
    Some(xml_unescape(doc[start..end].trim()))
}

/// Decodes the five predefined entities and numeric character references.
fn xml_unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let Some(end) = rest.find(';') else { break };
        let entity = &rest[1..end];
        let decoded = match entity {
            "lt" => Some('<'),
            "gt" => Some('>'),
            "amp" => Some('&'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sts_xml_is_read_with_entities_decoded() {
        let doc = r#"<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult><Credentials>
    <AccessKeyId>ASIAEXAMPLE</AccessKeyId>
    <SecretAccessKey>se/cr+et&amp;x</SecretAccessKey>
    <SessionToken>to&#x2F;ken&#61;</SessionToken>
    <Expiration>2030-01-01T00:00:00Z</Expiration>
  </Credentials></AssumeRoleResult></AssumeRoleResponse>"#;
        assert_eq!(
            xml_element(doc, "AccessKeyId").as_deref(),
            Some("ASIAEXAMPLE")
        );
        assert_eq!(
            xml_element(doc, "SecretAccessKey").as_deref(),
            Some("se/cr+et&x")
        );
        assert_eq!(xml_element(doc, "SessionToken").as_deref(), Some("to/ken="));
        assert_eq!(xml_element(doc, "Missing"), None);
        assert_eq!(xml_unescape("a &bogus; b &"), "a &bogus; b &");
    }
}
