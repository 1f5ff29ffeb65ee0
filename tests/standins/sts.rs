//! A stand-in for AWS STS (`https://sts.<region>.amazonaws.com/`): the two
//! actions aetos uses, as form POSTs answered with STS's XML.
//!
//! * `AssumeRoleWithWebIdentity` is unsigned; the `WebIdentityToken` must be
//!   the one the test wrote to the token file and `RoleArn` the role whose
//!   trust policy names it.
//! * `AssumeRole` must be SigV4-signed (service `sts`) by credentials the
//!   registry knows; `RoleArn` must be the target role and, when set, the
//!   `ExternalId` must match, as the role's trust policy would demand.
//!
//! Issued credentials go into the shared [`Registry`] with the role as
//! their principal, so the Prometheus stand-in can tell which role signed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use actix_web::{web, HttpRequest, HttpResponse};

use super::sigv4_verify::{self, Received};
use super::{form, Registry, Server};

/// The trust relationships the stand-in enforces.
#[derive(Debug, Clone)]
pub struct StsConfig {
    pub region: String,
    /// Role that trusts the web identity token.
    pub web_identity_role: String,
    /// The token (content of the IRSA token file) it accepts.
    pub web_identity_token: String,
    /// Role in "another account" that AssumeRole may enter.
    pub target_role: String,
    pub external_id: Option<String>,
    /// Lifetime of issued credentials.
    pub lifetime: Duration,
}

/// One call STS received, for assertions.
#[derive(Debug, Clone)]
pub struct StsCall {
    pub action: String,
    pub role_arn: String,
    pub session_name: String,
    pub external_id: Option<String>,
    pub duration: Option<String>,
    /// For AssumeRole: the principal of the signing key.
    pub caller: Option<String>,
    /// What STS answered (200, 403…).
    pub status: u16,
}

pub struct StsState {
    pub config: Mutex<StsConfig>,
    pub registry: Arc<Registry>,
    pub calls: Mutex<Vec<StsCall>>,
    /// When set, every call is refused with AccessDenied.
    pub refuse: AtomicBool,
}

/// The running stand-in.
pub struct StsStandin {
    pub state: Arc<StsState>,
    pub server: Server,
}

impl StsStandin {
    pub fn start(config: StsConfig, registry: Arc<Registry>) -> StsStandin {
        let state = Arc::new(StsState {
            config: Mutex::new(config),
            registry,
            calls: Mutex::new(Vec::new()),
            refuse: AtomicBool::new(false),
        });
        let server = Server::start(state.clone(), |cfg| {
            cfg.default_service(web::to(handle));
        });
        StsStandin { state, server }
    }

    pub fn url(&self) -> String {
        format!("{}/", self.server.url())
    }

    pub fn calls(&self) -> Vec<StsCall> {
        self.state.calls.lock().unwrap().clone()
    }

    pub fn count(&self, action: &str) -> usize {
        self.calls()
            .iter()
            .filter(|c| c.action == action && c.status == 200)
            .count()
    }
}

fn error(status: u16, code: &str, message: &str) -> HttpResponse {
    let body = format!(
        "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n  <Error>\n    \
         <Type>Sender</Type>\n    <Code>{code}</Code>\n    <Message>{message}</Message>\n  \
         </Error>\n  <RequestId>{}</RequestId>\n</ErrorResponse>\n",
        uuid::Uuid::new_v4()
    );
    HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap())
        .content_type("text/xml")
        .body(body)
}

fn credentials_xml(
    action: &str,
    role: &str,
    session: &str,
    akid: &str,
    key: &super::AwsKey,
    extra: &str,
) -> String {
    let expiration = humantime::format_rfc3339_seconds(key.expires.unwrap_or(SystemTime::now()));
    let account = role.split(':').nth(4).unwrap_or("000000000000");
    let role_name = role.rsplit('/').next().unwrap_or("role");
    format!(
        "<{action}Response xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n  <{action}Result>\n{extra}    \
         <AssumedRoleUser>\n      <AssumedRoleId>AROA3XFRBF535PLBIFPI4:{session}</AssumedRoleId>\n      \
         <Arn>arn:aws:sts::{account}:assumed-role/{role_name}/{session}</Arn>\n    </AssumedRoleUser>\n    \
         <Credentials>\n      <AccessKeyId>{akid}</AccessKeyId>\n      <SecretAccessKey>{}</SecretAccessKey>\n      \
         <SessionToken>{}</SessionToken>\n      <Expiration>{expiration}</Expiration>\n    </Credentials>\n  \
         </{action}Result>\n  <ResponseMetadata>\n    <RequestId>{}</RequestId>\n  </ResponseMetadata>\n</{action}Response>\n",
        key.secret,
        key.session_token.clone().unwrap_or_default(),
        uuid::Uuid::new_v4()
    )
}

