//! Sends one encoded message to one robot and turns the answer into `Ok` or a
//! [`SendError`]: to a webhook, or through the OpenAPI with the application's access
//! token, which is fetched again and the message sent once more when DingTalk rejects it.

use std::sync::Arc;
use std::time::Duration;

use hyper::body::Bytes;
use jiff::Timestamp;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use url::Url;

use super::answer::{classify, openapi_error};
use super::app::{App, STREAM_OPEN_PATH, TOKEN_PATH};
use super::card::CardCall;
use super::proxy::{self, Proxy};
use super::token::Tokens;
use super::{AppRobot, Call, Endpoint, Robot, Secret, SendError, SendFuture, Sender, Webhook};

/// The header the OpenAPI takes the access token in.
const TOKEN_HEADER: &str = "x-acs-dingtalk-access-token";

/// One HTTP client shared by every robot, so connections to DingTalk are pooled, with the
/// access tokens of applications.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    tokens: Arc<Tokens>,
    counted: Option<OnCall>,
    /// For the connections the client does not make itself (the Stream's WebSocket).
    proxy: Proxy,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("tokens", &self.tokens)
            .finish_non_exhaustive()
    }
}

/// What is told of every OpenAPI call the client makes (to count it).
pub type OnCall = Arc<dyn Fn(Call) + Send + Sync>;

/// Errors building the HTTP client from configuration.
#[derive(Debug, thiserror::Error)]
#[error("cannot build the DingTalk HTTP client: {0}")]
pub struct ClientError(String);

impl Client {
    /// A client with the configured timeout, through `proxy`.
    pub fn new(timeout: Duration, proxy: &Proxy) -> Result<Self, ClientError> {
        // reqwest is built without a default crypto provider; install ring once.
        let _ = rustls::crypto::ring::default_provider().install_default();
        // DingTalk's APIs do not redirect; a session webhook that does is not followed.
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .user_agent(concat!("alertmanager-dingtalk/", env!("CARGO_PKG_VERSION")));
        let rules = proxy
            .for_requests()
            .map_err(|e| ClientError(e.without_url().to_string()))?;
        if let Some(rules) = rules {
            builder = builder.proxy(rules);
        }
        let http = builder
            .build()
            .map_err(|e| ClientError(e.without_url().to_string()))?;
        Ok(Client {
            http,
            tokens: Arc::default(),
            counted: None,
            proxy: proxy.clone(),
        })
    }

    /// The same client, telling `on_call` of every OpenAPI call.
    pub fn counting(self, on_call: OnCall) -> Self {
        Client {
            counted: Some(on_call),
            ..self
        }
    }

    /// The proxy, for a connection the client does not make itself.
    pub(super) fn proxy(&self) -> &Proxy {
        &self.proxy
    }

    fn count(&self, call: Call) {
        if let Some(on_call) = &self.counted {
            on_call(call);
        }
    }

    /// POSTs `body` to `robot`, a webhook signed at `now_ms`; success is `errcode == 0`,
    /// or an application robot's 2xx with a `processQueryKey`.
    pub async fn post(&self, robot: &Robot, body: String, now_ms: i64) -> Result<(), SendError> {
        match &robot.endpoint {
            Endpoint::Webhook(webhook) => self.post_webhook(webhook, body, now_ms).await,
            Endpoint::App(robot) => {
                let api = Call::GroupMessage;
                self.call_app::<Sent>(&robot.app, api, body).await.map(drop)
            }
            Endpoint::Pool(_) => Err(SendError::BadAnswer(
                "a pool sends through its members".into(),
            )),
        }
    }

    async fn post_webhook(
        &self,
        webhook: &Webhook,
        body: String,
        now_ms: i64,
    ) -> Result<(), SendError> {
        let (status, bytes) = self
            .exchange(self.http.post(webhook.send_url(now_ms)).body(body))
            .await?;
        classify(status, &bytes)
    }

    /// Sends or updates card `body` of `robot` ([`super::card`]), with its application's
    /// token as a group message is sent.
    pub async fn card(&self, robot: &Robot, body: String, call: CardCall) -> Result<(), SendError> {
        let api = match call {
            CardCall::Send => Call::CardSend,
            CardCall::Update => Call::CardUpdate,
        };
        let app = &app_robot(robot, api)?.app;
        self.call_app::<Sent>(app, api, body).await.map(drop)
    }

    /// Makes OpenAPI call `api` with the application's token and returns the body of its
    /// 2xx answer; when DingTalk rejects the token, fetches another (one fetch however
    /// many calls were rejected at once) and calls once more.
    async fn post_app(&self, app: &App, api: Call, body: String) -> Result<Bytes, SendError> {
        // Kept for a second call without copying it.
        let body = Bytes::from(body);
        let token = self.tokens.get(app, None, || self.fetch_token(app)).await?;
        match self.call_with_token(app, api, &token, body.clone()).await {
            Err(error) if error.token_rejected() => {
                tracing::info!(
                    message = "DingTalk rejected the access token; fetching another.",
                    app_key = %app.app_key,
                );
                let token = self
                    .tokens
                    .get(app, Some(&token), || self.fetch_token(app))
                    .await?;
                self.call_with_token(app, api, &token, body).await
            }
            outcome => outcome,
        }
    }

