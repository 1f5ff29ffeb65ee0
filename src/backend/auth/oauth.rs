//! OAuth2 token answers, shared by the Azure AD and Google token sources.

use std::time::{Duration, SystemTime};

use serde_json::Value;

use crate::backend::client::root_cause;
use crate::backend::refresh::Expiring;

/// Reads the answer of a token request; `who` names the issuer in errors.
pub async fn token_from(
    resp: Result<reqwest::Response, reqwest::Error>,
    who: &str,
) -> Result<Expiring<String>, String> {
    let resp = resp.map_err(|e| format!("{who}: {}", root_cause(&e)))?;
    let status = resp.status();
    let body: Value = resp
        .json()
        .await
        .map_err(|e| format!("{who} answered {status} with no JSON: {e}"))?;
    parse_token(&body, status, who, SystemTime::now())
}

/// An OAuth2 token answer (Azure AD, Azure IMDS, Google's token endpoint
/// and metadata server): `access_token` and `expires_in` (a number, or a
/// string as Azure IMDS writes it), else `expires_on` (Unix time). `who`
/// names the issuer in errors.
pub fn parse_token(
    body: &Value,
    status: reqwest::StatusCode,
    who: &str,
    now: SystemTime,
) -> Result<Expiring<String>, String> {
    if !status.is_success() {
        let error = body["error"].as_str().unwrap_or("error");
        let description = body["error_description"].as_str().unwrap_or("");
        let description: String = description.chars().take(300).collect();
        return Err(format!(
            "{who} refused the token request ({status} {error}): {description}"
        ));
    }
    let token = body["access_token"]
        .as_str()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| format!("{who}: the answer has no access_token"))?;
    let number = |v: &Value| {
        v.as_u64()
            .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
    };
    let expires_at = match (number(&body["expires_in"]), number(&body["expires_on"])) {
        (Some(secs), _) => now + Duration::from_secs(secs),
        (None, Some(epoch)) => SystemTime::UNIX_EPOCH + Duration::from_secs(epoch),
        (None, None) => {
            return Err(format!(
                "{who}: the answer has neither expires_in nor expires_on"
            ))
        }
    };
    Ok(Expiring {
        value: token.to_owned(),
        expires_at: Some(expires_at),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn token_answers_of_azure_ad_imds_and_google_are_read() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let ok = reqwest::StatusCode::OK;
        let t = parse_token(
            &json!({"token_type": "Bearer", "expires_in": 3599, "access_token": "eyJ0"}),
            ok,
            "client_secret",
            now,
        )
        .unwrap();
        assert_eq!(t.value, "eyJ0");
        assert_eq!(t.expires_at, Some(now + Duration::from_secs(3599)));
        // IMDS writes numbers as strings.
        let t = parse_token(
            &json!({"access_token": "eyJ1", "expires_in": "86399", "expires_on": "1700086399"}),
            ok,
            "managed_identity",
            now,
        )
        .unwrap();
        assert_eq!(t.expires_at, Some(now + Duration::from_secs(86399)));
        let t = parse_token(
            &json!({"access_token": "x", "expires_on": "1700000600"}),
            ok,
            "m",
            now,
        )
        .unwrap();
        assert_eq!(t.expires_at, Some(now + Duration::from_secs(600)));
        let e = parse_token(
            &json!({"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided."}),
            reqwest::StatusCode::UNAUTHORIZED,
            "client_secret",
            now,
        )
        .unwrap_err();
        assert!(
            e.contains("invalid_client") && e.contains("AADSTS7000215"),
            "{e}"
        );
        assert!(parse_token(&json!({"access_token": "x"}), ok, "m", now).is_err());
        assert!(parse_token(&json!({}), ok, "m", now).is_err());
    }
}
