//! `[oslo_policy]`: where the policy lives and how it is evaluated.

use super::resolve::Resolver;
use super::ConfigError;

/// `[oslo_policy]`: where the policy lives and how it is evaluated.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicySection {
    /// As configured; relative paths are found with [`Config::find_file`].
    pub policy_file: String,
    /// Every occurrence of the option, oldest file first; empty entries dropped.
    pub policy_dirs: Vec<String>,
    pub policy_default_rule: String,
    pub enforce_scope: bool,
    pub enforce_new_defaults: bool,
}

pub(super) fn build_policy(r: &mut Resolver<'_>) -> Result<PolicySection, ConfigError> {
    Ok(PolicySection {
        policy_file: r.string("oslo_policy", "policy_file")?,
        policy_dirs: r
            .list("oslo_policy", "policy_dirs")?
            .into_iter()
            .filter(|d| !d.trim().is_empty())
            .collect(),
        policy_default_rule: r.string("oslo_policy", "policy_default_rule")?,
        enforce_scope: r.bool("oslo_policy", "enforce_scope")?,
        enforce_new_defaults: r.bool("oslo_policy", "enforce_new_defaults")?,
    })
}
