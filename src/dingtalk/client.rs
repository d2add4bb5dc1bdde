//! Sends one encoded message to one robot and turns the answer into `Ok` or a
//! [`SendError`].

use std::time::Duration;

use jiff::Timestamp;
use serde::Deserialize;
use url::Url;

use super::{Robot, SendError, SendFuture, Sender};

/// One HTTP client shared by every robot, so connections to DingTalk are pooled.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
}

/// Errors building the HTTP client from configuration.
#[derive(Debug, thiserror::Error)]
#[error("cannot build the DingTalk HTTP client: {0}")]
pub struct ClientError(String);

impl Client {
    /// A client with the configured timeout and optional proxy (otherwise the
    /// `HTTP(S)_PROXY` environment is honoured).
    pub fn new(timeout: Duration, proxy: Option<&Url>) -> Result<Self, ClientError> {
        // reqwest is built without a default crypto provider; install ring once.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("alertmanager-dingtalk/", env!("CARGO_PKG_VERSION")));
        if let Some(proxy) = proxy {
            let proxy = reqwest::Proxy::all(proxy.as_str())
                .map_err(|e| ClientError(e.without_url().to_string()))?;
            builder = builder.proxy(proxy);
        }
        let http = builder
            .build()
            .map_err(|e| ClientError(e.without_url().to_string()))?;
        Ok(Client { http })
    }

    /// POSTs `body` to `robot`, signed at `now_ms`; success is `errcode == 0`.
    pub async fn post(&self, robot: &Robot, body: String, now_ms: i64) -> Result<(), SendError> {
        let response = self
            .http
            .post(robot.send_url(now_ms))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(network_error)?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(network_error)?;
        classify(status, &bytes)
    }
}

impl Sender for Client {
    fn send<'a>(&'a self, robot: &'a Robot, body: String) -> SendFuture<'a> {
        Box::pin(self.post(robot, body, Timestamp::now().as_millisecond()))
    }
}

/// reqwest's errors name the URL, which carries the token: strip it, and keep the chain
/// of causes, which is where "connection refused" or "timed out" is said.
fn network_error(error: reqwest::Error) -> SendError {
    let timed_out = error.is_timeout();
    let error = error.without_url();
    let mut reason = if timed_out {
        "timed out".to_owned()
    } else {
        error.to_string()
    };
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        reason.push_str(": ");
        reason.push_str(&cause.to_string());
        source = cause.source();
    }
    SendError::Network(reason)
}

/// DingTalk's answer body. `errcode` has been seen both as a number and as a string.
#[derive(Deserialize)]
struct Answer {
    errcode: Errcode,
    #[serde(default)]
    errmsg: String,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Errcode {
    Number(i64),
    Text(String),
}

/// Turns an HTTP status and body into the send's outcome.
pub fn classify(status: u16, body: &[u8]) -> Result<(), SendError> {
    let answer = serde_json::from_slice::<Answer>(body).ok();
    let Some(answer) = answer else {
        if status == 200 {
            return Err(SendError::BadAnswer(excerpt(body)));
        }
        return Err(SendError::Http(status));
    };
    let errcode = match answer.errcode {
        Errcode::Number(n) => n,
        Errcode::Text(text) => text
            .trim()
            .parse()
            .map_err(|_| SendError::BadAnswer(excerpt(body)))?,
    };
    match errcode {
        0 if status == 200 => Ok(()),
        0 => Err(SendError::Http(status)),
        errcode => Err(SendError::Rejected {
            errcode,
            errmsg: answer.errmsg,
        }),
    }
}

/// The start of an unexpected answer, for the log line.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text: String = text.chars().take(200).collect();
    text.replace('\n', " ")
}
