//! The rules Aetos registers in code: upstream Aetos 3.0.0's names and check
//! strings verbatim (so an operator's existing `policy.yaml` keeps meaning the
//! same thing), plus the rules for the endpoints we serve beyond upstream.
//!
//! This table is the single source of truth for the sample policy file, the
//! generated policy reference and the enforcer's defaults.

/// One rule registered in code, like oslo.policy's `DocumentedRuleDefault`.
///
/// An operator may override `check_str` in `policy.yaml`; the description,
/// operations and scope types stay as registered here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleDefault {
    /// The rule's name, e.g. `telemetry:query`.
    pub name: &'static str,
    /// The default check string, in oslo.policy's language.
    pub check_str: &'static str,
    /// What the rule protects (shown in the sample file and reference).
    pub description: &'static str,
    /// The API operations the rule guards, as `(METHOD, path)` pairs.
    pub operations: &'static [(&'static str, &'static str)],
    /// Token scopes the rule accepts; empty means the rule is not
    /// scope-checked (a building block referenced by other rules).
    pub scope_types: &'static [&'static str],
}

/// `rule:context_is_admin`, upstream's `RULE_CONTEXT_IS_ADMIN`.
const RULE_CONTEXT_IS_ADMIN: &str = "rule:context_is_admin";
/// Upstream's `PROJECT_ADMIN` persona.
const PROJECT_ADMIN: &str = "role:admin and project_id:%(project_id)s";
/// Upstream's `PROJECT_READER` persona.
const PROJECT_READER: &str = "role:reader and project_id:%(project_id)s";
/// Upstream's `PROJECT_ADMIN_OR_SERVICE` persona.
const PROJECT_ADMIN_OR_SERVICE: &str =
    "(role:admin and project_id:%(project_id)s) or (role:service)";
/// A member of the project (Keystone's `admin` implies `member`).
const PROJECT_MEMBER: &str = "role:member and project_id:%(project_id)s";
/// Any authenticated caller.
const ANY_AUTHENTICATED: &str = "@";

/// The scope every API rule is intended for: Aetos is project-scoped.
const PROJECT: &[&str] = &["project"];

