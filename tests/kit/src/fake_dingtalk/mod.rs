//! In-process fake of the DingTalk custom-robot API (`POST /robot/send`), of the
//! OpenAPI calls of application robots (`openapi.rs`), of their interactive cards
//! (`cards.rs`), of their DINGs and one-to-one messages (`ding.rs`) and of their Stream
//! mode (`stream.rs`) for tests and benchmarks over loopback.
//!
//! [`FakeDingTalk`] listens on `127.0.0.1` and answers like the real service: always
//! HTTP 200 with `{"errcode":N,"errmsg":"..."}`, checking in order the Content-Type
//! (43004), the `access_token` (300001), the optional signature (310000), the per-robot
//! rolling rate limit (130101 plus a temporary block), the message body (40035), its size
//! (460101: title and text together, in UTF-8 bytes) and the security keywords (310000).
//! Every request is recorded, in arrival order, so tests can assert on what the client
//! under test sent; [`Mode`] injects faults (HTTP 500, arbitrary errcodes, hanging,
//! refused connections) at runtime. Under load, [`FakeDingTalk::start_counting`] keeps no
//! request, so memory stays flat: it counts them and hands each delivered one to a
//! callback.
//!
//! `rules.rs` holds DingTalk's webhook checks, `openapi.rs` its OpenAPI, `cards.rs` its
//! interactive cards and `ding.rs` its DINGs and one-to-one messages (no I/O), `server.rs`
//! the listening and serving. `stream.rs` is Stream mode: the gateway's connection open,
//! its WebSocket (on a port of its own) pushing robot messages, pings and disconnects and
//! recording the acks, and the session webhooks robot messages carry.
//! The fake knows DingTalk, never the bridge: what it checks is what DingTalk documents
//! or was seen to do.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use cards::{CARD_SEND_PATH, CARD_UPDATE_PATH, Cards};
use ding::Dings;
use openapi::{GROUP_PATH, OpenApi, TOKEN_PATH};
use rules::{Answer, Call, MAX_MESSAGE_BYTES, RobotState};
use server::{accept_loop, bind};
use stream::StreamState;
use tls::Transport;

pub use cards::FakeCard;
pub use ding::{FakeDing, FakeOneToOneMessage};
pub use openapi::{FakeApp, MAX_MSG_PARAM_BYTES};
pub use stream::{BOT_MESSAGE_TOPIC, BotMessage, SessionReply, StreamAck, StreamOpen};
pub use tls::FakeTls;

mod cards;
mod ding;
mod openapi;
mod rules;
mod server;
mod stream;
mod tls;

/// Path of the robot API on the fake server.
const PATH: &str = "/robot/send";
/// Fallback poll interval of the waits on requests.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// One custom robot (webhook) known to the fake.
#[derive(Clone, Debug)]
pub struct FakeRobot {
    /// Value of the `access_token` query parameter that addresses this robot.
    pub token: String,
    /// Signing secret; when set, valid `timestamp` and `sign` parameters are required.
    pub secret: Option<String>,
    /// Security keywords; when non-empty, at least one must appear in the message.
    pub keywords: Vec<String>,
    /// Requests allowed per rolling `window`.
    pub limit: u32,
    /// Length of the rolling rate-limit window.
    pub window: Duration,
    /// How long the robot answers 130101 to everything after exceeding `limit`.
    pub block_for: Duration,
    /// Largest message accepted, in UTF-8 bytes of the markdown title and text together
    /// (of the content, for a text message).
    pub max_bytes: usize,
}

impl FakeRobot {
    /// A robot with keyword "HertzBeat", 20 messages per 60 s, a 10 min block, messages of
    /// at most 20000 bytes and no secret.
    pub fn new(token: &str) -> Self {
        Self {
            token: token.to_owned(),
            secret: None,
            keywords: vec!["HertzBeat".to_owned()],
            limit: 20,
            window: Duration::from_mins(1),
            block_for: Duration::from_mins(10),
            max_bytes: MAX_MESSAGE_BYTES,
        }
    }

    /// Requires requests to be signed with `secret`.
    pub fn secret(mut self, secret: &str) -> Self {
        self.secret = Some(secret.to_owned());
        self
    }

    /// Replaces the security keywords (an empty slice disables the check).
    pub fn keywords(mut self, keywords: &[&str]) -> Self {
        self.keywords = keywords.iter().map(|&k| k.to_owned()).collect();
        self
    }

    /// Allows `limit` requests per rolling `window`.
    pub fn rate(mut self, limit: u32, window: Duration) -> Self {
        self.limit = limit;
        self.window = window;
        self
    }

