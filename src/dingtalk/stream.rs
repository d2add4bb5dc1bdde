//! DingTalk's Stream mode for an application: the bridge opens a WebSocket to DingTalk's
//! gateway, and the gateway pushes what people write to the application's robots down it.
//! No public address is needed.
//!
//! The protocol, as open-dingtalk's public SDKs speak it (dingtalk-stream-sdk-go
//! `client/client.go`, `payload/connection.go`, `payload/data_frame.go`, `chatbot/model.go`;
//! dingtalk-stream-sdk-python `stream.py`, `frames.py`): `POST
//! /v1.0/gateway/connections/open` with `clientId`/`clientSecret` (the AppKey and AppSecret)
//! and the subscriptions answers an `endpoint` and a one-use `ticket`; the client opens a
//! WebSocket to `endpoint?ticket=…`. Every frame is JSON (`specVersion`, `type`: `SYSTEM`,
//! `EVENT` or `CALLBACK`, `headers` with `messageId` and `topic`, `data` a JSON string) and
//! is acknowledged with `{code, headers: {contentType, messageId}, message, data}`. A
//! `SYSTEM` `ping` is acknowledged with its own `data`; a `SYSTEM` `disconnect` announces
//! that the gateway closes the socket: the client acknowledges it and opens a new
//! connection. Robot messages arrive as `CALLBACK` frames of [`BOT_MESSAGE_TOPIC`].
//!
//! [`run`] keeps one connection up for good: every failure (the open call, the handshake,
//! a closed socket, two minutes without a frame or an answer to a ping) is logged, shown to
//! the caller's `report` and followed by a new attempt after a jittered pause that doubles
//! up to a minute, and starts from a second again only after a connection stayed up for a
//! minute; a `disconnect` is followed by a new connection after a second.
//! The endpoint is used exactly as the gateway returns it (`wss://`, or `ws://` in tests).

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use jiff::Timestamp;
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use url::Url;

use super::app::App;
use super::client::Client;

/// The `CALLBACK` topic robot messages arrive on.
pub const BOT_MESSAGE_TOPIC: &str = "/v1.0/im/bot/messages/get";
/// The largest frame taken: a robot message is a few kilobytes.
const MAX_FRAME_BYTES: usize = 1 << 20;
/// How long the TCP, TLS and WebSocket handshakes may take together.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// After this long without a frame the client pings; after as long again it gives up on
/// the connection.
const IDLE: Duration = Duration::from_secs(60);
/// The first pause before a new attempt, doubled after each failure up to [`MAX_PAUSE`];
/// the pause after a `disconnect`.
const FIRST_PAUSE: Duration = Duration::from_secs(1);
const MAX_PAUSE: Duration = Duration::from_secs(60);
/// How long a connection must have stayed up for the pauses to start from the first again.
const STEADY: Duration = Duration::from_secs(60);

/// What a person wrote to a robot: the `data` of a [`BOT_MESSAGE_TOPIC`] frame, with field
/// names as in the SDKs' `BotCallbackDataModel`. No `Debug`: its `sessionWebhook` is a
/// credential of sorts, and stays out of logs.
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BotMessage {
    /// The message's id: the same when DingTalk delivers it again.
    pub msg_id: String,
    /// The group (`openConversationId`) it was written in.
    pub conversation_id: String,
    /// The robot it was written to.
    #[serde(default)]
    pub robot_code: String,
    /// The writer's name in DingTalk.
    #[serde(default)]
    pub sender_nick: String,
    /// The writer's staff id (userid) in the organisation.
    #[serde(default)]
    pub sender_staff_id: String,
    /// Where a reply to this message is POSTed, without other credentials.
    pub session_webhook: String,
    /// The text.
    #[serde(default)]
    pub text: BotText,
}

/// The `text` of a [`BotMessage`].
#[derive(Clone, Default, Deserialize)]
pub struct BotText {
    /// What was written, after the mention of the robot.
    #[serde(default)]
    pub content: String,
}

