//! `[prometheus_aws]`: AWS SigV4 signing and where its credentials come
//! from (the chain itself is `crate::backend::auth::aws`).

use url::Url;

use super::resolve::Resolver;
use super::{ConfigError, Secret, Warning};

/// `[prometheus_aws] credential_source`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AwsCredentialSource {
    /// The first configured of the others, in their listed order.
    Auto,
    Static,
    Environment,
    Profile,
    WebIdentity,
    /// ECS task role or EKS Pod Identity (`AWS_CONTAINER_CREDENTIALS_*`).
    Container,
    /// The EC2 instance profile, through IMDSv2.
    InstanceMetadata,
}

/// `[prometheus_aws]`: AWS SigV4 signing and where its credentials come from.
/// Environment fallbacks (AWS_REGION, AWS_ROLE_ARN, …) are applied when the
/// backend is built, not here, so that the file alone says what it says.
#[derive(Debug, Clone, PartialEq)]
pub struct AwsSection {
    pub region: Option<String>,
    pub service: String,
    pub credential_source: AwsCredentialSource,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<Secret>,
    pub session_token: Option<Secret>,
    pub profile: Option<String>,
    pub shared_credentials_file: Option<String>,
    pub config_file: Option<String>,
    pub web_identity_token_file: Option<String>,
    pub web_identity_role_arn: Option<String>,
    pub assume_role_arn: Option<String>,
    pub external_id: Option<String>,
    pub role_session_name: Option<String>,
    /// Seconds.
    pub role_duration: u64,
    pub sts_endpoint: Option<Url>,
    pub ec2_metadata_endpoint: Option<Url>,
}

pub(super) fn build_aws(r: &mut Resolver<'_>) -> Result<AwsSection, ConfigError> {
    const S: &str = "prometheus_aws";
    let credential_source = match r.string(S, "credential_source")?.as_str() {
        "static" => AwsCredentialSource::Static,
        "environment" => AwsCredentialSource::Environment,
        "profile" => AwsCredentialSource::Profile,
        "web_identity" => AwsCredentialSource::WebIdentity,
        "container" => AwsCredentialSource::Container,
        "instance_metadata" => AwsCredentialSource::InstanceMetadata,
        _ => AwsCredentialSource::Auto,
    };
    Ok(AwsSection {
        region: r.opt_string(S, "region")?.map(|s| s.trim().to_owned()),
        service: r.string(S, "service")?.trim().to_owned(),
        credential_source,
        access_key_id: r.opt_string(S, "access_key_id")?,
        secret_access_key: r.secret(S, "secret_access_key")?,
        session_token: r.secret(S, "session_token")?,
        profile: r.opt_string(S, "profile")?,
        shared_credentials_file: r.opt_string(S, "shared_credentials_file")?,
        config_file: r.opt_string(S, "config_file")?,
        web_identity_token_file: r.opt_string(S, "web_identity_token_file")?,
        web_identity_role_arn: r.opt_string(S, "web_identity_role_arn")?,
        assume_role_arn: r.opt_string(S, "assume_role_arn")?,
        external_id: r.opt_string(S, "external_id")?,
        role_session_name: r.opt_string(S, "role_session_name")?,
        role_duration: r.uint(S, "role_duration")?,
        sts_endpoint: r.url(S, "sts_endpoint")?,
        ec2_metadata_endpoint: r.url(S, "ec2_metadata_endpoint")?,
    })
}

pub(super) fn validate_aws(a: &AwsSection, warnings: &mut Vec<Warning>) -> Result<(), ConfigError> {
    const S: &str = "prometheus_aws";
    if a.service.is_empty() {
        return Err(ConfigError::new(S, "service", "must not be empty"));
    }
    match (&a.access_key_id, &a.secret_access_key) {
        (Some(_), None) => {
            return Err(ConfigError::new(
                S,
                "secret_access_key",
                "required when access_key_id is set",
            ))
        }
        (None, Some(_)) => {
            return Err(ConfigError::new(
                S,
                "access_key_id",
                "required when secret_access_key is set",
            ))
        }
        (None, None) if a.credential_source == AwsCredentialSource::Static => {
            return Err(ConfigError::new(
                S,
                "access_key_id",
                "required with credential_source = static",
            ))
        }
        _ => {}
    }
    if a.external_id.is_some() && a.assume_role_arn.is_none() {
        warnings.push(Warning(format!(
            "[{S}] external_id: ignored because assume_role_arn is not set"
        )));
    }
    for (option, value) in [
        ("web_identity_role_arn", &a.web_identity_role_arn),
        ("assume_role_arn", &a.assume_role_arn),
    ] {
        if let Some(arn) = value {
            if !arn.starts_with("arn:") {
                return Err(ConfigError::new(
                    S,
                    option,
                    format!("invalid value {arn:?}: expected a role ARN (arn:aws:iam::<account>:role/<name>)"),
                ));
            }
        }
    }
    Ok(())
}
