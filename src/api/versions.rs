//! The two unauthenticated documents: the versions document at the root
//! and oslo.middleware's `/healthcheck`.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use serde_json::json;

use crate::state::State;

/// Scheme, host and path prefix the caller used to reach us, so that the
/// hrefs we hand out work from where the caller stands. Proxy headers
/// (`Forwarded`, `X-Forwarded-Proto/Host/Prefix`) count only when
/// `[oslo_middleware] enable_proxy_headers_parsing` is set.
pub fn external_base(req: &HttpRequest, state: &State) -> String {
    let h = req.headers();
    let get = |n: &str| {
        h.get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    let mut scheme = "http".to_owned();
    let mut host = get("host")
        .map(str::to_owned)
        .unwrap_or_else(|| state.listen_host.clone());
    let mut prefix = String::new();
    if state.proxy_headers {
        if let Some(fwd) = get("forwarded") {
            // Only the first (closest to the client) element.
            let first = fwd.split(',').next().unwrap_or("");
            for part in first.split(';') {
                let mut kv = part.splitn(2, '=');
                let k = kv.next().unwrap_or("").trim().to_ascii_lowercase();
                let v = kv.next().unwrap_or("").trim().trim_matches('"');
                match k.as_str() {
                    "proto" if !v.is_empty() => scheme = v.to_owned(),
                    "host" if !v.is_empty() => host = v.to_owned(),
                    _ => {}
                }
            }
        }
        if let Some(p) = get("x-forwarded-proto") {
            scheme = p.split(',').next().unwrap_or(p).trim().to_owned();
        }
        if let Some(hh) = get("x-forwarded-host") {
            host = hh.split(',').next().unwrap_or(hh).trim().to_owned();
        }
        if let Some(p) = get("x-forwarded-prefix") {
            prefix = format!("/{}", p.trim_matches('/'));
        }
    }
    // The root the request came in under, if any (`/prometheus`).
    let root = state.root_path.trim_end_matches('/');
    if !root.is_empty() && (req.path() == root || req.path().starts_with(&format!("{root}/"))) {
        prefix.push_str(root);
    }
    if prefix == "/" {
        prefix.clear();
    }
    format!("{scheme}://{host}{prefix}")
}

/// `GET /`: the versions document, with hrefs that include the prefix.
pub fn versions(req: &HttpRequest, state: &State) -> HttpResponse {
    let base = external_base(req, state);
    let doc = json!({"versions": {"values": [{
        "id": "v1",
        "links": [
            {"href": format!("{base}/api/v1"), "rel": "self"},
            {"href": "https://docs.openstack.org/aetos/latest/", "rel": "describedby", "type": "text/html"}
        ],
        "media-types": [{"base": "application/json", "type": "application/vnd.openstack.telemetry-v1+json"}],
        "status": "stable",
        "updated": "2025-04-15T00:00:00Z"
    }]}});
    HttpResponse::Ok()
        .content_type("application/json")
        .body(doc.to_string())
}

/// `GET|HEAD /healthcheck` as oslo.middleware answers it: 200 `OK` (204 for
/// HEAD), 503 `DISABLED BY FILE` when the disable file exists; with
/// `detailed` (option, or `?detailed` in the URL) a JSON report with one
/// `BackendReadiness` reason per backend (checked now: ready, since when,
/// why not) and, for methods with credentials to obtain, one
/// `BackendCredentials` reason (method, whether credentials are held and
/// for how long; never the credentials). 200 when at least one backend is
/// ready, else 503.
pub async fn healthcheck(req: &HttpRequest, state: &State) -> HttpResponse {
    let head = req.method() == actix_web::http::Method::HEAD;
    let h = &state.health;
    let disabled = h
        .disable_by_file
        .iter()
        .chain(
            h.disable_by_port_files
                .iter()
                .filter(|(p, _)| *p == h.port)
                .map(|(_, f)| f),
        )
        .find(|f| f.exists())
        .cloned()
        .or_else(|| h.enable_by_files.iter().find(|f| !f.exists()).cloned());
    if let Some(path) = disabled {
        tracing::warn!(file = %path.display(), "healthcheck disabled by file");
        return if head {
            HttpResponse::ServiceUnavailable().finish()
        } else {
            HttpResponse::ServiceUnavailable()
                .content_type("text/plain")
                .body("DISABLED BY FILE")
        };
    }
    let detailed = state.health.detailed
        || req
            .query_string()
            .split('&')
            .any(|p| p == "detailed" || p.starts_with("detailed="));
    if !detailed {
        return if head {
            HttpResponse::NoContent().finish()
        } else {
            HttpResponse::Ok().content_type("text/plain").body("OK")
        };
    }
    let reports = state.backend.check_all().await;
    let ready = reports.iter().any(|r| r.up);
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    if head {
        return HttpResponse::build(if ready {
            StatusCode::NO_CONTENT
        } else {
            status
        })
        .finish();
    }
    let auth = state.backend.auth();
    let time = |t: std::time::SystemTime| humantime::format_rfc3339_seconds(t).to_string();
    // Addresses and error texts only when the operator opted in with
    // `[healthcheck] detailed` (as oslo.middleware); `?detailed` alone shows
    // each backend's state under a number.
    let reveal = state.health.detailed;
    let mut reasons: Vec<serde_json::Value> = reports
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let mut v = json!({"class": "BackendReadiness",
            "reason": if r.up { "OK".to_owned() } else if reveal {
                r.last_error.clone().unwrap_or_else(|| "down".to_owned())
            } else {
                "down".to_owned()
            },
            "details": {
                "backend": if reveal { r.url.clone() } else { format!("backend-{}", i + 1) },
                "ready": r.up,
                "since": time(r.since),
                "last_check": r.last_check.map(time),
                "auth": auth.method(),
            }});
            // The DNS entry a discovered address came from.
            if let (true, Some(from)) = (reveal, &r.source) {
                v["details"]["from"] = json!(from);
            }
            v
        })
        .collect();
    if reveal && auth.obtains_credentials() {
        let details = auth.status();
        let reason = details["last_error"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| "OK".to_owned());
        reasons.push(json!({"class": "BackendCredentials", "reason": reason, "details": details}));
    }
    HttpResponse::build(status)
        .content_type("application/json")
        .body(
            json!({
                "detailed": true,
                "reasons": reasons,
                "gc": {},
            })
            .to_string(),
        )
}
