//! The one table of every option aetos reads or accepts.
//!
//! This table is the single source of truth: the loader resolves, converts
//! and warns from it, and the sample generator (`aetos-api genconfig`) and
//! the configuration reference are printed from it, so documentation and
//! behaviour cannot drift apart. An option that upstream Aetos (or the oslo
//! libraries it loads) registers but aetos does not implement is still
//! listed, with [`Support::Accepted`]: its value is parsed and type-checked
//! like upstream would, then ignored with one warning, so existing files
//! keep loading.
//!
//! Defaults are written as they would appear in a file and go through the
//! same conversion as file values (a unit test checks every one of them).

/// How a raw string value is converted and checked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// Any string.
    String,
    /// A string that must never be printed (passwords, keys): Debug prints
    /// `***`, errors never quote it.
    Secret,
    /// oslo's boolean: true/false, yes/no, on/off, 1/0, case-insensitive.
    Bool,
    /// A signed integer, optionally bounded (inclusive).
    Int { min: Option<i64>, max: Option<i64> },
    /// A floating point number, optionally bounded (inclusive).
    Float { min: Option<f64>, max: Option<f64> },
    /// A TCP port, 0–65535.
    Port,
    /// A comma-separated list (items stripped, as oslo's ListOpt).
    List,
    /// A key that may be repeated; every occurrence is a value.
    MultiString,
    /// One of a fixed set of strings.
    Enum {
        choices: &'static [&'static str],
        ignore_case: bool,
    },
    /// An absolute http(s) URL with a host.
    Url,
}

impl Kind {
    /// The type note oslo-config-generator prints after the help text.
    pub fn type_name(&self) -> &'static str {
        match self {
            Kind::String | Kind::Secret | Kind::Enum { .. } => "string value",
            Kind::Bool => "boolean value",
            Kind::Int { .. } => "integer value",
            Kind::Float { .. } => "floating point value",
            Kind::Port => "port value",
            Kind::List => "list value",
            Kind::MultiString => "multi valued",
            Kind::Url => "uri value",
        }
    }
}

/// Whether aetos acts on an option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    /// aetos honours the option.
    Implemented,
    /// Parsed and type-checked for compatibility, then ignored with a warning.
    Accepted,
}

/// A deprecated spelling (and possibly section) that still sets an option.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Alias {
    /// The section the deprecated name lives in.
    pub section: &'static str,
    /// The deprecated option name.
    pub name: &'static str,
}

/// One option: where it lives, how it is read, and what it means.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OptSpec {
    /// Section as written in files (`DEFAULT` or lower case).
    pub section: &'static str,
    /// Option name, verbatim from upstream.
    pub name: &'static str,
    /// Value type.
    pub kind: Kind,
    /// Default as it would be written in a file; `None` means unset.
    pub default: Option<&'static str>,
    /// Help text (one paragraph; wrapped by the generators).
    pub help: &'static str,
    /// Deprecated names that still set this option, newest-first lookup
    /// gives the canonical name priority within one file (as oslo does).
    pub aliases: &'static [Alias],
    /// Implemented, or only accepted.
    pub support: Support,
    /// Which project defines the option upstream (the sample's "From …").
    pub origin: &'static str,
}

impl OptSpec {
    /// The `[section] name` label used in messages.
    pub fn label(&self) -> String {
        format!("[{}] {}", self.section, self.name)
    }
}

const fn opt(
    section: &'static str,
    name: &'static str,
    kind: Kind,
    default: Option<&'static str>,
    help: &'static str,
) -> OptSpec {
    OptSpec {
        section,
        name,
        kind,
        default,
        help,
        aliases: &[],
        support: Support::Implemented,
        origin: "aetos",
    }
}

impl OptSpec {
    const fn from(mut self, origin: &'static str) -> Self {
        self.origin = origin;
        self
    }
    const fn accepted(mut self) -> Self {
        self.support = Support::Accepted;
        self
    }
    const fn aliases(mut self, aliases: &'static [Alias]) -> Self {
        self.aliases = aliases;
        self
    }
}

const fn alias(section: &'static str, name: &'static str) -> Alias {
    Alias { section, name }
}

const fn int(min: Option<i64>, max: Option<i64>) -> Kind {
    Kind::Int { min, max }
}

const fn float(min: Option<f64>, max: Option<f64>) -> Kind {
    Kind::Float { min, max }
}

const fn choice(choices: &'static [&'static str]) -> Kind {
    Kind::Enum {
        choices,
        ignore_case: false,
    }
}

const fn choice_nocase(choices: &'static [&'static str]) -> Kind {
    Kind::Enum {
        choices,
        ignore_case: true,
    }
}

use Kind::{Bool, List, MultiString, Port, Secret, String as Str, Url};

const D: &str = "DEFAULT";
const KS: &str = "keystone_authtoken";
const OSLO_LOG: &str = "oslo.log";
const KSM: &str = "keystonemiddleware.auth_token";
const KSA: &str = "keystoneauth1";
const OSLO_POLICY: &str = "oslo.policy";
const CORS: &str = "oslo.middleware.cors";
const HEALTH: &str = "oslo.middleware.healthcheck";
const MIDDLEWARE: &str = "oslo.middleware";
const AWS: &str = "prometheus_aws";
const AZ: &str = "prometheus_azure";
const GCP: &str = "prometheus_google";

/// Upstream's default log levels (oslo.log), kept for the sample.
const DEFAULT_LOG_LEVELS: &str = "amqp=WARN,amqplib=WARN,boto=WARN,qpid=WARN,sqlalchemy=WARN,\
suds=INFO,oslo.messaging=INFO,oslo_messaging=INFO,iso8601=WARN,\
requests.packages.urllib3.connectionpool=WARN,urllib3.connectionpool=WARN,websocket=WARN,\
requests.packages.urllib3.util.retry=WARN,urllib3.util.retry=WARN,keystonemiddleware=WARN,\
routes.middleware=WARN,stevedore=WARN,taskflow=WARN,keystoneauth=WARN,oslo.cache=INFO,\
oslo_policy=INFO,dogpile.core.dogpile=INFO";

/// The identity headers that CORS exposes and allows by default (upstream
/// Aetos sets the same defaults for oslo.middleware's CORS filter).
const CORS_HEADERS: &str = "X-Auth-Token,X-Openstack-Request-Id,X-Subject-Token";

/// Sections that upstream tooling writes but no aetos option lives in; they
/// get one explanatory warning instead of an "unknown section" one.
pub static IGNORED_SECTIONS: &[(&str, &str)] = &[(
    "service_credentials",
    "written by upstream's devstack plugin for a Keystone client aetos does not have; the service \
     user is configured in [keystone_authtoken]",
)];