/// Every rule registered in code, in registration order (the order of the
/// sample file): upstream's rules first, then the ones we add.
static DEFAULTS: &[RuleDefault] = &[
    RuleDefault {
        name: "context_is_admin",
        check_str: "role:admin",
        description: "Decides who is an administrator; referenced by other rules.",
        operations: &[],
        scope_types: &[],
    },
    RuleDefault {
        name: "segregation",
        check_str: RULE_CONTEXT_IS_ADMIN,
        description: "Decides who may see data of every project (kept from upstream Aetos).",
        operations: &[],
        scope_types: &[],
    },
    RuleDefault {
        name: "telemetry:admin_delete_metrics",
        check_str: PROJECT_ADMIN,
        description: "Delete metrics.",
        operations: &[("POST", "/api/v1/admin/tsdb/delete_series")],
        scope_types: PROJECT,
    },
    RuleDefault {
        name: "telemetry:admin_delete_metrics:all_projects",
        check_str: PROJECT_ADMIN,
        description: "Delete metrics of every project. A caller that passes \
            telemetry:admin_delete_metrics but not this rule may delete only \
            its own project's series (its match[] selectors are scoped).",
        operations: &[("POST", "/api/v1/admin/tsdb/delete_series")],
        scope_types: PROJECT,
    },
    RuleDefault {
        name: "telemetry:admin_snapshot",
        check_str: PROJECT_ADMIN,
        description: "Take snapshot of the database.",
        operations: &[("POST", "/api/v1/admin/tsdb/snapshot")],
        scope_types: PROJECT,
    },
    RuleDefault {
        name: "telemetry:admin_clean_tombstones",
        check_str: PROJECT_ADMIN,
        description: "Clean tombstones.",
        operations: &[("POST", "/api/v1/admin/tsdb/clean_tombstones")],
        scope_types: PROJECT,
    },
    RuleDefault {
        name: "telemetry:query",
        check_str: PROJECT_READER,
        description: "Prometheus Query endpoint with tenancy enforced.",
        operations: &[("GET", "/api/v1/query"), ("POST", "/api/v1/query")],
        scope_types: PROJECT,
    },
    RuleDefault {
        name: "telemetry:query:all_projects",
        check_str: PROJECT_ADMIN_OR_SERVICE,
        description: "Prometheus Query endpoint without tenancy enforced.",
        operations: &[("GET", "/api/v1/query"), ("POST", "/api/v1/query")],
        scope_types: PROJECT,
    },
    RuleDefault {
        name: "telemetry:label",
        check_str: PROJECT_READER,
        description: "Prometheus label endpoint with tenancy enforced.",
        operations: &[("GET", "/api/v1/label/{label_name}/values")],
        scope_types: PROJECT,
    },
    RuleDefault {
        name: "telemetry:label:all_projects",
        check_str: PROJECT_ADMIN_OR_SERVICE,
        description: "Prometheus label endpoint without tenancy enforced.",
        operations: &[("GET", "/api/v1/label/{label_name}/values")],
        scope_types: PROJECT,
    },
    RuleDefault {
        name: "telemetry:labels",
        check_str: PROJECT_READER,
        description: "Prometheus labels endpoint with tenancy enforced.",
        operations: &[("GET", "/api/v1/labels"), ("POST", "/api/v1/labels")],
        scope_types: PROJECT,
    },
    RuleDefault {
        name: "telemetry:labels:all_projects",
        check_str: PROJECT_ADMIN_OR_SERVICE,
        description: "Prometheus labels endpoint without tenancy enforced.",
        operations: &[("GET", "/api/v1/labels"), ("POST", "/api/v1/labels")],
        scope_types: PROJECT,
    },
    RuleDefault {
        name: "telemetry:series",
        check_str: PROJECT_READER,
        description: "Prometheus series endpoint with tenancy enforced.",
        operations: &[("GET", "/api/v1/series"), ("POST", "/api/v1/series")],
        scope_types: PROJECT,
    },
    RuleDefault {
        name: "telemetry:series:all_projects",
        check_str: PROJECT_ADMIN_OR_SERVICE,
        description: "Prometheus series endpoint without tenancy enforced.",
        operations: &[("GET", "/api/v1/series"), ("POST", "/api/v1/series")],
        scope_types: PROJECT,
    },
    RuleDefault {
        name: "telemetry:targets",
        check_str: PROJECT_ADMIN_OR_SERVICE,
        description: "Prometheus targets endpoint.",
        operations: &[("GET", "/api/v1/targets")],
        scope_types: PROJECT,
    },
    RuleDefault {
        name: "telemetry:targets_metadata",
        check_str: PROJECT_READER,
        description: "Prometheus target metadata endpoint, limited to the entries of the scrape \
            targets that hold series of the caller's project, for the metric families of those series.",
        operations: &[("GET", "/api/v1/targets/metadata")],
        scope_types: PROJECT,
    },
    RuleDefault {
        name: "telemetry:targets_metadata:all_projects",
        check_str: PROJECT_ADMIN_OR_SERVICE,
        description: "Prometheus target metadata endpoint without tenancy enforced (the same \
            default as telemetry:targets).",
        operations: &[("GET", "/api/v1/targets/metadata")],
        scope_types: PROJECT,
    },
    RuleDefault {
        name: "telemetry:status",
        check_str: PROJECT_ADMIN_OR_SERVICE,
        description: "Prometheus status endpoint (runtime information).",
        operations: &[("GET", "/api/v1/status/runtimeinfo")],
        scope_types: PROJECT,
    },
    RuleDefault {
        name: "telemetry:query_range",
        check_str: PROJECT_READER,
        description: "Prometheus range query endpoint with tenancy enforced.",
        operations: &[
            ("GET", "/api/v1/query_range"),
            ("POST", "/api/v1/query_range"),
        ],
        scope_types: PROJECT,
    },
    RuleDefault {
        name: "telemetry:query_range:all_projects",
        check_str: PROJECT_ADMIN_OR_SERVICE,
        description: "Prometheus range query endpoint without tenancy enforced.",
        operations: &[
            ("GET", "/api/v1/query_range"),
            ("POST", "/api/v1/query_range"),
        ],
        scope_types: PROJECT,
    },
    RuleDefault {
        name: "telemetry:query_exemplars",
        check_str: PROJECT_READER,
        description: "Prometheus exemplars query endpoint with tenancy enforced.",
        operations: &[
            ("GET", "/api/v1/query_exemplars"),
            ("POST", "/api/v1/query_exemplars"),
        ],
        scope_types: PROJECT,
    },
    RuleDefault {
        name: "telemetry:query_exemplars:all_projects",
        check_str: PROJECT_ADMIN_OR_SERVICE,
        description: "Prometheus exemplars query endpoint without tenancy enforced.",
        operations: &[
            ("GET", "/api/v1/query_exemplars"),
            ("POST", "/api/v1/query_exemplars"),
        ],
        scope_types: PROJECT,
    },
    RuleDefault {
        name: "telemetry:federate",
        check_str: PROJECT_READER,
        description: "Prometheus federation endpoint with tenancy enforced on every match[] selector.",
        operations: &[("GET", "/federate")],
        scope_types: PROJECT,
    },
    RuleDefault {
        name: "telemetry:federate:all_projects",
        check_str: PROJECT_ADMIN_OR_SERVICE,
        description: "Prometheus federation endpoint without tenancy enforced.",
        operations: &[("GET", "/federate")],
        scope_types: PROJECT,
    },
    RuleDefault {
        name: "telemetry:metadata",
        check_str: PROJECT_READER,
        description: "Prometheus metric metadata endpoint, limited to the metric names that have series in the caller's project.",
        operations: &[("GET", "/api/v1/metadata")],
        scope_types: PROJECT,
    },
    RuleDefault {
        name: "telemetry:metadata:all_projects",
        check_str: PROJECT_ADMIN_OR_SERVICE,
        description: "Prometheus metric metadata endpoint without tenancy enforced.",
        operations: &[("GET", "/api/v1/metadata")],
        scope_types: PROJECT,
    },
    RuleDefault {
        name: "telemetry:rules",
        check_str: PROJECT_READER,
        description: "Prometheus rules endpoint, limited to the rules whose labels carry the caller's project.",
        operations: &[("GET", "/api/v1/rules")],
        scope_types: PROJECT,
    },
    RuleDefault {
        name: "telemetry:rules:all_projects",
        check_str: PROJECT_ADMIN_OR_SERVICE,
        description: "Prometheus rules endpoint without tenancy enforced.",
        operations: &[("GET", "/api/v1/rules")],
        scope_types: PROJECT,
    },
    RuleDefault {
        name: "telemetry:alerts",
        check_str: PROJECT_READER,
        description: "Prometheus alerts endpoint, limited to the alerts whose labels carry the caller's project.",
        operations: &[("GET", "/api/v1/alerts")],
        scope_types: PROJECT,
    },
    RuleDefault {
        name: "telemetry:alerts:all_projects",
        check_str: PROJECT_ADMIN_OR_SERVICE,
        description: "Prometheus alerts endpoint without tenancy enforced.",
        operations: &[("GET", "/api/v1/alerts")],
        scope_types: PROJECT,
    },
    RuleDefault {
        name: "telemetry:status_buildinfo",
        check_str: ANY_AUTHENTICATED,
        description: "Prometheus build information (version), needed by Grafana's data source probe; it reveals no project data.",
        operations: &[("GET", "/api/v1/status/buildinfo")],
        scope_types: PROJECT,
    },
    RuleDefault {
        name: "telemetry:status_flags",
        check_str: PROJECT_ADMIN_OR_SERVICE,
        description: "Prometheus command-line flags; privileged because they describe the whole deployment.",
        operations: &[("GET", "/api/v1/status/flags")],
        scope_types: PROJECT,
    },
    RuleDefault {
        name: "telemetry:status_config",
        check_str: PROJECT_ADMIN_OR_SERVICE,
        description: "Prometheus configuration; privileged because it can contain secrets and every project's scrape targets.",
        operations: &[("GET", "/api/v1/status/config")],
        scope_types: PROJECT,
    },
    RuleDefault {
        name: "telemetry:status_tsdb",
        check_str: PROJECT_ADMIN_OR_SERVICE,
        description: "Prometheus TSDB statistics; privileged because they name the series and label values of every project.",
        operations: &[("GET", "/api/v1/status/tsdb")],
        scope_types: PROJECT,
    },
    RuleDefault {
        name: "telemetry:metrics",
        check_str: PROJECT_ADMIN_OR_SERVICE,
        description: "Aetos' own metrics in Prometheus exposition format, when served on the main listener.",
        operations: &[("GET", "/metrics")],
        scope_types: PROJECT,
    },
    RuleDefault {
        name: "telemetry:alertmanager:alerts",
        check_str: PROJECT_READER,
        description: "Alertmanager alerts and alert groups, limited to the alerts whose project label is the caller's project.",
        operations: &[
            ("GET", "/alertmanager/api/v2/alerts"),
            ("GET", "/alertmanager/api/v2/alerts/groups"),
        ],
        scope_types: PROJECT,
    },
    RuleDefault {
        name: "telemetry:alertmanager:alerts:all_projects",
        check_str: PROJECT_ADMIN_OR_SERVICE,
        description: "Alertmanager alerts and alert groups of every project (forwarded unchanged).",
        operations: &[
            ("GET", "/alertmanager/api/v2/alerts"),
            ("GET", "/alertmanager/api/v2/alerts/groups"),
        ],
        scope_types: PROJECT,
    },
    RuleDefault {
        name: "telemetry:alertmanager:silences",
        check_str: PROJECT_READER,
        description: "Alertmanager silences, limited to the silences whose matchers pin the caller's project (project=\"<id>\", not a regex, not negative).",
        operations: &[
            ("GET", "/alertmanager/api/v2/silences"),
            ("GET", "/alertmanager/api/v2/silence/{id}"),
        ],
        scope_types: PROJECT,
    },
    RuleDefault {
        name: "telemetry:alertmanager:silences:all_projects",
        check_str: PROJECT_ADMIN_OR_SERVICE,
        description: "Alertmanager silences of every project (forwarded unchanged).",
        operations: &[
            ("GET", "/alertmanager/api/v2/silences"),
            ("GET", "/alertmanager/api/v2/silence/{id}"),
        ],
        scope_types: PROJECT,
    },
    RuleDefault {
        name: "telemetry:alertmanager:silences:write",
        check_str: PROJECT_MEMBER,
        description: "Create, update and expire Alertmanager silences of the caller's project: a new silence gets the project matcher, one that names another project (or matches it by regex or negation) is refused, and only the project's own silences can be updated or expired.",
        operations: &[
            ("POST", "/alertmanager/api/v2/silences"),
            ("DELETE", "/alertmanager/api/v2/silence/{id}"),
        ],
        scope_types: PROJECT,
    },
    RuleDefault {
        name: "telemetry:alertmanager:silences:write:all_projects",
        check_str: PROJECT_ADMIN_OR_SERVICE,
        description: "Create, update and expire any Alertmanager silence (forwarded unchanged).",
        operations: &[
            ("POST", "/alertmanager/api/v2/silences"),
            ("DELETE", "/alertmanager/api/v2/silence/{id}"),
        ],
        scope_types: PROJECT,
    },
    RuleDefault {
        name: "telemetry:alertmanager:status",
        check_str: PROJECT_ADMIN_OR_SERVICE,
        description: "Alertmanager status; privileged because it holds the whole configuration (receivers, their URLs and secrets) and the cluster's peers.",
        operations: &[("GET", "/alertmanager/api/v2/status")],
        scope_types: PROJECT,
    },
    RuleDefault {
        name: "telemetry:alertmanager:receivers",
        check_str: PROJECT_ADMIN_OR_SERVICE,
        description: "Alertmanager receivers; privileged because they name every team's notification routes.",
        operations: &[("GET", "/alertmanager/api/v2/receivers")],
        scope_types: PROJECT,
    },
];