/// How the connection of an application stands, for the status page and metrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamState {
    /// Opening a connection.
    Connecting,
    /// Connected since then.
    Connected(Timestamp),
    /// The last attempt failed: why, and when the next one starts.
    Down {
        /// What failed, without credentials.
        error: String,
        /// When the next attempt starts.
        retry_at: Timestamp,
    },
}

/// A frame from the gateway.
#[derive(Deserialize)]
struct Frame {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    headers: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    data: String,
}

impl Frame {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
    }
}

/// Why a connection ended.
enum Ended {
    /// The gateway announced it closes (`disconnect`): connect again at once.
    Disconnect,
    /// Anything else: connect again after a pause.
    Failed(String),
}

/// A TCP or TLS stream under the WebSocket.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Keeps a connection of `app` up, for good (stop it by dropping the future), opening
/// each with the client `client` gives then (the configuration in force): hands each
/// robot message to `on_message`, and each change of state to `report`.
pub async fn run(
    client: impl Fn() -> Client,
    app: &App,
    on_message: impl Fn(BotMessage),
    report: impl Fn(StreamState),
) {
    let mut pause = FIRST_PAUSE;
    loop {
        report(StreamState::Connecting);
        let ended = match connect(&client(), app).await {
            Ok(socket) => {
                let opened = tokio::time::Instant::now();
                report(StreamState::Connected(Timestamp::now()));
                tracing::info!(message = "Stream connection open.", app_key = %app.app_key);
                let ended = serve(socket, &on_message).await;
                // Only a connection that stayed up starts the pauses again from the first.
                if opened.elapsed() >= STEADY {
                    pause = FIRST_PAUSE;
                }
                ended
            }
            Err(error) => Ended::Failed(error),
        };
        match ended {
            Ended::Disconnect => {
                tracing::info!(
                    message = "The Stream gateway closes the connection; opening another.",
                    app_key = %app.app_key,
                );
                tokio::time::sleep(FIRST_PAUSE).await;
            }
            Ended::Failed(error) => {
                // Jittered by up to a fifth, so replicas do not reconnect in step.
                let wait = pause.mul_f64(1.0 + fastrand::f64() / 5.0);
                let retry_at = Timestamp::now().checked_add(wait).unwrap_or(Timestamp::MAX);
                tracing::warn!(
                    message = "Stream connection failed; trying again.",
                    app_key = %app.app_key,
                    %error,
                    retry_in_ms = wait.as_millis() as u64,
                );
                report(StreamState::Down { error, retry_at });
                tokio::time::sleep(wait).await;
                pause = (pause * 2).min(MAX_PAUSE);
            }
        }
    }
}

/// Opens a connection: the gateway's endpoint and ticket, then the WebSocket.
async fn connect(client: &Client, app: &App) -> Result<WebSocketStream<Box<dyn Io>>, String> {
    let (endpoint, ticket) = client
        .open_stream(app, &[("CALLBACK", BOT_MESSAGE_TOPIC)])
        .await
        .map_err(|e| format!("opening the connection: {e}"))?;
    let mut url = Url::parse(&endpoint)
        .map_err(|e| format!("the gateway's endpoint {endpoint:?} is not a URL: {e}"))?;
    url.query_pairs_mut().append_pair("ticket", ticket.expose());
    tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(client, url))
        .await
        .map_err(|_| format!("connecting to {endpoint} timed out"))?
        .map_err(|e| format!("connecting to {endpoint}: {e}"))
}

