//! DingTalk's Stream mode, as the fake serves it: the gateway's
//! `POST /v1.0/gateway/connections/open` on the HTTP port, the WebSocket it hands out on a
//! port of its own, the frames pushed on it (robot messages, `ping`, `disconnect`), the
//! acks the client sends back, and the `sessionWebhook` a robot message carries
//! (`POST /robot/sendBySession?session=...`, also on the HTTP port).
//!
//! The protocol is the one DingTalk's own SDKs speak (open-dingtalk
//! `dingtalk-stream-sdk-go`: `client/client.go`, `payload/connection.go`,
//! `payload/data_frame.go`, `chatbot/model.go`, `chatbot/chatbot_replier.go`;
//! `dingtalk-stream-sdk-python`: `stream.py`, `frames.py`):
//!
//! 1. The client opens a connection with its AppKey and AppSecret as `clientId` and
//!    `clientSecret` and the `(type, topic)` pairs it subscribes to; the gateway answers
//!    `{"endpoint","ticket"}`.
//! 2. It connects a WebSocket to `endpoint?ticket=...`; a ticket opens one connection.
//! 3. The gateway pushes text frames `{"specVersion","type","headers","data"}`, `data`
//!    being a JSON string; the client answers each with an ack
//!    `{"code","headers":{"messageId",...},"message","data"}`.
//! 4. A `SYSTEM` `ping` is acked with its own `data`; a `SYSTEM` `disconnect` is acked,
//!    then the gateway closes the socket and the client opens a new connection.
//!
//! What the fake enforces: the credentials, the one-use tickets tied to their
//! application, and (when a test pushes a robot message) that the connection subscribed
//! to robot messages. What it only records: every open, every ack and every other text
//! the client sends, every session reply taken. Whether a client answers pings in time
//! is its own affair, as it is with DingTalk. Not public, hence the fake's guesses: the
//! gateway's status and code for wrong credentials (HTTP 401 `InvalidAuthentication`
//! here), the `data` of a `disconnect`, and the lifetime of a session webhook (90 min
//! here).
//!
//! The fake's HTTP [`Mode`](super::Mode) applies to the open and the session replies as
//! to any request; the WebSocket port is apart and stays up.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hyper::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http;
use tokio_tungstenite::tungstenite::{self, Message};

use super::openapi::{self, check_request};
use super::rules::{Answer, Call, fail, now_ms};
use super::tls::Conn;
use super::{FakeDingTalk, POLL_INTERVAL, Shared, State};

/// Path of the gateway's connection open, on the fake's HTTP port.
pub(super) const OPEN_PATH: &str = "/v1.0/gateway/connections/open";
/// Path of the session webhooks, on the fake's HTTP port.
pub(super) const SESSION_PATH: &str = "/robot/sendBySession";
/// Path of the WebSocket endpoint, on the fake's Stream port.
const CONNECT_PATH: &str = "/connect";
/// Topic of robot messages (`payload.BotMessageCallbackTopic` in the Go SDK).
pub const BOT_MESSAGE_TOPIC: &str = "/v1.0/im/bot/messages/get";
/// How long the gateway waits for the ack of a `disconnect` before it closes anyway.
const DISCONNECT_GRACE: Duration = Duration::from_secs(2);
/// How long the peer gets to answer the gateway's close frame.
const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// How long a session webhook is taken after its message was pushed.
const SESSION_LIFETIME_MS: i64 = 90 * 60 * 1000;
/// The corporation of the fake's robots and senders.
const CORP_ID: &str = "dingfakecorp";
/// DingTalk's answer to a session webhook it does not know or no longer takes, as clients
/// have logged it (e.g. agentscope-ai/agentscope issue 1318).
const NO_SESSION: &str = "session 不存在";

/// One call to open a Stream connection, whatever its answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamOpen {
    /// The `clientId` sent (the AppKey).
    pub client_id: String,
    /// The subscriptions sent, as `(type, topic)` pairs, e.g.
    /// `("CALLBACK", "/v1.0/im/bot/messages/get")`.
    pub subscriptions: Vec<(String, String)>,
    /// The `ua` sent ("" without one).
    pub ua: String,
    /// The HTTP status answered: 200 with a ticket, 401 for wrong credentials, 503 while
    /// [refusing](FakeDingTalk::refuse_stream_opens).
    pub status: u16,
}

