//! AWS SigV4 for Amazon Managed Service for Prometheus, without `aws-config`.
//!
//! The base credentials come from one source, chosen at start-up in the
//! AWS SDKs' order: static configuration, the environment
//! (`AWS_ACCESS_KEY_ID`…), a profile of the shared `credentials`/`config`
//! files ([`profile`]), or a web identity token exchanged with STS
//! `AssumeRoleWithWebIdentity` (`AWS_ROLE_ARN` + `AWS_WEB_IDENTITY_TOKEN_FILE`,
//! which IRSA injects into EKS pods), then the container credentials of an
//! ECS task or EKS Pod Identity and the EC2 instance profile (IMDSv2), see
//! [`metadata`]. Optionally the base credentials then assume a role in
//! another account with STS `AssumeRole` (role ARN, external id, session
//! name): the central-AMP pattern ([`sts`]).
//!
//! The result is cached in a [`Refreshing`] and fetched again shortly
//! before it expires, never per request; each request is then signed with
//! it ([`sign`]).
//!
//! Imports point one way: this file uses `sign`, `sts`, `profile` and
//! `metadata`; `sts` uses `sign`; none of them uses this file.

pub mod metadata;
mod profile;
pub mod sign;
mod sts;

#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use url::Url;

use crate::backend::env::{env_var, Env};
use crate::backend::refresh::{CacheState, Expiring, Refreshing};
use crate::config::{AwsCredentialSource, AwsSection};
use metadata::ContainerSource;
use profile::{load_profile, LoadedProfile};
use sign::{signature_headers, ToSign};
use sts::{AssumeRole, Sts};

const S: &str = "[prometheus_aws]";

/// SigV4 signing with cached, refreshing credentials.
pub struct SigV4 {
    pub region: String,
    pub service: String,
    pub credentials: Arc<AwsCredentialProvider>,
}

impl SigV4 {
    /// The headers that authenticate `req` now.
    pub async fn headers_for(
        &self,
        req: ToSign<'_>,
    ) -> Result<Vec<(&'static str, String)>, String> {
        let creds = self.credentials.credentials().await?;
        signature_headers(
            &creds,
            &self.region,
            &self.service,
            SystemTime::now(),
            req,
            false,
        )
    }
}

/// Where the base credentials come from.
enum BaseSource {
    /// Long-lived keys (config, environment or profile): never refreshed.
    Fixed(Credentials),
    /// `AssumeRoleWithWebIdentity` with the token read from a file.
    WebIdentity {
        role_arn: String,
        token_file: PathBuf,
    },
    /// ECS task role or EKS Pod Identity.
    Container(ContainerSource),
    /// EC2 instance profile, through IMDSv2 at this endpoint.
    InstanceMetadata(Url),
}

/// Cached, refreshing AWS credentials (see the module documentation).
pub struct AwsCredentialProvider {
    base: BaseSource,
    /// `static`, `environment`, `profile`, `web_identity`, `container` or
    /// `instance_metadata`.
    base_name: &'static str,
    assume: Option<AssumeRole>,
    session_name: String,
    duration: Duration,
    sts: Sts,
    cache: Refreshing<Credentials>,
}

/// Region and credentials resolved from `[prometheus_aws]` and the environment.
pub struct ResolvedAws {
    pub region: String,
    pub provider: AwsCredentialProvider,
}

/// The region in an AMP URL: `aps-workspaces.<region>.amazonaws.com`.
fn region_from_url(u: &Url) -> Option<String> {
    let host = u.host_str()?;
    let rest = host.strip_prefix("aps-workspaces.")?;
    let (region, domain) = rest.split_once('.')?;
    (domain.starts_with("amazonaws.com") && !region.is_empty()).then(|| region.to_owned())
}

fn fixed(akid: &str, secret: &str, token: Option<&str>, provider: &'static str) -> BaseSource {
    BaseSource::Fixed(Credentials::new(
        akid,
        secret,
        token.filter(|t| !t.is_empty()).map(str::to_owned),
        None,
        provider,
    ))
}

