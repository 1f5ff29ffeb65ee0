//! The tenancy stage applied to a request: `(parameters, scoping) →
//! parameters`, with a cache of recent rewrites.
//!
//! Parameters may sit in the URL, in a form-encoded body, or both;
//! Prometheus reads both (body first). Every `query` / `match[]` found in
//! either place is scoped in that place, and nothing is moved from one to
//! the other. Privileged requests never come here: they are forwarded
//! byte for byte.

use std::hash::BuildHasherDefault;
use std::sync::Arc;

use super::form;
use super::rules::{CallerGrants, MetricRules};
use super::{Params, Scoping};
use crate::tenancy::{self, Scoped, TenancyError};

/// Scopes PromQL and selectors for one label name, remembering recent
/// results: Grafana re-sends the same dashboard queries on every refresh,
/// and a regex-heavy query costs ~0.5 ms to parse and rewrite. Results are
/// keyed by kind, project *and* input, so one project's rewrite can never
/// answer another's; only successes are kept, bounded by their size.
#[derive(Clone)]
pub struct Scoper {
    label: String,
    /// Keyed by a keyed hash of (kind, project, rules, input), each entry
    /// holding its inputs: a lookup allocates nothing, and a hash collision
    /// is a miss, never another input's rewrite.
    cache: moka::sync::Cache<u64, Arc<Rewrite>, BuildHasherDefault<AlreadyHashed>>,
    hasher: std::collections::hash_map::RandomState,
    /// Rewrites of long inputs run on the blocking pool, at most this many
    /// at once, so that they never hold an async worker.
    blocking: Arc<tokio::sync::Semaphore>,
    /// `[prometheus] metric_rules_file`, reloaded in place.
    rules: Arc<MetricRules>,
}

/// The rewrite cache's own hash of a key, which already is a keyed SipHash
/// (uniform, and not to be chosen by a caller who lacks the keys): the key
/// itself, rather than a second SipHash of it.
#[derive(Default)]
struct AlreadyHashed(u64);

impl std::hash::Hasher for AlreadyHashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not reached for a `u64` key; folded in all the same.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 ^= n;
    }
}

/// Inputs (URL plus body) longer than this are rewritten off the async
/// workers; shorter ones cost a few tens of microseconds at most, less
/// than the hop to another thread.
pub const INLINE_REWRITE_BYTES: usize = 8 * 1024;

/// Memory the rewrite cache may hold (inputs plus outputs).
const REWRITE_CACHE_BYTES: u64 = 32 << 20;

impl Scoper {
    pub fn new(label: impl Into<String>) -> Scoper {
        Scoper::with_rules(label, Arc::new(MetricRules::none()))
    }