impl StreamOpen {
    /// Whether it subscribed to this type (`"CALLBACK"`, `"EVENT"`, `"SYSTEM"`) and topic.
    pub fn subscribes(&self, kind: &str, topic: &str) -> bool {
        self.subscriptions
            .iter()
            .any(|(k, t)| k == kind && t == topic)
    }
}

/// One ack a client sent on a Stream connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamAck {
    /// The connection it came on, numbered from 0 in the order connections opened.
    pub connection: usize,
    /// The `messageId` header: that of the frame it acks.
    pub message_id: String,
    /// The `code` (200 for success).
    pub code: i64,
    /// The `message` ("" without one).
    pub message: String,
    /// The `data` string ("" without one).
    pub data: String,
}

impl StreamAck {
    /// `data` parsed as JSON, `Value::Null` if it is not JSON.
    pub fn data_json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap_or(Value::Null)
    }
}

/// One message a session webhook took.
#[derive(Clone, Debug, PartialEq)]
pub struct SessionReply {
    /// The `session` of the webhook it was posted to.
    pub session: String,
    /// The conversation of the robot message that webhook came with.
    pub conversation_id: String,
    /// The JSON body.
    pub body: Value,
}

impl SessionReply {
    /// The markdown or action card text, or the text content, of the reply; "" otherwise.
    pub fn text(&self) -> &str {
        ["/markdown/text", "/actionCard/text", "/text/content"]
            .iter()
            .find_map(|pointer| self.body.pointer(pointer).and_then(Value::as_str))
            .unwrap_or_default()
    }
}

/// A robot message for [`FakeDingTalk::push_bot_message`]: a text a user sent in a group,
/// @-mentioning the robot. Build it with [`BotMessage::new`] and the setters; the pushed
/// JSON has the fields of the Go SDK's `chatbot.BotCallbackDataModel`, plus `robotCode`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BotMessage {
    /// `conversationId`: the group.
    pub conversation_id: String,
    /// `conversationTitle`: the group's name.
    pub conversation_title: String,
    /// `conversationType`: "2" for a group, "1" for a one-to-one chat.
    pub conversation_type: String,
    /// `text.content`. DingTalk removes the @-mention of the robot from it, which may
    /// leave a leading space: tests can send `" ack"` as users' clients do.
    pub text: String,
    /// `msgId`: the same for a redelivery of the same message.
    pub msg_id: String,
    /// `senderNick`.
    pub sender_nick: String,
    /// `senderStaffId`: the sender's user id in the organisation.
    pub sender_staff_id: String,
    /// `isAdmin`: whether the sender administers the organisation.
    pub is_admin: bool,
    /// `robotCode`; `None` sends the AppKey the connection was opened with, as it is for
    /// the robot of an internal application.
    pub robot_code: Option<String>,
}

impl BotMessage {
    /// A group message `text` in `conversation_id` from "Test User" (staff id
    /// "fakestaff"), with a fresh `msgId`.
    pub fn new(conversation_id: &str, text: &str) -> Self {
        BotMessage {
            conversation_id: conversation_id.to_owned(),
            conversation_title: "Fake group".to_owned(),
            conversation_type: "2".to_owned(),
            text: text.to_owned(),
            msg_id: format!("msgfake{}", random_hex()),
            sender_nick: "Test User".to_owned(),
            sender_staff_id: "fakestaff".to_owned(),
            is_admin: false,
            robot_code: None,
        }
    }

    /// Sets the sender's nick and staff id.
    pub fn sender(mut self, nick: &str, staff_id: &str) -> Self {
        self.sender_nick = nick.to_owned();
        self.sender_staff_id = staff_id.to_owned();
        self
    }

    /// Sets the `msgId`, e.g. to push the same message again as DingTalk redelivers it.
    pub fn msg_id(mut self, msg_id: &str) -> Self {
        self.msg_id = msg_id.to_owned();
        self
    }

    /// Sets the `robotCode`.
    pub fn robot_code(mut self, robot_code: &str) -> Self {
        self.robot_code = Some(robot_code.to_owned());
        self
    }

