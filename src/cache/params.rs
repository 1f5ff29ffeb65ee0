//! Which requests the results cache takes on: only known parameters,
//! each given once, and no `@ start()` / `@ end()` (pure functions).

use url::form_urlencoded;

use crate::request::Params;

/// The request's parameters when every one is in `allowed` and given once
/// (a parameter given twice, in the URL and the body, say, would be read
/// one way here and maybe another by the backend).
pub(super) fn read_params<'a>(params: &Params, allowed: &[&'a str]) -> Option<ParamMap<'a>> {
    let mut out = ParamMap(Vec::new());
    for source in [params.body.as_deref(), Some(params.url.as_str())]
        .into_iter()
        .flatten()
    {
        for (k, v) in form_urlencoded::parse(source.as_bytes()) {
            let name = allowed.iter().find(|a| **a == k)?;
            if out.0.iter().any(|(n, _)| n == name) {
                return None;
            }
            out.0.push((name, v.into_owned()));
        }
    }
    Some(out)
}

pub(super) struct ParamMap<'a>(Vec<(&'a str, String)>);

impl ParamMap<'_> {
    pub(super) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Whether the query uses `@ start()` or `@ end()`, which name the
/// request's own range and so change meaning when it is split. A query
/// that does not parse is not cached either (the backend's error is
/// passed on).
pub(super) fn uses_start_or_end(query: &str) -> bool {
    use promql_parser::parser::{AtModifier, Expr};
    use promql_parser::util::{walk_expr, ExprVisitor};
    if !query.contains('@') {
        return false;
    }
    struct Finder;
    impl ExprVisitor for Finder {
        type Error = ();
        fn pre_visit(&mut self, e: &Expr) -> Result<bool, ()> {
            let at = match e {
                Expr::VectorSelector(v) => v.at.as_ref(),
                Expr::MatrixSelector(m) => m.vs.at.as_ref(),
                Expr::Subquery(s) => s.at.as_ref(),
                _ => None,
            };
            match at {
                Some(AtModifier::Start | AtModifier::End) => Err(()),
                _ => Ok(true),
            }
        }
    }
    match promql_parser::parser::parse(query) {
        Ok(expr) => walk_expr(&mut Finder, &expr).is_err(),
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_known_parameters_given_once_are_cached() {
        let allowed = ["query", "start", "end", "step", "timeout"];
        let p = |url: &str, body: Option<&str>| Params {
            url: url.to_owned(),
            body: body.map(str::to_owned),
        };
        let ok = read_params(&p("query=up&start=1&end=2&step=1", None), &allowed).unwrap();
        assert_eq!(ok.get("query"), Some("up"));
        let ok = read_params(&p("", Some("query=up&start=1&end=2&step=1")), &allowed).unwrap();
        assert_eq!(ok.get("step"), Some("1"));
        assert!(read_params(&p("query=up&lookback_delta=1m", None), &allowed).is_none());
        assert!(read_params(&p("query=up&dedup=true", None), &allowed).is_none());
        assert!(read_params(&p("query=up", Some("query=down")), &allowed).is_none());
        assert!(read_params(&p("query=up&query=down", None), &allowed).is_none());
    }

    #[test]
    fn start_and_end_modifiers_are_found() {
        assert!(!uses_start_or_end("rate(up[5m])"));
        assert!(!uses_start_or_end("up @ 1700000000"));
        assert!(!uses_start_or_end("up offset 5m"));
        assert!(!uses_start_or_end(r#"up{job="a@start()"}"#));
        assert!(uses_start_or_end("up @ start()"));
        assert!(uses_start_or_end("sum(rate(up[5m] @ end()))"));
        assert!(uses_start_or_end("max_over_time(up[1h:1m] @ start())"));
        assert!(uses_start_or_end("up @ ("));
    }
}
