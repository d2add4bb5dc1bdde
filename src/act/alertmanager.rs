//! The one small client of Alertmanager's API v2 the bridge has: the silences and alerts of
//! a group, making and expiring a silence. Each call tries the configured Alertmanagers in
//! order until one answers; an Alertmanager that cannot be reached or answers 5xx is
//! passed over, a 4xx answer is final (the others would say the same). Paths and fields as
//! in Alertmanager's `api/v2/openapi.yaml` (github.com/prometheus/alertmanager):
//! `GET /api/v2/silences`, `POST /api/v2/silences` (`postableSilence`, answered with a
//! `silenceID`), `GET` and `DELETE /api/v2/silence/{silenceID}`, `GET /api/v2/alerts`,
//! each list filtered by `filter` matchers, and `GET /api/v2/alerts/groups`.

use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::config::{AlertmanagerConfig, Authorization};

/// A silence as Alertmanager lists it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Silence {
    /// Its id.
    pub id: String,
    /// What it matches.
    pub matchers: Vec<Matcher>,
    /// Until when.
    pub ends_at: Timestamp,
    /// Who made it.
    pub created_by: String,
    /// Why.
    pub comment: String,
    /// `active`, `pending` or `expired`.
    pub status: SilenceStatus,
}

/// The state of a silence.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct SilenceStatus {
    /// `active`, `pending` or `expired`.
    pub state: String,
}

/// One matcher of a silence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Matcher {
    /// The label.
    pub name: String,
    /// The value.
    pub value: String,
    /// Whether `value` is a regex.
    pub is_regex: bool,
    /// Whether the label must equal (rather than differ from) the value.
    #[serde(default = "equal")]
    pub is_equal: bool,
}

fn equal() -> bool {
    true
}

impl Matcher {
    /// `name="value"`.
    pub fn equal(name: &str, value: &str) -> Self {
        Matcher {
            name: name.to_owned(),
            value: value.to_owned(),
            is_regex: false,
            is_equal: true,
        }
    }
}

/// An alert as Alertmanager lists it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    /// Its labels.
    pub labels: std::collections::BTreeMap<String, String>,
    /// Its annotations.
    #[serde(default)]
    pub annotations: std::collections::BTreeMap<String, String>,
    /// Since when it fires.
    pub starts_at: Timestamp,
    /// Whether it is silenced or inhibited (`suppressed`) or not (`active`).
    #[serde(default)]
    pub status: AlertStatus,
}

/// The `status` of an alert.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertStatus {
    /// `active`, `suppressed` or `unprocessed`.
    #[serde(default)]
    pub state: String,
    /// The silences that silence it.
    #[serde(default)]
    pub silenced_by: Vec<String>,
}

/// An alert group as Alertmanager's dispatcher has it: one receiver's alerts with the same
/// values of the route's `group_by` labels.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct AlertGroup {
    /// The values of the `group_by` labels.
    pub labels: std::collections::BTreeMap<String, String>,
    /// The receiver.
    pub receiver: Receiver,
    /// Its alerts that have not resolved.
    pub alerts: Vec<Alert>,
}

/// A receiver, by name.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Receiver {
    /// Its name.
    pub name: String,
}

/// Why a call failed everywhere.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlertmanagerError {
    /// No Alertmanager could be reached or answered but with 5xx: each with why.
    #[error("no Alertmanager answered: {0}")]
    Unreachable(String),
    /// An Alertmanager refused the call.
    #[error("Alertmanager {url} refused: HTTP {status}: {message}")]
    Refused {
        /// Which one (without credentials).
        url: String,
        /// The HTTP status.
        status: u16,
        /// What it said.
        message: String,
    },
}

/// The client, built once per configuration.
#[derive(Debug, Clone)]
pub struct AlertmanagerClient {
    http: reqwest::Client,
    urls: Vec<Url>,
    authorization: Option<Authorization>,
}