    /// The callback's JSON, with this session webhook, pushed at `now` (ms).
    fn data(&self, robot_code: &str, session_webhook: &str, now: i64) -> Value {
        let chatbot_user_id = format!("$:LWCP_v1:$fakebot-{robot_code}");
        json!({
            "conversationId": self.conversation_id,
            "atUsers": [{ "dingtalkId": chatbot_user_id }],
            "chatbotCorpId": CORP_ID,
            "chatbotUserId": chatbot_user_id,
            "msgId": self.msg_id,
            "senderNick": self.sender_nick,
            "isAdmin": self.is_admin,
            "senderStaffId": self.sender_staff_id,
            "sessionWebhookExpiredTime": now + SESSION_LIFETIME_MS,
            "createAt": now,
            "senderCorpId": CORP_ID,
            "conversationType": self.conversation_type,
            "senderId": format!("$:LWCP_v1:$fakeuser-{}", self.sender_staff_id),
            "conversationTitle": self.conversation_title,
            "isInAtList": true,
            "sessionWebhook": session_webhook,
            "text": { "content": self.text },
            "msgtype": "text",
            "robotCode": robot_code,
        })
    }
}

/// What a connection's task is told to do.
enum Push {
    /// Send this frame.
    Frame(String),
    /// Send this `disconnect` frame, then close once its ack arrives or the grace is over.
    Disconnect { frame: String, message_id: String },
    /// End the connection at once: the TCP stream goes without a close frame.
    Drop,
}

/// A ticket given out and not used yet.
struct Ticket {
    app_key: String,
    subscriptions: Vec<(String, String)>,
}

/// A WebSocket connection, open or closed.
struct Connection {
    app_key: String,
    subscriptions: Vec<(String, String)>,
    /// `None` once the connection ended.
    outbox: Option<mpsc::UnboundedSender<Push>>,
}

/// A session webhook handed out with a robot message.
struct Session {
    conversation_id: String,
    /// `sessionWebhookExpiredTime`, ms since the Unix epoch.
    expires_ms: i64,
}

/// Stream mode's part of the fake's state.
pub(super) struct StreamState {
    /// Where the WebSocket listens: `ws://HOST:PORT` (`wss://` behind TLS).
    ws_origin: String,
    /// Whether opens are answered HTTP 503.
    refuse_opens: bool,
    opens: Vec<StreamOpen>,
    tickets: HashMap<String, Ticket>,
    /// Every connection so far, numbered by its index.
    connections: Vec<Connection>,
    sessions: HashMap<String, Session>,
    acks: Vec<StreamAck>,
    /// Texts received that are not acks.
    other_texts: Vec<String>,
    replies: Vec<SessionReply>,
    /// Frames pushed so far, for their message ids.
    frames: u64,
}

impl StreamState {
    /// No connection yet; the WebSocket listens at `ws_origin`.
    pub(super) fn new(ws_origin: String) -> Self {
        StreamState {
            ws_origin,
            refuse_opens: false,
            opens: Vec::new(),
            tickets: HashMap::new(),
            connections: Vec::new(),
            sessions: HashMap::new(),
            acks: Vec::new(),
            other_texts: Vec::new(),
            replies: Vec::new(),
            frames: 0,
        }
    }

    /// Ends every connection (their tasks see the outbox close).
    pub(super) fn close_all(&mut self) {
        for connection in &mut self.connections {
            connection.outbox = None;
        }
    }

    /// How many connections are open.
    fn live(&self) -> usize {
        self.connections
            .iter()
            .filter(|c| c.outbox.is_some())
            .count()
    }

    /// Sends a frame of `kind` and `topic` with `data` on connection `number` and returns
    /// its message id; a `disconnect` when `disconnect`. A frame for a connection that
    /// ends meanwhile is lost, as on a network.
    fn push(
        &mut self,
        number: usize,
        kind: &str,
        topic: &str,
        data: &Value,
        disconnect: bool,
    ) -> String {
        self.frames += 1;
        let message_id = format!("fakeframe-{}-{}", self.frames, random_hex());
        let Some(connection) = self.connections.get(number) else {
            return message_id;
        };
        let frame = json!({
            "specVersion": "1.0",
            "type": kind,
            "headers": {
                "appId": connection.app_key,
                "connectionId": format!("fakeconnection-{number}"),
                "contentType": "application/json",
                "messageId": message_id,
                "time": now_ms().to_string(),
                "topic": topic,
            },
            "data": data.to_string(),
        })
        .to_string();
        let push = if disconnect {
            Push::Disconnect {
                frame,
                message_id: message_id.clone(),
            }
        } else {
            Push::Frame(frame)
        };
        if let Some(outbox) = &connection.outbox {
            // An error means the task just ended: the frame is lost.
            let _ = outbox.send(push);
        }
        message_id
    }