    /// Accepts messages of at most `max_bytes`, title and text together.
    pub fn max_bytes(mut self, max_bytes: usize) -> Self {
        self.max_bytes = max_bytes;
        self
    }
}

/// How the fake answers requests; switch with [`FakeDingTalk::set_mode`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Behave like the real API.
    Normal,
    /// Answer HTTP 500 with body "internal error".
    Http500,
    /// Answer HTTP 200 with this errcode and errmsg.
    Errcode(i64, String),
    /// Answer group messages, interactive cards, DINGs (and their read statuses) and
    /// one-to-one messages of application robots with this HTTP status and OpenAPI
    /// `code`; other calls as in [`Mode::Normal`].
    OpenApiError(u16, String),
    /// Keep requests waiting until the mode changes, then answer per the new mode.
    Hang,
    /// Close the listener and all connections; later modes re-bind the same port.
    Refuse,
}

/// One request received by the fake.
#[derive(Clone, Debug)]
pub struct Request {
    /// The `access_token` query parameter, or the OpenAPI's token header ("" when
    /// missing).
    pub token: String,
    /// The path it was sent to.
    pub path: String,
    /// When the request arrived.
    pub at: Instant,
    /// The JSON body (`Value::Null` if it was not valid JSON).
    pub body: Value,
    /// The `msgParam` of a group message, parsed from its JSON string; `None` otherwise.
    pub msg_param: Option<Value>,
    /// The errcode answered, `None` if the answer was not JSON (HTTP 500, 404, pending, dropped).
    pub errcode: Option<i64>,
    /// HTTP status answered, 0 while pending (hanging) or if the connection was dropped.
    pub http_status: u16,
}

impl Request {
    /// A request as it arrived `at`, not answered yet.
    fn arrived(call: &Call, at: Instant) -> Request {
        let msg_param = call
            .body
            .get("msgParam")
            .and_then(Value::as_str)
            .and_then(|param| serde_json::from_str(param).ok());
        Request {
            token: call.token().to_owned(),
            path: call.path.clone(),
            at,
            body: call.body.clone(),
            msg_param,
            errcode: None,
            http_status: 0,
        }
    }

    /// The markdown or action card text, or the text content, of the message; ""
    /// otherwise.
    pub fn text(&self) -> &str {
        if let Some(param) = &self.msg_param {
            let text = param.get("text").or_else(|| param.get("content"));
            return text.and_then(Value::as_str).unwrap_or_default();
        }
        let pointer = match self.body.get("msgtype").and_then(Value::as_str) {
            Some("markdown") => "/markdown/text",
            Some("actionCard") => "/actionCard/text",
            Some("text") => "/text/content",
            _ => return "",
        };
        self.str_at(pointer)
    }

    /// The markdown or action card title of the message, "" otherwise.
    pub fn title(&self) -> &str {
        if let Some(param) = &self.msg_param {
            return param
                .get("title")
                .and_then(Value::as_str)
                .unwrap_or_default();
        }
        match self.body.get("msgtype").and_then(Value::as_str) {
            Some("actionCard") => self.str_at("/actionCard/title"),
            _ => self.str_at("/markdown/title"),
        }
    }

    /// Whether the message was delivered: errcode 0, or a group message the OpenAPI took.
    pub fn delivered(&self) -> bool {
        self.errcode == Some(0) || (self.path == GROUP_PATH && self.http_status == 200)
    }

    /// Whether it asked the OpenAPI for an access token.
    pub fn is_token_request(&self) -> bool {
        self.path == TOKEN_PATH
    }

    /// Whether it sent an interactive card (whatever the answer).
    pub fn is_card_send(&self) -> bool {
        self.path == CARD_SEND_PATH
    }

    /// Whether it updated an interactive card (whatever the answer).
    pub fn is_card_update(&self) -> bool {
        self.path == CARD_UPDATE_PATH
    }

    /// The string at a JSON pointer in the body, "" if absent.
    fn str_at(&self, pointer: &str) -> &str {
        self.body
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_default()
    }
}

/// How many requests the fake has answered, whether it records them or only counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Requests answered, whatever the answer (a hanging one once it is answered).
    pub answered: u64,
    /// Those answered errcode 0: messages DingTalk would have shown.
    pub delivered: u64,
}

/// Called with every request answered errcode 0 by a counting fake.
type OnDelivered = Box<dyn Fn(&Request) + Send + Sync>;

