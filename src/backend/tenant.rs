//! The tenant header of multi-tenant engines (`X-Scope-OrgID` for Mimir and
//! Cortex, `THANOS-TENANT` for Thanos).
//!
//! Either one static tenant for every request, or one tenant per project:
//! a scoped caller's requests carry its project id, so the engine itself
//! keeps projects apart (on top of the PromQL scoping, which stays on);
//! privileged callers — who are allowed to see every project — carry the
//! configured `tenant` (an operator tenant, or a Mimir federation such as
//! `tenant-a|tenant-b`). The caller can never choose the value: a header
//! of that name in its request is not forwarded.

use reqwest::header::{HeaderName, HeaderValue};

use crate::config::TenantConfig;

/// A tenant header and how its value is chosen.
#[derive(Debug, Clone)]
pub struct TenantHeader {
    name: HeaderName,
    /// Sent for every request (static), or for privileged ones (per project).
    tenant: HeaderValue,
    per_project: bool,
}

impl From<&TenantConfig> for TenantHeader {
    /// The header as `[prometheus]` configures it (checked at load).
    fn from(t: &TenantConfig) -> Self {
        TenantHeader {
            name: t.header.clone(),
            tenant: t.tenant.clone(),
            per_project: t.per_project,
        }
    }
}

impl TenantHeader {
    /// Checks the header name and value; errors name the option (tests
    /// only: the service takes a [`TenantConfig`] checked at load).
    #[cfg(test)]
    pub fn new(name: &str, tenant: &str, per_project: bool) -> Result<Self, String> {
        Ok(TenantHeader {
            name: HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                format!("[prometheus] tenant_header: {name:?} is not a header name")
            })?,
            tenant: HeaderValue::from_str(tenant)
                .map_err(|_| format!("[prometheus] tenant: {tenant:?} is not a header value"))?,
            per_project,
        })
    }

    /// The header's name (lower case).
    pub fn name(&self) -> &HeaderName {
        &self.name
    }

    /// The value for a request of a caller scoped to `project` (`None`:
    /// privileged). A project id that is not a valid header value (never
    /// the case for Keystone ids) is refused rather than dropped.
    pub fn value_for(&self, project: Option<&str>) -> Result<HeaderValue, String> {
        match project {
            Some(p) if self.per_project => HeaderValue::from_str(p)
                .map_err(|_| format!("project id {p:?} cannot be sent as a tenant")),
            _ => Ok(self.tenant.clone()),
        }
    }

    /// Whether the value depends on the caller's project.
    pub fn per_project(&self) -> bool {
        self.per_project
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_tenant_is_sent_for_everyone() {
        let t = TenantHeader::new("X-Scope-OrgID", "openstack", false).unwrap();
        assert_eq!(t.name().as_str(), "x-scope-orgid");
        assert_eq!(t.value_for(None).unwrap(), "openstack");
        assert_eq!(t.value_for(Some("p1")).unwrap(), "openstack");
    }

    #[test]
    fn per_project_tenant_is_the_scoped_project_and_the_operator_tenant_otherwise() {
        let t = TenantHeader::new("THANOS-TENANT", "operators", true).unwrap();
        assert_eq!(t.value_for(Some("8c6ffb18e21f")).unwrap(), "8c6ffb18e21f");
        assert_eq!(t.value_for(None).unwrap(), "operators");
        assert!(t.value_for(Some("bad\nvalue")).is_err());
    }

    #[test]
    fn bad_names_and_values_are_refused() {
        assert!(TenantHeader::new("X Scope", "a", false).is_err());
        assert!(TenantHeader::new("X-Scope-OrgID", "a\nb", false).is_err());
    }
}
