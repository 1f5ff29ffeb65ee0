//! Error answers in the shape each client expects: Prometheus' JSON
//! envelope for API errors, keystonemiddleware's body for 401.

use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use serde_json::json;

/// `{"status":"error","errorType":…,"error":…}` with `status`.
pub fn prom_error(status: StatusCode, error_type: &str, message: &str) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("application/json")
        .body(json!({"status": "error", "errorType": error_type, "error": message}).to_string())
}

/// 400 `bad_data`, for PromQL and parameters we refuse.
pub fn bad_data(message: &str) -> HttpResponse {
    prom_error(StatusCode::BAD_REQUEST, "bad_data", message)
}

/// keystonemiddleware's 401: JSON body and `WWW-Authenticate: Keystone uri=…`.
pub fn unauthorized(www_authenticate_uri: &str) -> HttpResponse {
    HttpResponse::Unauthorized()
        .content_type("application/json")
        .insert_header((
            "WWW-Authenticate",
            format!("Keystone uri=\"{www_authenticate_uri}\""),
        ))
        .body(
            json!({"error": {"code": 401, "title": "Unauthorized",
                "message": "The request you have made requires authentication."}})
            .to_string(),
        )
}

/// 403 with upstream's fault string.
pub fn forbidden() -> HttpResponse {
    prom_error(
        StatusCode::FORBIDDEN,
        "forbidden",
        "RBAC Authorization Failed",
    )
}

/// 503 when the identity service cannot give an answer.
pub fn identity_unavailable() -> HttpResponse {
    prom_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
        "The identity service is unavailable; the token could not be validated.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::MessageBody;

    fn body(r: HttpResponse) -> serde_json::Value {
        let b = r.into_body().try_into_bytes().unwrap();
        serde_json::from_slice(&b).unwrap()
    }

    #[test]
    fn prometheus_envelope() {
        let r = bad_data("parse error");
        assert_eq!(r.status(), 400);
        assert_eq!(
            body(r),
            json!({"status":"error","errorType":"bad_data","error":"parse error"})
        );
    }

    #[test]
    fn keystone_401_has_www_authenticate() {
        let r = unauthorized("http://k:5000");
        assert_eq!(r.status(), 401);
        assert_eq!(
            r.headers().get("www-authenticate").unwrap(),
            "Keystone uri=\"http://k:5000\""
        );
        assert_eq!(body(r)["error"]["code"], 401);
    }
}