/// A running fake DingTalk server; dropping it shuts the server down.
pub struct FakeDingTalk {
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
    /// The accept loop of Stream mode's WebSocket.
    stream_accept: JoinHandle<()>,
}

impl FakeDingTalk {
    /// Starts a server on an ephemeral 127.0.0.1 port serving these robots, recording
    /// every request.
    pub async fn start(robots: Vec<FakeRobot>) -> FakeDingTalk {
        FakeDingTalk::launch(robots, None, None)
    }

    /// Like [`start`](Self::start), serving HTTPS (and `wss://` on the Stream port) as
    /// `tls` says: its URLs name `tls.host`.
    pub async fn start_https(robots: Vec<FakeRobot>, tls: FakeTls) -> FakeDingTalk {
        FakeDingTalk::launch(robots, None, Some(tls))
    }

    /// Starts a server for load: like [`start`](Self::start), but it keeps no request, so
    /// its memory stays flat however many arrive. It counts them ([`counts`](Self::counts))
    /// and calls `on_delivered` with each one answered errcode 0, before the answer goes
    /// out. [`requests`](Self::requests) and everything built on it panic.
    pub async fn start_counting(
        robots: Vec<FakeRobot>,
        on_delivered: impl Fn(&Request) + Send + Sync + 'static,
    ) -> FakeDingTalk {
        FakeDingTalk::launch(robots, Some(Box::new(on_delivered)), None)
    }

    fn launch(
        robots: Vec<FakeRobot>,
        on_delivered: Option<OnDelivered>,
        tls: Option<FakeTls>,
    ) -> FakeDingTalk {
        let listener = bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .expect("bind the fake DingTalk server on 127.0.0.1");
        let addr = listener
            .local_addr()
            .expect("local address of the fake DingTalk server");
        let stream_listener = bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .expect("bind the fake DingTalk's Stream port on 127.0.0.1");
        let stream_addr = stream_listener
            .local_addr()
            .expect("local address of the fake DingTalk's Stream port");
        let robots = robots
            .into_iter()
            .map(|robot| (robot.token.clone(), RobotState::new(robot)))
            .collect();
        let transport = Transport::new(tls.as_ref());
        let host = tls.map_or_else(|| addr.ip().to_string(), |tls| tls.host);
        let ws_scheme = transport.websocket_scheme();
        let ws_origin = format!("{ws_scheme}://{host}:{}", stream_addr.port());
        let shared = Arc::new(Shared {
            addr,
            host,
            transport,
            runtime: tokio::runtime::Handle::current(),
            mode: watch::Sender::new(Mode::Normal),
            changed: Notify::new(),
            on_delivered,
            state: Mutex::new(State {
                listener: Some(listener),
                connections: 0,
                robots,
                openapi: OpenApi::default(),
                cards: Cards::default(),
                dings: Dings::default(),
                stream: StreamState::new(ws_origin),
                requests: Vec::new(),
                counts: Counts::default(),
                last_activity: Instant::now(),
            }),
        });
        let accept = tokio::spawn(accept_loop(Arc::clone(&shared)));
        let stream_accept = tokio::spawn(stream::accept_loop(Arc::clone(&shared), stream_listener));
        FakeDingTalk {
            shared,
            accept,
            stream_accept,
        }
    }

    /// The robot endpoint, `http://127.0.0.1:PORT/robot/send` (`https://HOST:PORT/...`
    /// for an HTTPS fake).
    pub fn api_url(&self) -> String {
        format!("{}{PATH}", self.openapi_url())
    }

    /// The OpenAPI's address for application robots, `http://127.0.0.1:PORT`
    /// (`https://HOST:PORT` for an HTTPS fake).
    pub fn openapi_url(&self) -> String {
        let shared = &self.shared;
        let scheme = shared.transport.scheme();
        format!("{scheme}://{}:{}", shared.host, shared.addr.port())
    }

    /// Serves an internal application and its robots from now on.
    pub fn add_app(&self, app: FakeApp) {
        self.shared.lock().openapi.add(app);
    }

    /// Deletes the webhook robot of `token`, as removing it from its group does: its
    /// requests are answered 300001 "token is not exist" from now on.
    pub fn delete_robot(&self, token: &str) {
        self.shared.lock().robots.remove(token);
    }

    /// Blocks the webhook robot of `token` for its `block_for` from now, as DingTalk does
    /// a robot that sent too fast: 130101 to everything until then.
    pub fn block_robot(&self, token: &str) {
        if let Some(robot) = self.shared.lock().robots.get_mut(token) {
            robot.block(Instant::now());
        }
    }

