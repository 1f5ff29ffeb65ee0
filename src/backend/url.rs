//! Where a backend request goes: the configured base URL plus one of
//! aetos' own route paths, built segment by segment and checked again, so
//! that aetos' backend credentials never leave the base URL.

use url::Url;

/// `base` + `path` + `?query`, keeping the base's path prefix, or why not.
///
/// `path` is one of aetos' own routes (`/api/v1/query`,
/// `/api/v1/label/<validated name>/values`, the health-check path): every
/// segment must be plain (RFC 3986 unreserved characters, not `.` or `..`)
/// and is appended to the parsed base as a segment, never re-parsed as URL
/// text. The result is checked once more: its path must be exactly the
/// base's path followed by `path`, or nothing is sent.
pub(super) fn url_for(base: &Url, path: &str, query: &str) -> Result<Url, String> {
    let refuse = |why: &str| Err(format!("refusing to send to backend path {path:?}: {why}"));
    let Some(rest) = path.strip_prefix('/') else {
        return refuse("not absolute");
    };
    let segments: Vec<&str> = rest.split('/').collect();
    for s in &segments {
        let plain = s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
        if s.is_empty() || *s == "." || *s == ".." || !plain {
            return refuse("not a plain path");
        }
    }
    let mut url = base.clone();
    url.path_segments_mut()
        .map_err(|()| format!("backend URL {base} cannot have a path"))?
        .pop_if_empty()
        .extend(&segments);
    url.set_query((!query.is_empty()).then_some(query));
    url.set_fragment(None);
    let expected = format!("{}{path}", base.path().trim_end_matches('/'));
    if url.path() != expected || url.host() != base.host() || url.port() != base.port() {
        return refuse("it would leave the backend's base URL");
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(url: &str) -> Url {
        // As Backend::new keeps it: the prefix without its trailing slash.
        let mut u = Url::parse(url).unwrap();
        let trimmed = u.path().trim_end_matches('/').to_owned();
        u.set_path(&trimmed);
        u
    }

    #[test]
    fn urls_are_the_base_prefix_plus_plain_route_segments() {
        let b = base("https://h:8443/workspaces/ws-1/");
        let u = url_for(&b, "/api/v1/label/job/values", "match%5B%5D=up&x=%2e%2e").unwrap();
        assert_eq!(
            u.as_str(),
            "https://h:8443/workspaces/ws-1/api/v1/label/job/values?match%5B%5D=up&x=%2e%2e"
        );
        let root = base("http://127.0.0.1:9090/");
        assert_eq!(
            url_for(&root, "/-/ready", "").unwrap().as_str(),
            "http://127.0.0.1:9090/-/ready"
        );
        assert_eq!(
            url_for(&root, "/api/v1/query", "query=up")
                .unwrap()
                .as_str(),
            "http://127.0.0.1:9090/api/v1/query?query=up"
        );
    }

    #[test]
    fn a_path_that_could_leave_the_prefix_is_never_built() {
        let b = base("https://h/workspaces/ws-1");
        for path in [
            "/api/v1/label/../values",
            "/api/v1/label/../../../admin/values",
            "/api/v1/label/%2e%2e/values",
            "/api/v1/label/%2E%2e/values",
            "/api/v1/label/./values",
            "/api/v1/label/a\\b/values",
            "/api/v1/label/%5c/values",
            "/api/v1/label/a%2fb/values",
            "/api/v1/label/a%00/values",
            "/api/v1/label//values",
            "/api/v1/label/a?b/values",
            "/api/v1/label/a#b/values",
            "/api/v1/label/\u{e9}t\u{e9}/values",
            "/api/v1/label/a b/values",
            "api/v1/query",
            "//evil.example/api/v1/query",
            "/",
            "",
        ] {
            let e = url_for(&b, path, "").unwrap_err();
            assert!(
                e.starts_with("refusing to send to backend path"),
                "{path}: {e}"
            );
        }
    }
}
