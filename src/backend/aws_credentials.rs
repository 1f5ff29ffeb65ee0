//! AWS credentials for SigV4, without `aws-config`.
//!
//! The base credentials come from one source, chosen at start-up in the
//! AWS SDKs' order: static configuration, the environment
//! (`AWS_ACCESS_KEY_ID`…), a profile of the shared `credentials`/`config`
//! files, or a web identity token exchanged with STS
//! `AssumeRoleWithWebIdentity` (`AWS_ROLE_ARN` + `AWS_WEB_IDENTITY_TOKEN_FILE`,
//! which IRSA injects into EKS pods), then the container credentials of an
//! ECS task or EKS Pod Identity and the EC2 instance profile (IMDSv2), see
//! [`super::aws_metadata`]. Optionally the base credentials then
//! assume a role in another account with STS `AssumeRole` (role ARN,
//! external id, session name): the central-AMP pattern.
//!
//! The two STS calls are made here on our own reqwest client (a form POST
//! and a few XML elements to read), which keeps `aws-config` and its ~180
//! crates (aws-lc among them) out of the build. The result is cached in a
//! [`Refreshing`] and fetched again shortly before it expires, never per
//! request.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use url::Url;

use super::aws_metadata::{self, ContainerSource};
use super::refresh::{CacheState, Expiring, Refreshing};
use super::sigv4::{signature_headers, ToSign};
use crate::config::{AwsCredentialSource, AwsSection};

/// Environment variables as read at start-up (tests pass their own).
pub type Env = HashMap<String, String>;

/// The process environment, for [`AwsCredentialProvider::resolve`].
pub fn process_env() -> Env {
    std::env::vars().collect()
}

/// An environment of `pairs`, for tests.
#[cfg(test)]
pub fn env_of(pairs: &[(&str, &str)]) -> Env {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// `name` in `env`, unless it is unset or empty.
pub(super) fn env_var<'a>(env: &'a Env, name: &str) -> Option<&'a str> {
    env.get(name).map(String::as_str).filter(|v| !v.is_empty())
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

/// STS `AssumeRole` after the base credentials.
#[derive(Debug, Clone)]
struct AssumeRole {
    role_arn: String,
    external_id: Option<String>,
}

/// The STS endpoint and how requests to it are signed.
struct Sts {
    http: reqwest::Client,
    endpoint: Url,
    /// Region STS requests are signed for.
    region: String,
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

/// One profile of the shared files: lower-case keys to values.
type Profile = HashMap<String, String>;

/// Reads the sections of an AWS shared file (INI: `[name]`, `key = value`,
/// `#`/`;` comments). A missing file is empty.
fn read_shared_file(path: &Path) -> Result<HashMap<String, Profile>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashMap::new()),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let mut out: HashMap<String, Profile> = HashMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.trim().to_owned();
            out.entry(name.clone()).or_default();
            current = Some(name);
            continue;
        }
        if let (Some(section), Some((k, v))) = (&current, line.split_once('=')) {
            out.entry(section.clone())
                .or_default()
                .insert(k.trim().to_lowercase(), v.trim().to_owned());
        }
    }
    Ok(out)
}