    /// Makes every access token given out so far invalid, as if DingTalk had revoked them.
    pub fn revoke_tokens(&self) {
        self.shared.lock().openapi.revoke_tokens();
    }

    /// The group messages delivered to the group `open_conversation_id`.
    pub fn delivered_to_group(&self, open_conversation_id: &str) -> Vec<Request> {
        self.recorded(|requests| {
            requests
                .iter()
                .filter(|r| r.path == GROUP_PATH && r.delivered())
                .filter(|r| r.body["openConversationId"] == open_conversation_id)
                .cloned()
                .collect()
        })
    }

    /// TCP connections accepted so far (a pooled client keeps reusing one).
    pub fn connections(&self) -> usize {
        self.shared.lock().connections
    }

    /// How many requests were answered, and how many of them delivered.
    pub fn counts(&self) -> Counts {
        self.shared.lock().counts
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        self.recorded(<[Request]>::to_vec)
    }

    /// The requests for `token` that were answered with errcode 0.
    pub fn delivered(&self, token: &str) -> Vec<Request> {
        self.recorded(|requests| {
            requests
                .iter()
                .filter(|r| r.token == token && r.errcode == Some(0))
                .cloned()
                .collect()
        })
    }

    /// Switches the failure mode; takes effect for the listener before returning.
    pub fn set_mode(&self, mode: Mode) {
        let mut state = self.shared.lock();
        if mode == Mode::Refuse {
            state.listener = None;
        } else if state.listener.is_none() {
            state.listener = Some(self.shared.rebind());
        }
        self.shared.mode.send_replace(mode);
    }

    /// Waits until `cond` holds for the requests and returns them; panics with `what` on timeout.
    pub async fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        cond: impl Fn(&[Request]) -> bool,
    ) -> Vec<Request> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let mut notified = std::pin::pin!(self.shared.changed.notified());
            notified.as_mut().enable();
            let requests = self.requests();
            if cond(&requests) {
                return requests;
            }
            if tokio::time::Instant::now() >= deadline {
                panic!(
                    "timed out after {timeout:?} waiting until {what}; {} request(s) seen:\n{}",
                    requests.len(),
                    summary(&requests)
                );
            }
            tokio::select! {
                () = notified => {}
                () = tokio::time::sleep(POLL_INTERVAL) => {}
                () = tokio::time::sleep_until(deadline) => {}
            }
        }
    }

    /// Waits until `quiet` has passed with no request arriving or being answered, counted
    /// from this call or from the latest request, whichever is later, and returns every
    /// request. Counting "exactly once" after it is honest: a duplicate sent within
    /// `quiet` would be among them. Panics if requests keep coming for `timeout`.
    pub async fn wait_until_quiet(&self, quiet: Duration, timeout: Duration) -> Vec<Request> {
        let called = Instant::now();
        let deadline = called + timeout;
        loop {
            let mut notified = std::pin::pin!(self.shared.changed.notified());
            notified.as_mut().enable();
            let quiet_from = self.shared.lock().last_activity.max(called);
            let now = Instant::now();
            if now >= quiet_from + quiet {
                return self.requests();
            }
            if now >= deadline {
                let requests = self.requests();
                panic!(
                    "not quiet for {quiet:?} within {timeout:?}; {} request(s) seen:\n{}",
                    requests.len(),
                    summary(&requests)
                );
            }
            let wake = (quiet_from + quiet).min(deadline);
            tokio::select! {
                () = notified => {}
                () = tokio::time::sleep_until(wake.into()) => {}
            }
        }
    }

    /// The most requests for `token` (any outcome) that arrived within one rolling `window`.
    pub fn max_in_any_window(&self, token: &str, window: Duration) -> usize {
        let times: Vec<Instant> = self.recorded(|requests| {
            requests
                .iter()
                .filter(|r| r.token == token)
                .map(|r| r.at)
                .collect()
        });
        let mut start = 0;
        let mut max = 0;
        for (end, &at) in times.iter().enumerate() {
            while at.duration_since(times[start]) >= window {
                start += 1;
            }
            max = max.max(end + 1 - start);
        }
        max
    }

    /// Waits until `check` finds something in the state, looking again whenever a request
    /// is recorded or answered; `None` on timeout.
    async fn wait_for_state<T>(
        &self,
        timeout: Duration,
        check: impl Fn(&State) -> Option<T>,
    ) -> Option<T> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let mut notified = std::pin::pin!(self.shared.changed.notified());
            notified.as_mut().enable();
            let found = check(&self.shared.lock());
            if found.is_some() {
                return found;
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::select! {
                () = notified => {}
                () = tokio::time::sleep(POLL_INTERVAL) => {}
                () = tokio::time::sleep_until(deadline) => {}
            }
        }
    }

    /// Runs `read` on the recorded requests; panics for a fake that only counts.
    fn recorded<T>(&self, read: impl FnOnce(&[Request]) -> T) -> T {
        assert!(
            self.shared.records(),
            "this fake DingTalk only counts (start_counting): it keeps no requests"
        );
        read(&self.shared.lock().requests)
    }
}