/// The TCP connection (through `client`'s proxy, if any), TLS for `wss://`, and the
/// WebSocket handshake to `url`.
async fn handshake(client: &Client, url: Url) -> Result<WebSocketStream<Box<dyn Io>>, String> {
    let host = url.host_str().ok_or("no host")?.to_owned();
    let port = url.port_or_known_default().ok_or("no port")?;
    let secure = match url.scheme() {
        "ws" => false,
        "wss" => true,
        other => return Err(format!("scheme {other}:// is not a WebSocket")),
    };
    let tcp = client.proxy().connect(&host, port, secure).await?;
    let stream: Box<dyn Io> = if secure {
        use rustls_platform_verifier::ConfigVerifierExt as _;
        let config = rustls::ClientConfig::with_platform_verifier().map_err(|e| e.to_string())?;
        let name = rustls::pki_types::ServerName::try_from(host).map_err(|e| e.to_string())?;
        let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .map_err(|e| e.to_string())?;
        Box::new(tls)
    } else {
        Box::new(tcp)
    };
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_FRAME_BYTES))
        .max_frame_size(Some(MAX_FRAME_BYTES));
    // The ticket is in the URL: errors are reported without it.
    let (socket, _) =
        tokio_tungstenite::client_async_with_config(url.as_str(), stream, Some(config))
            .await
            .map_err(|e| e.to_string())?;
    Ok(socket)
}

/// Reads and answers frames until the connection ends.
async fn serve(
    mut socket: WebSocketStream<Box<dyn Io>>,
    on_message: &impl Fn(BotMessage),
) -> Ended {
    let mut pinged = false;
    loop {
        let message = match tokio::time::timeout(IDLE, socket.next()).await {
            Err(_) if pinged => return Ended::Failed("no frame for two minutes".into()),
            Err(_) => {
                pinged = true;
                if let Err(error) = socket.send(Message::Ping(Vec::new().into())).await {
                    return Ended::Failed(error.to_string());
                }
                continue;
            }
            Ok(None) => return Ended::Failed("the gateway closed the connection".into()),
            Ok(Some(Err(error))) => return Ended::Failed(error.to_string()),
            Ok(Some(Ok(message))) => message,
        };
        pinged = false;
        let text = match message {
            Message::Text(text) => text,
            Message::Close(_) => return Ended::Failed("the gateway closed the connection".into()),
            _ => continue,
        };
        let Ok(frame) = serde_json::from_str::<Frame>(&text) else {
            tracing::warn!(message = "The Stream gateway sent a frame that is not JSON; ignored.");
            continue;
        };
        let (code, data, end) = answer(&frame, on_message);
        let ack = serde_json::json!({
            "code": code,
            "headers": {
                "contentType": "application/json",
                "messageId": frame.header("messageId"),
            },
            "message": if code == 200 { "OK" } else { "not handled" },
            "data": data,
        });
        if let Err(error) = socket.send(Message::Text(ack.to_string().into())).await {
            return Ended::Failed(error.to_string());
        }
        if end {
            let _ = socket.close(None).await;
            return Ended::Disconnect;
        }
    }
}

/// What a frame is answered with (code and data), and whether the connection ends.
fn answer(frame: &Frame, on_message: &impl Fn(BotMessage)) -> (u16, String, bool) {
    match (frame.kind.as_str(), frame.header("topic")) {
        ("SYSTEM", "ping") => (200, frame.data.clone(), false),
        ("SYSTEM", "disconnect") => (200, String::new(), true),
        ("CALLBACK", BOT_MESSAGE_TOPIC) => match serde_json::from_str::<BotMessage>(&frame.data) {
            Ok(message) => {
                on_message(message);
                (200, r#"{"response":null}"#.to_owned(), false)
            }
            Err(error) => {
                tracing::warn!(message = "A robot message the bridge cannot read; ignored.", %error);
                (400, String::new(), false)
            }
        },
        (kind, topic) => {
            tracing::debug!(message = "A Stream frame of no interest.", %kind, %topic);
            (404, String::new(), false)
        }
    }
}

/// The body of a markdown reply to a message's `sessionWebhook` that mentions the writer
/// (`atUserIds`, as the custom robot's `at` has it), if they have a staff id.
pub fn reply_body(title: &str, text: &str, staff_id: &str) -> String {
    let mentioned: &[&str] = if staff_id.is_empty() {
        &[]
    } else {
        &[staff_id]
    };
    serde_json::json!({
        "msgtype": "markdown",
        "markdown": { "title": title, "text": text },
        "at": { "atUserIds": mentioned },
    })
    .to_string()
}