/// The named profile, merged from the config file (`[profile NAME]`, or
/// `[default]`) and the credentials file (`[NAME]`, which wins).
fn load_profile(a: &AwsSection, env: &Env) -> Result<(String, Profile, String), String> {
    let name = a
        .profile
        .clone()
        .or_else(|| env_var(env, "AWS_PROFILE").map(str::to_owned))
        .unwrap_or_else(|| "default".to_owned());
    let home = env_var(env, "HOME").map(PathBuf::from);
    let file = |option: &Option<String>, var: &str, default: &str| -> Option<PathBuf> {
        option
            .as_ref()
            .map(PathBuf::from)
            .or_else(|| env_var(env, var).map(PathBuf::from))
            .or_else(|| home.as_ref().map(|h| h.join(".aws").join(default)))
    };
    let creds_path = file(
        &a.shared_credentials_file,
        "AWS_SHARED_CREDENTIALS_FILE",
        "credentials",
    );
    let config_path = file(&a.config_file, "AWS_CONFIG_FILE", "config");
    let mut profile = Profile::new();
    if let Some(p) = &config_path {
        let sections = read_shared_file(p)?;
        let key = if name == "default" {
            "default".to_owned()
        } else {
            format!("profile {name}")
        };
        if let Some(s) = sections.get(&key) {
            profile.extend(s.clone());
        }
    }
    if let Some(p) = &creds_path {
        if let Some(s) = read_shared_file(p)?.get(&name) {
            profile.extend(s.clone());
        }
    }
    let files = [creds_path, config_path]
        .iter()
        .flatten()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(" and ");
    Ok((name, profile, files))
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
        const S: &str = "[prometheus_aws]";
        // The profile is read only when needed (region fallback or source).
        let mut profile_cache: Option<(String, Profile, String)> = None;
        let profile = |cache: &mut Option<(String, Profile, String)>| {
            if cache.is_none() {
                *cache = Some(load_profile(a, env)?);
            }
            Ok::<_, String>(cache.clone().unwrap_or_default())
        };
        let mut region = a
            .region
            .clone()
            .filter(|r| !r.is_empty())
            .or_else(|| backend_urls.iter().find_map(region_from_url))
            .or_else(|| env_var(env, "AWS_REGION").map(str::to_owned))
            .or_else(|| env_var(env, "AWS_DEFAULT_REGION").map(str::to_owned));
        if region.is_none() {
            region = profile(&mut profile_cache)?.1.get("region").cloned();
        }
        let region = region.ok_or_else(|| {
            format!(
                "{S} region: required for auth_method = sigv4 (or an AMP URL, AWS_REGION, \
                 AWS_DEFAULT_REGION, or a region in the profile)"
            )
        })?;

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
        let container = aws_metadata::container_source(env)?;
        let try_container = || {
            container
                .clone()
                .map(|c| (BaseSource::Container(c), "container"))
        };
        let imds_endpoint = match &a.ec2_metadata_endpoint {
            Some(u) => u.clone(),
            None => {
                let u = env_var(env, "AWS_EC2_METADATA_SERVICE_ENDPOINT")
                    .unwrap_or(aws_metadata::DEFAULT_IMDS_ENDPOINT);
                crate::config::parse_url(u)
                    .map_err(|e| format!("AWS_EC2_METADATA_SERVICE_ENDPOINT: {e}"))?
            }
        };
        let imds_disabled = env_var(env, "AWS_EC2_METADATA_DISABLED")
            .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let try_imds = || {
            (!imds_disabled).then(|| {
                (
                    BaseSource::InstanceMetadata(imds_endpoint.clone()),
                    "instance_metadata",
                )
            })
        };
        let from_profile = |p: &(String, Profile, String)| match (
            p.1.get("aws_access_key_id"),
            p.1.get("aws_secret_access_key"),
        ) {
            (Some(k), Some(s)) => Some((
                fixed(
                    k,
                    s,
                    p.1.get("aws_session_token").map(String::as_str),
                    "profile",
                ),
                "profile",
            )),
            _ => None,
        };
        let chosen = match a.credential_source {
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
                let p = profile(&mut profile_cache)?;
                from_profile(&p).ok_or_else(|| {
                    format!(
                        "{S} credential_source = profile, but profile {:?} has no \
                         aws_access_key_id/aws_secret_access_key in {}",
                        p.0, p.2
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
                        let p = profile(&mut profile_cache)?;
                        from_profile(&p)
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
        };

        let endpoint = match &a.sts_endpoint {
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
        };
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
            BaseSource::Container(c) => {
                aws_metadata::container_credentials(&self.sts.http, c).await?
            }
            BaseSource::InstanceMetadata(endpoint) => {
                aws_metadata::instance_credentials(&self.sts.http, endpoint).await?
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

impl Sts {
    /// `AssumeRoleWithWebIdentity` (unsigned: the token is the credential).
    async fn assume_role_with_web_identity(
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
    async fn assume_role(
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
        let resp = resp.map_err(|e| {
            format!(
                "STS {action} at {}: {}",
                self.endpoint,
                super::root_cause(&e)
            )
        })?;
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
    use super::env_of as env;
    use super::*;

    fn section() -> AwsSection {
        crate::config::default_config().prometheus_aws
    }

    fn client() -> reqwest::Client {
        crate::backend::http_client(std::time::Duration::from_secs(2), None, None, None, false)
            .unwrap()
    }

    fn amp() -> Vec<Url> {
        vec![
            Url::parse("https://aps-workspaces.eu-central-1.amazonaws.com/workspaces/ws-1/")
                .unwrap(),
        ]
    }

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

    #[test]
    fn region_comes_from_the_option_then_the_amp_url_then_the_environment() {
        let mut a = section();
        a.access_key_id = Some("AKID".into());
        a.secret_access_key = Some(crate::config::Secret::new("s"));
        let r = AwsCredentialProvider::resolve(
            &a,
            &amp(),
            &env(&[("AWS_REGION", "us-west-2")]),
            client(),
        )
        .unwrap();
        assert_eq!(r.region, "eu-central-1");
        let r =
            AwsCredentialProvider::resolve(&a, &[], &env(&[("AWS_REGION", "us-west-2")]), client())
                .unwrap();
        assert_eq!(r.region, "us-west-2");
        assert_eq!(
            r.provider.sts_endpoint().as_str(),
            "https://sts.us-west-2.amazonaws.com/"
        );
        a.region = Some("ap-south-1".into());
        let r = AwsCredentialProvider::resolve(&a, &amp(), &env(&[]), client()).unwrap();
        assert_eq!(r.region, "ap-south-1");
        a.region = None;
        let e = AwsCredentialProvider::resolve(&a, &[], &env(&[]), client())
            .err()
            .unwrap();
        assert!(e.contains("region"), "{e}");
    }

    #[test]
    fn auto_source_follows_the_sdk_order() {
        let a = section();
        let irsa = [
            ("AWS_ROLE_ARN", "arn:aws:iam::111122223333:role/amp"),
            (
                "AWS_WEB_IDENTITY_TOKEN_FILE",
                "/var/run/secrets/eks.amazonaws.com/serviceaccount/token",
            ),
            ("HOME", "/nonexistent"),
        ];
        let r = AwsCredentialProvider::resolve(&a, &amp(), &env(&irsa), client()).unwrap();
        assert_eq!(r.provider.base_name, "web_identity");
        assert!(r
            .provider
            .describe()
            .contains("arn:aws:iam::111122223333:role/amp"));
        // Environment keys come before web identity.
        let mut both = irsa.to_vec();
        both.push(("AWS_ACCESS_KEY_ID", "AKID"));
        both.push(("AWS_SECRET_ACCESS_KEY", "secret"));
        let r = AwsCredentialProvider::resolve(&a, &amp(), &env(&both), client()).unwrap();
        assert_eq!(r.provider.base_name, "environment");
        assert!(!r.provider.describe().contains("secret"));
        // Web identity comes before container credentials.
        let mut pod = irsa.to_vec();
        pod.push((
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "http://169.254.170.23/v1/credentials",
        ));
        let r = AwsCredentialProvider::resolve(&a, &amp(), &env(&pod), client()).unwrap();
        assert_eq!(r.provider.base_name, "web_identity");
        let r = AwsCredentialProvider::resolve(&a, &amp(), &env(&pod[2..]), client()).unwrap();
        assert_eq!(r.provider.base_name, "container");
        assert_eq!(
            r.provider.describe(),
            "container credentials from http://169.254.170.23/v1/credentials"
        );
        // Nothing configured: the instance profile, as the SDKs do…
        let home = [("HOME", "/nonexistent")];
        let r = AwsCredentialProvider::resolve(&a, &amp(), &env(&home), client()).unwrap();
        assert_eq!(r.provider.base_name, "instance_metadata");
        assert!(
            r.provider.describe().contains("http://169.254.169.254/"),
            "{}",
            r.provider.describe()
        );
        let moved = [
            home[0],
            ("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:7/"),
        ];
        let r = AwsCredentialProvider::resolve(&a, &amp(), &env(&moved), client()).unwrap();
        assert!(r.provider.describe().contains("http://127.0.0.1:7/"));
        // …unless it is switched off: then a message naming what to set.
        let off = [home[0], ("AWS_EC2_METADATA_DISABLED", "true")];
        let e = AwsCredentialProvider::resolve(&a, &amp(), &env(&off), client())
            .err()
            .unwrap();
        assert!(e.contains("AWS_WEB_IDENTITY_TOKEN_FILE"), "{e}");
        assert!(e.contains("AWS_EC2_METADATA_DISABLED"), "{e}");
        // A container variable that cannot be used is an error, not a fallback.
        let e = AwsCredentialProvider::resolve(
            &a,
            &amp(),
            &env(&[
                home[0],
                ("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://10.1.2.3/"),
            ]),
            client(),
        )
        .err()
        .unwrap();
        assert!(e.contains("plain http"), "{e}");
    }

    #[tokio::test]
    async fn profiles_are_read_from_the_shared_files() {
        let dir = std::env::temp_dir().join(format!("aetos-aws-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("credentials"),
            "[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = s1\n\n\
             [metrics]\naws_access_key_id = AKIDMETRICS\naws_secret_access_key = s2\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("config"),
            "[profile metrics]\nregion = sa-east-1\n",
        )
        .unwrap();
        let mut a = section();
        a.credential_source = AwsCredentialSource::Profile;
        a.shared_credentials_file = Some(dir.join("credentials").display().to_string());
        a.config_file = Some(dir.join("config").display().to_string());
        let r =
            AwsCredentialProvider::resolve(&a, &[], &env(&[("AWS_PROFILE", "metrics")]), client())
                .unwrap();
        assert_eq!(r.region, "sa-east-1");
        let c = r.provider.credentials().await.unwrap();
        assert_eq!(c.access_key_id(), "AKIDMETRICS");
        assert_eq!(c.secret_access_key(), "s2");
        // A profile without keys is a clear error.
        let e = AwsCredentialProvider::resolve(
            &a,
            &[],
            &env(&[("AWS_PROFILE", "nope"), ("AWS_REGION", "x")]),
            client(),
        )
        .err()
        .unwrap();
        assert!(e.contains("\"nope\""), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn sts_endpoint_option_and_environment_and_global_signing_region() {
        let mut a = section();
        a.access_key_id = Some("AKID".into());
        a.secret_access_key = Some(crate::config::Secret::new("s"));
        a.region = Some("eu-west-1".into());
        let r = AwsCredentialProvider::resolve(
            &a,
            &[],
            &env(&[("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:1/")]),
            client(),
        )
        .unwrap();
        assert_eq!(r.provider.sts_endpoint().as_str(), "http://127.0.0.1:1/");
        a.sts_endpoint = Some(Url::parse("https://sts.amazonaws.com/").unwrap());
        let r = AwsCredentialProvider::resolve(&a, &[], &env(&[]), client()).unwrap();
        assert_eq!(r.provider.sts.region, "us-east-1");
        a.region = Some("cn-north-1".into());
        a.sts_endpoint = None;
        let r = AwsCredentialProvider::resolve(&a, &[], &env(&[]), client()).unwrap();
        assert_eq!(
            r.provider.sts_endpoint().as_str(),
            "https://sts.cn-north-1.amazonaws.com.cn/"
        );
    }

    #[tokio::test]
    async fn unreachable_sts_is_an_error_naming_the_action() {
        let dir = std::env::temp_dir().join(format!("aetos-aws-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("token"), "eyJ.token.sig").unwrap();
        let mut a = section();
        a.credential_source = AwsCredentialSource::WebIdentity;
        a.web_identity_role_arn = Some("arn:aws:iam::1:role/r".into());
        a.web_identity_token_file = Some(dir.join("token").display().to_string());
        a.region = Some("eu-west-1".into());
        // A port nobody listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        a.sts_endpoint = Some(Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap());
        let r = AwsCredentialProvider::resolve(&a, &[], &env(&[]), client()).unwrap();
        let e = r.provider.credentials().await.unwrap_err();
        assert!(e.starts_with("STS AssumeRoleWithWebIdentity"), "{e}");
        assert!(!e.contains("eyJ.token.sig"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
