//! `aetos-api`: the service and its operator tools.
//!
//! `aetos-api [--config-file F]… [--config-dir D]…` serves; the subcommands
//! print the sample config and policy, check a config, or tell which policy
//! rules pass for given credentials.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use aetos::{app, config, policy};

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

fn config_files(cli: &Cli) -> Vec<PathBuf> {
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
    match cli.command.unwrap_or(Command::Serve) {
        Command::Genconfig => {
            print!("{}", config::sample_config());
            ExitCode::SUCCESS
        }
        Command::Genpolicy { effective: false } => {
            print!("{}", policy::sample_policy());
            ExitCode::SUCCESS
        }
        Command::Genpolicy { effective: true } => match app::load(&files, &cli.config_dir) {
            Ok(loaded) => {
                print!("{}", policy::effective_policy(&loaded.enforcer));
                ExitCode::SUCCESS
            }
            Err(e) => fail(e),
        },
        Command::CheckConfig => match app::load(&files, &cli.config_dir) {
            Ok(loaded) => {
                for w in &loaded.warnings {
                    println!("warning: {}", w.0);
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
        },
        Command::PolicyCheck { credentials } => {
            let loaded = match app::load(&files, &cli.config_dir) {
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
            let loaded = match app::load(&files, &cli.config_dir) {
                Ok(l) => l,
                Err(e) => return fail(e),
            };
            match app::serve(loaded) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(e),
            }
        }
    }
}
