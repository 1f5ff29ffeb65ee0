//! Where a backend request goes: the configured base URL plus one of
//! aetos' own route paths, built segment by segment and checked again, so
//! that aetos' backend credentials never leave the base URL.

use http::HeaderValue;
use percent_encoding::{AsciiSet, CONTROLS};
use url::Url;

/// Bytes of a query written percent-encoded (the URL standard's special
/// query set); everything else is sent as the caller wrote it.
const QUERY_ESCAPED: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'<')
    .add(b'>')
    .add(b'\'');

/// Whether `QUERY_ESCAPED` (or being non-ASCII) has `b` percent-encoded:
/// the check that lets a query needing nothing be used as it is.
fn query_escapes(b: u8) -> bool {
    !(0x20..0x7f).contains(&b) || matches!(b, b' ' | b'"' | b'#' | b'<' | b'>' | b'\'')
}

/// A request URL as sent: its text shares the bytes of the URI built from it.
#[derive(Debug, Clone)]
pub(super) struct SentUrl(bytes::Bytes);

impl SentUrl {
    pub(super) fn as_str(&self) -> &str {
        // Built from a `String`: UTF-8.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// One backend base URL, prepared once: the text every request URL starts
/// with, and the Basic credentials its user info carries, if any.
#[derive(Debug, Clone)]
pub(super) struct Endpoint {
    /// `scheme://host[:port]/prefix`, without user info, query or a
    /// trailing slash.
    prefix: String,
    /// Where the path prefix starts in `prefix`.
    path_at: usize,
    /// `Authorization: Basic …` from `https://user:password@host/…`.
    pub(super) userinfo: Option<HeaderValue>,
    /// `Host`: the authority, as hyper would write it (the port only when
    /// it is not the scheme's default), built once instead of per request.
    pub(super) host: HeaderValue,
    /// Where its connections go.
    pub(super) origin: super::transport::Origin,
}

impl Endpoint {
    pub(super) fn new(base: &Url) -> Result<Endpoint, String> {
        let host = base
            .host_str()
            .ok_or_else(|| format!("backend URL {base} has no host"))?;
        if base.cannot_be_a_base() {
            return Err(format!("backend URL {base} cannot have a path"));
        }
        let mut prefix = format!("{}://", base.scheme());
        let authority_at = prefix.len();
        // Already ASCII (IDNA was applied when the URL was parsed), IPv6 in brackets.
        prefix.push_str(host);
        if let Some(port) = base.port() {
            prefix.push_str(&format!(":{port}"));
        }
        let path_at = prefix.len();
        prefix.push_str(base.path().trim_end_matches('/'));
        let userinfo = (!base.username().is_empty() || base.password().is_some()).then(|| {
            use base64::Engine;
            let decode = |s: &str| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8_lossy()
                    .into_owned()
            };
            let pair = format!(
                "{}:{}",
                decode(base.username()),
                decode(base.password().unwrap_or(""))
            );
            let v = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            );
            let mut v = HeaderValue::try_from(v).unwrap_or_else(|_| HeaderValue::from_static(""));
            v.set_sensitive(true);
            v
        });
        let host = HeaderValue::from_str(&prefix[authority_at..path_at])
            .map_err(|_| format!("backend URL {base} has a host that is not a header value"))?;
        let origin = super::transport::Origin::new(&prefix[..path_at])?;
        Ok(Endpoint {
            prefix,
            path_at,
            userinfo,
            host,
            origin,
        })
    }

    /// The base's path prefix (`/workspaces/ws-1`, or empty).
    pub(super) fn path_prefix(&self) -> &str {
        &self.prefix[self.path_at..]
    }

    /// `base` + `path` + `?query`, keeping the base's path prefix, and the
    /// same as the URI sent on a connection to [`Self::origin`] (origin
    /// form: the base's path prefix + `path` + `?query`), or why not.
    ///
    /// `path` is one of aetos' own routes (`/api/v1/query`,
    /// `/api/v1/label/<validated name>/values`, the health-check path): every
    /// segment must be plain (RFC 3986 unreserved characters, not `.` or
    /// `..`), so that appending it to the prepared prefix can only name a
    /// path below the base. The result is checked once more as a URI: its
    /// path must be exactly the base's path followed by `path`, or nothing
    /// is sent (the authority is not the request's to choose: the
    /// connection is made to the base's).
    pub(super) fn url_for(&self, path: &str, query: &str) -> Result<(SentUrl, http::Uri), String> {
        let refuse = |why: &str| Err(format!("refusing to send to backend path {path:?}: {why}"));
        let Some(rest) = path.strip_prefix('/') else {
            return refuse("not absolute");
        };
        let plain = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~');
        let segments_plain = rest
            .as_bytes()
            .split(|b| *b == b'/')
            .all(|s| !s.is_empty() && s != b"." && s != b".." && s.iter().all(plain));
        if !segments_plain {
            return refuse("not a plain path");
        }
        // As the URL standard writes a query (what the url crate did here
        // before): controls, space, quotes, `#`, `<`, `>` and non-ASCII
        // percent-encoded; borrowed as it is when nothing needs it.
        // Every byte checked (no early exit), so that the check runs as
        // vector compares over the whole query rather than a branch a byte.
        let escapes = query.bytes().fold(false, |any, b| any | query_escapes(b));
        let query: std::borrow::Cow<'_, str> = if escapes {
            percent_encoding::utf8_percent_encode(query, QUERY_ESCAPED).into()
        } else {
            query.into()
        };
        let mut text = String::with_capacity(self.prefix.len() + path.len() + 1 + query.len());
        text.push_str(&self.prefix);
        text.push_str(path);
        if !query.is_empty() {
            text.push('?');
            text.push_str(&query);
        }
        let text = bytes::Bytes::from(text);
        let uri = match http::Uri::from_maybe_shared(text.slice(self.path_at..)) {
            Ok(u) => u,
            Err(_) => return refuse("not a valid URI with this query"),
        };
        let same_path = uri
            .path()
            .strip_prefix(self.path_prefix())
            .is_some_and(|p| p == path);
        if !same_path || uri.authority().is_some() {
            return refuse("it would leave the backend's base URL");
        }
        Ok((SentUrl(text), uri))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url_for(base: &str, path: &str, query: &str) -> Result<String, String> {
        let e = Endpoint::new(&Url::parse(base).unwrap())?;
        let (text, uri) = e.url_for(path, query)?;
        assert_eq!(format!("{}{uri}", e.origin.key()), text.as_str());
        Ok(text.as_str().to_owned())
    }

