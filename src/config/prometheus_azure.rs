//! `[prometheus_azure]`: how the Azure AD token is obtained (the token
//! sources themselves are `crate::backend::auth::azure`).

use url::Url;

use super::resolve::Resolver;
use super::{ConfigError, Secret};

/// `[prometheus_azure] identity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AzureIdentityKind {
    /// Chosen from the secrets and files present.
    Auto,
    ClientSecret,
    WorkloadIdentity,
    ManagedIdentity,
}

/// `[prometheus_azure]`: how the Azure AD token is obtained. Environment
/// fallbacks (AZURE_TENANT_ID, AZURE_AUTHORITY_HOST, …) are applied when the
/// backend is built.
#[derive(Debug, Clone, PartialEq)]
pub struct AzureSection {
    pub identity: AzureIdentityKind,
    pub tenant_id: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<Secret>,
    pub federated_token_file: Option<String>,
    pub authority_host: Option<Url>,
    pub scope: String,
    pub imds_endpoint: Url,
}

pub(super) fn build_azure(r: &mut Resolver<'_>) -> Result<AzureSection, ConfigError> {
    const S: &str = "prometheus_azure";
    let identity = match r.string(S, "identity")?.as_str() {
        "client_secret" => AzureIdentityKind::ClientSecret,
        "workload_identity" => AzureIdentityKind::WorkloadIdentity,
        "managed_identity" => AzureIdentityKind::ManagedIdentity,
        _ => AzureIdentityKind::Auto,
    };
    let scope = r.string(S, "scope")?.trim().to_owned();
    if scope.is_empty() {
        return Err(ConfigError::new(S, "scope", "must not be empty"));
    }
    let imds_endpoint = r
        .url(S, "imds_endpoint")?
        .ok_or_else(|| ConfigError::new(S, "imds_endpoint", "must not be empty"))?;
    Ok(AzureSection {
        identity,
        tenant_id: r.opt_string(S, "tenant_id")?,
        client_id: r.opt_string(S, "client_id")?,
        client_secret: r.secret(S, "client_secret")?,
        federated_token_file: r.opt_string(S, "federated_token_file")?,
        authority_host: r.url(S, "authority_host")?,
        scope,
        imds_endpoint,
    })
}

pub(super) fn validate_azure(a: &AzureSection) -> Result<(), ConfigError> {
    const S: &str = "prometheus_azure";
    let id_ok = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_')
    };
    for (option, value) in [("tenant_id", &a.tenant_id), ("client_id", &a.client_id)] {
        if let Some(v) = value {
            if !id_ok(v) {
                return Err(ConfigError::new(
                    S,
                    option,
                    format!("invalid value {v:?}: expected a GUID or a domain name"),
                ));
            }
        }
    }
    // Missing tenant, client or secret may still come from AZURE_* variables:
    // that is checked when the backend is built, with the environment.
    Ok(())
}