/// Every rule registered in code, in registration order.
pub fn defaults() -> &'static [RuleDefault] {
    DEFAULTS
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn check_of(name: &str) -> &'static str {
        defaults()
            .iter()
            .find(|d| d.name == name)
            .map(|d| d.check_str)
            .unwrap_or_else(|| panic!("{name} is not registered"))
    }

    #[test]
    fn rule_names_are_unique() {
        let mut seen = HashSet::new();
        for d in defaults() {
            assert!(seen.insert(d.name), "{} registered twice", d.name);
        }
    }

    #[test]
    fn upstream_rules_keep_upstream_check_strings() {
        let reader = "role:reader and project_id:%(project_id)s";
        let admin = "role:admin and project_id:%(project_id)s";
        let admin_or_service = "(role:admin and project_id:%(project_id)s) or (role:service)";
        assert_eq!(check_of("segregation"), "rule:context_is_admin");
        for api in ["query", "label", "labels", "series"] {
            assert_eq!(check_of(&format!("telemetry:{api}")), reader);
            assert_eq!(
                check_of(&format!("telemetry:{api}:all_projects")),
                admin_or_service
            );
        }
        assert_eq!(check_of("telemetry:targets"), admin_or_service);
        assert_eq!(check_of("telemetry:status"), admin_or_service);
        for api in [
            "admin_delete_metrics",
            "admin_snapshot",
            "admin_clean_tombstones",
        ] {
            assert_eq!(check_of(&format!("telemetry:{api}")), admin);
        }
    }

    #[test]
    fn every_api_rule_is_documented_and_project_scoped() {
        for d in defaults() {
            assert!(!d.description.is_empty(), "{} has no description", d.name);
            if d.name.starts_with("telemetry:") {
                assert_eq!(d.scope_types, &["project"], "{}", d.name);
                assert!(!d.operations.is_empty(), "{} has no operations", d.name);
            }
        }
    }

    #[test]
    fn every_scoped_api_has_an_all_projects_variant() {
        for api in [
            "query",
            "label",
            "labels",
            "series",
            "query_range",
            "query_exemplars",
            "federate",
            "metadata",
            "targets_metadata",
            "rules",
            "alerts",
        ] {
            assert_eq!(check_of(&format!("telemetry:{api}")), PROJECT_READER);
            assert_eq!(
                check_of(&format!("telemetry:{api}:all_projects")),
                PROJECT_ADMIN_OR_SERVICE
            );
        }
    }
}
