//! `aetos-api`: the service and its operator tools.
//!
//! `aetos-api [--config-file F]… [--config-dir D]…` serves; the subcommands
//! print the sample config and policy, check a config, or tell which policy
//! rules pass for given credentials.
//!
//! The signing-proxy flags (`--prometheus-url`, `--port`, `--log-level`,
//! `--azure-*`) override the matching options. `--prometheus-url` without
//! any `--config-file`/`--config-dir` is the in-cluster signing proxy,
//! started exactly as that proxy's users start it: no file is read, callers
//! are not authenticated (`[api] unauthenticated_passthrough`), requests are
//! forwarded unchanged and signed for Azure when `--azure-*` flags are given.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use aetos::{app, config, policy};

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(
    name = "aetos-api",
    version,
    about = "Keystone-authenticated, multi-tenant front door to Prometheus"
)]
struct Cli {
    /// Configuration file (repeatable; later files win). Default: the first
    /// aetos.conf found in ~/.aetos, ~, /etc/aetos, /etc (as oslo.config).
    #[arg(long = "config-file", global = true)]
    config_file: Vec<PathBuf>,
    /// Directory of `*.conf` files read after the files (repeatable).
    #[arg(long = "config-dir", global = true)]
    config_dir: Vec<PathBuf>,
    /// Backend URL ([prometheus] url). Without --config-file/--config-dir
    /// this is the signing-proxy mode: no configuration file is read,
    /// callers are NOT authenticated and requests are forwarded unchanged,
    /// with the --azure-* credentials when given.
    #[arg(long = "prometheus-url", global = true, value_name = "URL")]
    prometheus_url: Option<String>,
    /// Port to listen on ([api] port).
    #[arg(long, global = true, value_name = "PORT")]
    port: Option<u16>,
    /// Log level: trace, debug, info, warn or error (overrides [DEFAULT] debug).
    #[arg(long = "log-level", global = true, value_name = "LEVEL", value_parser = ["trace", "debug", "info", "warn", "warning", "error"])]
    log_level: Option<String>,
    /// Azure AD tenant ([prometheus_azure] tenant_id); implies auth_method = azure.
    #[arg(long = "azure-tenant-id", global = true, value_name = "TENANT")]
    azure_tenant_id: Option<String>,
    /// Azure client id ([prometheus_azure] client_id); implies auth_method = azure.
    #[arg(long = "azure-client-id", global = true, value_name = "CLIENT")]
    azure_client_id: Option<String>,
    /// Azure client secret ([prometheus_azure] client_secret). Visible to
    /// other local users in the process list: prefer AZURE_CLIENT_SECRET.
    /// Without it: workload identity, else managed identity.
    #[arg(long = "azure-client-secret", global = true, value_name = "SECRET")]
    azure_client_secret: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the service (the default).
    Serve,
    /// Print the sample configuration file (etc/aetos/aetos.conf.sample).
    Genconfig,
    /// Print the sample policy file (etc/aetos/policy.yaml.sample).
    Genpolicy {
        /// Print the policy in force instead: the defaults merged with the
        /// policy files named by the configuration.
        #[arg(long)]
        effective: bool,
    },
    /// Validate the configuration and its policy files; exit non-zero
    /// naming the section and option at fault.
    CheckConfig,
    /// Evaluate every rule for credentials or a Keystone token body (JSON
    /// file, `-` for stdin) and print which pass.
    PolicyCheck {
        /// Path to the JSON credentials or `{"token": {...}}` body.
        #[arg(long)]
        credentials: PathBuf,
    },
}

/// Whether this is a flag-only signing-proxy start: `--prometheus-url`
/// and no configuration file or directory named.
fn signing_proxy_mode(cli: &Cli) -> bool {
    cli.prometheus_url.is_some() && cli.config_file.is_empty() && cli.config_dir.is_empty()
}

/// The options the flags set, read after every file.
fn overrides(cli: &Cli) -> Vec<config::Override> {
    let mut o: Vec<config::Override> = Vec::new();
    if let Some(u) = &cli.prometheus_url {
        o.push(("prometheus", "url", u.clone()));
    }
    if let Some(p) = cli.port {
        o.push(("api", "port", p.to_string()));
    }
    let azure = [
        ("tenant_id", &cli.azure_tenant_id),
        ("client_id", &cli.azure_client_id),
        ("client_secret", &cli.azure_client_secret),
    ];
    if azure.iter().any(|(_, v)| v.is_some()) {
        o.push(("prometheus", "auth_method", "azure".to_owned()));
        for (name, value) in azure {
            if let Some(v) = value {
                o.push(("prometheus_azure", name, v.clone()));
            }
        }
    }
    if signing_proxy_mode(cli) {
        o.push(("api", "unauthenticated_passthrough", "true".to_owned()));
    }
    o
}

fn config_files(cli: &Cli) -> Vec<PathBuf> {
    if signing_proxy_mode(cli) {
        // The flags are the whole configuration: no default file is read.
        return Vec::new();
    }
    if cli.config_file.is_empty() && cli.config_dir.is_empty() {
        // oslo.config's search: ~/.aetos, ~, /etc/aetos, /etc.
        return config::default_config_files();
    }
    cli.config_file.clone()
}

fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("aetos-api: {msg}");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let files = config_files(&cli);
    let overrides = overrides(&cli);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Genconfig => {
            print!("{}", config::sample_config());
            ExitCode::SUCCESS
        }
        Command::Genpolicy { effective: false } => {
            print!("{}", policy::sample_policy());
            ExitCode::SUCCESS
        }
        Command::Genpolicy { effective: true } => {
            match app::load_with_overrides(&files, &cli.config_dir, &overrides) {
                Ok(loaded) => {
                    print!("{}", policy::effective_policy(&loaded.enforcer));
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
        Command::CheckConfig => {
            match app::load_with_overrides(&files, &cli.config_dir, &overrides)
                .and_then(|loaded| app::check_backend(&loaded).map(|()| loaded))
            {
                Ok(loaded) => {
                    for w in &loaded.warnings {
                        println!("warning: {}", w.0);
                    }
                    for e in &loaded.config.from_environment {
                        println!("from the environment: {e}");
                    }
                    let broken = loaded.enforcer.broken_rules();
                    for (rule, why) in &broken {
                        eprintln!("aetos-api: [oslo_policy] policy_file: rule {rule:?} denies everything: {why}");
                    }
                    if !broken.is_empty() {
                        return ExitCode::from(2);
                    }
                    println!("configuration OK");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
        Command::PolicyCheck { credentials } => {
            let loaded = match app::load_with_overrides(&files, &cli.config_dir, &overrides) {
                Ok(l) => l,
                Err(e) => return fail(e),
            };
            let text = if credentials.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin()).map_err(|e| e.to_string())
            } else {
                std::fs::read_to_string(&credentials)
                    .map_err(|e| format!("{}: {e}", credentials.display()))
            };
            let value: serde_json::Value =
                match text.and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string())) {
                    Ok(v) => v,
                    Err(e) => return fail(format!("credentials: {e}")),
                };
            for (rule, passed) in policy::check_all(&loaded.enforcer, &value) {
                println!("{} {rule}", if passed { "passed:" } else { "failed:" });
            }
            ExitCode::SUCCESS
        }
        Command::Serve => {
            let mut loaded = match app::load_with_overrides(&files, &cli.config_dir, &overrides) {
                Ok(l) => l,
                Err(e) => return fail(e),
            };
            loaded.log_level = cli.log_level.map(|l| match l.as_str() {
                "warning" => "warn".to_owned(),
                _ => l,
            });
            match app::serve(loaded) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(e),
            }
        }
    }
}