    /// A scoper that also confines scoped callers to the metric access rules.
    pub fn with_rules(label: impl Into<String>, rules: Arc<MetricRules>) -> Scoper {
        Scoper {
            rules,
            label: label.into(),
            hasher: Default::default(),
            cache: moka::sync::Cache::builder()
                .weigher(|_: &u64, v: &Arc<Rewrite>| u32::try_from(v.size()).unwrap_or(u32::MAX))
                .max_capacity(REWRITE_CACHE_BYTES)
                .build_with_hasher(BuildHasherDefault::default()),
            blocking: Arc::new(tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(1, |n| n.get()),
            )),
        }
    }

    /// A slot to rewrite a long input on the blocking pool (waits, without
    /// holding the worker, while every slot is busy).
    pub async fn blocking_slot(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.blocking.clone().acquire_owned().await.ok()
    }

    /// The metric access rules (for the reload tasks).
    pub fn rules(&self) -> &Arc<MetricRules> {
        &self.rules
    }

    /// What a caller scoped to `project` with `roles` may read (`None`:
    /// no rules file, everything of the project).
    pub fn grants(&self, project: &str, roles: &[String]) -> Option<CallerGrants> {
        self.rules.grants(project, roles)
    }

    /// `[prometheus] project_label_name`.
    pub fn label(&self) -> &str {
        &self.label
    }

    fn cached(
        &self,
        kind: char,
        project: &str,
        grants: Option<&CallerGrants>,
        input: &str,
        f: impl FnOnce() -> Result<Scoped, TenancyError>,
    ) -> Result<Shared, TenancyError> {
        use std::hash::BuildHasher;
        let rules = grants.map_or("", |g| g.key.as_str());
        let hash = self.hasher.hash_one((kind, project, rules, input));
        if let Some(r) = self.cache.get(&hash) {
            if r.kind == kind && *r.project == *project && *r.rules == *rules && *r.input == *input
            {
                return Ok((r.text.clone(), r.selectors));
            }
        }
        let out = f()?;
        let text: Arc<str> = out.text.into();
        self.cache.insert(
            hash,
            Arc::new(Rewrite {
                kind,
                project: project.into(),
                rules: rules.into(),
                input: input.into(),
                text: text.clone(),
                selectors: out.selectors,
            }),
        );
        Ok((text, out.selectors))
    }

    /// [`tenancy::scope_query_granted`], remembered, shared with the cache.
    fn query_shared(
        &self,
        q: &str,
        project: &str,
        grants: Option<&CallerGrants>,
    ) -> Result<Shared, TenancyError> {
        self.cached('q', project, grants, q, || {
            let g = grants.map(|g| g.grants.as_ref());
            tenancy::scope_query_granted(q, &self.label, project, g)
        })
    }

    /// [`tenancy::scope_query_granted`] of one `query` value as sent
    /// (form-encoded), remembered by that text: the scoped query,
    /// form-encoded. A repeated request neither decodes nor encodes it.
    fn query_encoded(
        &self,
        raw: &str,
        project: &str,
        grants: Option<&CallerGrants>,
    ) -> Result<Shared, TenancyError> {
        self.cached('Q', project, grants, raw, || {
            let g = grants.map(|g| g.grants.as_ref());
            let out = tenancy::scope_query_granted(&form::decode(raw), &self.label, project, g)?;
            let mut text = String::with_capacity(out.text.len() + out.text.len() / 2);
            form::encode_into(&mut text, &out.text);
            Ok(Scoped {
                text,
                selectors: out.selectors,
            })
        })
    }

    /// [`tenancy::scope_query`], remembered.
    pub fn query(&self, q: &str, project: &str) -> Result<String, TenancyError> {
        self.query_counted(q, project).map(|s| s.text)
    }

    /// [`tenancy::scope_query_counted`], remembered.
    pub fn query_counted(&self, q: &str, project: &str) -> Result<Scoped, TenancyError> {
        self.query_granted(q, project, None)
    }

    /// [`tenancy::scope_query_granted`], remembered.
    pub fn query_granted(
        &self,
        q: &str,
        project: &str,
        grants: Option<&CallerGrants>,
    ) -> Result<Scoped, TenancyError> {
        self.query_shared(q, project, grants)
            .map(|(text, selectors)| Scoped {
                text: text.to_string(),
                selectors,
            })
    }

    /// [`tenancy::scope_selector`], remembered.
    #[cfg(test)]
    pub fn selector(&self, m: &str, project: &str) -> Result<String, TenancyError> {
        self.selectors_granted(m, project, None).map(|l| l.concat())
    }

    /// [`tenancy::scope_match_list_granted`] of one `match[]` value,
    /// remembered: one selector, or one per rule selector when the metric
    /// access rules allow it only in parts.
    pub fn selectors_granted(
        &self,
        m: &str,
        project: &str,
        grants: Option<&CallerGrants>,
    ) -> Result<Vec<String>, TenancyError> {
        let one = [m.to_owned()];
        let out = self.cached('m', project, grants, m, || {
            let g = grants.map(|g| g.grants.as_ref());
            let list = tenancy::scope_match_list_granted(&one, &self.label, project, g)?;
            // A printed selector holds no raw line break (the proof refuses one).
            Ok(Scoped {
                selectors: list.len(),
                text: list.join("\n"),
            })
        })?;
        Ok(out.0.split('\n').map(str::to_owned).collect())
    }
}

