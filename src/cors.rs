//! CORS as oslo.middleware's `cors` filter does it (`[cors]`), so that a
//! browser application (Horizon, a Grafana in the browser's origin) may
//! call aetos. Nothing here authenticates or authorizes: a preflight is
//! answered before authentication, and an actual request still needs its
//! token.

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::HttpResponse;

/// `[cors]` settings, as the configuration reads them.
pub(crate) use crate::config::CorsSection as CorsOptions;

impl crate::config::CorsSection {
    /// The origin to echo back, if this request's `Origin` is allowed.
    fn allowed<'a>(&self, headers: &'a HeaderMap) -> Option<&'a str> {
        let origin = headers
            .get(actix_web::http::header::ORIGIN)?
            .to_str()
            .ok()?;
        self.allowed_origin
            .iter()
            .any(|o| o == "*" || o.eq_ignore_ascii_case(origin))
            .then_some(origin)
    }

    /// Answers a preflight (`OPTIONS` with `Access-Control-Request-Method`)
    /// from an allowed origin; `None` for anything else.
    pub(crate) fn preflight(&self, method: &str, headers: &HeaderMap) -> Option<HttpResponse> {
        if method != "OPTIONS" {
            return None;
        }
        let requested = headers
            .get("access-control-request-method")?
            .to_str()
            .ok()?;
        let origin = self.allowed(headers)?;
        if !self
            .allow_methods
            .iter()
            .any(|m| m.eq_ignore_ascii_case(requested))
        {
            return Some(HttpResponse::Ok().finish());
        }
        // Every requested header must be allowed (case-insensitively).
        if let Some(req_headers) = headers
            .get("access-control-request-headers")
            .and_then(|v| v.to_str().ok())
        {
            let ok = req_headers
                .split(',')
                .map(str::trim)
                .filter(|h| !h.is_empty())
                .all(|h| self.allow_headers.iter().any(|a| a.eq_ignore_ascii_case(h)));
            if !ok {
                return Some(HttpResponse::Ok().finish());
            }
        }
        let mut r = HttpResponse::Ok();
        r.insert_header(("Access-Control-Allow-Origin", origin))
            .insert_header(("Vary", "Origin"))
            .insert_header(("Access-Control-Allow-Methods", self.allow_methods.join(",")))
            .insert_header(("Access-Control-Max-Age", self.max_age.to_string()));
        if !self.allow_headers.is_empty() {
            r.insert_header(("Access-Control-Allow-Headers", self.allow_headers.join(",")));
        }
        if self.allow_credentials {
            r.insert_header(("Access-Control-Allow-Credentials", "true"));
        }
        Some(r.finish())
    }

    /// Adds the CORS headers of an actual request's answer.
    pub(crate) fn decorate(&self, request: &HeaderMap, response: &mut HeaderMap) {
        let Some(origin) = self.allowed(request) else {
            return;
        };
        let mut put = |k: &'static str, v: &str| {
            if let Ok(v) = HeaderValue::from_str(v) {
                response.insert(HeaderName::from_static(k), v);
            }
        };
        put("access-control-allow-origin", origin);
        put("vary", "Origin");
        if self.allow_credentials {
            put("access-control-allow-credentials", "true");
        }
        if !self.expose_headers.is_empty() {
            put(
                "access-control-expose-headers",
                &self.expose_headers.join(","),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::headers;

    fn opts() -> CorsOptions {
        CorsOptions {
            allowed_origin: vec!["https://horizon.example.com".into()],
            allow_credentials: true,
            expose_headers: vec!["X-Openstack-Request-Id".into()],
            max_age: 3600,
            allow_methods: vec!["GET".into(), "POST".into()],
            allow_headers: vec!["X-Auth-Token".into(), "Content-Type".into()],
        }
    }

    #[test]
    fn preflight_from_allowed_origin_lists_methods_and_headers() {
        let h = headers(&[
            ("Origin", "https://horizon.example.com"),
            ("Access-Control-Request-Method", "POST"),
            (
                "Access-Control-Request-Headers",
                "x-auth-token, content-type",
            ),
        ]);
        let r = opts().preflight("OPTIONS", &h).unwrap();
        assert_eq!(
            r.headers().get("access-control-allow-origin").unwrap(),
            "https://horizon.example.com"
        );
        assert_eq!(
            r.headers().get("access-control-allow-methods").unwrap(),
            "GET,POST"
        );
        assert_eq!(
            r.headers().get("access-control-allow-credentials").unwrap(),
            "true"
        );
    }

    #[test]
    fn other_origins_and_unlisted_headers_get_no_grant() {
        let h = headers(&[
            ("Origin", "https://evil.example"),
            ("Access-Control-Request-Method", "GET"),
        ]);
        assert!(opts().preflight("OPTIONS", &h).is_none());
        let h = headers(&[
            ("Origin", "https://horizon.example.com"),
            ("Access-Control-Request-Method", "GET"),
            ("Access-Control-Request-Headers", "X-Roles"),
        ]);
        let r = opts().preflight("OPTIONS", &h).unwrap();
        assert!(!r.headers().contains_key("access-control-allow-origin"));
        let mut out = HeaderMap::new();
        opts().decorate(&headers(&[("Origin", "https://evil.example")]), &mut out);
        assert!(out.is_empty());
    }

    #[test]
    fn actual_request_exposes_headers() {
        let mut out = HeaderMap::new();
        opts().decorate(
            &headers(&[("Origin", "https://horizon.example.com")]),
            &mut out,
        );
        assert_eq!(
            out.get("access-control-expose-headers").unwrap(),
            "X-Openstack-Request-Id"
        );
        assert_eq!(out.get("vary").unwrap(), "Origin");
    }
}
