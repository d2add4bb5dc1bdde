//! In-process fake of the DingTalk custom-robot API (`POST /robot/send`) for
//! tests and benchmarks over loopback.
//!
//! [`FakeDingTalk`] listens on `127.0.0.1` and answers like the real service:
//! always HTTP 200 with `{"errcode":N,"errmsg":"..."}`, checking in order the
//! Content-Type (43004), the `access_token` (300001), the optional signature
//! (310000), the per-robot rolling rate limit (130101 plus a temporary block),
//! the message body (40035), the content length (460101) and the security
//! keywords (310000). Every request is recorded, in arrival order, so tests
//! can assert on what the client under test sent; [`Mode`] injects faults
//! (HTTP 500, arbitrary errcodes, hanging, refused connections) at runtime.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

use rules::{Answer, Call, RobotState};
use server::{accept_loop, bind};

mod rules;
mod server;

/// Path of the robot API on the fake server.
const PATH: &str = "/robot/send";
/// Fallback poll interval of [`FakeDingTalk::wait_until`].
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
}

impl FakeRobot {
    /// A robot with keyword "HertzBeat", 20 messages per 60 s, a 10 min block and no secret.
    pub fn new(token: &str) -> Self {
        Self {
            token: token.to_owned(),
            secret: None,
            keywords: vec!["HertzBeat".to_owned()],
            limit: 20,
            window: Duration::from_mins(1),
            block_for: Duration::from_mins(10),
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
    /// Keep requests waiting until the mode changes, then answer per the new mode.
    Hang,
    /// Close the listener and all connections; later modes re-bind the same port.
    Refuse,
}

/// One request received by the fake.
#[derive(Clone, Debug)]
pub struct Request {
    /// The `access_token` query parameter ("" when missing).
    pub token: String,
    /// When the request arrived.
    pub at: Instant,
    /// The JSON body (`Value::Null` if it was not valid JSON).
    pub body: Value,
    /// The errcode answered, `None` if the answer was not JSON (HTTP 500, 404, pending, dropped).
    pub errcode: Option<i64>,
    /// HTTP status answered, 0 while pending (hanging) or if the connection was dropped.
    pub http_status: u16,
}

impl Request {
    /// The markdown text or text content of the message, "" otherwise.
    pub fn text(&self) -> String {
        let pointer = match self.body.get("msgtype").and_then(Value::as_str) {
            Some("markdown") => "/markdown/text",
            Some("text") => "/text/content",
            _ => return String::new(),
        };
        self.str_at(pointer)
    }

    /// The markdown title of the message, "" otherwise.
    pub fn title(&self) -> String {
        self.str_at("/markdown/title")
    }

    /// The string at a JSON pointer in the body, "" if absent.
    fn str_at(&self, pointer: &str) -> String {
        self.body
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    }
}

/// A running fake DingTalk server; dropping it shuts the server down.
pub struct FakeDingTalk {
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

impl FakeDingTalk {
    /// Starts a server on an ephemeral 127.0.0.1 port serving these robots.
    pub async fn start(robots: Vec<FakeRobot>) -> FakeDingTalk {
        let listener = bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .expect("bind the fake DingTalk server on 127.0.0.1");
        let addr = listener
            .local_addr()
            .expect("local address of the fake DingTalk server");
        let robots = robots
            .into_iter()
            .map(|robot| (robot.token.clone(), RobotState::new(robot)))
            .collect();
        let shared = Arc::new(Shared {
            addr,
            runtime: tokio::runtime::Handle::current(),
            mode: watch::Sender::new(Mode::Normal),
            changed: Notify::new(),
            state: Mutex::new(State {
                listener: Some(listener),
                connections: 0,
                robots,
                requests: Vec::new(),
            }),
        });
        let accept = tokio::spawn(accept_loop(Arc::clone(&shared)));
        FakeDingTalk { shared, accept }
    }

    /// The robot endpoint, `http://127.0.0.1:PORT/robot/send`.
    pub fn api_url(&self) -> String {
        format!("http://{}{PATH}", self.shared.addr)
    }

    /// TCP connections accepted so far (a pooled client keeps reusing one).
    pub fn connections(&self) -> usize {
        self.shared.lock().connections
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        self.shared.lock().requests.clone()
    }

    /// The requests for `token` that were answered with errcode 0.
    pub fn delivered(&self, token: &str) -> Vec<Request> {
        self.shared
            .lock()
            .requests
            .iter()
            .filter(|r| r.token == token && r.errcode == Some(0))
            .cloned()
            .collect()
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

    /// The most requests for `token` (any outcome) that arrived within one rolling `window`.
    pub fn max_in_any_window(&self, token: &str, window: Duration) -> usize {
        let times: Vec<Instant> = self
            .shared
            .lock()
            .requests
            .iter()
            .filter(|r| r.token == token)
            .map(|r| r.at)
            .collect();
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
}

impl Drop for FakeDingTalk {
    fn drop(&mut self) {
        self.accept.abort();
        self.shared.lock().listener = None;
        // Closes open connections and releases hanging requests without an answer.
        self.shared.mode.send_replace(Mode::Refuse);
    }
}

/// State shared by the handle, the accept loop and the connection tasks.
struct Shared {
    addr: SocketAddr,
    runtime: tokio::runtime::Handle,
    mode: watch::Sender<Mode>,
    /// Signalled whenever a request is recorded or answered.
    changed: Notify,
    state: Mutex<State>,
}

/// Mutable server state.
struct State {
    /// `None` while refusing connections.
    listener: Option<TcpListener>,
    /// Connections accepted so far.
    connections: usize,
    robots: HashMap<String, RobotState>,
    requests: Vec<Request>,
}

impl Shared {
    /// Locks the state, ignoring poisoning (a panicking test must not cascade).
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records a newly arrived request and returns its index.
    fn record(&self, token: String, body: Value) -> usize {
        let index = {
            let mut state = self.lock();
            state.requests.push(Request {
                token,
                at: Instant::now(),
                body,
                errcode: None,
                http_status: 0,
            });
            state.requests.len() - 1
        };
        self.changed.notify_waiters();
        index
    }

    /// Stores the answer given to the request at `index`.
    fn answered(&self, index: usize, answer: &Answer) {
        if let Some(request) = self.lock().requests.get_mut(index) {
            request.errcode = answer.errcode();
            request.http_status = answer.status().as_u16();
        }
        self.changed.notify_waiters();
    }

    /// Applies DingTalk's rules to a request in [`Mode::Normal`].
    fn evaluate(&self, call: &Call) -> Answer {
        match call.check(&mut self.lock().robots, Instant::now()) {
            Ok(()) => Answer::Json(0, "ok".to_owned()),
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
mod tests;
