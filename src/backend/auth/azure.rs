//! Azure AD tokens for Azure Monitor managed service for Prometheus.
//!
//! Three ways to get a token for scope
//! `https://prometheus.monitor.azure.com/.default`, each one HTTP request
//! made on our reqwest client:
//!
//! * client secret — `POST {authority}/{tenant}/oauth2/v2.0/token` with
//!   `grant_type=client_credentials`, `client_id`, `client_secret`, `scope`;
//! * workload identity (AKS) — the same request with
//!   `client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer`
//!   and `client_assertion` = the federated token file, read again for
//!   every request since kubelet rotates it;
//! * managed identity — `GET {imds}?api-version=2018-02-01&resource=…`
//!   with `Metadata: true` (and `client_id` for a user-assigned identity).
//!
//! The authority host is the option, else `AZURE_AUTHORITY_HOST` (as
//! Azure's SDKs read it), else `https://login.microsoftonline.com/`. Tokens
//! are cached in a [`Refreshing`] and fetched again shortly before expiry.
//! Why not `azure_identity`: see `doc/source/contributor/decisions.rst`.

use std::path::PathBuf;

use url::Url;

use super::oauth;
use crate::backend::env::{env_var, Env};
use crate::backend::refresh::{CacheState, Expiring, Refreshing};
use crate::config::{AzureIdentityKind, AzureSection, Secret};

/// Azure's public-cloud authority.
pub const DEFAULT_AUTHORITY: &str = "https://login.microsoftonline.com/";

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// How the token is obtained, with everything each way needs.
pub enum AzureIdentity {
    ClientSecret {
        tenant_id: String,
        client_id: String,
        secret: Secret,
    },
    WorkloadIdentity {
        tenant_id: String,
        client_id: String,
        token_file: PathBuf,
    },
    ManagedIdentity {
        /// A user-assigned identity; `None` is the system-assigned one.
        client_id: Option<String>,
        endpoint: Url,
    },
}

impl AzureIdentity {
    /// The identity type as the option spells it.
    pub fn kind(&self) -> &'static str {
        match self {
            AzureIdentity::ClientSecret { .. } => "client_secret",
            AzureIdentity::WorkloadIdentity { .. } => "workload_identity",
            AzureIdentity::ManagedIdentity { .. } => "managed_identity",
        }
    }
}

/// Cached, refreshing Azure AD bearer tokens.
pub struct AzureAd {
    identity: AzureIdentity,
    authority: Url,
    scope: String,
    http: reqwest::Client,
    cache: Refreshing<String>,
}

fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_')
}

impl AzureAd {
    /// Chooses the identity from `[prometheus_azure]` and the `AZURE_*`
    /// variables in `env`; fails naming the missing option.
    pub fn resolve(a: &AzureSection, env: &Env, http: reqwest::Client) -> Result<AzureAd, String> {
        const S: &str = "[prometheus_azure]";
        let tenant = a
            .tenant_id
            .clone()
            .or_else(|| env_var(env, "AZURE_TENANT_ID").map(str::to_owned));
        let client = a
            .client_id
            .clone()
            .or_else(|| env_var(env, "AZURE_CLIENT_ID").map(str::to_owned));
        let secret = a
            .client_secret
            .clone()
            .or_else(|| env_var(env, "AZURE_CLIENT_SECRET").map(Secret::new));
        let token_file = a
            .federated_token_file
            .clone()
            .or_else(|| env_var(env, "AZURE_FEDERATED_TOKEN_FILE").map(str::to_owned));
        let kind = match a.identity {
            AzureIdentityKind::Auto if secret.is_some() => AzureIdentityKind::ClientSecret,
            AzureIdentityKind::Auto if token_file.is_some() => AzureIdentityKind::WorkloadIdentity,
            AzureIdentityKind::Auto => AzureIdentityKind::ManagedIdentity,
            k => k,
        };
        let need = |v: Option<String>, what: &str, var: &str, why: &str| {
            v.ok_or_else(|| format!("{S} {what}: required with identity {why} (or {var})"))
        };
        let check_id = |what: &str, v: &str| {
            if valid_id(v) {
                Ok(())
            } else {
                Err(format!(
                    "{S} {what}: invalid value {v:?}: expected a GUID or a domain name"
                ))
            }
        };
        let identity = match kind {
            AzureIdentityKind::ClientSecret => {
                let tenant_id = need(tenant, "tenant_id", "AZURE_TENANT_ID", "client_secret")?;
                let client_id = need(client, "client_id", "AZURE_CLIENT_ID", "client_secret")?;
                check_id("tenant_id", &tenant_id)?;
                check_id("client_id", &client_id)?;
                AzureIdentity::ClientSecret {
                    tenant_id,
                    client_id,
                    secret: secret.ok_or_else(|| {
                        format!(
                            "{S} client_secret: required with identity client_secret (or \
                             AZURE_CLIENT_SECRET)"
                        )
                    })?,
                }
            }
            AzureIdentityKind::WorkloadIdentity => {
                let tenant_id = need(tenant, "tenant_id", "AZURE_TENANT_ID", "workload_identity")?;
                let client_id = need(client, "client_id", "AZURE_CLIENT_ID", "workload_identity")?;
                check_id("tenant_id", &tenant_id)?;
                check_id("client_id", &client_id)?;
                AzureIdentity::WorkloadIdentity {
                    tenant_id,
                    client_id,
                    token_file: PathBuf::from(need(
                        token_file,
                        "federated_token_file",
                        "AZURE_FEDERATED_TOKEN_FILE",
                        "workload_identity",
                    )?),
                }
            }
            AzureIdentityKind::ManagedIdentity | AzureIdentityKind::Auto => {
                if let Some(c) = &client {
                    check_id("client_id", c)?;
                }
                AzureIdentity::ManagedIdentity {
                    client_id: client,
                    endpoint: a.imds_endpoint.clone(),
                }
            }
        };
        let authority = match &a.authority_host {
            Some(u) => u.clone(),
            None => match env_var(env, "AZURE_AUTHORITY_HOST").map(str::to_owned) {
                Some(h) => crate::config::parse_url(&h)
                    .map_err(|e| format!("AZURE_AUTHORITY_HOST: {e}"))?,
                None => {
                    Url::parse(DEFAULT_AUTHORITY).map_err(|e| format!("internal error: {e}"))?
                }
            },
        };
        Ok(AzureAd {
            identity,
            authority,
            scope: a.scope.clone(),
            http,
            cache: Refreshing::new(),
        })
    }

