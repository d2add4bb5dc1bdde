//! Validation of what acting on alerts needs: `external_url` (how people's browsers reach
//! the bridge), `alertmanager:` (its API v2 and the auth of Alertmanager's own
//! `http_config`) and `actions:` (the key that signs links, their lifetime, the silence
//! durations offered). Nothing here connects or reads more than the files named.

use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use super::Path;
use super::checker::Checker;
use super::raw::{RawActions, RawAlertmanager, RawAuthorization, RawBasicAuth};
use super::values::{duration, http_url};
use crate::dingtalk::Secret;

/// The fewest bytes of key a link signature may use: 256 bits, HMAC-SHA256's own strength.
pub const MIN_KEY_BYTES: usize = 32;

/// `actions:`, with what it needs: links in messages that silence or acknowledge a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionsConfig {
    /// How people's browsers reach the bridge: links are this plus `/act/…`.
    pub external_url: Url,
    /// The HMAC key that signs links; the same on every replica.
    pub key: Secret,
    /// How long a link works after its message was rendered.
    pub link_ttl: Duration,
    /// The silences a message offers, shortest first.
    pub silence_durations: Vec<Duration>,
    /// Where silences are made.
    pub alertmanager: AlertmanagerConfig,
}

/// `alertmanager:`: the Alertmanagers whose API v2 the bridge calls, tried in order, with
/// the parts of Alertmanager's `http_config` that say how to reach them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertmanagerConfig {
    /// Base URLs, such as `http://alertmanager-0:9093`.
    pub urls: Vec<Url>,
    /// `Authorization` header to send, if any.
    pub authorization: Option<Authorization>,
    /// The CA that signs the Alertmanagers' certificates, if not a public one.
    pub ca_file: Option<PathBuf>,
    /// A client certificate and its key, for Alertmanagers that ask for one.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// Longest wait for one call.
    pub timeout: Duration,
}

/// An `Authorization` header: basic auth, or a scheme and its credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authorization {
    /// `basic_auth`: user and password.
    Basic {
        /// The user name.
        username: String,
        /// The password.
        password: Secret,
    },
    /// `authorization`: `type` (default `Bearer`) and credentials.
    Scheme {
        /// `Bearer`, or what `type` says.
        scheme: String,
        /// The credentials.
        credentials: Secret,
    },
}

impl Checker {
    /// `external_url`, `alertmanager:` and `actions:` together: `Some(None)` without
    /// `actions:` (messages carry no action links).
    pub(super) fn actions(
        &mut self,
        top: &Path,
        external_url: Option<String>,
        alertmanager: Option<Option<AlertmanagerConfig>>,
        actions: Option<RawActions>,
    ) -> Option<Option<ActionsConfig>> {
        let at = top.key("actions");
        if actions.is_some() && external_url.is_none() {
            self.error(
                &at,
                "actions need `external_url`: the address people's browsers reach the bridge at, for the links",
            );
        }
        if actions.is_some() && alertmanager.is_none() {
            self.error(
                &at,
                "actions need `alertmanager.urls`: at least one Alertmanager to make silences in",
            );
        }
        let external = top.key("external_url");
        let external_url = external_url.and_then(|text| self.check(&external, http_url(&text)));
        let alertmanager = alertmanager.flatten();
        let Some(raw) = actions else {
            return Some(None);
        };
        let given = (raw.key, raw.key_file);
        let key = match self.inline_or_file(&at, "actions", "key", given) {
            Some((key_at, key)) if key.len() < MIN_KEY_BYTES => {
                self.error(
                    &key_at,
                    format!(
                        "the actions key has {} bytes; it needs at least {MIN_KEY_BYTES} (for example `openssl rand -hex 32`)",
                        key.len()
                    ),
                );
                None
            }
            Some((_, key)) => Some(Secret::new(key)),
            None => {
                self.error(
                    &at,
                    "actions need `key` or `key_file`: the key that signs links",
                );
                None
            }
        };
        let link_ttl =
            self.positive_duration(&at.key("link_ttl"), raw.link_ttl.as_deref().unwrap_or("7d"));
        let silence_durations =
            self.silence_durations(&at.key("silence_durations"), raw.silence_durations);
        Some(Some(ActionsConfig {
            external_url: external_url?,
            key: key?,
            link_ttl: link_ttl?,
            silence_durations: silence_durations?,
            alertmanager: alertmanager?,
        }))
    }