    async fn call_with_token(
        &self,
        app: &App,
        api: Call,
        token: &Secret,
        body: Bytes,
    ) -> Result<Bytes, SendError> {
        let url = app.url(api.path());
        let request = match api {
            Call::CardUpdate => self.http.put(url),
            _ => self.http.post(url),
        };
        let request = request.header(TOKEN_HEADER, token.expose()).body(body);
        self.count(api);
        let (status, bytes) = self.exchange(request).await?;
        match status {
            200..300 => Ok(bytes),
            _ => Err(openapi_error(api, status, &bytes)),
        }
    }

    /// Makes OpenAPI call `api` of `app` and reads its answer as `T`.
    pub(super) async fn call_app<T: DeserializeOwned>(
        &self,
        app: &App,
        api: Call,
        body: String,
    ) -> Result<T, SendError> {
        let bytes = self.post_app(app, api, body).await?;
        serde_json::from_slice(&bytes).map_err(|_| openapi_error(api, 200, &bytes))
    }

    /// A Stream connection of `app` subscribed to `subscriptions` (type and topic): the
    /// gateway's endpoint and the connection's ticket ([`super::stream`]).
    pub async fn open_stream(
        &self,
        app: &App,
        subscriptions: &[(&str, &str)],
    ) -> Result<(String, Secret), SendError> {
        let subscriptions: Vec<_> = subscriptions
            .iter()
            .map(|(kind, topic)| serde_json::json!({ "type": kind, "topic": topic }))
            .collect();
        let body = serde_json::json!({
            "clientId": app.app_key,
            "clientSecret": app.app_secret.expose(),
            "subscriptions": subscriptions,
            "ua": concat!("alertmanager-dingtalk/", env!("CARGO_PKG_VERSION")),
        });
        let request = self
            .http
            .post(app.url(STREAM_OPEN_PATH))
            .body(body.to_string());
        self.count(Call::StreamOpen);
        let (status, bytes) = self.exchange(request).await?;
        #[derive(Deserialize)]
        struct Opened {
            endpoint: String,
            ticket: String,
        }
        match serde_json::from_slice::<Opened>(&bytes) {
            Ok(opened) if (200..300).contains(&status) && !opened.ticket.is_empty() => {
                Ok((opened.endpoint, Secret::new(opened.ticket)))
            }
            _ => Err(openapi_error(Call::StreamOpen, status, &bytes)),
        }
    }

    /// POSTs `body` to a message's `sessionWebhook`: a reply in its conversation. The
    /// answer is a webhook's (`errcode`).
    pub async fn reply(&self, session_webhook: &Url, body: String) -> Result<(), SendError> {
        let (status, bytes) = self
            .exchange(self.http.post(session_webhook.clone()).body(body))
            .await?;
        classify(status, &bytes)
    }

    /// A new access token of `app` and how long it lasts.
    async fn fetch_token(&self, app: &App) -> Result<(Secret, Duration), SendError> {
        let body = serde_json::json!({
            "appKey": app.app_key,
            "appSecret": app.app_secret.expose(),
        });
        let request = self.http.post(app.url(TOKEN_PATH)).body(body.to_string());
        self.count(Call::AccessToken);
        let (status, bytes) = self.exchange(request).await?;
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Token {
            access_token: String,
            expire_in: u64,
        }
        match serde_json::from_slice::<Token>(&bytes) {
            Ok(token) if (200..300).contains(&status) && !token.access_token.is_empty() => {
                tracing::debug!(
                    message = "Fetched an access token.",
                    app_key = %app.app_key,
                    expire_in = token.expire_in,
                );
                Ok((
                    Secret::new(token.access_token),
                    Duration::from_secs(token.expire_in),
                ))
            }
            _ => Err(openapi_error(Call::AccessToken, status, &bytes)),
        }
    }

    /// Sends a JSON request and reads the whole answer.
    async fn exchange(&self, request: reqwest::RequestBuilder) -> Result<(u16, Bytes), SendError> {
        let response = request
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .send()
            .await
            .map_err(network_error)?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(network_error)?;
        Ok((status, bytes))
    }
}

impl Sender for Client {
    fn send<'a>(&'a self, robot: &'a Robot, body: String) -> SendFuture<'a> {
        Box::pin(self.post(robot, body, Timestamp::now().as_millisecond()))
    }

    fn card<'a>(&'a self, robot: &'a Robot, body: String, call: CardCall) -> SendFuture<'a> {
        Box::pin(Client::card(self, robot, body, call))
    }

    fn one_to_one<'a>(&'a self, robot: &'a Robot, body: String) -> SendFuture<'a> {
        Box::pin(Client::one_to_one(self, robot, body))
    }
}

/// What a group message, a card and a 1:1 message are answered with: an id to ask about
/// the message later, its presence the sign of success.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Sent {
    #[expect(dead_code, reason = "only its presence is checked")]
    process_query_key: String,
}

/// The robot of an application `robot` is, for OpenAPI call `api`.
pub(super) fn app_robot(robot: &Robot, api: Call) -> Result<&AppRobot, SendError> {
    match &robot.endpoint {
        Endpoint::App(app_robot) => Ok(app_robot),
        Endpoint::Webhook(_) | Endpoint::Pool(_) => Err(SendError::BadAnswer(format!(
            "the {api} call is for robots of an application"
        ))),
    }
}

/// reqwest's errors name the URL, which carries the token: strip it, and keep the chain
/// of causes, which is where "connection refused" or "timed out" is said.
fn network_error(error: reqwest::Error) -> SendError {
    if let Some(refused) = proxy::refusal(&error) {
        return SendError::Proxy(refused.to_owned());
    }
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
