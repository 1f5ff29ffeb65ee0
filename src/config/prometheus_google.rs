//! `[prometheus_google]`: how the Google OAuth token is obtained (the
//! token sources themselves are `crate::backend::auth::google`).

use url::Url;

use super::resolve::Resolver;
use super::ConfigError;

/// `[prometheus_google] identity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoogleIdentityKind {
    /// A key file when one is named, else the metadata server.
    Auto,
    ServiceAccountKey,
    MetadataServer,
}

/// `[prometheus_google]`: how the Google OAuth token is obtained.
/// Environment fallbacks (GOOGLE_APPLICATION_CREDENTIALS, GCE_METADATA_HOST)
/// are applied when the backend is built.
#[derive(Debug, Clone, PartialEq)]
pub struct GoogleSection {
    pub identity: GoogleIdentityKind,
    pub credentials_file: Option<String>,
    pub scope: String,
    pub metadata_endpoint: Option<Url>,
    pub service_account: String,
}

pub(super) fn build_google(r: &mut Resolver<'_>) -> Result<GoogleSection, ConfigError> {
    const S: &str = "prometheus_google";
    let identity = match r.string(S, "identity")?.as_str() {
        "service_account_key" => GoogleIdentityKind::ServiceAccountKey,
        "metadata_server" => GoogleIdentityKind::MetadataServer,
        _ => GoogleIdentityKind::Auto,
    };
    let scope = r.string(S, "scope")?.trim().to_owned();
    if scope.is_empty() {
        return Err(ConfigError::new(S, "scope", "must not be empty"));
    }
    let service_account = r.string(S, "service_account")?.trim().to_owned();
    if service_account.is_empty() || service_account.contains(['/', '?', '#']) {
        return Err(ConfigError::new(
            S,
            "service_account",
            format!("invalid value {service_account:?}: expected 'default' or an e-mail address"),
        ));
    }
    Ok(GoogleSection {
        identity,
        credentials_file: r.opt_string(S, "credentials_file")?,
        scope,
        metadata_endpoint: r.url(S, "metadata_endpoint")?,
        service_account,
    })
}