    fn silence_durations(&mut self, at: &Path, raw: Option<Vec<String>>) -> Option<Vec<Duration>> {
        let texts = raw.unwrap_or_else(|| ["1h", "4h", "1d"].map(str::to_owned).to_vec());
        let mut durations = Vec::new();
        for (index, text) in texts.iter().enumerate() {
            let item = at.index(index);
            match self.check(&item, duration(text)) {
                Some(d) if d < Duration::from_secs(60) => {
                    self.error(&item, "a silence must last at least a minute");
                }
                Some(d) if durations.contains(&d) => {
                    self.error(&item, format!("{text} is offered twice"));
                }
                Some(d) => durations.push(d),
                None => {}
            }
        }
        if texts.is_empty() {
            self.error(at, "actions.silence_durations needs at least one duration");
        }
        durations.sort_unstable();
        (durations.len() == texts.len() && !texts.is_empty()).then_some(durations)
    }

    /// `alertmanager:`, which actions and commands act through.
    pub(super) fn alertmanager(
        &mut self,
        at: &Path,
        raw: RawAlertmanager,
    ) -> Option<AlertmanagerConfig> {
        let mut urls = Vec::new();
        for (index, text) in raw.urls.iter().enumerate() {
            if let Some(url) = self.check(&at.key("urls").index(index), http_url(text)) {
                urls.push(url);
            }
        }
        if raw.urls.is_empty() {
            self.error(at, "alertmanager needs at least one URL in `urls`");
        }
        let authorization = self.authorization(at, raw.basic_auth, raw.authorization);
        let tls = raw.tls_config.unwrap_or_default();
        let tls_at = at.key("tls_config");
        let ca_file = tls
            .ca_file
            .map(|file| self.existing_file(&tls_at.key("ca_file"), &file));
        let client_cert = match (tls.cert_file, tls.key_file) {
            (Some(cert), Some(key)) => Some((
                self.existing_file(&tls_at.key("cert_file"), &cert),
                self.existing_file(&tls_at.key("key_file"), &key),
            )),
            (None, None) => None,
            _ => {
                self.error(
                    &tls_at,
                    "tls_config needs both `cert_file` and `key_file`, or neither",
                );
                None
            }
        };
        let timeout =
            self.positive_duration(&at.key("timeout"), raw.timeout.as_deref().unwrap_or("10s"));
        (urls.len() == raw.urls.len() && !urls.is_empty()).then_some(())?;
        Some(AlertmanagerConfig {
            urls,
            authorization: authorization?,
            ca_file,
            client_cert,
            timeout: timeout?,
        })
    }

    /// `basic_auth` or `authorization`, as Alertmanager's `http_config` has them; `Some(None)`
    /// when neither is given.
    fn authorization(
        &mut self,
        at: &Path,
        basic: Option<RawBasicAuth>,
        authorization: Option<RawAuthorization>,
    ) -> Option<Option<Authorization>> {
        match (basic, authorization) {
            (None, None) => Some(None),
            (Some(_), Some(_)) => {
                self.error(
                    at,
                    "alertmanager has both `basic_auth` and `authorization`; keep one",
                );
                None
            }
            (Some(basic), None) => {
                let basic_at = at.key("basic_auth");
                let given = (basic.password, basic.password_file);
                let password = self
                    .inline_or_file(&basic_at, "basic_auth", "password", given)
                    .map_or_else(String::new, |(_, password)| password);
                if basic.username.is_empty() {
                    self.error(&basic_at, "basic_auth needs a `username`");
                    return None;
                }
                Some(Some(Authorization::Basic {
                    username: basic.username,
                    password: Secret::new(password),
                }))
            }
            (None, Some(raw)) => {
                let auth_at = at.key("authorization");
                let given = (raw.credentials, raw.credentials_file);
                let Some((_, credentials)) =
                    self.inline_or_file(&auth_at, "authorization", "credentials", given)
                else {
                    self.error(
                        &auth_at,
                        "authorization needs `credentials` or `credentials_file`",
                    );
                    return None;
                };
                Some(Some(Authorization::Scheme {
                    scheme: raw.r#type.unwrap_or_else(|| "Bearer".to_owned()),
                    credentials: Secret::new(credentials),
                }))
            }
        }
    }

    /// `file` resolved against the config's directory; an error at `at` if it cannot be
    /// read.
    fn existing_file(&mut self, at: &Path, file: &str) -> PathBuf {
        let path = self.resolve(file);
        if let Err(error) = std::fs::metadata(&path) {
            self.error(at, format!("cannot read {}: {error}", path.display()));
        }
        path
    }
}