    /// The identity in use.
    pub fn identity(&self) -> &AzureIdentity {
        &self.identity
    }

    /// Where tokens come from, for logs and health reports (ids only).
    pub fn describe(&self) -> String {
        match &self.identity {
            AzureIdentity::ClientSecret {
                tenant_id,
                client_id,
                ..
            } => format!(
                "client secret of {client_id} in tenant {tenant_id} at {}",
                self.authority
            ),
            AzureIdentity::WorkloadIdentity {
                tenant_id,
                client_id,
                token_file,
            } => format!(
                "workload identity {client_id} in tenant {tenant_id} (token file {}) at {}",
                token_file.display(),
                self.authority
            ),
            AzureIdentity::ManagedIdentity {
                client_id,
                endpoint,
            } => format!(
                "managed identity {} at {endpoint}",
                client_id.as_deref().unwrap_or("(system-assigned)")
            ),
        }
    }

    /// What the cache holds, and the last fetch error.
    pub fn state(&self) -> (CacheState, Option<String>) {
        (self.cache.state(), self.cache.last_error())
    }

    /// A current access token, from the cache or fetched.
    pub async fn token(&self) -> Result<String, String> {
        self.cache.get(|| self.fetch()).await
    }

    /// `{authority}/{tenant}/oauth2/v2.0/token`, keeping a path in the
    /// authority (Azure Stack, stand-ins).
    fn token_endpoint(&self, tenant: &str) -> Result<Url, String> {
        let mut u = self.authority.clone();
        let base = u.path().trim_end_matches('/').to_owned();
        u.set_path(&format!("{base}/{tenant}/oauth2/v2.0/token"));
        Ok(u)
    }