/// The shared-files profile, read only when needed (region fallback or
/// credential source), and at most once.
struct LazyProfile<'a> {
    a: &'a AwsSection,
    env: &'a Env,
    loaded: Option<LoadedProfile>,
}

impl LazyProfile<'_> {
    fn get(&mut self) -> Result<&LoadedProfile, String> {
        if self.loaded.is_none() {
            self.loaded = Some(load_profile(self.a, self.env)?);
        }
        self.loaded
            .as_ref()
            .ok_or_else(|| "internal error: profile not loaded".to_owned())
    }
}

/// The signing region: the option, the AMP URL, `AWS_REGION`,
/// `AWS_DEFAULT_REGION`, then the profile's `region`.
fn region(
    a: &AwsSection,
    backend_urls: &[Url],
    env: &Env,
    profile: &mut LazyProfile<'_>,
) -> Result<String, String> {
    let mut region = a
        .region
        .clone()
        .filter(|r| !r.is_empty())
        .or_else(|| backend_urls.iter().find_map(region_from_url))
        .or_else(|| env_var(env, "AWS_REGION").map(str::to_owned))
        .or_else(|| env_var(env, "AWS_DEFAULT_REGION").map(str::to_owned));
    if region.is_none() {
        region = profile.get()?.values.get("region").cloned();
    }
    region.ok_or_else(|| {
        format!(
            "{S} region: required for auth_method = sigv4 (or an AMP URL, AWS_REGION, \
             AWS_DEFAULT_REGION, or a region in the profile)"
        )
    })
}