/// Why a scoped request cannot be sent.
#[derive(Debug, thiserror::Error)]
pub enum RewriteError {
    #[error(transparent)]
    Tenancy(#[from] TenancyError),
    #[error("no match[] parameter provided")]
    MissingMatch,
}

/// A remembered rewrite's text (shared with the cache) and its selector count.
type Shared = (Arc<str>, usize);

/// One remembered rewrite, with what it was computed from.
struct Rewrite {
    kind: char,
    project: Box<str>,
    rules: Box<str>,
    input: Box<str>,
    text: Arc<str>,
    selectors: usize,
}

impl Rewrite {
    fn size(&self) -> usize {
        self.project.len() + self.rules.len() + self.input.len() + self.text.len() + 64
    }
}

#[cfg(test)]
fn pairs(s: &str) -> Vec<(String, String)> {
    form::parse(s)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

use form::has_key;

/// Scopes one parameter string in place, returning it re-encoded. Only the
/// scoped values change; every other parameter keeps its order and value.
/// `f` gets a `key` value as sent (form-encoded) and returns it scoped,
/// form-encoded.
fn scope_one(
    s: &str,
    key: &str,
    f: &dyn Fn(&str) -> Result<Shared, TenancyError>,
    selectors: &mut usize,
) -> Result<String, TenancyError> {
    let mut out = String::with_capacity(s.len() + 64);
    let mut found = false;
    for piece in form::pieces(s) {
        let (k, v) = piece.split_once('=').unwrap_or((piece, ""));
        let k = form::decode(k);
        if k == key {
            found = true;
            let (encoded, n) = f(v)?;
            *selectors += n;
            if !out.is_empty() {
                out.push('&');
            }
            form::encode_into(&mut out, key);
            out.push('=');
            out.push_str(&encoded);
        } else {
            form::append_pair(&mut out, &k, &form::decode(v));
        }
    }
    Ok(if found { out } else { s.to_owned() })
}

/// Scopes every `match[]` of one parameter string in place; one may become
/// several (the metric access rules' union). Other parameters are kept.
fn scope_matches(
    s: &str,
    f: &dyn Fn(&str) -> Result<Vec<String>, TenancyError>,
    selectors: &mut usize,
) -> Result<String, TenancyError> {
    let mut out = String::with_capacity(s.len() + 64);
    let mut found = false;
    for (k, v) in form::parse(s) {
        if k != "match[]" {
            form::append_pair(&mut out, &k, &v);
            continue;
        }
        found = true;
        for m in f(&v)? {
            *selectors += 1;
            form::append_pair(&mut out, &k, &m);
        }
    }
    Ok(if found { out } else { s.to_owned() })
}

/// The bytes of every value of the parameters that `scoping` parses (the
/// text the tenancy engine would read), for `[limits] max_query_bytes`.
pub fn scoped_input_bytes(params: &Params, scoping: Scoping) -> usize {
    let key = match scoping {
        Scoping::Query => "query",
        Scoping::Match | Scoping::MatchRequired => "match[]",
        Scoping::FilterResponse(_) | Scoping::None | Scoping::Alertmanager(_) => return 0,
    };
    [Some(params.url.as_str()), params.body.as_deref()]
        .into_iter()
        .flatten()
        .flat_map(form::pieces)
        .filter_map(|piece| {
            let (k, v) = piece.split_once('=').unwrap_or((piece, ""));
            (form::decode(k) == key).then(|| form::decoded_len(v))
        })
        .sum()
}

/// Applies `scoping` for a caller restricted to `project`.
#[cfg(test)]
pub fn scope_params(
    params: &Params,
    scoping: Scoping,
    scoper: &Scoper,
    project: &str,
) -> Result<Params, RewriteError> {
    scope_params_counted(params, scoping, scoper, project, None).map(|(p, _)| p)
}

/// [`scope_params`], with the number of selectors the rewritten request
/// holds (for `[limits] max_selectors`).
///
/// `grants`: the metric access rules of the caller (see
/// [`Scoper::grants`]), enforced in the same rewrite.
pub fn scope_params_counted(
    params: &Params,
    scoping: Scoping,
    scoper: &Scoper,
    project: &str,
    grants: Option<&CallerGrants>,
) -> Result<(Params, usize), RewriteError> {
    let label = scoper.label();
    let body = params.body.as_deref();
    let mut n = 0;
    match scoping {
        Scoping::Query => {
            let f = |q: &str| scoper.query_encoded(q, project, grants);
            let url = scope_one(&params.url, "query", &f, &mut n)?;
            let body = body
                .map(|b| scope_one(b, "query", &f, &mut n))
                .transpose()?;
            Ok((Params { url, body }, n))
        }
        Scoping::Match | Scoping::MatchRequired => {
            let f = |m: &str| scoper.selectors_granted(m, project, grants);
            let mut url = scope_matches(&params.url, &f, &mut n)?;
            let mut body = body.map(|b| scope_matches(b, &f, &mut n)).transpose()?;
            let anywhere =
                has_key(&url, "match[]") || body.as_deref().is_some_and(|b| has_key(b, "match[]"));
            if !anywhere {
                if scoping == Scoping::MatchRequired {
                    return Err(RewriteError::MissingMatch);
                }
                let g = grants.map(|g| g.grants.as_ref());
                let only = tenancy::scope_match_params_granted(&[], label, project, g)?;
                let mut extra = String::new();
                for m in &only {
                    form::append_pair(&mut extra, "match[]", m);
                }
                // A form body is where the other parameters are; else the URL.
                let target = match body.as_mut() {
                    Some(b) if !b.is_empty() => b,
                    _ => &mut url,
                };
                if !target.is_empty() {
                    target.push('&');
                }
                target.push_str(&extra);
                n += only.len();
            }
            Ok((Params { url, body }, n))
        }
        Scoping::FilterResponse(_) | Scoping::None | Scoping::Alertmanager(_) => {
            Ok((params.clone(), 0))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(url: &str, body: Option<&str>) -> Params {
        Params {
            url: url.into(),
            body: body.map(str::to_owned),
        }
    }

    #[test]
    fn the_cache_hashes_a_keyed_hash_as_itself() {
        use std::hash::BuildHasher;
        let b = BuildHasherDefault::<AlreadyHashed>::default();
        for k in [0u64, 1, 0xdead_beef, u64::MAX] {
            assert_eq!(b.hash_one(k), k);
        }
    }

    #[test]
    fn query_in_url_is_scoped_and_other_params_kept_in_order() {
        let out = scope_params(
            &p("time=4&query=up&timeout=5s", None),
            Scoping::Query,
            &Scoper::new("project"),
            "B",
        )
        .unwrap();
        assert_eq!(
            pairs(&out.url),
            vec![
                ("time".into(), "4".into()),
                ("query".into(), "up{project=\"B\"}".into()),
                ("timeout".into(), "5s".into())
            ]
        );
        assert_eq!(out.body, None);
    }

    #[test]
    fn query_in_both_places_is_scoped_in_both_and_not_moved() {
        let out = scope_params(
            &p("query=a", Some("query=b&time=1")),
            Scoping::Query,
            &Scoper::new("project"),
            "B",
        )
        .unwrap();
        assert_eq!(
            pairs(&out.url),
            vec![("query".into(), "a{project=\"B\"}".into())]
        );
        assert_eq!(
            pairs(out.body.as_deref().unwrap()),
            vec![
                ("query".into(), "b{project=\"B\"}".into()),
                ("time".into(), "1".into())
            ]
        );
    }

    #[test]
    fn a_query_is_scoped_alike_whatever_its_encoding_and_from_the_cache() {
        let scoper = Scoper::new("project");
        let spellings = [
            "query=rate(x%7Bjob%3D%22a+b%22%7D%5B5m%5D)",
            "query=rate%28x%7Bjob%3D%22a%20b%22%7D%5B5m%5D%29",
            "qu%65ry=rate(x{job=\"a b\"}[5m])",
        ];
        for _ in 0..2 {
            for s in spellings {
                let out = scope_params(&p(s, None), Scoping::Query, &scoper, "B").unwrap();
                assert_eq!(
                    pairs(&out.url),
                    vec![(
                        "query".into(),
                        "rate(x{job=\"a b\",project=\"B\"}[5m])".into()
                    )],
                    "{s}"
                );
            }
        }
        // Remembered by the text as sent, never across projects.
        let other = scope_params(&p(spellings[0], None), Scoping::Query, &scoper, "C").unwrap();
        assert!(pairs(&other.url)[0].1.contains("project=\"C\""));
    }

    #[test]
    fn percent_encoded_match_keys_are_scoped() {
        let out = scope_params(
            &p("match%5B%5D=up&match[]=x", None),
            Scoping::Match,
            &Scoper::new("project"),
            "B",
        )
        .unwrap();
        let d = pairs(&out.url);
        assert_eq!(d.len(), 2);
        assert!(d
            .iter()
            .all(|(k, v)| k == "match[]" && v.contains("project=\"B\"")));
    }

    #[test]
    fn missing_match_gets_the_project_selector_in_url_or_body() {
        let out = scope_params(
            &p("start=1", None),
            Scoping::Match,
            &Scoper::new("project"),
            "B",
        )
        .unwrap();
        assert_eq!(
            pairs(&out.url)[1],
            ("match[]".into(), "{project=\"B\"}".into())
        );
        let out = scope_params(
            &p("", Some("start=1")),
            Scoping::Match,
            &Scoper::new("project"),
            "B",
        )
        .unwrap();
        assert_eq!(out.url, "");
        assert_eq!(pairs(out.body.as_deref().unwrap())[1].0, "match[]");
        // match[] present only in the body: nothing is added to the URL.
        let out = scope_params(
            &p("start=1", Some("match[]=up")),
            Scoping::Match,
            &Scoper::new("project"),
            "B",
        )
        .unwrap();
        assert_eq!(out.url, "start=1");
    }

    #[test]
    fn delete_without_match_is_refused_not_widened() {
        assert!(matches!(
            scope_params(
                &p("start=1", None),
                Scoping::MatchRequired,
                &Scoper::new("project"),
                "B"
            ),
            Err(RewriteError::MissingMatch)
        ));
    }

    #[test]
    fn remembered_rewrites_never_cross_projects() {
        let s = Scoper::new("project");
        let a = s.query("up", "A").unwrap();
        let b = s.query("up", "B").unwrap();
        assert_eq!(a, "up{project=\"A\"}");
        assert_eq!(b, "up{project=\"B\"}");
        assert_eq!(s.query("up", "A").unwrap(), a);
        // A selector and a query with the same text are different entries.
        assert_eq!(s.selector("up", "A").unwrap(), "up{project=\"A\"}");
        // Failures are not remembered as successes.
        assert!(s.query("sum(", "A").is_err());
        assert!(s.query("sum(", "A").is_err());
    }

    #[test]
    fn bad_promql_is_an_error() {
        assert!(scope_params(
            &p("query=sum(", None),
            Scoping::Query,
            &Scoper::new("project"),
            "B"
        )
        .is_err());
    }
}