impl Drop for FakeDingTalk {
    fn drop(&mut self) {
        self.accept.abort();
        self.stream_accept.abort();
        {
            let mut state = self.shared.lock();
            state.listener = None;
            state.stream.close_all();
        }
        // Closes open connections and releases hanging requests without an answer.
        self.shared.mode.send_replace(Mode::Refuse);
    }
}

/// State shared by the handle, the accept loop and the connection tasks.
struct Shared {
    addr: SocketAddr,
    /// The host name in its URLs.
    host: String,
    /// Plain, or behind TLS.
    transport: Transport,
    runtime: tokio::runtime::Handle,
    mode: watch::Sender<Mode>,
    /// Signalled whenever a request is recorded or answered.
    changed: Notify,
    /// Set for a fake that only counts; `None` for one that records.
    on_delivered: Option<OnDelivered>,
    state: Mutex<State>,
}

/// Mutable server state.
struct State {
    /// `None` while refusing connections.
    listener: Option<TcpListener>,
    /// Connections accepted so far.
    connections: usize,
    robots: HashMap<String, RobotState>,
    openapi: OpenApi,
    cards: Cards,
    dings: Dings,
    stream: StreamState,
    /// Every request so far, in arrival order; always empty for a fake that only counts.
    requests: Vec<Request>,
    counts: Counts,
    /// When the latest request arrived or was answered, or the fake started.
    last_activity: Instant,
}

impl Shared {
    /// Locks the state, ignoring poisoning (a panicking test must not cascade).
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether requests are recorded (not only counted).
    fn records(&self) -> bool {
        self.on_delivered.is_none()
    }

    /// Records a request that arrived `at` and returns its index; `None`, and no copy of
    /// the body, for a fake that only counts.
    fn record(&self, call: &Call, at: Instant) -> Option<usize> {
        if !self.records() {
            return None;
        }
        let index = {
            let mut state = self.lock();
            state.requests.push(Request::arrived(call, at));
            state.last_activity = state.last_activity.max(at);
            state.requests.len() - 1
        };
        self.changed.notify_waiters();
        Some(index)
    }

    /// Counts the answer given to a request, and stores it with the request at `index`.
    fn answered(&self, index: Option<usize>, answer: &Answer) {
        {
            let mut state = self.lock();
            state.counts.answered += 1;
            if answer.delivered() {
                state.counts.delivered += 1;
            }
            state.last_activity = Instant::now();
            if let Some(request) = index.and_then(|index| state.requests.get_mut(index)) {
                request.errcode = answer.errcode();
                request.http_status = answer.status().as_u16();
            }
        }
        self.changed.notify_waiters();
    }

    /// Applies DingTalk's rules to a request in [`Mode::Normal`].
    fn evaluate(&self, call: &Call) -> Answer {
        let mut state = self.lock();
        let now = Instant::now();
        if let Some(answer) = stream::answer(&mut state, call) {
            return answer;
        }
        if let Some(answer) = cards::answer(&mut state, call, now) {
            return answer;
        }
        if let Some(answer) = ding::answer(&mut state, call, now) {
            return answer;
        }
        if let Some(answer) = state.openapi.answer(call, now) {
            return answer;
        }
        match call.check(&mut state.robots, now) {
            Ok(()) => Answer::OK,
            Err(answer) => answer,
        }
    }
}

/// One line per request, for timeout messages.
fn summary(requests: &[Request]) -> String {
    let Some(first) = requests.first() else {
        return "  (none)".to_owned();
    };
    requests
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let text: String = r.text().chars().take(80).collect();
            format!(
                "  #{i} +{}ms token={:?} http={} errcode={:?} title={:?} text={text:?}",
                r.at.duration_since(first.at).as_millis(),
                r.token,
                r.http_status,
                r.errcode,
                r.title(),
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod cards_tests;
#[cfg(test)]
mod ding_tests;
#[cfg(test)]
mod openapi_tests;
#[cfg(test)]
mod stream_tests;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;