/// Every option, grouped by section in the order the sample prints them
/// (`DEFAULT` first, then sections alphabetically). Kept unformatted so it
/// reads as a table.
#[rustfmt::skip]
pub static OPTIONS: &[OptSpec] = &[
    // ---------------------------------------------------------------- DEFAULT
    opt(D, "auth_mode", choice(&["keystone", "noauth"]), Some("keystone"),
        "How callers are authenticated. 'keystone' validates the X-Auth-Token of every request \
         with Keystone using the service user of [keystone_authtoken]. 'noauth' trusts the \
         X-User-Id, X-Project-Id and X-Roles request headers without any check: use it only in \
         test environments. Upstream treats an empty value as noauth; aetos refuses it, write \
         'noauth' explicitly."),
    opt(D, "paste_config", Str, Some("api-paste.ini"),
        "Upstream Aetos builds its WSGI pipeline from this paste file. aetos has a fixed \
         pipeline (CORS, proxy headers, request id, authentication), so this option has no \
         effect.").accepted(),
    opt(D, "debug", Bool, Some("false"),
        "Log at DEBUG level instead of the default INFO level.").from(OSLO_LOG),
    opt(D, "log_config_append", Str, None,
        "A Python logging configuration file. aetos logs through tracing and cannot read it; \
         use debug, use_json, log_file and log_dir.").aliases(&[alias(D, "log_config")]).from(OSLO_LOG).accepted(),
    opt(D, "log_date_format", Str, Some("%Y-%m-%d %H:%M:%S"),
        "strftime format for timestamps in log records. aetos always logs RFC 3339 timestamps.")
        .from(OSLO_LOG).accepted(),
    opt(D, "log_file", Str, None,
        "Write the log to this file instead of standard output. A relative name is taken \
         relative to log_dir when log_dir is set.").aliases(&[alias(D, "logfile")]).from(OSLO_LOG),
    opt(D, "log_dir", Str, None,
        "Directory for the log file. With log_file unset, the log goes to <log_dir>/aetos-api.log.")
        .aliases(&[alias(D, "logdir")]).from(OSLO_LOG),
    opt(D, "watch_log_file", Bool, Some("false"),
        "Reopen the log file when it is moved or removed (for external log rotation).")
        .from(OSLO_LOG).accepted(),
    opt(D, "use_syslog", Bool, Some("false"), "Send the log to syslog.").from(OSLO_LOG).accepted(),
    opt(D, "use_journal", Bool, Some("false"), "Send the log to the systemd journal in its native format.")
        .from(OSLO_LOG).accepted(),
    opt(D, "syslog_log_facility", Str, Some("LOG_USER"), "Syslog facility to log under.")
        .from(OSLO_LOG).accepted(),
    opt(D, "use_json", Bool, Some("false"),
        "Write each log record as one JSON object per line instead of human-readable text.")
        .from(OSLO_LOG),
    opt(D, "use_stderr", Bool, Some("false"),
        "Log to standard error. Without log_file and use_stderr the log goes to standard output, \
         as with oslo.log.").from(OSLO_LOG),
    opt(D, "log_color", Bool, Some("false"), "Colour log records by level on a terminal.")
        .from(OSLO_LOG).accepted(),
    opt(D, "log_rotate_interval", int(None, None), Some("1"),
        "Time between log file rotations, in units of log_rotate_interval_type.")
        .from(OSLO_LOG).accepted(),
    opt(D, "log_rotate_interval_type",
        choice_nocase(&["Seconds", "Minutes", "Hours", "Days", "Weekday", "Midnight"]), Some("days"),
        "Unit of log_rotate_interval.").from(OSLO_LOG).accepted(),
    opt(D, "max_logfile_count", int(Some(1), None), Some("30"), "Number of rotated log files kept.")
        .from(OSLO_LOG).accepted(),
    opt(D, "max_logfile_size_mb", int(Some(1), None), Some("200"),
        "Size in MiB at which the log file is rotated when log_rotation_type is size.")
        .from(OSLO_LOG).accepted(),
    opt(D, "log_rotation_type", choice_nocase(&["interval", "size", "none"]), Some("none"),
        "How the log file is rotated.").from(OSLO_LOG).accepted(),
    opt(D, "logging_context_format_string", Str,
        Some("%(asctime)s.%(msecs)03d %(process)d %(levelname)s %(name)s [%(global_request_id)s %(request_id)s %(user_identity)s] %(instance)s%(message)s"),
        "Format of the plain-text log records made while handling a request (not with \
         use_json), with oslo.log's %(key)s placeholders: asctime (UTC), msecs, process, \
         levelname, name, request_id, global_request_id, user_identity, message, lineno, \
         pathname, ...; an unknown key prints nothing. The default is oslo.log's, so log \
         pipelines written for OpenStack services parse aetos' lines.").from(OSLO_LOG),
    opt(D, "logging_default_format_string", Str,
        Some("%(asctime)s.%(msecs)03d %(process)d %(levelname)s %(name)s [-] %(instance)s%(message)s"),
        "Format of the plain-text log records made outside a request, with the placeholders \
         of logging_context_format_string.").from(OSLO_LOG),
    opt(D, "logging_debug_format_suffix", Str, Some("%(funcName)s %(pathname)s:%(lineno)d"),
        "Suffix appended to DEBUG records.").from(OSLO_LOG).accepted(),
    opt(D, "logging_exception_prefix", Str,
        Some("%(asctime)s.%(msecs)03d %(process)d ERROR %(name)s %(instance)s"),
        "Prefix of each line of an exception trace.").from(OSLO_LOG).accepted(),
    opt(D, "logging_user_identity_format", Str,
        Some("%(user)s %(project)s %(domain)s %(system_scope)s %(user_domain)s %(project_domain)s"),
        "Format of the user identity in logging_context_format_string.").from(OSLO_LOG).accepted(),
    opt(D, "default_log_levels", List, Some(DEFAULT_LOG_LEVELS),
        "Per-logger levels as logger=LEVEL pairs.").from(OSLO_LOG).accepted(),
    opt(D, "publish_errors", Bool, Some("false"), "Publish error events.").from(OSLO_LOG).accepted(),
    opt(D, "instance_format", Str, Some("[instance: %(uuid)s] "),
        "Format of an instance passed with a log record.").from(OSLO_LOG).accepted(),
    opt(D, "instance_uuid_format", Str, Some("[instance: %(uuid)s] "),
        "Format of an instance UUID passed with a log record.").from(OSLO_LOG).accepted(),
    opt(D, "rate_limit_interval", int(None, None), Some("0"),
        "Interval in seconds of log rate limiting; 0 disables it.").from(OSLO_LOG).accepted(),
    opt(D, "rate_limit_burst", int(None, None), Some("0"),
        "Records allowed per rate_limit_interval; 0 disables rate limiting.").from(OSLO_LOG).accepted(),
    opt(D, "rate_limit_except_level", Str, Some("CRITICAL"),
        "Records at this level or above are never rate limited.").from(OSLO_LOG).accepted(),
    opt(D, "fatal_deprecations", Bool, Some("false"), "Turn deprecation warnings into errors.")
        .from(OSLO_LOG).accepted(),
    // ----------------------------------------------------------- alertmanager
    opt("alertmanager", "url", Url, None,
        "URL of the Alertmanager API root (the one api/v2/alerts is below), with an optional \
         path prefix, for example http://127.0.0.1:9093. When set, aetos serves Alertmanager's \
         API v2 below /alertmanager (alerts, alerts/groups, silences, silence/{id}, status, \
         receivers) with Keystone authentication and project tenancy; unset (the default), \
         those routes answer 404."),
    opt("alertmanager", "timeout", float(Some(0.001), None), Some("30"),
        "Seconds to wait for the head of Alertmanager's answer, and longest gap between two \
         pieces of its body."),
    opt("alertmanager", "connect_timeout", float(Some(0.001), None), Some("5"),
        "Seconds to wait for a connection to Alertmanager."),
    opt("alertmanager", "ca_file", Str, None,
        "PEM CA bundle to verify Alertmanager's certificate with; the system CAs when unset."),
    opt("alertmanager", "username", Str, None,
        "User for HTTP basic authentication to Alertmanager (as [prometheus] username); needs \
         password."),
    opt("alertmanager", "password", Secret, None,
        "Password for HTTP basic authentication to Alertmanager; needs username."),
    opt("alertmanager", "bearer_token_file", Str, None,
        "File holding a bearer token sent to Alertmanager (as [prometheus] bearer_token_file, \
         read again when it changes). Not together with username and password."),
    // -------------------------------------------------------------------- api
    opt("api", "host", Str, Some("0.0.0.0"),
        "Address the API listens on. 0.0.0.0 listens on every IPv4 address; use :: for every \
         IPv6 (and, on Linux, IPv4) address, or a host name."),
    opt("api", "port", Port, Some("8080"), "TCP port the API listens on."),
    opt("api", "root_path", Str, Some("/prometheus"),
        "Every route is served both at the root and under this prefix, so the catalog URL \
         http://HOST/prometheus that upstream's devstack plugin registers works with or without \
         a reverse proxy stripping the prefix. Must start with '/'; an empty value serves the \
         root only."),
    opt("api", "workers", int(Some(0), None), Some("0"),
        "Number of worker threads serving requests; 0 means one per CPU."),
    opt("api", "max_request_body_size", int(Some(1), None), Some("1048576"),
        "Largest request body accepted, in bytes (form-encoded queries can be long). Larger \
         bodies are refused with 413."),
    opt("api", "max_filtered_response_bytes", int(Some(1), None), Some("67108864"),
        "Largest backend answer, in bytes after decompression, that is filtered for a \
         project-scoped caller (rules, alerts, metadata, targets/metadata). Such an answer is \
         held in memory while it is filtered (about twice its size per request); a larger one \
         is refused with 502. Privileged callers' answers are streamed and never limited."),
    opt("api", "graceful_shutdown_timeout", int(Some(0), None), Some("30"),
        "On SIGTERM, seconds to let in-flight requests finish before exiting."),
    opt("api", "client_header_timeout", float(Some(0.001), None), Some("5"),
        "Seconds a client has to send a request's head (request line and headers) once it \
         started one; a slower client gets 408 and its connection is closed."),
    opt("api", "client_body_timeout", float(Some(0.001), None), Some("30"),
        "Seconds a client has to send a whole request body, counted once the request is \
         authenticated and authorized; a body still incomplete then is answered 408 (timeout) \
         and its connection closed."),
    opt("api", "unauthenticated_passthrough", Bool, Some("false"),
        "Signing-proxy mode for a listener that only a trusted network can reach: every caller \
         is let through WITHOUT authentication or policy checks and its request is forwarded \
         unchanged (no project scoping), with only the backend credentials of [prometheus] \
         auth_method added. auth_mode and [keystone_authtoken] are then not used. aetos logs a \
         warning at start and on every request's access-log line (access=passthrough). \
         'aetos-api --prometheus-url URL' without a configuration file turns it on."),
    opt("api", "internal_listen", Str, Some(""),
        "host:port of a second, unauthenticated listener for the platform: it serves only \
         GET /metrics (aetos' own metrics), GET /-/healthy (200 while the process runs) and \
         GET /-/ready (200 when at least one backend is ready, else 503). Meant for a loopback \
         or pod-network address (127.0.0.1:9191, in Kubernetes 0.0.0.0:9191) that callers of \
         the API cannot reach. Empty: no internal listener; /-/healthy and /-/ready are \
         answered on the API port in any case."),
    opt("api", "tls_cert_file", Str, Some(""),
        "PEM certificate chain (server certificate first) for HTTPS on the API listener. \
         Empty: plain HTTP. Re-read when the file changes (certificate rotation): new \
         connections get the new certificate, established ones are not dropped. Requires \
         tls_key_file."),
    opt("api", "tls_key_file", Str, Some(""),
        "PEM private key (PKCS#8, PKCS#1 or SEC1) of tls_cert_file, re-read with it."),
    opt("api", "tls_client_ca_file", Str, Some(""),
        "PEM CA bundle for mutual TLS: every client must present a certificate issued by one \
         of these CAs, or the handshake fails (callers still need a Keystone token). Empty: \
         no client certificate is asked for. Requires tls_cert_file."),
    // ------------------------------------------------------------------ cache
    opt("cache", "enabled", Bool, Some("false"),
        "Answer query_range (and, with instant_ttl, query) from a results cache: a range is \
         split into intervals of split_interval, each answered from the cache or the backend, \
         and merged. Entries are keyed by the query as the backend is sent it (after the \
         tenancy stage), so one project's entry never answers another."),
    opt("cache", "backend", choice(&["memory", "memcached"]), Some("memory"),
        "Where entries are kept: memory (this process, bounded by max_bytes) or memcached \
         (shared by every replica; memcached_servers)."),
    opt("cache", "memcached_servers", List, None,
        "memcached servers of backend = memcached, as host:port. Empty: the servers of \
         [keystone_authtoken] memcached_servers. Entries are protected as \
         [keystone_authtoken] memcache_security_strategy says."),
    opt("cache", "memcached_timeout", float(Some(0.01), Some(10.0)), Some("0.25"),
        "Seconds one memcached operation may take; past it the entry is a miss and the server \
         is skipped for [keystone_authtoken] memcache_pool_dead_retry."),
    opt("cache", "memcached_max_item_bytes", int(Some(1024), None), Some("1048000"),
        "Largest entry stored in memcached (its -I item size limit, 1 MiB by default, less \
         room for the key); larger intervals are answered but not cached."),
    opt("cache", "max_bytes", int(Some(0), None), Some("268435456"),
        "Most bytes of answers kept by backend = memory; the least recently used go first."),
    opt("cache", "split_interval", Str, Some("24h"),
        "Length of the intervals a query_range is split into, aligned to multiples of it \
         since the epoch (seconds or a duration such as 24h)."),
    opt("cache", "freshness", Str, Some("10m"),
        "Intervals ending later than now minus this are always fetched, never cached, so that \
         recent data (late samples, rule evaluations) is live (seconds or a duration)."),
    opt("cache", "align_to_step", Bool, Some("false"),
        "Round start and end of a query_range down to a multiple of step before answering, as \
         Thanos' query-frontend does, so repeated dashboard queries share entries. The answer \
         then differs from Prometheus' for the unaligned range."),
    opt("cache", "max_parallel", int(Some(1), Some(64)), Some("4"),
        "Most intervals of one request fetched from the backend at once."),
    opt("cache", "ttl", Str, Some("7d"),
        "How long a query_range interval stays cached (seconds or a duration); bounds how long \
         an answer can outlive data the backend has since dropped (retention, deletions)."),
    opt("cache", "instant_ttl", Str, Some("0"),
        "Seconds (or a duration) an instant query with an explicit time is answered from the \
         cache; 0: instant queries are not cached. A query without time is never cached."),
    // ------------------------------------------------------------------- cors
    opt("cors", "allowed_origin", List, None,
        "Origins allowed to share responses with, as <scheme>://<host>[:<port>] with no trailing \
         slash, for example https://horizon.example.com. Unset disables CORS.").from(CORS),
    opt("cors", "allow_credentials", Bool, Some("true"),
        "Whether the actual request may include user credentials.").from(CORS),
    opt("cors", "expose_headers", List, Some(CORS_HEADERS),
        "Response headers a browser may expose to the calling page.").from(CORS),
    opt("cors", "max_age", int(Some(0), None), Some("3600"),
        "How long, in seconds, a browser may cache a preflight response.").from(CORS),
    opt("cors", "allow_methods", List, Some("GET,PUT,POST,DELETE,PATCH"),
        "Methods the actual request may use.").from(CORS),
    opt("cors", "allow_headers", List, Some(CORS_HEADERS),
        "Request headers the actual request may use.").from(CORS),
    // ------------------------------------------------------------ healthcheck
    opt("healthcheck", "path", Str, Some("/healthcheck"),
        "Upstream's path for the health check. aetos always answers at /healthcheck (and under \
         root_path).").from(HEALTH).accepted(),
    opt("healthcheck", "detailed", Bool, Some("false"),
        "Include details (the backend's state) in health check responses. This can reveal \
         information about the deployment to anyone who can reach the endpoint.").from(HEALTH),
    opt("healthcheck", "backends", List, Some(""),
        "Additional checks, among disable_by_file, disable_by_files_ports and enable_by_files.")
        .from(HEALTH),
    opt("healthcheck", "allowed_source_ranges", List, Some(""),
        "Networks allowed to query the health check.").from(HEALTH).accepted(),
    opt("healthcheck", "ignore_proxied_requests", Bool, Some("false"),
        "Ignore health check requests that carry proxy headers.").from(HEALTH).accepted(),
    opt("healthcheck", "disable_by_file_path", Str, None,
        "disable_by_file backend: report the service as unavailable while this file exists.")
        .from(HEALTH),
    opt("healthcheck", "disable_by_file_paths", List, Some(""),
        "disable_by_files_ports backend: port:path pairs; report unavailable on a port while its \
         file exists.").from(HEALTH),
    opt("healthcheck", "enable_by_file_paths", List, Some(""),
        "enable_by_files backend: report unavailable unless every listed file exists.").from(HEALTH),
    // ----------------------------------------------------- keystone_authtoken
    opt(KS, "www_authenticate_uri", Url, None,
        "Public Identity API endpoint that unauthenticated callers are sent to, in the \
         WWW-Authenticate header of 401 responses. Defaults to auth_url.")
        .aliases(&[alias(KS, "auth_uri")]).from(KSM),
    opt(KS, "auth_version", Str, None, "Identity API version; aetos always speaks v3.")
        .from(KSM).accepted(),
    opt(KS, "interface", choice(&["public", "internal", "admin", "publicURL", "internalURL", "adminURL"]),
        Some("internal"),
        "Which catalog endpoint of the Identity service is used to validate tokens. aetos \
         validates against auth_url directly, so this is not needed.").from(KSM).accepted(),
    opt(KS, "delay_auth_decision", Bool, Some("false"),
        "Let requests without a valid token through as unauthenticated and leave the decision \
         to the policy (every aetos API rule then denies them). With false, they get a 401 at \
         once.").from(KSM).accepted(),
    opt(KS, "http_connect_timeout", float(Some(0.001), None), None,
        "Timeout in seconds for requests to Keystone. Unset uses 10 seconds.").from(KSM),
    opt(KS, "http_request_max_retries", int(Some(0), None), Some("3"),
        "How many times a failed connection to Keystone is retried.").from(KSM),
    opt(KS, "cache", Str, None, "Environment key of a Swift cache (WSGI only).").from(KSM).accepted(),
    opt(KS, "certfile", Str, None,
        "PEM client certificate (with its key unless keyfile is set) for Keystone.").from(KSM),
    opt(KS, "keyfile", Str, None, "PEM private key of certfile.").from(KSM),
    opt(KS, "cafile", Str, None,
        "PEM CA bundle to verify Keystone's certificate with; the system CAs when unset.").from(KSM),
    opt(KS, "insecure", Bool, Some("false"),
        "Skip verification of Keystone's TLS certificate. Never in production.").from(KSM),
    opt(KS, "region_name", Str, None, "Region of the Identity endpoint in the catalog.").from(KSM).accepted(),
    opt(KS, "memcached_servers", List, None,
        "memcached servers (host:port) shared by every aetos replica to cache validated tokens. \
         Unset keeps the cache in the process.").aliases(&[alias(KS, "memcache_servers")]).from(KSM),
    opt(KS, "token_cache_time", int(Some(-1), None), Some("300"),
        "Seconds a validated token is cached, never beyond its expiry. -1 disables caching.").from(KSM),
    opt(KS, "memcache_security_strategy", choice_nocase(&["None", "MAC", "ENCRYPT"]), Some("None"),
        "Protection of token data in memcached: MAC authenticates it, ENCRYPT encrypts and \
         authenticates it. Both need memcache_secret_key.").from(KSM),
    opt(KS, "memcache_secret_key", Secret, None,
        "Key from which the memcached MAC and encryption keys are derived; required with \
         memcache_security_strategy MAC or ENCRYPT.").from(KSM),
    opt(KS, "memcache_pool_dead_retry", int(Some(0), None), Some("300"),
        "Seconds a memcached server that timed out or refused a connection is skipped before \
         it is tried again. Meanwhile its tokens go to the next live server, or are validated \
         with Keystone when none is left, without waiting for it.").from(KSM),
    opt(KS, "memcache_pool_maxsize", int(Some(1), None), Some("10"),
        "Most connections open to each memcached server; concurrent requests use different \
         connections.").from(KSM),
    opt(KS, "memcache_pool_socket_timeout", int(Some(1), None), Some("3"),
        "Seconds each memcached operation (connect, get, set) may take; past it the server is \
         marked dead and the token validated with Keystone. A hung memcached costs one \
         request this long, then nothing until memcache_pool_dead_retry passes.").from(KSM),
    opt(KS, "memcache_pool_unused_timeout", int(None, None), Some("60"),
        "Seconds an idle memcached connection is kept.").from(KSM).accepted(),
    opt(KS, "memcache_pool_conn_get_timeout", int(Some(0), None), Some("10"),
        "Seconds a request waits for a free connection when memcache_pool_maxsize are busy; \
         past it the cache is skipped for that request (a miss, or an unsaved entry).").from(KSM),
    opt(KS, "memcache_use_advanced_pool", Bool, Some("true"),
        "Use keystonemiddleware's eventlet-safe memcached pool.").from(KSM).accepted(),
    opt(KS, "include_service_catalog", Bool, Some("true"),
        "Ask Keystone for the service catalog when validating tokens. aetos never needs the \
         catalog and always validates with ?nocatalog.").from(KSM).accepted(),
    opt(KS, "enforce_token_bind", Str, Some("permissive"), "Token binding enforcement.")
        .from(KSM).accepted(),
    opt(KS, "service_token_roles", List, Some("service"),
        "Roles that make an X-Service-Token a service's token. A request may carry one beside \
         X-Auth-Token; it is validated like the user token (invalid: 401), and its roles, user \
         and project reach the policy as service_roles, service_user_id and \
         service_project_id.").from(KSM),
    opt(KS, "service_token_roles_required", Bool, Some("false"),
        "Refuse (401) a request whose X-Service-Token has none of service_token_roles. When \
         false, such a token is accepted with a warning, as keystonemiddleware does; its roles \
         still reach the policy only as service_roles.").from(KSM),
    opt(KS, "service_type", Str, None,
        "Service type of aetos in the catalog, used to check tokens with access rules \
         (application credentials restricted to some APIs).").from(KSM).accepted(),
    opt(KS, "memcache_sasl_enabled", Bool, Some("false"), "Authenticate to memcached with SASL.")
        .from(KSM).accepted(),
    opt(KS, "memcache_username", Str, Some(""), "SASL user name for memcached.").from(KSM).accepted(),
    opt(KS, "memcache_password", Secret, Some(""), "SASL password for memcached.").from(KSM).accepted(),
    opt(KS, "auth_type", choice(&["password", "v3password", "v3applicationcredential"]), None,
        "How the service user logs in to Keystone. Unset: v3applicationcredential when \
         application_credential_id is set, otherwise password.")
        .aliases(&[alias(KS, "auth_plugin")]).from(KSA),
    opt(KS, "auth_section", Str, None,
        "Section holding the service user's options. aetos reads them from [keystone_authtoken] \
         only.").from(KSA).accepted(),
    opt(KS, "auth_url", Url, None,
        "Identity API endpoint the service user logs in to, for example \
         http://controller/identity. Required with auth_mode = keystone.").from(KSA),
    opt(KS, "system_scope", Str, None, "Scope the service token to the system.").from(KSA).accepted(),
    opt(KS, "domain_id", Str, None, "Scope the service token to this domain.").from(KSA).accepted(),
    opt(KS, "domain_name", Str, None, "Scope the service token to this domain.").from(KSA).accepted(),
    opt(KS, "project_id", Str, None, "Project the service token is scoped to.")
        .aliases(&[alias(KS, "tenant-id"), alias(KS, "tenant_id")]).from(KSA),
    opt(KS, "project_name", Str, None,
        "Project the service token is scoped to (with project_domain_name or project_domain_id).")
        .aliases(&[alias(KS, "tenant-name"), alias(KS, "tenant_name")]).from(KSA),
    opt(KS, "project_domain_id", Str, None, "Domain of project_name.").from(KSA),
    opt(KS, "project_domain_name", Str, None, "Domain of project_name.").from(KSA),
    opt(KS, "trust_id", Str, None, "Trust to scope the service token with.").from(KSA).accepted(),
    opt(KS, "default_domain_id", Str, None,
        "Domain used for the user and the project when their own domain options are unset.").from(KSA),
    opt(KS, "default_domain_name", Str, None,
        "Domain used for the user and the project when their own domain options are unset.").from(KSA),
    opt(KS, "user_id", Str, None, "Service user, by id.").from(KSA),
    opt(KS, "username", Str, None, "Service user, by name (with user_domain_name or user_domain_id).")
        .aliases(&[alias(KS, "user-name"), alias(KS, "user_name")]).from(KSA),
    opt(KS, "user_domain_id", Str, None, "Domain of username.").from(KSA),
    opt(KS, "user_domain_name", Str, None, "Domain of username.").from(KSA),
    opt(KS, "password", Secret, None, "Service user's password.").from(KSA),
    opt(KS, "application_credential_id", Str, None,
        "Application credential the service logs in with (auth_type = v3applicationcredential).")
        .from(KSA),
    opt(KS, "application_credential_name", Str, None,
        "Application credential by name; aetos needs application_credential_id.").from(KSA).accepted(),
    opt(KS, "application_credential_secret", Secret, None, "Secret of the application credential.")
        .from(KSA),
    opt(KS, "negative_cache_time", int(Some(0), None), Some("15"),
        "Seconds an invalid token is remembered as invalid, so that a flood of bad tokens does \
         not reach Keystone; 0 disables this cache."),
    opt(KS, "token_cache_size", int(Some(1), None), Some("10000"),
        "Most validated tokens kept in the in-process cache."),
    // ----------------------------------------------------------------- limits
    opt("limits", "max_concurrent_requests_per_project", int(Some(0), None), Some("16"),
        "Most requests of one project (scoped callers) served at once; more wait in the \
         project's queue. 0: no limit. Like Cortex/Mimir's per-tenant concurrency, it keeps \
         one project's flood from taking every backend connection and worker."),
    opt("limits", "max_queued_requests_per_project", int(Some(0), None), Some("64"),
        "Most requests of one project waiting for a slot when max_concurrent_requests_per_project \
         are being served (Mimir's max_outstanding_requests_per_tenant). Past it: 429 with \
         Retry-After."),
    opt("limits", "max_queue_time", float(Some(0.0), None), Some("10"),
        "Seconds a request may wait in its project's queue before it is refused with 429."),
    opt("limits", "requests_per_second_per_project", float(Some(0.0), None), Some("0"),
        "Sustained requests per second of one project (a token bucket); over it: 429 with the \
         Retry-After the bucket needs. 0: no limit."),
    opt("limits", "request_burst_per_project", int(Some(0), None), Some("0"),
        "Requests one project may send at once above requests_per_second_per_project (the \
         bucket's size). 0: one second's worth."),
    opt("limits", "max_query_length", Str, Some("0"),
        "Longest range (end - start) of a query_range, as seconds or a duration such as 30d or \
         12h; longer ones are refused with 422 (Mimir's max_query_length). 0: no limit."),
    opt("limits", "max_query_lookback", Str, Some("0"),
        "How far into the past start (query_range, series, labels, label values) or time \
         (query) may reach, as seconds or a duration such as 90d; further is refused with 422 \
         (Mimir's max_query_lookback). A series, labels or label values request without start \
         is given start = now - max_query_lookback. 0: no limit."),
    opt("limits", "max_query_bytes", int(Some(0), Some(131072)), Some("131072"),
        "Largest PromQL query or series selectors (all of one request together), in bytes, of \
         a scoped caller; larger ones are refused with 422 before they are parsed (Mimir's \
         max_query_expression_size_bytes). At most 131072, the tenancy engine's own bound."),
    opt("limits", "max_selectors", int(Some(0), None), Some("1000"),
        "Most series selectors in one scoped request (every vector and matrix selector of the \
         queries, plus every match[]); more are refused with 422. 0: no limit."),
    opt("limits", "overrides_file", Str, None,
        "YAML file of per-project overrides of these limits and of the limits of privileged \
         callers (unlimited unless set there); see the limits page of the admin guide. Reloaded \
         when it changes and on SIGHUP; a broken file is refused at start-up and, on reload, \
         keeps the last good overrides."),
    opt("limits", "overrides_reload_interval", float(Some(0.1), None), Some("5"),
        "Seconds between checks of overrides_file for changes."),
    opt("limits", "refusal_delay", float(Some(0.0), Some(60.0)), Some("1"),
        "Seconds a 429 (concurrency or rate) is held before it is sent, at most the Retry-After \
         it carries. A client flooding on many connections then costs one refusal per \
         connection and delay instead of thousands a second, which would take the CPU other \
         projects need. At most 4096 refusals are held at once. 0 answers at once."),
    // -------------------------------------------------------- oslo_middleware
    opt("oslo_middleware", "max_request_body_size", int(None, None), Some("114688"),
        "oslo.middleware's request size limit. aetos uses [api] max_request_body_size.")
        .aliases(&[alias(D, "osapi_max_request_body_size"), alias(D, "max_request_body_size")])
        .from(MIDDLEWARE).accepted(),
    opt("oslo_middleware", "secure_proxy_ssl_header", Str, Some("X-Forwarded-Proto"),
        "Header carrying the original scheme behind a TLS-terminating proxy.").from(MIDDLEWARE).accepted(),
    opt("oslo_middleware", "enable_proxy_headers_parsing", Bool, Some("false"),
        "Trust Forwarded, X-Forwarded-Proto, X-Forwarded-Host and X-Forwarded-Prefix to build \
         links in responses. Enable only behind a proxy that sets these headers.").from(MIDDLEWARE),
    opt("oslo_middleware", "http_basic_auth_user_file", Str, Some("/etc/htpasswd"),
        "htpasswd file for oslo.middleware's basic authentication.").from(MIDDLEWARE).accepted(),
    // ------------------------------------------------------------ oslo_policy
    opt("oslo_policy", "enforce_scope", Bool, Some("true"),
        "Compare the scope of the token with the scope_types of each rule and deny on a \
         mismatch. With false, a mismatch is only logged.").from(OSLO_POLICY),
    opt("oslo_policy", "enforce_new_defaults", Bool, Some("true"),
        "Evaluate only the current default rules. With false, a deprecated default that still \
         passes also grants access.").from(OSLO_POLICY),
    opt("oslo_policy", "policy_file", Str, Some("policy.yaml"),
        "Policy overrides (YAML or JSON). A relative path is looked up next to the configuration \
         files, as oslo.config's find_file does.").aliases(&[alias(D, "policy_file")]).from(OSLO_POLICY),
    opt("oslo_policy", "policy_default_rule", Str, Some("default"),
        "Rule used for a policy name that has no rule.").aliases(&[alias(D, "policy_default_rule")])
        .from(OSLO_POLICY),
    opt("oslo_policy", "policy_dirs", MultiString, Some("policy.d"),
        "Directories of additional policy files, read in name order after policy_file. Repeat \
         the option for several directories. Relative paths are looked up like policy_file; \
         missing directories are ignored.").aliases(&[alias(D, "policy_dirs")]).from(OSLO_POLICY),
    opt("oslo_policy", "remote_content_type",
        choice(&["application/x-www-form-urlencoded", "application/json"]),
        Some("application/x-www-form-urlencoded"), "Content type for http: policy checks.")
        .from(OSLO_POLICY).accepted(),
    opt("oslo_policy", "remote_ssl_verify_server_crt", Bool, Some("false"),
        "Verify the server of http: policy checks.").from(OSLO_POLICY).accepted(),
    opt("oslo_policy", "remote_ssl_ca_crt_file", Str, None, "CA for http: policy checks.")
        .from(OSLO_POLICY).accepted(),
    opt("oslo_policy", "remote_ssl_client_crt_file", Str, None, "Client certificate for http: policy checks.")
        .from(OSLO_POLICY).accepted(),
    opt("oslo_policy", "remote_ssl_client_key_file", Str, None, "Client key for http: policy checks.")
        .from(OSLO_POLICY).accepted(),
    opt("oslo_policy", "remote_timeout", float(Some(0.0), None), Some("60"),
        "Timeout in seconds of http: policy checks.").from(OSLO_POLICY).accepted(),
    // ------------------------------------------------------------- prometheus
    opt("prometheus", "host", Str, Some("localhost"),
        "Host of the Prometheus server (a name, an IPv4 address or an IPv6 address, with or \
         without brackets). Ignored when url is set."),
    opt("prometheus", "port", Port, Some("9090"), "Port of the Prometheus server. Ignored when url is set."),
    opt("prometheus", "use_tls", Bool, Some("false"),
        "Connect to Prometheus over HTTPS. Ignored when url is set (its scheme decides)."),
    opt("prometheus", "ca_file", Str, None,
        "PEM CA bundle to verify Prometheus' certificate with; the system CAs when unset."),
    opt("prometheus", "cert_file", Str, None, "PEM client certificate for Prometheus (mutual TLS); needs key_file."),
    opt("prometheus", "key_file", Str, None, "PEM private key of cert_file."),
    opt("prometheus", "username", Str, None,
        "User for HTTP basic authentication to Prometheus; used only together with password."),
    opt("prometheus", "password", Secret, None,
        "Password for HTTP basic authentication to Prometheus; used only together with username."),
    opt("prometheus", "project_label_name", Str, Some("project"),
        "Label holding the project id on every series. Scoped callers only see series whose \
         label equals their project id."),
    opt("prometheus", "metric_rules_file", Str, None,
        "YAML file of metric access rules: per role and/or project, the series selectors \
         (metric names, __name__ regexes, label matchers) a scoped caller may read; see the \
         metric access rules page of the admin guide. Unset: every metric of the caller's \
         project. Privileged callers are not affected. Reloaded when it changes and on SIGHUP; \
         a broken file is refused at start-up and, on reload, keeps the last good rules."),
    opt("prometheus", "metric_rules_reload_interval", float(Some(0.1), None), Some("5"),
        "Seconds between checks of metric_rules_file for changes."),
    opt("prometheus", "url", Str, None,
        "Full URL of the Prometheus API root, with an optional path prefix, for example \
         https://prom.example.com:9443/prometheus. When set it replaces host, port and use_tls. \
         A discovered entry is accepted too (dns+http://NAME:PORT/PREFIX, dnssrv+http://_NAME._tcp.DOMAIN/PREFIX: \
         see urls)."),
    opt("prometheus", "timeout", float(Some(0.001), None), Some("60"),
        "Seconds to wait for the head (status and headers) of Prometheus' answer, from \
         sending the request, before answering 504. The body that follows is bounded by \
         read_timeout, not by this: an answer that keeps flowing is never cut."),
    opt("prometheus", "read_timeout", float(Some(0.001), None), Some("60"),
        "Longest time in seconds between two pieces of the body of Prometheus' answer, once \
         its head has arrived. When it expires the answer is cut and the caller's connection \
         is aborted (never ended cleanly), so the caller sees an incomplete answer, not a \
         truncated one."),
    opt("prometheus", "connect_timeout", float(Some(0.001), None), Some("5"),
        "Seconds to wait for a connection to Prometheus."),
    opt("prometheus", "urls", List, None,
        "Several equivalent backends (an HA pair of Prometheus servers, Thanos Query replicas), \
         each a full URL like url. Requests go round robin to the ready ones; an idempotent \
         request whose connection fails is retried once on another one; each is checked in the \
         background (health_check_path) and returns to service when it is ready again. When \
         set it replaces url, host, port and use_tls. Every backend uses the same TLS options \
         and auth_method. An entry may be discovered by DNS, Thanos-style: dns+http://NAME:PORT/PREFIX \
         (or dns+NAME:PORT, meaning http) is every A/AAAA address of NAME; \
         dnssrv+http://_NAME._tcp.DOMAIN/PREFIX (or dnssrv+_NAME._tcp.DOMAIN) is every \
         host:port of the SRV records. They are resolved again every dns_refresh_interval: an \
         address that appears joins the pool, one that disappears drains (requests on it \
         finish, no new ones go there); a failed or empty answer keeps the last known \
         addresses."),
    opt("prometheus", "dns_refresh_interval", float(Some(0.1), None), Some("30"),
        "Seconds between two resolutions of the dns+ and dnssrv+ entries of url and urls \
         (answers are also cached for their DNS TTL)."),
    opt("prometheus", "dns_server", Str, None,
        "Address (IP or IP:PORT) of the DNS server asked for the dns+ and dnssrv+ entries of \
         url and urls. Unset: the system's resolvers, from /etc/resolv.conf."),
    opt("prometheus", "health_check_path", Str, Some("/-/ready"),
        "Path below each backend URL that the background health check of urls asks (GET); a \
         2xx answer means ready. /-/ready for Prometheus and Thanos; Mimir serves \
         /api/v1/status/buildinfo below its prefix."),
    opt("prometheus", "health_check_interval", float(Some(0.1), None), Some("5"),
        "Seconds between background health checks of the backends of urls (not used with a \
         single configured backend without DNS discovery)."),
    opt("prometheus", "auth_method", choice(&["auto", "none", "basic", "bearer_file", "sigv4", "azure", "google"]),
        Some("auto"),
        "How requests to the backend are authenticated. 'none': nothing added. 'basic': \
         username and password. 'bearer_file': 'Authorization: Bearer' with the token read from \
         bearer_token_file (OpenShift, oauth-proxy). 'sigv4': AWS Signature Version 4 with the \
         credentials of [prometheus_aws] (Amazon Managed Service for Prometheus). 'azure': an \
         Azure AD token from [prometheus_azure] (Azure Monitor managed service for Prometheus). \
         'google': a Google OAuth token from [prometheus_google] (Google Cloud Managed Service \
         for Prometheus). \
         'auto' (upstream's behaviour): basic when username and password are set, bearer_file \
         when bearer_token_file is set, otherwise none. A client certificate (cert_file, \
         key_file) is used with any method."),
    opt("prometheus", "bearer_token_file", Str, None,
        "File holding the bearer token sent to the backend, for example a Kubernetes \
         service-account token (/var/run/secrets/kubernetes.io/serviceaccount/token). The file \
         is read again whenever it changes, so rotated tokens are picked up without a restart."),
    opt("prometheus", "tenant_header", Str, None,
        "Name of a tenant header added to every backend request, for multi-tenant engines: \
         X-Scope-OrgID (Mimir, Cortex), THANOS-TENANT (Thanos). Unset sends none. A header of \
         this name sent by the caller is never forwarded."),
    opt("prometheus", "tenant", Str, None,
        "Value of tenant_header. With tenant_per_project, the value sent for privileged \
         callers (admin, service), for example an operator tenant or a Mimir federation \
         'tenant-a|tenant-b'."),
    opt("prometheus", "tenant_per_project", Bool, Some("false"),
        "Send the project id of a scoped caller as the tenant (the engine then keeps one tenant \
         per project), and tenant for privileged callers. Project scoping of the PromQL stays on, \
         so series must still carry project_label_name."),
    // --------------------------------------------------------- prometheus_aws
    opt(AWS, "region", Str, None,
        "AWS region of the workspace, used in the signature. Unset: taken from an AMP URL \
         (aps-workspaces.<region>.amazonaws.com), then AWS_REGION, AWS_DEFAULT_REGION and the \
         profile's region."),
    opt(AWS, "service", Str, Some("aps"), "Service name in the signature (aps for Amazon Managed Service for Prometheus)."),
    opt(AWS, "credential_source",
        choice(&["auto", "static", "environment", "profile", "web_identity", "container", "instance_metadata"]),
        Some("auto"),
        "Where the base credentials come from. 'static': access_key_id and secret_access_key. \
         'environment': AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN. \
         'profile': the shared credentials and config files. 'web_identity': a web identity token \
         exchanged with STS AssumeRoleWithWebIdentity (IRSA on EKS: AWS_ROLE_ARN and \
         AWS_WEB_IDENTITY_TOKEN_FILE). 'container': the ECS task role or EKS Pod Identity \
         (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or AWS_CONTAINER_CREDENTIALS_FULL_URI, with \
         AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE or AWS_CONTAINER_AUTHORIZATION_TOKEN). \
         'instance_metadata': the EC2 instance profile, through IMDSv2 (ec2_metadata_endpoint). \
         'auto' tries them in that order and uses the first that is configured, ending with \
         instance metadata unless AWS_EC2_METADATA_DISABLED is true."),
    opt(AWS, "access_key_id", Str, None, "Static access key id (credential_source static)."),
    opt(AWS, "secret_access_key", Secret, None, "Static secret access key (credential_source static)."),
    opt(AWS, "session_token", Secret, None, "Session token of temporary static credentials."),
    opt(AWS, "profile", Str, None,
        "Profile of the shared files. Unset: AWS_PROFILE, then 'default'."),
    opt(AWS, "shared_credentials_file", Str, None,
        "Shared credentials file. Unset: AWS_SHARED_CREDENTIALS_FILE, then ~/.aws/credentials."),
    opt(AWS, "config_file", Str, None, "Shared config file. Unset: AWS_CONFIG_FILE, then ~/.aws/config."),
    opt(AWS, "web_identity_token_file", Str, None,
        "File holding the web identity (OIDC) token; read again for every exchange, since it is \
         rotated. Unset: AWS_WEB_IDENTITY_TOKEN_FILE."),
    opt(AWS, "web_identity_role_arn", Str, None,
        "Role assumed with the web identity token. Unset: AWS_ROLE_ARN."),
    opt(AWS, "assume_role_arn", Str, None,
        "After obtaining the base credentials, assume this role (STS AssumeRole), typically in \
         the account that owns the workspace (cross-account access)."),
    opt(AWS, "external_id", Str, None, "External id required by the trust policy of assume_role_arn."),
    opt(AWS, "role_session_name", Str, None,
        "Session name of the assumed roles. Unset: AWS_ROLE_SESSION_NAME, then 'aetos'."),
    opt(AWS, "role_duration", int(Some(900), Some(43200)), Some("3600"),
        "Requested lifetime of assumed-role credentials, in seconds. Credentials are cached and \
         refreshed shortly before they expire (a tenth of their lifetime, at most 5 minutes)."),
    opt(AWS, "sts_endpoint", Url, None,
        "STS endpoint. Unset: AWS_ENDPOINT_URL_STS, then the regional endpoint \
         https://sts.<region>.amazonaws.com."),
    opt(AWS, "ec2_metadata_endpoint", Url, None,
        "EC2 instance metadata service, for credential_source instance_metadata. Unset: \
         AWS_EC2_METADATA_SERVICE_ENDPOINT, then http://169.254.169.254."),
    // ------------------------------------------------------- prometheus_azure
    opt(AZ, "identity", choice(&["auto", "client_secret", "workload_identity", "managed_identity"]),
        Some("auto"),
        "How the Azure AD token is obtained. 'client_secret': an app registration's secret. \
         'workload_identity': the federated token of AKS workload identity \
         (federated_token_file). 'managed_identity': the instance metadata service (imds_endpoint). \
         'auto': client_secret when a secret is set (option or AZURE_CLIENT_SECRET), \
         workload_identity when a federated token file is set (option or \
         AZURE_FEDERATED_TOKEN_FILE), otherwise managed_identity."),
    opt(AZ, "tenant_id", Str, None, "Directory (tenant) id. Unset: AZURE_TENANT_ID."),
    opt(AZ, "client_id", Str, None,
        "Application (client) id; for managed_identity, the client id of a user-assigned \
         identity (unset: the system-assigned one). Unset: AZURE_CLIENT_ID."),
    opt(AZ, "client_secret", Secret, None, "Client secret of the app registration. Unset: AZURE_CLIENT_SECRET."),
    opt(AZ, "federated_token_file", Str, None,
        "File holding the federated (service-account) token, read again for every token \
         request. Unset: AZURE_FEDERATED_TOKEN_FILE."),
    opt(AZ, "authority_host", Url, None,
        "Azure AD authority. Unset: AZURE_AUTHORITY_HOST, then https://login.microsoftonline.com/ \
         (set it for sovereign clouds)."),
    opt(AZ, "scope", Str, Some("https://prometheus.monitor.azure.com/.default"),
        "Scope of the requested token (for managed_identity, the resource is the scope without \
         /.default)."),
    opt(AZ, "imds_endpoint", Url, Some("http://169.254.169.254/metadata/identity/oauth2/token"),
        "Token endpoint of the instance metadata service, for managed_identity."),
    // ------------------------------------------------------ prometheus_google
    opt(GCP, "identity", choice(&["auto", "service_account_key", "metadata_server"]),
        Some("auto"),
        "How the Google OAuth token is obtained. 'service_account_key': a service account's JSON \
         key (credentials_file), exchanged for a token with a signed JWT. 'metadata_server': the \
         metadata server of GCE, or of GKE with Workload Identity (metadata_endpoint). 'auto': \
         service_account_key when a key file is named (option or GOOGLE_APPLICATION_CREDENTIALS), \
         otherwise metadata_server."),
    opt(GCP, "credentials_file", Str, None,
        "Service account JSON key file. Unset: GOOGLE_APPLICATION_CREDENTIALS."),
    opt(GCP, "scope", Str, Some("https://www.googleapis.com/auth/monitoring.read"),
        "OAuth scope of the requested token."),
    opt(GCP, "metadata_endpoint", Url, None,
        "Metadata server, for metadata_server. Unset: http://$GCE_METADATA_HOST, then \
         http://metadata.google.internal."),
    opt(GCP, "service_account", Str, Some("default"),
        "Service account of the metadata server whose token is requested."),
];

