//! `[DEFAULT]`: how callers are authenticated, and logging.

use std::path::{Path, PathBuf};

use super::resolve::{self, Resolver};
use super::ConfigError;

/// How callers are authenticated (`[DEFAULT] auth_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// Validate X-Auth-Token with Keystone.
    Keystone,
    /// Trust X-User-Id / X-Project-Id / X-Roles (test environments only).
    Noauth,
}

/// `[DEFAULT]`: authentication mode and logging.
#[derive(Debug, Clone, PartialEq)]
pub struct DefaultSection {
    pub auth_mode: AuthMode,
    pub debug: bool,
    pub log_file: Option<String>,
    pub log_dir: Option<String>,
    pub use_json: bool,
    pub use_stderr: bool,
    /// oslo.log's format of plain-text records made within a request.
    pub logging_context_format_string: String,
    /// … and outside one.
    pub logging_default_format_string: String,
}

impl DefaultSection {
    /// The log file path, combined from `log_file` and `log_dir` the way
    /// oslo.log does (`<log_dir>/aetos-api.log` when only `log_dir` is set);
    /// `None` logs to standard output (or standard error with `use_stderr`).
    pub fn log_path(&self) -> Option<PathBuf> {
        match (&self.log_file, &self.log_dir) {
            (Some(file), Some(dir)) => Some(Path::new(dir).join(file)),
            (Some(file), None) => Some(PathBuf::from(file)),
            (None, Some(dir)) => Some(Path::new(dir).join("aetos-api.log")),
            (None, None) => None,
        }
    }
}

pub(super) fn build_default(r: &mut Resolver<'_>) -> Result<DefaultSection, ConfigError> {
    let auth_mode = match r.typed("DEFAULT", "auth_mode")?.0 {
        resolve::Typed::Str(s) if s == "noauth" => AuthMode::Noauth,
        resolve::Typed::Str(s) if s == "keystone" => AuthMode::Keystone,
        _ => {
            return Err(ConfigError::new(
                "DEFAULT",
                "auth_mode",
                "expected keystone or noauth",
            ))
        }
    };
    Ok(DefaultSection {
        auth_mode,
        debug: r.bool("DEFAULT", "debug")?,
        log_file: r.opt_string("DEFAULT", "log_file")?,
        log_dir: r.opt_string("DEFAULT", "log_dir")?,
        use_json: r.bool("DEFAULT", "use_json")?,
        use_stderr: r.bool("DEFAULT", "use_stderr")?,
        logging_context_format_string: r.string("DEFAULT", "logging_context_format_string")?,
        logging_default_format_string: r.string("DEFAULT", "logging_default_format_string")?,
    })
}