// Error answers are ready responses; boxing them would only add noise.
#[allow(clippy::result_large_err)]
async fn handle(req: HttpRequest, body: web::Bytes, state: web::Data<StsState>) -> HttpResponse {
    let config = state.config.lock().unwrap().clone();
    if req.method() != actix_web::http::Method::POST {
        return error(400, "InvalidAction", "STS actions are POSTed");
    }
    let f = form(&body);
    let action = f.get("Action").cloned().unwrap_or_default();
    let role = f.get("RoleArn").cloned().unwrap_or_default();
    let session = f.get("RoleSessionName").cloned().unwrap_or_default();
    let mut call = StsCall {
        action: action.clone(),
        role_arn: role.clone(),
        session_name: session.clone(),
        external_id: f.get("ExternalId").cloned(),
        duration: f.get("DurationSeconds").cloned(),
        caller: None,
        status: 200,
    };
    let answer = (|| {
        if f.get("Version").map(String::as_str) != Some("2011-06-15") {
            return Err(error(
                400,
                "InvalidParameterValue",
                "Version must be 2011-06-15",
            ));
        }
        if session.is_empty() {
            return Err(error(400, "ValidationError", "RoleSessionName is required"));
        }
        if state.refuse.load(Ordering::SeqCst) {
            return Err(error(
                403,
                "AccessDenied",
                "Stand-in told to refuse every call",
            ));
        }
        match action.as_str() {
            "AssumeRoleWithWebIdentity" => {
                if f.get("WebIdentityToken") != Some(&config.web_identity_token) {
                    return Err(error(
                        400,
                        "InvalidIdentityToken",
                        "Couldn't retrieve verification key from your identity provider",
                    ));
                }
                if role != config.web_identity_role {
                    return Err(error(
                        403,
                        "AccessDenied",
                        "Not authorized to perform sts:AssumeRoleWithWebIdentity",
                    ));
                }
                let (akid, key) = state.registry.issue_aws(&role, config.lifetime);
                let extra = "    <SubjectFromWebIdentityToken>system:serviceaccount:monitoring:aetos</SubjectFromWebIdentityToken>\n    \
                             <Audience>sts.amazonaws.com</Audience>\n    \
                             <Provider>arn:aws:iam::111122223333:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/STANDIN</Provider>\n";
                Ok(credentials_xml(
                    &action, &role, &session, &akid, &key, extra,
                ))
            }
            "AssumeRole" => {
                let headers = req
                    .headers()
                    .iter()
                    .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
                    .collect();
                let received = Received {
                    method: "POST",
                    raw_path: req.path(),
                    raw_query: req.query_string(),
                    headers,
                    body: &body,
                };
                let v = sigv4_verify::verify(
                    &received,
                    &state.registry,
                    &config.region,
                    "sts",
                    SystemTime::now(),
                )
                .map_err(|e| error(403, "SignatureDoesNotMatch", &e))?;
                call.caller = Some(v.principal.clone());
                if role != config.target_role {
                    return Err(error(403, "AccessDenied", &format!("User: {} is not authorized to perform: sts:AssumeRole on resource: {role}", v.principal)));
                }
                if config.external_id.is_some()
                    && f.get("ExternalId") != config.external_id.as_ref()
                {
                    return Err(error(
                        403,
                        "AccessDenied",
                        "The external id does not match the trust policy",
                    ));
                }
                let (akid, key) = state.registry.issue_aws(&role, config.lifetime);
                Ok(credentials_xml(&action, &role, &session, &akid, &key, ""))
            }
            other => Err(error(
                400,
                "InvalidAction",
                &format!("Could not find operation {other}"),
            )),
        }
    })();
    let resp = match answer {
        Ok(xml) => HttpResponse::Ok().content_type("text/xml").body(xml),
        Err(r) => r,
    };
    call.status = resp.status().as_u16();
    state.calls.lock().unwrap().push(call);
    resp
}