/// The base credential source `credential_source` names, or with `auto`
/// the first one configured in the SDKs' order; with its name.
fn base_source(
    a: &AwsSection,
    env: &Env,
    profile: &mut LazyProfile<'_>,
) -> Result<(BaseSource, &'static str), String> {
    let role_arn = a
        .web_identity_role_arn
        .clone()
        .or_else(|| env_var(env, "AWS_ROLE_ARN").map(str::to_owned));
    let token_file = a
        .web_identity_token_file
        .clone()
        .or_else(|| env_var(env, "AWS_WEB_IDENTITY_TOKEN_FILE").map(str::to_owned));

    let try_static = || {
        match (&a.access_key_id, &a.secret_access_key) {
            (Some(k), Some(s)) => Some(fixed(
                k,
                s.expose(),
                a.session_token.as_ref().map(|t| t.expose()),
                "static",
            )),
            _ => None,
        }
        .map(|b| (b, "static"))
    };
    let try_env = || match (
        env_var(env, "AWS_ACCESS_KEY_ID"),
        env_var(env, "AWS_SECRET_ACCESS_KEY"),
    ) {
        (Some(k), Some(s)) => Some((
            fixed(k, s, env_var(env, "AWS_SESSION_TOKEN"), "environment"),
            "environment",
        )),
        _ => None,
    };
    let try_web = || match (&role_arn, &token_file) {
        (Some(r), Some(f)) => Some((
            BaseSource::WebIdentity {
                role_arn: r.clone(),
                token_file: PathBuf::from(f),
            },
            "web_identity",
        )),
        _ => None,
    };
    let container = metadata::container_source(env)?;
    let try_container = || {
        container
            .clone()
            .map(|c| (BaseSource::Container(c), "container"))
    };
    let imds_endpoint = match &a.ec2_metadata_endpoint {
        Some(u) => u.clone(),
        None => {
            let u = env_var(env, "AWS_EC2_METADATA_SERVICE_ENDPOINT")
                .unwrap_or(metadata::DEFAULT_IMDS_ENDPOINT);
            crate::config::parse_url(u)
                .map_err(|e| format!("AWS_EC2_METADATA_SERVICE_ENDPOINT: {e}"))?
        }
    };
    let imds_disabled =
        env_var(env, "AWS_EC2_METADATA_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let try_imds = || {
        (!imds_disabled).then(|| {
            (
                BaseSource::InstanceMetadata(imds_endpoint.clone()),
                "instance_metadata",
            )
        })
    };
    let from_profile = |p: &LoadedProfile| match (
        p.values.get("aws_access_key_id"),
        p.values.get("aws_secret_access_key"),
    ) {
        (Some(k), Some(s)) => Some((
            fixed(
                k,
                s,
                p.values.get("aws_session_token").map(String::as_str),
                "profile",
            ),
            "profile",
        )),
        _ => None,
    };
    Ok(match a.credential_source {
        AwsCredentialSource::Static => try_static().ok_or_else(|| {
            format!("{S} access_key_id: required with credential_source = static")
        })?,
        AwsCredentialSource::Environment => try_env().ok_or_else(|| {
            format!(
                "{S} credential_source = environment, but AWS_ACCESS_KEY_ID and \
                 AWS_SECRET_ACCESS_KEY are not both set"
            )
        })?,
        AwsCredentialSource::WebIdentity => try_web().ok_or_else(|| {
            format!(
                "{S} credential_source = web_identity needs web_identity_role_arn (or \
                 AWS_ROLE_ARN) and web_identity_token_file (or AWS_WEB_IDENTITY_TOKEN_FILE)"
            )
        })?,
        AwsCredentialSource::Profile => {
            let p = profile.get()?;
            from_profile(p).ok_or_else(|| {
                format!(
                    "{S} credential_source = profile, but profile {:?} has no \
                     aws_access_key_id/aws_secret_access_key in {}",
                    p.name, p.files
                )
            })?
        }
        AwsCredentialSource::Container => try_container().ok_or_else(|| {
            format!(
                "{S} credential_source = container, but neither \
                 AWS_CONTAINER_CREDENTIALS_RELATIVE_URI nor \
                 AWS_CONTAINER_CREDENTIALS_FULL_URI is set"
            )
        })?,
        AwsCredentialSource::InstanceMetadata => (
            BaseSource::InstanceMetadata(imds_endpoint.clone()),
            "instance_metadata",
        ),
        AwsCredentialSource::Auto => {
            let found = match try_static().or_else(try_env) {
                Some(f) => Some(f),
                None => {
                    let p = profile.get()?;
                    from_profile(p)
                        .or_else(try_web)
                        .or_else(try_container)
                        .or_else(try_imds)
                }
            };
            found.ok_or_else(|| {
                format!(
                    "{S}: no AWS credentials found for auth_method = sigv4: set \
                     access_key_id/secret_access_key, AWS_ACCESS_KEY_ID/\
                     AWS_SECRET_ACCESS_KEY, a profile in the shared files, \
                     AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE (IRSA), or the container \
                     credentials variables (ECS, EKS Pod Identity); instance metadata is \
                     off because AWS_EC2_METADATA_DISABLED is true"
                )
            })?
        }
    })
}

/// The STS endpoint: the option, `AWS_ENDPOINT_URL_STS`, or the regional
/// one (`amazonaws.com.cn` in the China regions).
fn sts_endpoint(a: &AwsSection, env: &Env, region: &str) -> Result<Url, String> {
    Ok(match &a.sts_endpoint {
        Some(u) => u.clone(),
        None => match env_var(env, "AWS_ENDPOINT_URL_STS") {
            Some(u) => {
                crate::config::parse_url(u).map_err(|e| format!("AWS_ENDPOINT_URL_STS: {e}"))?
            }
            None => {
                let suffix = if region.starts_with("cn-") {
                    "amazonaws.com.cn"
                } else {
                    "amazonaws.com"
                };
                Url::parse(&format!("https://sts.{region}.{suffix}/"))
                    .map_err(|e| format!("{S} region: {region:?} makes no STS URL ({e})"))?
            }
        },
    })
}

