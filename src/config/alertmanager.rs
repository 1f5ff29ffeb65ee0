//! `[alertmanager]`: the optional Alertmanager behind the
//! `/alertmanager/api/v2/…` routes — where it is, its timeouts and how
//! requests to it are authenticated. Off (the routes answer 404) while
//! `url` is unset. Authentication takes the shapes of `[prometheus]`'s
//! `basic` and `bearer_file` methods, with their option names.

use url::Url;

use super::resolve::Resolver;
use super::{check_readable, BackendAuthConfig, ConfigError, Secret, Warning};

const S: &str = "alertmanager";

/// `[alertmanager]`.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertmanagerSection {
    /// Base URL of Alertmanager's API root (`…/api/v2` is below it); `None`: off.
    pub url: Option<Url>,
    /// Seconds: the head of an answer, and each gap in its body.
    pub timeout: f64,
    /// Seconds.
    pub connect_timeout: f64,
    pub ca_file: Option<String>,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub bearer_token_file: Option<String>,
}

pub(super) fn build_alertmanager(r: &mut Resolver<'_>) -> Result<AlertmanagerSection, ConfigError> {
    let url = r.url(S, "url")?;
    if let Some(u) = &url {
        if !u.username().is_empty() || u.password().is_some() {
            return Err(ConfigError::new(
                S,
                "url",
                "must not contain credentials; use the username and password options",
            ));
        }
        if u.query().is_some() || u.fragment().is_some() {
            return Err(ConfigError::new(
                S,
                "url",
                format!(
                    "invalid value {:?}: no query or fragment allowed",
                    u.as_str()
                ),
            ));
        }
    }
    Ok(AlertmanagerSection {
        url,
        timeout: r.float(S, "timeout")?,
        connect_timeout: r.float(S, "connect_timeout")?,
        ca_file: r.opt_string(S, "ca_file")?,
        username: r.opt_string(S, "username")?,
        password: r.secret(S, "password")?,
        bearer_token_file: r.opt_string(S, "bearer_token_file")?,
    })
}

impl AlertmanagerSection {
    /// The base URL, ending in `/`, when Alertmanager is configured.
    pub fn base_url(&self) -> Option<Url> {
        self.url.clone().map(|mut u| {
            if !u.path().ends_with('/') {
                let path = format!("{}/", u.path());
                u.set_path(&path);
            }
            u
        })
    }

    /// How requests to Alertmanager are authenticated, checked: basic when
    /// username and password are set, bearer_file when bearer_token_file
    /// is, none otherwise; both at once is refused.
    pub(super) fn auth(
        &self,
        warnings: &mut Vec<Warning>,
    ) -> Result<BackendAuthConfig, ConfigError> {
        if self.url.is_none() {
            let set = [
                ("username", self.username.is_some()),
                ("password", self.password.is_some()),
                ("bearer_token_file", self.bearer_token_file.is_some()),
                ("ca_file", self.ca_file.is_some()),
            ];
            for (option, _) in set.iter().filter(|(_, set)| *set) {
                warnings.push(Warning(format!(
                    "[{S}] {option}: ignored because url is not set (Alertmanager is off)"
                )));
            }
            return Ok(BackendAuthConfig::None);
        }
        if let Some(path) = &self.ca_file {
            check_readable(S, "ca_file", path)?;
        }
        match (&self.username, &self.password, &self.bearer_token_file) {
            (Some(_), Some(_), Some(_)) => Err(ConfigError::new(
                S,
                "bearer_token_file",
                "set together with username and password; choose one",
            )),
            (Some(username), Some(password), None) => Ok(BackendAuthConfig::Basic {
                username: username.clone(),
                password: password.clone(),
            }),
            (Some(_), None, _) => Err(ConfigError::new(S, "password", "required with username")),
            (None, Some(_), _) => Err(ConfigError::new(S, "username", "required with password")),
            (None, None, Some(path)) => {
                check_readable(S, "bearer_token_file", path)?;
                Ok(BackendAuthConfig::BearerFile { path: path.clone() })
            }
            (None, None, None) => Ok(BackendAuthConfig::None),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{self, BackendAuthConfig};
    use crate::test_support::TempDir;

    fn load(text: &str) -> Result<config::Config, String> {
        let dir = TempDir::new("am-config");
        let f = dir.write(
            "aetos.conf",
            &format!("[DEFAULT]\nauth_mode = noauth\n{text}"),
        );
        config::load(&[f], &[])
            .map(|(c, _)| c)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn alertmanager_is_off_by_default() {
        let c = load("").unwrap();
        assert_eq!(c.alertmanager.base_url(), None);
        assert_eq!(c.alertmanager_auth, BackendAuthConfig::None);
    }

    #[test]
    fn basic_and_bearer_follow_the_prometheus_shapes() {
        let c =
            load("[alertmanager]\nurl = http://am:9093/am\nusername = u\npassword = p\n").unwrap();
        assert_eq!(
            c.alertmanager.base_url().unwrap().as_str(),
            "http://am:9093/am/"
        );
        assert!(
            matches!(c.alertmanager_auth, BackendAuthConfig::Basic { ref username, .. } if username == "u")
        );
        let dir = TempDir::new("am-token");
        let token = dir.write("token", "t");
        let c = load(&format!(
            "[alertmanager]\nurl = http://am:9093\nbearer_token_file = {}\n",
            token.display()
        ))
        .unwrap();
        assert!(matches!(
            c.alertmanager_auth,
            BackendAuthConfig::BearerFile { .. }
        ));
    }

    #[test]
    fn bad_alertmanager_settings_name_the_option() {
        for (text, want) in [
            (
                "url = http://u:p@am:9093",
                "[alertmanager] url: must not contain credentials",
            ),
            (
                "url = http://am:9093/?x=1",
                "[alertmanager] url: invalid value",
            ),
            ("url = ftp://am", "[alertmanager] url: malformed URL"),
            (
                "url = http://am\nusername = u",
                "[alertmanager] password: required with username",
            ),
            (
                "url = http://am\npassword = p",
                "[alertmanager] username: required with password",
            ),
            (
                "url = http://am\nbearer_token_file = /nonexistent/token",
                "[alertmanager] bearer_token_file: cannot read /nonexistent/token",
            ),
            (
                "url = http://am\nusername = u\npassword = p\nbearer_token_file = /t",
                "[alertmanager] bearer_token_file: set together with username and password",
            ),
        ] {
            let e = load(&format!("[alertmanager]\n{text}\n")).unwrap_err();
            assert!(e.starts_with(want), "{text}: {e}");
            assert!(!e.contains("=p") && !e.contains("u:p@"), "{e}");
        }
    }
}
