//! The request as the backend will be sent it: its parameters
//! ([`Params`]), and how a scoped caller's are confined to its project
//! ([`Scoping`], applied by `scope`).
//!
//! This layer sits below `api` (which builds requests from what callers
//! send) and `backend` (which sends them), so that both can name the same
//! values without importing each other; it only uses the tenancy engine.

mod form;
mod rules;
mod scope;

use url::form_urlencoded;

pub use rules::{CallerGrants, MetricRules};
pub use scope::{
    scope_params_counted, scoped_input_bytes, RewriteError, Scoper, INLINE_REWRITE_BYTES,
};

/// The parameters of one request, as they will be sent to the backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Params {
    /// The raw query string (without `?`), possibly empty.
    pub url: String,
    /// A form-encoded body, when the request has one.
    pub body: Option<String>,
}

impl Params {
    /// The value of a parameter as Prometheus reads it: the form body
    /// first, then the URL (Go's `FormValue`).
    pub fn get(&self, name: &str) -> Option<String> {
        [self.body.as_deref(), Some(self.url.as_str())]
            .into_iter()
            .flatten()
            .flat_map(|s| form_urlencoded::parse(s.as_bytes()))
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    /// Appends `name=value` to the URL's parameters.
    pub fn push(&mut self, name: &str, value: &str) {
        if !self.url.is_empty() {
            self.url.push('&');
        }
        self.url.push_str(
            &form_urlencoded::Serializer::new(String::new())
                .append_pair(name, value)
                .finish(),
        );
    }
}

/// How the parameters of a scoped caller's request are rewritten.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scoping {
    /// Every `query` parameter is PromQL: enforce the project matcher.
    Query,
    /// Every `match[]` is a series selector; with none, add
    /// `{<label>="<project>"}`.
    Match,
    /// Like `Match`, but a request without `match[]` is refused rather than
    /// widened to "everything of my project" (delete_series).
    MatchRequired,
    /// The request goes out unchanged and the answer is confined to the
    /// caller's project instead, as the [`Filter`] says (api::filter).
    FilterResponse(Filter),
    /// No tenant data in the request or answer; only privileged callers or
    /// everyone allowed by the base rule (snapshot, buildinfo).
    None,
    /// An Alertmanager API v2 endpoint: confined to the caller's project by
    /// `api::alertmanager` (a `filter=` matcher, silence matchers and
    /// ownership, and the answer filtered), not by the PromQL engine.
    Alertmanager(AmEndpoint),
}

/// The Alertmanager API v2 endpoints aetos serves, by what a scoped
/// caller's request needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AmEndpoint {
    /// `GET alerts`: `filter=<label>="<project>"` added, answer filtered.
    Alerts,
    /// `GET alerts/groups`: like `Alerts`, groups without any alert left dropped.
    AlertGroups,
    /// `GET silences` (only the project's silences) and `POST silences`
    /// (the project matcher enforced; an update must be of the project's).
    Silences,
    /// `GET silence/{id}`, `DELETE silence/{id}`: only the project's.
    Silence,
    /// `status`, `receivers`: privileged callers only, forwarded as they are.
    Privileged,
}

/// How a scoped caller's answer is confined to its project.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    /// `rules`: only the rules (and their alerts) whose labels carry the
    /// project.
    Rules,
    /// `alerts`: only the alerts whose labels carry the project; under
    /// metric access rules that restrict the caller, answered from the
    /// alerting rules whose expressions they allow (`rules?type=alert`).
    Alerts,
    /// `metadata`: built from the metadata of the project's targets.
    Metadata,
    /// `targets/metadata`: built from the project's targets.
    TargetsMetadata,
}

impl Filter {
    /// Whether the answer is built from other backend requests instead of
    /// filtering the forwarded request's answer.
    pub fn builds_own_answer(self) -> bool {
        matches!(self, Filter::Metadata | Filter::TargetsMetadata)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parameter_is_read_from_the_body_first_then_the_url() {
        let p = Params {
            url: "time=1&step=2".into(),
            body: Some("time=3".into()),
        };
        assert_eq!(p.get("time").as_deref(), Some("3"));
        assert_eq!(p.get("step").as_deref(), Some("2"));
        assert_eq!(p.get("query"), None);
    }

    #[test]
    fn a_pushed_parameter_is_encoded_into_the_url() {
        let mut p = Params {
            url: String::new(),
            body: None,
        };
        p.push("end", "1 2");
        p.push("start", "&");
        assert_eq!(p.url, "end=1+2&start=%26");
    }
}