impl AlertmanagerClient {
    /// A client for `config`: its CA and client certificate read now.
    pub fn new(config: &AlertmanagerConfig) -> Result<Self, String> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder()
            .timeout(config.timeout)
            .user_agent(concat!("alertmanager-dingtalk/", env!("CARGO_PKG_VERSION")));
        if let Some(ca_file) = &config.ca_file {
            let pem = std::fs::read(ca_file)
                .map_err(|e| format!("cannot read {}: {e}", ca_file.display()))?;
            let certificate = reqwest::Certificate::from_pem(&pem)
                .map_err(|e| format!("{}: {e}", ca_file.display()))?;
            builder = builder.add_root_certificate(certificate);
        }
        if let Some((cert_file, key_file)) = &config.client_cert {
            let mut pem = std::fs::read(cert_file)
                .map_err(|e| format!("cannot read {}: {e}", cert_file.display()))?;
            pem.extend(
                std::fs::read(key_file)
                    .map_err(|e| format!("cannot read {}: {e}", key_file.display()))?,
            );
            let identity = reqwest::Identity::from_pem(&pem)
                .map_err(|e| format!("{}: {e}", cert_file.display()))?;
            builder = builder.identity(identity);
        }
        let http = builder.build().map_err(|e| e.without_url().to_string())?;
        Ok(AlertmanagerClient {
            http,
            urls: config.urls.clone(),
            authorization: config.authorization.clone(),
        })
    }

    /// The silences whose matchers include each of `matchers` exactly.
    pub async fn silences(
        &self,
        matchers: &[(String, String)],
    ) -> Result<Vec<Silence>, AlertmanagerError> {
        self.list("api/v2/silences", matchers).await
    }

    /// The alerts `matchers` select, firing or not.
    pub async fn alerts(
        &self,
        matchers: &[(String, String)],
    ) -> Result<Vec<Alert>, AlertmanagerError> {
        self.list("api/v2/alerts", matchers).await
    }

    /// The alert groups of every receiver, with their alerts that have not resolved.
    pub async fn alert_groups(&self) -> Result<Vec<AlertGroup>, AlertmanagerError> {
        self.list("api/v2/alerts/groups", &[]).await
    }

    /// Silence `id`, whatever its state.
    pub async fn silence(&self, id: &str) -> Result<Silence, AlertmanagerError> {
        let path = format!("api/v2/silence/{}", encode(id));
        let body = self.call(reqwest::Method::GET, &path, &[], None).await?;
        serde_json::from_slice(&body).map_err(|e| bad_answer(&e))
    }

    /// What `GET path` lists under the `filter` of `matchers`.
    async fn list<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        matchers: &[(String, String)],
    ) -> Result<Vec<T>, AlertmanagerError> {
        let body = self
            .call(reqwest::Method::GET, path, &filter(matchers), None)
            .await?;
        serde_json::from_slice(&body).map_err(|e| bad_answer(&e))
    }

    /// Makes a silence of `matchers` from `now` for `length`; returns its id.
    pub async fn create_silence(
        &self,
        matchers: Vec<Matcher>,
        now: Timestamp,
        length: Duration,
        created_by: &str,
        comment: &str,
    ) -> Result<String, AlertmanagerError> {
        let ends_at = now
            .checked_add(
                jiff::SignedDuration::try_from(length).unwrap_or(jiff::SignedDuration::MAX),
            )
            .unwrap_or(Timestamp::MAX);
        let silence = serde_json::json!({
            "matchers": matchers,
            "startsAt": now,
            "endsAt": ends_at,
            "createdBy": created_by,
            "comment": comment,
        });
        let body = self
            .call(reqwest::Method::POST, "api/v2/silences", &[], Some(silence))
            .await?;
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Created {
            #[serde(rename = "silenceID")]
            silence_id: String,
        }
        let created: Created = serde_json::from_slice(&body).map_err(|e| bad_answer(&e))?;
        Ok(created.silence_id)
    }

    /// Expires silence `id`.
    pub async fn expire_silence(&self, id: &str) -> Result<(), AlertmanagerError> {
        let path = format!("api/v2/silence/{}", encode(id));
        self.call(reqwest::Method::DELETE, &path, &[], None)
            .await
            .map(|_| ())
    }

    /// Tries each Alertmanager in order; the first answer that is not 5xx decides.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<serde_json::Value>,
    ) -> Result<Vec<u8>, AlertmanagerError> {
        let mut failures = Vec::new();
        for base in &self.urls {
            let shown = shown(base);
            let Ok(mut url) = base_with_slash(base).join(path) else {
                failures.push(format!("{shown}: not a base URL"));
                continue;
            };
            if !query.is_empty() {
                url.query_pairs_mut().extend_pairs(query);
            }
            let mut request = self.http.request(method.clone(), url);
            request = match &self.authorization {
                Some(Authorization::Basic { username, password }) => {
                    request.basic_auth(username, Some(password.expose()))
                }
                Some(Authorization::Scheme {
                    scheme,
                    credentials,
                }) => request.header(
                    reqwest::header::AUTHORIZATION,
                    format!("{scheme} {}", credentials.expose()),
                ),
                None => request,
            };
            if let Some(body) = &body {
                request = request.json(body);
            }
            let response = match request.send().await {
                Ok(response) => response,
                Err(error) => {
                    failures.push(format!("{shown}: {}", error.without_url()));
                    continue;
                }
            };
            let status = response.status();
            let bytes = match response.bytes().await {
                Ok(bytes) => bytes,
                Err(error) => {
                    failures.push(format!("{shown}: {}", error.without_url()));
                    continue;
                }
            };
            if status.is_server_error() {
                failures.push(format!("{shown}: HTTP {}", status.as_u16()));
                continue;
            }
            if !status.is_success() {
                let message: String = String::from_utf8_lossy(&bytes).chars().take(200).collect();
                return Err(AlertmanagerError::Refused {
                    url: shown,
                    status: status.as_u16(),
                    message: message.trim().to_owned(),
                });
            }
            return Ok(bytes.to_vec());
        }
        Err(AlertmanagerError::Unreachable(failures.join("; ")))
    }
}

/// `filter` query parameters: one `name="value"` per matcher.
fn filter(matchers: &[(String, String)]) -> Vec<(&'static str, String)> {
    matchers
        .iter()
        .map(|(name, value)| {
            let value = value.replace('\\', "\\\\").replace('"', "\\\"");
            ("filter", format!("{name}=\"{value}\""))
        })
        .collect()
}

fn bad_answer(error: &serde_json::Error) -> AlertmanagerError {
    AlertmanagerError::Unreachable(format!("an answer that is not Alertmanager's: {error}"))
}

/// A base URL that `join` keeps whole: with a trailing slash.
fn base_with_slash(base: &Url) -> Url {
    let mut base = base.clone();
    if !base.path().ends_with('/') {
        let path = format!("{}/", base.path());
        base.set_path(&path);
    }
    base
}

/// A URL as logs and pages may show it: without user or password.
fn shown(url: &Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.to_string()
}

/// A path segment, percent-encoded.
fn encode(segment: &str) -> String {
    percent_encoding::utf8_percent_encode(segment, percent_encoding::NON_ALPHANUMERIC).to_string()
}