/// The sections aetos knows, in sample order, without duplicates.
pub fn sections() -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for spec in OPTIONS {
        if !out.contains(&spec.section) {
            out.push(spec.section);
        }
    }
    out
}

/// The option `[section] name`, if it exists (canonical names only).
pub fn find(section: &str, name: &str) -> Option<&'static OptSpec> {
    OPTIONS
        .iter()
        .find(|o| o.section == section && o.name == name)
}

/// The option a deprecated `[section] name` stands for, if any.
pub fn find_alias(section: &str, name: &str) -> Option<&'static OptSpec> {
    OPTIONS.iter().find(|o| {
        o.aliases
            .iter()
            .any(|a| a.section == section && a.name == name)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_unique_and_grouped_by_section_in_sample_order() {
        let secs = sections();
        assert_eq!(secs[0], "DEFAULT");
        let rest: Vec<_> = secs[1..].to_vec();
        let mut sorted = rest.clone();
        sorted.sort_unstable();
        assert_eq!(rest, sorted, "sections after DEFAULT must be alphabetical");
        // Each section's options are contiguous.
        let mut seen = Vec::new();
        for w in OPTIONS.windows(2) {
            if w[0].section != w[1].section {
                assert!(!seen.contains(&w[1].section), "{} is split", w[1].section);
                seen.push(w[0].section);
            }
        }
        for (i, a) in OPTIONS.iter().enumerate() {
            for b in &OPTIONS[i + 1..] {
                assert!(
                    !(a.section == b.section && a.name == b.name),
                    "duplicate {}",
                    a.label()
                );
            }
        }
    }

    #[test]
    fn aliases_do_not_collide_with_options_or_each_other() {
        for o in OPTIONS {
            for a in o.aliases {
                assert!(
                    find(a.section, a.name).is_none(),
                    "{} alias {} is also an option",
                    o.label(),
                    a.name
                );
                let owners = OPTIONS
                    .iter()
                    .filter(|p| p.aliases.iter().any(|b| b == a))
                    .count();
                assert_eq!(
                    owners, 1,
                    "alias [{}] {} is claimed twice",
                    a.section, a.name
                );
            }
        }
    }

    #[test]
    fn section_names_are_lower_case_except_default() {
        for s in sections() {
            assert!(s == "DEFAULT" || s == s.to_lowercase(), "{s}");
        }
    }

    #[test]
    fn every_option_has_help() {
        for o in OPTIONS {
            assert!(o.help.len() > 10, "{} needs help", o.label());
        }
    }
}