    /// The numbers of the open connections.
    fn live_numbers(&self) -> Vec<usize> {
        (0..self.connections.len())
            .filter(|&n| self.connections[n].outbox.is_some())
            .collect()
    }

    /// Records a text received on connection `number`; the message id if it is an ack.
    fn received(&mut self, number: usize, text: &str) -> Option<String> {
        let ack = serde_json::from_str::<Value>(text).ok().and_then(|value| {
            let code = value.get("code")?.as_i64()?;
            let message_id = value.pointer("/headers/messageId")?.as_str()?.to_owned();
            let field = |name: &str| {
                value
                    .get(name)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            Some(StreamAck {
                connection: number,
                message_id,
                code,
                message: field("message"),
                data: field("data"),
            })
        });
        match ack {
            Some(ack) => {
                let message_id = ack.message_id.clone();
                self.acks.push(ack);
                Some(message_id)
            }
            None => {
                self.other_texts.push(text.to_owned());
                None
            }
        }
    }
}

/// The answer to a Stream mode request on the HTTP port; `None` if `call` is not one.
pub(super) fn answer(state: &mut State, call: &Call) -> Option<Answer> {
    match call.path.as_str() {
        OPEN_PATH => Some(open(state, call)),
        SESSION_PATH => Some(session_reply(&mut state.stream, call)),
        _ => None,
    }
}

/// Opens a connection: a ticket for known credentials.
fn open(state: &mut State, call: &Call) -> Answer {
    if let Err(answer) = check_request(call) {
        return answer;
    }
    let field = |name: &str| {
        call.body
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    let subscriptions: Vec<(String, String)> = call
        .body
        .get("subscriptions")
        .and_then(Value::as_array)
        .map(|subscriptions| {
            subscriptions
                .iter()
                .map(|s| {
                    let part = |name: &str| {
                        s.get(name)
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned()
                    };
                    (part("type"), part("topic"))
                })
                .collect()
        })
        .unwrap_or_default();
    let answer = if state.stream.refuse_opens {
        openapi::error(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            "the gateway refuses connections (injected by the test)",
        )
    } else if !state
        .openapi
        .authenticates(field("clientId"), field("clientSecret"))
    {
        openapi::error(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthentication",
            "clientId or clientSecret is invalid",
        )
    } else {
        let ticket = format!("{}{}", random_hex(), random_hex());
        state.stream.tickets.insert(
            ticket.clone(),
            Ticket {
                app_key: field("clientId").to_owned(),
                subscriptions: subscriptions.clone(),
            },
        );
        let endpoint = format!("{}{CONNECT_PATH}", state.stream.ws_origin);
        Answer::OpenApi(
            StatusCode::OK,
            json!({ "endpoint": endpoint, "ticket": ticket }),
        )
    };
    state.stream.opens.push(StreamOpen {
        client_id: field("clientId").to_owned(),
        subscriptions,
        ua: field("ua").to_owned(),
        status: answer.status().as_u16(),
    });
    answer
}

/// A reply posted to a session webhook: taken while its session is.
fn session_reply(stream: &mut StreamState, call: &Call) -> Answer {
    if call.method != Method::POST {
        return fail(43002, "require POST method");
    }
    let Some(session) = call
        .param("session")
        .and_then(|session| stream.sessions.get_key_value(session))
        .filter(|(_, session)| now_ms() < session.expires_ms)
    else {
        return fail(300001, NO_SESSION);
    };
    if !call.body.is_object() {
        return fail(40035, "missing parameter json");
    }
    let reply = SessionReply {
        session: session.0.clone(),
        conversation_id: session.1.conversation_id.clone(),
        body: call.body.clone(),
    };
    stream.replies.push(reply);
    Answer::OK
}

/// Accepts WebSocket connections until aborted.
pub(super) async fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok((tcp, _)) => {
                let shared = Arc::clone(&shared);
                tokio::spawn(async move {
                    if let Some(conn) = shared.transport.accept(tcp).await {
                        serve(shared, conn).await;
                    }
                });
            }
            Err(err) => {
                eprintln!("fake DingTalk: Stream accept failed: {err}");
                tokio::time::sleep(POLL_INTERVAL).await;
            }
        }
    }
}

