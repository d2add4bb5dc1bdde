//! `--web.config.file`: TLS, client certificates, response headers and basic auth in the
//! web configuration format of Prometheus' exporter-toolkit (its
//! docs/web-configuration.md), which Alertmanager, Prometheus and the exporters share, so
//! Alertmanager's `http_config` (`tls_config`, `basic_auth`) speaks to the bridge as to
//! any of them. Like exporter-toolkit, the file is read again when it or a file it names
//! changes (checked at most once a second, as connections arrive): rotated certificates
//! and changed users apply without a restart, and a file that no longer loads leaves
//! the last good one in force, logged. What rustls cannot do (TLS 1.0 and 1.1, suites
//! and curves outside ring's, client certificates that are requested but not verified)
//! is an error naming what can be used instead.

mod tls;
mod users;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use hyper::header::{HeaderName, HeaderValue};
use serde::Deserialize;

pub(super) use users::Users;

/// A web configuration, ready to serve with.
#[derive(Debug)]
pub(super) struct WebConfig {
    /// The TLS settings of `tls_server_config`; plain HTTP when `None`.
    pub(super) tls: Option<Arc<rustls::ServerConfig>>,
    /// `http_server_config.headers`, added to every response.
    pub(super) headers: Vec<(HeaderName, HeaderValue)>,
    /// `basic_auth_users`: when any, every request needs one of them.
    pub(super) users: Users,
    /// `basic_auth_excluded_paths`: paths served without basic auth.
    pub(super) excluded_paths: Vec<String>,
    /// What it asks of clients, for `check`.
    summary: String,
}

impl WebConfig {
    /// Whether a request for `path` needs basic auth.
    pub(super) fn needs_basic_auth(&self, path: &str) -> bool {
        !self.users.is_empty() && !self.excluded_paths.iter().any(|p| p == path)
    }
}

/// Why a web configuration cannot be used: `file: what`.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {message}")]
pub struct WebConfigError {
    file: String,
    message: String,
}