    #[test]
    fn the_no_escape_check_agrees_with_the_escape_set() {
        for b in 0..=0x7fu8 {
            let s = char::from(b).to_string();
            let encoded: String =
                percent_encoding::utf8_percent_encode(&s, QUERY_ESCAPED).collect();
            assert_eq!(query_escapes(b), encoded != s, "byte {b:#x}");
        }
        for b in 0x80..=0xffu8 {
            assert!(query_escapes(b), "byte {b:#x} is never sent raw");
        }
    }

    #[test]
    fn urls_are_the_base_prefix_plus_plain_route_segments() {
        let b = "https://h:8443/workspaces/ws-1/";
        assert_eq!(
            url_for(b, "/api/v1/label/job/values", "match%5B%5D=up&x=%2e%2e").unwrap(),
            "https://h:8443/workspaces/ws-1/api/v1/label/job/values?match%5B%5D=up&x=%2e%2e"
        );
        let root = "http://127.0.0.1:9090/";
        assert_eq!(
            url_for(root, "/-/ready", "").unwrap(),
            "http://127.0.0.1:9090/-/ready"
        );
        assert_eq!(
            url_for(root, "/api/v1/query", "query=up").unwrap(),
            "http://127.0.0.1:9090/api/v1/query?query=up"
        );
        // A base's own query and fragment are not kept; IDNA hosts are ASCII.
        assert_eq!(
            url_for("http://[::1]:9090/p/?x=1#f", "/api/v1/query", "").unwrap(),
            "http://[::1]:9090/p/api/v1/query"
        );
        let idna = Url::parse("https://\u{e9}t\u{e9}.example/").unwrap();
        assert_eq!(
            url_for(idna.as_str(), "/api/v1/query", "").unwrap(),
            format!("https://{}/api/v1/query", idna.host_str().unwrap())
        );
        assert!(idna.host_str().unwrap().starts_with("xn--"));
    }

    #[test]
    fn the_host_header_is_the_authority_with_a_non_default_port_only() {
        for (base, host) in [
            ("http://127.0.0.1:9090/", "127.0.0.1:9090"),
            ("http://h:80/p", "h"),
            ("https://h:443/", "h"),
            ("https://h:8443/ws", "h:8443"),
            ("http://u:p@[::1]:9090/", "[::1]:9090"),
        ] {
            let e = Endpoint::new(&Url::parse(base).unwrap()).unwrap();
            assert_eq!(e.host, host, "{base}");
        }
    }

    #[test]
    fn user_info_becomes_basic_credentials_and_leaves_the_url() {
        let e = Endpoint::new(&Url::parse("http://us%20er:p%40ss@h:9090/x").unwrap()).unwrap();
        let (text, _) = e.url_for("/api/v1/query", "").unwrap();
        assert_eq!(text.as_str(), "http://h:9090/x/api/v1/query");
        let v = e.userinfo.unwrap();
        assert!(v.is_sensitive());
        // base64("us er:p@ss")
        assert_eq!(v.to_str().unwrap(), "Basic dXMgZXI6cEBzcw==");
        assert!(Endpoint::new(&Url::parse("http://h/").unwrap())
            .unwrap()
            .userinfo
            .is_none());
    }

    #[test]
    fn a_query_cannot_change_where_the_request_goes() {
        for (q, sent) in [
            ("a=1#/../../admin", "a=1%23/../../admin"),
            ("a=%2F..%2F..", "a=%2F..%2F.."),
            ("x=@evil.example/", "x=@evil.example/"),
            ("a b\n\u{e9}", "a%20b%0A%C3%A9"),
            ("q=up{a=\"<'>\"}", "q=up{a=%22%3C%27%3E%22}"),
        ] {
            let text = url_for("http://h:9090/p", "/api/v1/query", q).unwrap();
            assert_eq!(text, format!("http://h:9090/p/api/v1/query?{sent}"), "{q}");
        }
    }

    #[test]
    fn a_path_that_could_leave_the_prefix_is_never_built() {
        let b = "https://h/workspaces/ws-1";
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
            let e = url_for(b, path, "").unwrap_err();
            assert!(
                e.starts_with("refusing to send to backend path"),
                "{path}: {e}"
            );
        }
    }
}