/// Serves one WebSocket connection: the handshake takes its ticket, then frames go out
/// and acks come in until either side ends it.
async fn serve(shared: Arc<Shared>, tcp: Conn) {
    let mut ticket = None;
    // The error type is tungstenite's: the refusal is the HTTP response itself.
    #[allow(clippy::result_large_err)]
    let handshake = |request: &Request, response: Response| {
        if request.uri().path() != CONNECT_PATH {
            return Err(refusal(http::StatusCode::NOT_FOUND, "not found"));
        }
        let query = request.uri().query().unwrap_or_default();
        let taken = url::form_urlencoded::parse(query.as_bytes())
            .find(|(key, _)| key == "ticket")
            .and_then(|(_, value)| shared.lock().stream.tickets.remove(value.as_ref()));
        match taken {
            Some(taken) => {
                ticket = Some(taken);
                Ok(response)
            }
            None => Err(refusal(
                http::StatusCode::UNAUTHORIZED,
                "ticket is invalid or was used",
            )),
        }
    };
    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(tcp, handshake).await else {
        return;
    };
    let Some(ticket) = ticket else {
        return;
    };
    let (outbox, mut inbox) = mpsc::unbounded_channel();
    let number = {
        let mut state = shared.lock();
        state.stream.connections.push(Connection {
            app_key: ticket.app_key,
            subscriptions: ticket.subscriptions,
            outbox: Some(outbox),
        });
        state.stream.connections.len() - 1
    };
    shared.changed.notify_waiters();
    run(&shared, number, &mut ws, &mut inbox).await;
    if let Some(connection) = shared.lock().stream.connections.get_mut(number) {
        connection.outbox = None;
    }
    shared.changed.notify_waiters();
}

/// What a connection does after one event.
enum Next {
    /// Goes on.
    Continue,
    /// Closes with a close frame.
    Close,
    /// Ends at once.
    End,
}

/// Pushes what the outbox brings and records what the client sends, until the
/// connection ends; returning drops it.
async fn run(
    shared: &Shared,
    number: usize,
    ws: &mut WebSocketStream<Conn>,
    inbox: &mut mpsc::UnboundedReceiver<Push>,
) {
    // The `disconnect` awaiting its ack, and when to close without it.
    let mut closing: Option<(String, tokio::time::Instant)> = None;
    loop {
        let deadline = closing.as_ref().map(|(_, deadline)| *deadline);
        let next = tokio::select! {
            push = inbox.recv() => pushed(ws, push, &mut closing).await,
            read = ws.next() => received(shared, number, read, closing.as_ref()),
            () = sleep_until(deadline), if deadline.is_some() => Next::Close,
        };
        match next {
            Next::Continue => {}
            Next::Close => return close(shared, number, ws).await,
            Next::End => return,
        }
    }
}

/// Sends what was pushed; a `disconnect` starts `closing`.
async fn pushed(
    ws: &mut WebSocketStream<Conn>,
    push: Option<Push>,
    closing: &mut Option<(String, tokio::time::Instant)>,
) -> Next {
    let frame = match push {
        Some(Push::Frame(frame)) => frame,
        Some(Push::Disconnect { frame, message_id }) => {
            *closing = Some((message_id, tokio::time::Instant::now() + DISCONNECT_GRACE));
            frame
        }
        Some(Push::Drop) | None => return Next::End,
    };
    match ws.send(Message::text(frame)).await {
        Ok(()) => Next::Continue,
        Err(_) => Next::End,
    }
}

/// Records what the client sent; the ack of the `disconnect` being `closing` closes.
fn received(
    shared: &Shared,
    number: usize,
    read: Option<Result<Message, tungstenite::Error>>,
    closing: Option<&(String, tokio::time::Instant)>,
) -> Next {
    let text = match read {
        Some(Ok(Message::Text(text))) => text.as_str().to_owned(),
        Some(Ok(Message::Binary(bytes))) => String::from_utf8_lossy(&bytes).into_owned(),
        // Pings are answered by tungstenite itself.
        Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {
            return Next::Continue;
        }
        Some(Ok(Message::Close(_)) | Err(_)) | None => return Next::End,
    };
    let acked = shared.lock().stream.received(number, &text);
    shared.changed.notify_waiters();
    match (acked, closing) {
        (Some(acked), Some((disconnect, _))) if acked == *disconnect => Next::Close,
        _ => Next::Continue,
    }
}