/// The file as written (exporter-toolkit's keys; unknown keys are errors, as there).
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawWebConfig {
    tls_server_config: Option<tls::RawTls>,
    http_server_config: RawHttpServer,
    basic_auth_users: BTreeMap<String, String>,
    basic_auth_excluded_paths: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct RawHttpServer {
    /// Accepted for compatibility; the bridge serves HTTP/1.1.
    http2: Option<bool>,
    headers: BTreeMap<String, String>,
}

/// The headers `http_server_config.headers` may set, with the values each accepts (none
/// listed: any).
const HEADERS: [(&str, &[&str]); 5] = [
    ("Content-Security-Policy", &[]),
    ("X-Frame-Options", &["deny", "sameorigin"]),
    ("X-Content-Type-Options", &["nosniff"]),
    ("X-XSS-Protection", &[]),
    ("Strict-Transport-Security", &[]),
];

/// Loads the web configuration in `file`; returns it with the files it read.
fn load(file: &Path) -> Result<(WebConfig, Vec<PathBuf>), WebConfigError> {
    let error = |message: String| WebConfigError {
        file: file.display().to_string(),
        message,
    };
    let text = std::fs::read_to_string(file).map_err(|e| error(format!("cannot read it: {e}")))?;
    let raw: RawWebConfig = crate::config::read_yaml(&text).map_err(error)?;
    let dir = file.parent().unwrap_or(Path::new("."));
    let mut read = vec![file.to_owned()];
    let transport = match &raw.tls_server_config {
        Some(tls) => format!("TLS (client certificates: {})", tls.client_auth_type()),
        None => "plain HTTP".to_owned(),
    };
    let tls = match raw.tls_server_config {
        Some(raw_tls) => Some(Arc::new(
            tls::server_config(raw_tls, dir, &mut read).map_err(error)?,
        )),
        None => None,
    };
    let mut headers = Vec::new();
    for (name, value) in raw.http_server_config.headers {
        let Some((known, allowed)) = HEADERS.iter().find(|(h, _)| h.eq_ignore_ascii_case(&name))
        else {
            let names: Vec<&str> = HEADERS.iter().map(|(h, _)| *h).collect();
            return Err(error(format!(
                "http_server_config.headers: {name} cannot be set (these can: {})",
                names.join(", ")
            )));
        };
        if value.is_empty() {
            continue;
        }
        if !allowed.is_empty() && !allowed.iter().any(|a| a.eq_ignore_ascii_case(&value)) {
            return Err(error(format!(
                "http_server_config.headers: {known} must be one of {}",
                allowed.join(", ")
            )));
        }
        let value = HeaderValue::from_str(&value).map_err(|_| {
            error(format!(
                "http_server_config.headers: {known}: not a header value"
            ))
        })?;
        let name = HeaderName::from_bytes(known.as_bytes()).map_err(|_| {
            error(format!(
                "http_server_config.headers: {known}: not a header name"
            ))
        })?;
        headers.push((name, value));
    }
    let users = Users::new(raw.basic_auth_users).map_err(error)?;
    let summary = format!(
        "{transport}, basic auth users: {}, paths without basic auth: {}, response headers: {}",
        users.len(),
        raw.basic_auth_excluded_paths.len(),
        headers.len(),
    );
    Ok((
        WebConfig {
            tls,
            headers,
            users,
            excluded_paths: raw.basic_auth_excluded_paths,
            summary,
        },
        read,
    ))
}

/// How often the files are looked at for changes, at most.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// The web configuration file, read again when it or a file it names changes.
#[derive(Debug)]
pub struct WebConfigFile {
    file: PathBuf,
    state: Mutex<Watched>,
}

#[derive(Debug)]
struct Watched {
    config: Arc<WebConfig>,
    /// The files read for it, with their modification times then.
    stamps: Vec<(PathBuf, Option<SystemTime>)>,
    checked: Instant,
}

fn stamps(files: Vec<PathBuf>) -> Vec<(PathBuf, Option<SystemTime>)> {
    files
        .into_iter()
        .map(|file| {
            let modified = std::fs::metadata(&file).and_then(|m| m.modified()).ok();
            (file, modified)
        })
        .collect()
}

impl WebConfigFile {
    /// Loads `file`; an error here stops the start.
    pub fn load(file: &Path) -> Result<Self, WebConfigError> {
        let (config, read) = load(file)?;
        Ok(WebConfigFile {
            file: file.to_owned(),
            state: Mutex::new(Watched {
                config: Arc::new(config),
                stamps: stamps(read),
                checked: Instant::now(),
            }),
        })
    }

    /// What the configuration in force asks of clients, e.g. `TLS (client certificates:
    /// RequireAndVerifyClientCert), basic auth users: 2, paths without basic auth: 1,
    /// response headers: 0`.
    pub fn summary(&self) -> String {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.config.summary.clone()
    }

    /// The configuration in force, read again first if a file of it changed since it was
    /// last looked at (at most once a second).
    pub(super) fn current(&self) -> Arc<WebConfig> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if state.checked.elapsed() < CHECK_EVERY {
            return state.config.clone();
        }
        state.checked = Instant::now();
        let files: Vec<PathBuf> = state.stamps.iter().map(|(f, _)| f.clone()).collect();
        let now = stamps(files);
        if now == state.stamps {
            return state.config.clone();
        }
        match load(&self.file) {
            Ok((config, read)) => {
                tracing::info!(message = "Web configuration reloaded.", file = %self.file.display());
                state.config = Arc::new(config);
                state.stamps = stamps(read);
            }
            Err(error) => {
                tracing::error!(
                    message = "Web configuration reload failed; the last good one stays in force.",
                    %error,
                );
                // Not read again until a file changes once more.
                state.stamps = now;
            }
        }
        state.config.clone()
    }
}