    async fn fetch(&self) -> Result<Expiring<String>, String> {
        let resp = match &self.identity {
            AzureIdentity::ClientSecret {
                tenant_id,
                client_id,
                secret,
            } => {
                let form = [
                    ("grant_type", "client_credentials"),
                    ("client_id", client_id.as_str()),
                    ("client_secret", secret.expose()),
                    ("scope", self.scope.as_str()),
                ];
                self.http
                    .post(self.token_endpoint(tenant_id)?)
                    .form(&form)
                    .send()
                    .await
            }
            AzureIdentity::WorkloadIdentity {
                tenant_id,
                client_id,
                token_file,
            } => {
                let assertion = tokio::fs::read_to_string(token_file).await.map_err(|e| {
                    format!(
                        "cannot read the federated token file {}: {e}",
                        token_file.display()
                    )
                })?;
                let assertion = assertion.trim();
                if assertion.is_empty() {
                    return Err(format!(
                        "the federated token file {} is empty",
                        token_file.display()
                    ));
                }
                let form = [
                    ("grant_type", "client_credentials"),
                    ("client_id", client_id.as_str()),
                    ("client_assertion_type", JWT_BEARER),
                    ("client_assertion", assertion),
                    ("scope", self.scope.as_str()),
                ];
                self.http
                    .post(self.token_endpoint(tenant_id)?)
                    .form(&form)
                    .send()
                    .await
            }
            AzureIdentity::ManagedIdentity {
                client_id,
                endpoint,
            } => {
                let resource = self.scope.strip_suffix("/.default").unwrap_or(&self.scope);
                let mut u = endpoint.clone();
                u.query_pairs_mut()
                    .append_pair("api-version", "2018-02-01")
                    .append_pair("resource", resource);
                if let Some(c) = client_id {
                    u.query_pairs_mut().append_pair("client_id", c);
                }
                self.http.get(u).header("Metadata", "true").send().await
            }
        };
        oauth::token_from(resp, &format!("Azure AD ({})", self.identity.kind())).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::env::env_of as env;

    fn section() -> AzureSection {
        crate::config::default_config().prometheus_azure
    }

    #[test]
    fn auto_identity_is_chosen_from_what_is_present() {
        let a = section();
        let http =
            crate::backend::http_client(std::time::Duration::from_secs(2), None, None, None, false)
                .unwrap();
        let base = [("AZURE_TENANT_ID", "t-1"), ("AZURE_CLIENT_ID", "c-1")];
        let mut with_secret = base.to_vec();
        with_secret.push(("AZURE_CLIENT_SECRET", "s3cr3t"));
        let ad = AzureAd::resolve(&a, &env(&with_secret), http.clone()).unwrap();
        assert_eq!(ad.identity().kind(), "client_secret");
        assert!(!ad.describe().contains("s3cr3t"));
        let mut with_file = base.to_vec();
        with_file.push((
            "AZURE_FEDERATED_TOKEN_FILE",
            "/var/run/secrets/azure/tokens/azure-identity-token",
        ));
        let ad = AzureAd::resolve(&a, &env(&with_file), http.clone()).unwrap();
        assert_eq!(ad.identity().kind(), "workload_identity");
        let ad = AzureAd::resolve(&a, &env(&base), http.clone()).unwrap();
        assert_eq!(ad.identity().kind(), "managed_identity");
        assert!(ad.describe().contains("c-1"));
    }

    #[test]
    fn authority_host_option_then_environment_then_public_cloud() {
        let http =
            crate::backend::http_client(std::time::Duration::from_secs(2), None, None, None, false)
                .unwrap();
        let mut a = section();
        a.identity = AzureIdentityKind::ClientSecret;
        a.tenant_id = Some("t".into());
        a.client_id = Some("c".into());
        a.client_secret = Some(Secret::new("s"));
        let ad = AzureAd::resolve(&a, &env(&[]), http.clone()).unwrap();
        assert_eq!(
            ad.token_endpoint("t").unwrap().as_str(),
            "https://login.microsoftonline.com/t/oauth2/v2.0/token"
        );
        let ad = AzureAd::resolve(
            &a,
            &env(&[("AZURE_AUTHORITY_HOST", "https://login.microsoftonline.us")]),
            http.clone(),
        )
        .unwrap();
        assert_eq!(
            ad.token_endpoint("t").unwrap().as_str(),
            "https://login.microsoftonline.us/t/oauth2/v2.0/token"
        );
        a.authority_host = Some(Url::parse("http://127.0.0.1:9/prefix/").unwrap());
        let ad = AzureAd::resolve(
            &a,
            &env(&[("AZURE_AUTHORITY_HOST", "https://ignored.example")]),
            http,
        )
        .unwrap();
        assert_eq!(
            ad.token_endpoint("t").unwrap().as_str(),
            "http://127.0.0.1:9/prefix/t/oauth2/v2.0/token"
        );
    }

    #[test]
    fn missing_pieces_name_the_option_and_the_variable() {
        let mut a = section();
        a.identity = AzureIdentityKind::WorkloadIdentity;
        let e = AzureAd::resolve(
            &a,
            &env(&[("AZURE_TENANT_ID", "t")]),
            crate::backend::http_client(std::time::Duration::from_secs(2), None, None, None, false)
                .unwrap(),
        )
        .err()
        .unwrap();
        assert!(
            e.contains("client_id") && e.contains("AZURE_CLIENT_ID"),
            "{e}"
        );
        a.identity = AzureIdentityKind::ClientSecret;
        let e = AzureAd::resolve(
            &a,
            &env(&[
                ("AZURE_TENANT_ID", "../evil"),
                ("AZURE_CLIENT_ID", "c"),
                ("AZURE_CLIENT_SECRET", "s"),
            ]),
            crate::backend::http_client(std::time::Duration::from_secs(2), None, None, None, false)
                .unwrap(),
        )
        .err()
        .unwrap();
        assert!(e.contains("tenant_id"), "{e}");
    }
}