/// Sleeps until `deadline`; forever without one.
async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Closes the connection with a close frame, still recording what arrives until the
/// client answers it or [`CLOSE_GRACE`] is over.
async fn close(shared: &Shared, number: usize, ws: &mut WebSocketStream<Conn>) {
    if ws.close(None).await.is_err() {
        return;
    }
    let drain = async {
        while let Some(Ok(message)) = ws.next().await {
            if let Message::Text(text) = message {
                shared.lock().stream.received(number, text.as_str());
                shared.changed.notify_waiters();
            }
        }
    };
    let _ = tokio::time::timeout(CLOSE_GRACE, drain).await;
}

/// A handshake refused with this status.
fn refusal(status: http::StatusCode, reason: &str) -> ErrorResponse {
    let mut response = ErrorResponse::new(Some(reason.to_owned()));
    *response.status_mut() = status;
    response
}

/// 16 random hex digits (std's randomly keyed hasher: no generator needed).
pub(super) fn random_hex() -> String {
    format!("{:016x}", RandomState::new().hash_one(now_ms()))
}

/// Stream mode, as tests drive and inspect it.
impl FakeDingTalk {
    /// Every call to open a Stream connection so far, in arrival order.
    pub fn stream_opens(&self) -> Vec<StreamOpen> {
        self.shared.lock().stream.opens.clone()
    }

    /// Makes opens answer HTTP 503 (`refuse` true) or tickets again (false), so a test
    /// can watch a client retry.
    pub fn refuse_stream_opens(&self, refuse: bool) {
        self.shared.lock().stream.refuse_opens = refuse;
    }

    /// Where the Stream WebSocket listens: `ws://HOST:PORT`, or `wss://` for an HTTPS
    /// fake.
    pub fn stream_origin(&self) -> String {
        self.shared.lock().stream.ws_origin.clone()
    }

    /// How many Stream connections (WebSockets) are open now.
    pub fn stream_connections(&self) -> usize {
        self.shared.lock().stream.live()
    }

    /// How many Stream connections were opened so far, open or closed; they are numbered
    /// from 0 in this order.
    pub fn stream_connections_opened(&self) -> usize {
        self.shared.lock().stream.connections.len()
    }

    /// Waits until exactly `n` Stream connections are open; false on timeout.
    pub async fn wait_for_stream_connections(&self, n: usize, timeout: Duration) -> bool {
        self.wait_for_stream(timeout, |stream| (stream.live() == n).then_some(()))
            .await
            .is_some()
    }

    /// Pushes a robot message on the most recently opened connection that is still open
    /// and returns the frame's message id. Each push is a new frame with a new message id
    /// and a new session webhook, even for the same message (a redelivery). Panics without
    /// an open connection, or if that connection did not subscribe to robot messages.
    pub fn push_bot_message(&self, message: BotMessage) -> String {
        let latest = self.shared.lock().stream.live_numbers().last().copied();
        let Some(number) = latest else {
            panic!("fake DingTalk: no Stream connection is open to push a robot message on");
        };
        self.push_bot_message_on(number, message)
    }

    /// Like [`push_bot_message`](Self::push_bot_message), on connection `connection`
    /// (numbered from 0 in the order connections opened); panics if it is not open.
    pub fn push_bot_message_on(&self, connection: usize, message: BotMessage) -> String {
        let mut state = self.shared.lock();
        let stream = &mut state.stream;
        let (app_key, subscribed) = match stream.connections.get(connection) {
            Some(c) if c.outbox.is_some() => (
                c.app_key.clone(),
                c.subscriptions
                    .iter()
                    .any(|(kind, topic)| kind == "CALLBACK" && topic == BOT_MESSAGE_TOPIC),
            ),
            _ => {
                drop(state);
                panic!("fake DingTalk: Stream connection {connection} is not open");
            }
        };
        if !subscribed {
            drop(state);
            panic!(
                "fake DingTalk: Stream connection {connection} did not subscribe to \
                 CALLBACK {BOT_MESSAGE_TOPIC}: DingTalk would not push robot messages on it"
            );
        }
        let now = now_ms();
        let session = format!("{}{}", random_hex(), random_hex());
        let webhook = format!(
            "http://{}{SESSION_PATH}?session={session}",
            self.shared.addr
        );
        stream.sessions.insert(
            session,
            Session {
                conversation_id: message.conversation_id.clone(),
                expires_ms: now + SESSION_LIFETIME_MS,
            },
        );
        let robot_code = message.robot_code.as_deref().unwrap_or(&app_key);
        let data = message.data(robot_code, &webhook, now);
        stream.push(connection, "CALLBACK", BOT_MESSAGE_TOPIC, &data, false)
    }

