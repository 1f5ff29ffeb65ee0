//! Logging setup: tracing, human-readable by default, JSON with
//! `[DEFAULT] use_json = true`, `debug` honoured, to stderr or
//! `log_file` / `log_dir`.

use std::path::PathBuf;
use std::sync::Mutex;

use tracing_subscriber::EnvFilter;

/// What oslo.log's options say about where and how to log.
#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    pub debug: bool,
    pub use_json: bool,
    /// Full path of the log file, if any.
    pub log_file: Option<PathBuf>,
    /// A `tracing` filter that overrides `debug` (e.g. from `--log-level`).
    pub level: Option<String>,
}

/// Installs the global subscriber. `AETOS_LOG` (a tracing filter) overrides
/// the level chosen by the options. Returns an error message when the log
/// file cannot be opened.
pub fn init_logging(opts: &LogOptions) -> Result<(), String> {
    let default = opts
        .level
        .clone()
        .unwrap_or_else(|| if opts.debug { "debug" } else { "info" }.to_owned());
    // Dependencies are chatty at debug; keep them at warn unless asked.
    let directives = format!("warn,aetos={default},aetos_api={default}");
    let filter =
        EnvFilter::try_from_env("AETOS_LOG").unwrap_or_else(|_| EnvFilter::new(directives));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    let result = match (&opts.log_file, opts.use_json) {
        (Some(path), json) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| format!("[DEFAULT] log_file: cannot open {}: {e}", path.display()))?;
            let b = builder.with_ansi(false).with_writer(Mutex::new(file));
            if json {
                b.json().try_init()
            } else {
                b.try_init()
            }
        }
        (None, true) => builder.json().with_writer(std::io::stderr).try_init(),
        (None, false) => builder.with_writer(std::io::stderr).try_init(),
    };
    result.map_err(|e| format!("cannot install the logger: {e}"))
}