impl AwsCredentialProvider {
    /// Chooses the region and the credential source from `[prometheus_aws]`,
    /// the backend URLs (an AMP URL names its region) and `env`. Fails with
    /// a message naming the option to set when no source is configured.
    pub fn resolve(
        a: &AwsSection,
        backend_urls: &[Url],
        env: &Env,
        http: reqwest::Client,
    ) -> Result<ResolvedAws, String> {
        let mut profile = LazyProfile {
            a,
            env,
            loaded: None,
        };
        let region = region(a, backend_urls, env, &mut profile)?;
        let chosen = base_source(a, env, &mut profile)?;
        let endpoint = sts_endpoint(a, env, &region)?;
        let sts_region = if endpoint.host_str() == Some("sts.amazonaws.com") {
            "us-east-1".to_owned()
        } else {
            region.clone()
        };
        let session_name = a
            .role_session_name
            .clone()
            .or_else(|| env_var(env, "AWS_ROLE_SESSION_NAME").map(str::to_owned))
            .unwrap_or_else(|| "aetos".to_owned());
        Ok(ResolvedAws {
            region,
            provider: AwsCredentialProvider {
                base: chosen.0,
                base_name: chosen.1,
                assume: a.assume_role_arn.as_ref().map(|r| AssumeRole {
                    role_arn: r.clone(),
                    external_id: a.external_id.clone(),
                }),
                session_name,
                duration: Duration::from_secs(a.role_duration),
                sts: Sts {
                    http,
                    endpoint,
                    region: sts_region,
                },
                cache: Refreshing::new(),
            },
        })
    }

    /// Where the credentials come from, for logs and health reports (no
    /// secret: role ARNs and file names only).
    pub fn describe(&self) -> String {
        let base = match &self.base {
            BaseSource::Fixed(c) => format!(
                "{} keys ({})",
                self.base_name,
                if c.session_token().is_some() {
                    "temporary"
                } else {
                    "long-lived"
                }
            ),
            BaseSource::WebIdentity {
                role_arn,
                token_file,
            } => format!("web identity token {} for {role_arn}", token_file.display()),
            BaseSource::Container(c) => format!("container credentials from {}", c.url),
            BaseSource::InstanceMetadata(endpoint) => {
                format!("EC2 instance metadata (IMDSv2) at {endpoint}")
            }
        };
        match &self.assume {
            Some(ar) => format!("{base}, then AssumeRole {}", ar.role_arn),
            None => base,
        }
    }

    /// The STS endpoint in use.
    pub fn sts_endpoint(&self) -> &Url {
        &self.sts.endpoint
    }

    /// What the cache holds, and the last fetch error.
    pub fn state(&self) -> (CacheState, Option<String>) {
        (self.cache.state(), self.cache.last_error())
    }

    /// Current credentials, from the cache or fetched (see [`Refreshing`]).
    pub async fn credentials(&self) -> Result<Credentials, String> {
        self.cache.get(|| self.fetch()).await
    }

    async fn fetch(&self) -> Result<Expiring<Credentials>, String> {
        let base = match &self.base {
            BaseSource::Fixed(c) => Expiring {
                value: c.clone(),
                expires_at: None,
            },
            BaseSource::WebIdentity {
                role_arn,
                token_file,
            } => {
                let token = tokio::fs::read_to_string(token_file).await.map_err(|e| {
                    format!(
                        "cannot read the web identity token file {}: {e}",
                        token_file.display()
                    )
                })?;
                let token = token.trim();
                if token.is_empty() {
                    return Err(format!(
                        "the web identity token file {} is empty",
                        token_file.display()
                    ));
                }
                self.sts
                    .assume_role_with_web_identity(
                        role_arn,
                        &self.session_name,
                        token,
                        self.duration,
                    )
                    .await?
            }
            BaseSource::Container(c) => metadata::container_credentials(&self.sts.http, c).await?,
            BaseSource::InstanceMetadata(endpoint) => {
                metadata::instance_credentials(&self.sts.http, endpoint).await?
            }
        };
        let Some(ar) = &self.assume else {
            return Ok(base);
        };
        self.sts
            .assume_role(&base.value, ar, &self.session_name, self.duration)
            .await
    }
}