    /// Pushes a `SYSTEM` `ping` on every open connection and returns its `opaque`, which
    /// the client's ack must echo in its `data`.
    pub fn push_ping(&self) -> String {
        let opaque = uuid_like();
        let data = json!({ "opaque": opaque });
        let mut state = self.shared.lock();
        for number in state.stream.live_numbers() {
            state.stream.push(number, "SYSTEM", "ping", &data, false);
        }
        opaque
    }

    /// Pushes a `SYSTEM` `disconnect` on every open connection and returns the frames'
    /// message ids; each connection closes once its ack arrives, or after 2 s without.
    pub fn push_disconnect(&self) -> Vec<String> {
        let data = json!({ "reason": "fake DingTalk: the gateway asks the client to reconnect" });
        let mut state = self.shared.lock();
        state
            .stream
            .live_numbers()
            .into_iter()
            .map(|number| {
                state
                    .stream
                    .push(number, "SYSTEM", "disconnect", &data, true)
            })
            .collect()
    }

    /// Ends every open connection abruptly: the TCP streams close without a close frame,
    /// as when the network or the gateway fails.
    pub fn drop_stream_connections(&self) {
        let state = self.shared.lock();
        for connection in &state.stream.connections {
            if let Some(outbox) = &connection.outbox {
                let _ = outbox.send(Push::Drop);
            }
        }
    }

    /// Every ack received so far, in arrival order.
    pub fn stream_acks(&self) -> Vec<StreamAck> {
        self.shared.lock().stream.acks.clone()
    }

    /// Every text received on Stream connections that is not an ack, in arrival order.
    pub fn stream_other_texts(&self) -> Vec<String> {
        self.shared.lock().stream.other_texts.clone()
    }

    /// Waits for the (first) ack of frame `message_id`; `None` on timeout.
    pub async fn wait_for_ack(&self, message_id: &str, timeout: Duration) -> Option<StreamAck> {
        self.wait_for_stream(timeout, |stream| {
            stream
                .acks
                .iter()
                .find(|ack| ack.message_id == message_id)
                .cloned()
        })
        .await
    }

    /// Every reply a session webhook took so far, in arrival order.
    pub fn session_replies(&self) -> Vec<SessionReply> {
        self.shared.lock().stream.replies.clone()
    }

    /// Waits until at least `n` session replies were taken and returns them all; on
    /// timeout, returns those there are.
    pub async fn wait_for_session_replies(&self, n: usize, timeout: Duration) -> Vec<SessionReply> {
        let enough = self
            .wait_for_stream(timeout, |stream| {
                (stream.replies.len() >= n).then(|| stream.replies.clone())
            })
            .await;
        enough.unwrap_or_else(|| self.session_replies())
    }

    /// Makes every session webhook given out so far expired: later replies to them are
    /// refused (errcode 300001), as after `sessionWebhookExpiredTime`.
    pub fn expire_sessions(&self) {
        for session in self.shared.lock().stream.sessions.values_mut() {
            session.expires_ms = 0;
        }
    }

    /// Waits until `check` finds something in the Stream state; `None` on timeout.
    async fn wait_for_stream<T>(
        &self,
        timeout: Duration,
        check: impl Fn(&StreamState) -> Option<T>,
    ) -> Option<T> {
        self.wait_for_state(timeout, |state| check(&state.stream))
            .await
    }
}

/// A random id shaped like a UUID (8-4-4-4-12 hex digits), as the gateway's `opaque`.
fn uuid_like() -> String {
    let hex = format!("{}{}", random_hex(), random_hex());
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}
