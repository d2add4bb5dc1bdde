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

use std::collections::{HashMap, VecDeque};
use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;

/// Path of the robot API on the fake server.
const PATH: &str = "/robot/send";
/// Largest accepted message content, in bytes.
const MAX_CONTENT_BYTES: usize = 20_000;
/// Largest accepted distance between `timestamp` and the server clock.
const MAX_CLOCK_SKEW_MS: u64 = 60 * 60 * 1000;
/// Fallback poll interval of [`FakeDingTalk::wait_until`].
const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// DingTalk's (fixed) message for errcode 130101.
const TOO_FAST: &str = "send too fast, exceed 20 times per minute";

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

    /// Binds the original address again after [`Mode::Refuse`].
    fn rebind(&self) -> TcpListener {
        let _runtime = self.runtime.enter();
        let mut attempts = 0;
        loop {
            match bind(self.addr) {
                Ok(listener) => return listener,
                Err(err) if attempts < 50 => {
                    attempts += 1;
                    eprintln!("fake DingTalk: re-binding {} failed: {err}", self.addr);
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(err) => panic!("fake DingTalk: cannot re-bind {}: {err}", self.addr),
            }
        }
    }

    /// Polls the current listener; pending while there is none.
    fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(TcpStream, SocketAddr)>> {
        match &self.lock().listener {
            Some(listener) => listener.poll_accept(cx),
            None => Poll::Pending,
        }
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

/// Binds a listener with `SO_REUSEADDR` (set by std on Unix) so the port can be re-bound.
fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let listener = std::net::TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    TcpListener::from_std(listener)
}

/// Per-robot configuration and rate-limit bookkeeping.
struct RobotState {
    robot: FakeRobot,
    /// Arrival times of the requests counted in the current window.
    counted: VecDeque<Instant>,
    /// Start of the current block, if any.
    blocked_since: Option<Instant>,
}

impl RobotState {
    fn new(robot: FakeRobot) -> Self {
        Self {
            robot,
            counted: VecDeque::new(),
            blocked_since: None,
        }
    }

    /// Counts a request against the rate limit, blocking the robot when it is exceeded.
    fn admit(&mut self, now: Instant) -> Result<(), Answer> {
        if let Some(since) = self.blocked_since {
            if now.duration_since(since) < self.robot.block_for {
                return Err(fail(130101, TOO_FAST));
            }
            self.blocked_since = None;
        }
        while self
            .counted
            .front()
            .is_some_and(|&at| now.duration_since(at) >= self.robot.window)
        {
            self.counted.pop_front();
        }
        if self.counted.len() >= self.robot.limit as usize {
            self.blocked_since = Some(now);
            return Err(fail(130101, TOO_FAST));
        }
        self.counted.push_back(now);
        Ok(())
    }
}

/// The parts of an HTTP request the rules look at.
struct Call {
    method: Method,
    path: String,
    content_type: Option<String>,
    query: Vec<(String, String)>,
    body: Value,
}

impl Call {
    /// The first value of a (decoded) query parameter.
    fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// Runs DingTalk's checks in order; `Err` carries the rejection.
    fn check(&self, robots: &mut HashMap<String, RobotState>, now: Instant) -> Result<(), Answer> {
        if self.path != PATH {
            return Err(Answer::Plain(StatusCode::NOT_FOUND, "not found"));
        }
        if self.method != Method::POST {
            return Err(fail(43002, "require POST method"));
        }
        if !self.content_type.as_deref().is_some_and(is_json) {
            return Err(fail(43004, "invalid HTTP HEADER Content-Type"));
        }
        let robot = self
            .param("access_token")
            .and_then(|token| robots.get_mut(token))
            .ok_or_else(|| fail(300001, "token is not exist"))?;
        if let Some(secret) = &robot.robot.secret {
            check_sign(secret, self.param("timestamp"), self.param("sign"))?;
        }
        robot.admit(now)?;
        let message =
            Message::parse(&self.body).ok_or_else(|| fail(40035, "missing parameter json"))?;
        if message.content.len() > MAX_CONTENT_BYTES {
            return Err(fail(460101, "message too long"));
        }
        let keywords = &robot.robot.keywords;
        if !keywords.is_empty() && !keywords.iter().any(|k| message.contains(k)) {
            return Err(fail(310000, "keywords not in content"));
        }
        Ok(())
    }
}

/// The checked fields of a supported message.
struct Message<'a> {
    title: &'a str,
    content: &'a str,
}

impl<'a> Message<'a> {
    /// Extracts a `markdown` or `text` message; `None` if malformed or unsupported.
    fn parse(body: &'a Value) -> Option<Self> {
        match body.get("msgtype")?.as_str()? {
            "markdown" => {
                let markdown = body.get("markdown")?;
                Some(Self {
                    title: markdown.get("title")?.as_str()?,
                    content: markdown.get("text")?.as_str()?,
                })
            }
            "text" => Some(Self {
                title: "",
                content: body.get("text")?.get("content")?.as_str()?,
            }),
            _ => None,
        }
    }

    /// Whether the title or content contains `keyword`.
    fn contains(&self, keyword: &str) -> bool {
        self.title.contains(keyword) || self.content.contains(keyword)
    }
}

/// Whether a Content-Type header value is `application/json`, parameters allowed.
fn is_json(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

/// Checks `timestamp` (within an hour of now) and `sign` for a robot with `secret`.
fn check_sign(secret: &str, timestamp: Option<&str>, sign: Option<&str>) -> Result<(), Answer> {
    let timestamp = timestamp
        .filter(|ts| {
            ts.parse::<i64>()
                .is_ok_and(|ms| ms.abs_diff(now_ms()) <= MAX_CLOCK_SKEW_MS)
        })
        .ok_or_else(|| fail(310000, "invalid timestamp"))?;
    match (sign, expected_sign(timestamp, secret)) {
        (Some(sign), Some(expected)) if sign == expected => Ok(()),
        _ => Err(fail(310000, "sign not match")),
    }
}

/// base64(HMAC-SHA256(secret, "{timestamp}\n{secret}")), as DingTalk computes it.
fn expected_sign(timestamp: &str, secret: &str) -> Option<String> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).ok()?;
    mac.update(format!("{timestamp}\n{secret}").as_bytes());
    Some(BASE64.encode(mac.finalize().into_bytes()))
}

/// Milliseconds since the Unix epoch.
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// An answer to a request.
enum Answer {
    /// HTTP 200 with `{"errcode":N,"errmsg":"..."}`.
    Json(i64, String),
    /// A plain-text answer with this status.
    Plain(StatusCode, &'static str),
}

impl Answer {
    fn errcode(&self) -> Option<i64> {
        match self {
            Answer::Json(code, _) => Some(*code),
            Answer::Plain(..) => None,
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            Answer::Json(..) => StatusCode::OK,
            Answer::Plain(status, _) => *status,
        }
    }

    fn into_response(self) -> hyper::Response<Full<Bytes>> {
        let status = self.status();
        let (body, content_type) = match self {
            Answer::Json(errcode, errmsg) => (
                json!({ "errcode": errcode, "errmsg": errmsg }).to_string(),
                "application/json",
            ),
            Answer::Plain(_, text) => (text.to_owned(), "text/plain"),
        };
        let mut response = hyper::Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        response
    }
}

/// A DingTalk error answer.
fn fail(errcode: i64, errmsg: &str) -> Answer {
    Answer::Json(errcode, errmsg.to_owned())
}

/// Accepts connections from whichever listener is current until aborted.
async fn accept_loop(shared: Arc<Shared>) {
    let mut mode = shared.mode.subscribe();
    loop {
        mode.borrow_and_update();
        let accepted = tokio::select! {
            accepted = poll_fn(|cx| shared.poll_accept(cx)) => accepted,
            changed = mode.changed() => match changed {
                // The listener may have been replaced: poll the current one.
                Ok(()) => continue,
                Err(_) => return,
            },
        };
        match accepted {
            Ok((stream, _)) => {
                shared.lock().connections += 1;
                tokio::spawn(serve_connection(Arc::clone(&shared), stream));
            }
            Err(err) => {
                eprintln!("fake DingTalk: accept failed: {err}");
                tokio::time::sleep(POLL_INTERVAL).await;
            }
        }
    }
}

/// Serves one (keep-alive) connection until it ends or the fake starts refusing.
async fn serve_connection(shared: Arc<Shared>, stream: TcpStream) {
    let mut mode = shared.mode.subscribe();
    let service = {
        let shared = Arc::clone(&shared);
        service_fn(move |request| handle(Arc::clone(&shared), request))
    };
    let connection = http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        // Errors here are clients going away, which tests do on purpose.
        _ = connection => {}
        _ = mode.wait_for(|mode| *mode == Mode::Refuse) => {}
    }
}

/// Records and answers one request according to the current mode.
async fn handle(
    shared: Arc<Shared>,
    request: hyper::Request<Incoming>,
) -> Result<hyper::Response<Full<Bytes>>, io::Error> {
    let (parts, body) = request.into_parts();
    let body = body.collect().await.map_err(io::Error::other)?.to_bytes();
    let query: Vec<(String, String)> =
        url::form_urlencoded::parse(parts.uri.query().unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let call = Call {
        method: parts.method,
        path: parts.uri.path().to_owned(),
        content_type: parts
            .headers
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        query,
    };
    let token = call.param("access_token").unwrap_or_default().to_owned();
    let index = shared.record(token, call.body.clone());

    let mode = match shared.mode.subscribe().wait_for(|m| *m != Mode::Hang).await {
        Ok(mode) => mode.clone(),
        Err(_) => Mode::Refuse,
    };
    let answer = match mode {
        Mode::Normal => shared.evaluate(&call),
        Mode::Http500 => Answer::Plain(StatusCode::INTERNAL_SERVER_ERROR, "internal error"),
        Mode::Errcode(errcode, errmsg) => Answer::Json(errcode, errmsg),
        Mode::Hang | Mode::Refuse => {
            // Makes hyper drop the connection without answering.
            return Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "fake DingTalk is refusing connections",
            ));
        }
    };
    shared.answered(index, &answer);
    Ok(answer.into_response())
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
mod tests {
    use super::*;

    const TOKEN: &str = "tok";
    const SIGNED: &str = "signed";
    const SECRET: &str = "SECb90923e19e58b466481e9e7b7a5b4f108a4531abde590ad3967fb29f0eae5c68";
    const WAIT: Duration = Duration::from_secs(5);

    /// A reqwest client that never goes through a proxy.
    fn client() -> reqwest::Client {
        let _ = rustls::crypto::ring::default_provider().install_default();
        reqwest::Client::builder().no_proxy().build().unwrap()
    }

    /// A markdown message body.
    fn markdown(title: &str, text: &str) -> Value {
        json!({ "msgtype": "markdown", "markdown": { "title": title, "text": text } })
    }

    /// The URL addressing robot `token`.
    fn url_for(fake: &FakeDingTalk, token: &str) -> String {
        format!("{}?access_token={token}", fake.api_url())
    }

    /// A correctly encoded signed URL for `token`.
    fn signed_url(fake: &FakeDingTalk, token: &str, timestamp: &str, sign: &str) -> String {
        let mut url = url::Url::parse(&fake.api_url()).unwrap();
        url.query_pairs_mut()
            .append_pair("access_token", token)
            .append_pair("timestamp", timestamp)
            .append_pair("sign", sign);
        url.to_string()
    }

    /// POSTs `body` as JSON and returns the HTTP status and errcode.
    async fn post(client: &reqwest::Client, url: &str, body: &Value) -> (u16, i64, String) {
        let response = client.post(url).json(body).send().await.unwrap();
        parse(response).await
    }

    /// The HTTP status, errcode and errmsg of a DingTalk answer.
    async fn parse(response: reqwest::Response) -> (u16, i64, String) {
        let status = response.status().as_u16();
        let answer: Value = response.json().await.unwrap();
        (
            status,
            answer["errcode"].as_i64().unwrap(),
            answer["errmsg"].as_str().unwrap().to_owned(),
        )
    }

    #[test]
    fn sign_matches_known_vector() {
        assert_eq!(
            expected_sign("1582163555000", SECRET).as_deref(),
            Some("BQKsG+QOCl+bYJOLc6pxDHxjVquzlZPWgvRzeN2J5zY=")
        );
    }

    #[tokio::test]
    async fn delivers_markdown_and_text() {
        let fake = FakeDingTalk::start(vec![FakeRobot::new(TOKEN)]).await;
        let client = client();
        let url = url_for(&fake, TOKEN);

        let answer = post(&client, &url, &markdown("[HertzBeat] down", "**body**")).await;
        assert_eq!(answer, (200, 0, "ok".to_owned()));

        let text = json!({ "msgtype": "text", "text": { "content": "HertzBeat text" } });
        let response = client
            .post(&url)
            .header("Content-Type", "application/json; charset=utf-8")
            .body(text.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(parse(response).await, (200, 0, "ok".to_owned()));

        let delivered = fake.delivered(TOKEN);
        assert_eq!(delivered.len(), 2);
        assert_eq!(delivered[0].title(), "[HertzBeat] down");
        assert_eq!(delivered[0].text(), "**body**");
        assert_eq!(delivered[1].title(), "");
        assert_eq!(delivered[1].text(), "HertzBeat text");
        assert_eq!(delivered[1].http_status, 200);
        assert_eq!(fake.requests().len(), 2);
    }

    #[tokio::test]
    async fn rejects_wrong_content_type() {
        let fake = FakeDingTalk::start(vec![FakeRobot::new(TOKEN)]).await;
        let client = client();
        let body = markdown("HertzBeat", "x").to_string();
        for content_type in [Some("text/plain"), Some("application/jsonx"), None] {
            let mut request = client.post(url_for(&fake, TOKEN)).body(body.clone());
            if let Some(content_type) = content_type {
                request = request.header("Content-Type", content_type);
            }
            let answer = parse(request.send().await.unwrap()).await;
            let expected = (200, 43004, "invalid HTTP HEADER Content-Type".to_owned());
            assert_eq!(answer, expected, "{content_type:?}");
        }
        assert!(fake.delivered(TOKEN).is_empty());
    }

    #[tokio::test]
    async fn rejects_unknown_or_missing_token() {
        let fake = FakeDingTalk::start(vec![FakeRobot::new(TOKEN)]).await;
        let client = client();
        let body = markdown("HertzBeat", "x");
        for url in [url_for(&fake, "other"), fake.api_url()] {
            let answer = post(&client, &url, &body).await;
            assert_eq!(
                answer,
                (200, 300001, "token is not exist".to_owned()),
                "{url}"
            );
        }
        assert_eq!(fake.requests()[0].token, "other");
        assert_eq!(fake.requests()[1].token, "");
    }

    #[tokio::test]
    async fn checks_signature() {
        let fake = FakeDingTalk::start(vec![FakeRobot::new(SIGNED).secret(SECRET)]).await;
        let client = client();
        let body = markdown("HertzBeat", "x");
        let now = now_ms().to_string();
        let good = expected_sign(&now, SECRET).unwrap();

        let answer = post(&client, &signed_url(&fake, SIGNED, &now, &good), &body).await;
        assert_eq!(answer, (200, 0, "ok".to_owned()));

        let sign_not_match = (200, 310000, "sign not match".to_owned());
        let wrong = expected_sign(&now, "SECother").unwrap();
        let answer = post(&client, &signed_url(&fake, SIGNED, &now, &wrong), &body).await;
        assert_eq!(answer, sign_not_match);
        let url = format!("{}&timestamp={now}", url_for(&fake, SIGNED));
        assert_eq!(post(&client, &url, &body).await, sign_not_match);

        let invalid_timestamp = (200, 310000, "invalid timestamp".to_owned());
        let hours_2 = 2 * 60 * 60 * 1000;
        for timestamp in [now_ms() - hours_2, now_ms() + hours_2] {
            let timestamp = timestamp.to_string();
            let sign = expected_sign(&timestamp, SECRET).unwrap();
            let url = signed_url(&fake, SIGNED, &timestamp, &sign);
            assert_eq!(post(&client, &url, &body).await, invalid_timestamp);
        }
        let sign = expected_sign("soon", SECRET).unwrap();
        let url = signed_url(&fake, SIGNED, "soon", &sign);
        assert_eq!(post(&client, &url, &body).await, invalid_timestamp);
        let url = format!("{}&sign=x", url_for(&fake, SIGNED));
        assert_eq!(post(&client, &url, &body).await, invalid_timestamp);

        assert_eq!(fake.delivered(SIGNED).len(), 1);
    }

    #[tokio::test]
    async fn rejects_malformed_body() {
        let fake = FakeDingTalk::start(vec![FakeRobot::new(TOKEN)]).await;
        let client = client();
        let url = url_for(&fake, TOKEN);
        let missing = (200, 40035, "missing parameter json".to_owned());

        let response = client
            .post(&url)
            .header("Content-Type", "application/json")
            .body("{not json")
            .send()
            .await
            .unwrap();
        assert_eq!(parse(response).await, missing);
        assert_eq!(fake.requests()[0].body, Value::Null);

        for body in [
            json!({ "markdown": { "title": "HertzBeat", "text": "x" } }),
            json!({ "msgtype": "image", "image": { "url": "HertzBeat" } }),
            json!({ "msgtype": "markdown", "markdown": { "text": "HertzBeat" } }),
            json!({ "msgtype": "markdown", "markdown": { "title": "HertzBeat", "text": 1 } }),
            json!({ "msgtype": "text", "text": {} }),
        ] {
            assert_eq!(post(&client, &url, &body).await, missing, "{body}");
        }
    }

    #[tokio::test]
    async fn rejects_content_over_20000_bytes() {
        let fake = FakeDingTalk::start(vec![FakeRobot::new(TOKEN)]).await;
        let client = client();
        let url = url_for(&fake, TOKEN);

        let exact = "HertzBeat".to_owned() + &"x".repeat(MAX_CONTENT_BYTES - 9);
        let answer = post(&client, &url, &markdown("t", &exact)).await;
        assert_eq!(answer, (200, 0, "ok".to_owned()));

        // 10_001 two-byte characters: fewer than 20000 chars, more than 20000 bytes.
        let long = "HertzBeat".to_owned() + &"é".repeat(10_001);
        let too_long = (200, 460101, "message too long".to_owned());
        assert_eq!(post(&client, &url, &markdown("t", &long)).await, too_long);
        let text = json!({ "msgtype": "text", "text": { "content": long } });
        assert_eq!(post(&client, &url, &text).await, too_long);
    }

    #[tokio::test]
    async fn requires_a_keyword() {
        let fake = FakeDingTalk::start(vec![
            FakeRobot::new(TOKEN),
            FakeRobot::new("any").keywords(&[]),
        ])
        .await;
        let client = client();
        let url = url_for(&fake, TOKEN);
        let missing = (200, 310000, "keywords not in content".to_owned());

        assert_eq!(
            post(&client, &url, &markdown("alert", "body")).await,
            missing
        );
        let text = json!({ "msgtype": "text", "text": { "content": "hertzbeat" } });
        assert_eq!(post(&client, &url, &text).await, missing);

        let ok = (200, 0, "ok".to_owned());
        assert_eq!(post(&client, &url, &markdown("HertzBeat", "b")).await, ok);
        assert_eq!(
            post(&client, &url, &markdown("t", "a HertzBeat b")).await,
            ok
        );
        let any = url_for(&fake, "any");
        assert_eq!(post(&client, &any, &markdown("alert", "body")).await, ok);
    }

    #[tokio::test]
    async fn rate_limit_uses_rolling_window_and_blocks() {
        let mut robot = FakeRobot::new(TOKEN).rate(3, Duration::from_secs(2));
        robot.block_for = Duration::from_secs(1);
        let fake = FakeDingTalk::start(vec![robot]).await;
        let client = client();
        let url = url_for(&fake, TOKEN);
        let body = markdown("HertzBeat", "x");
        let ok = (200, 0, "ok".to_owned());
        let too_fast = (200, 130101, TOO_FAST.to_owned());

        for _ in 0..3 {
            assert_eq!(post(&client, &url, &body).await, ok);
        }
        // The three counted requests all arrived before this instant.
        let after_three = Instant::now();

        // 4th within the window: rejected, and the robot is blocked for 1 s.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(post(&client, &url, &body).await, too_fast);
        let after_fourth = Instant::now();

        // The window has moved past the first three, but the block is still on.
        tokio::time::sleep_until((after_three + Duration::from_millis(2100)).into()).await;
        assert_eq!(post(&client, &url, &body).await, too_fast);

        // Block over and neither rejected request was counted: accepted again.
        tokio::time::sleep_until((after_fourth + Duration::from_millis(1100)).into()).await;
        assert_eq!(post(&client, &url, &body).await, ok);

        assert_eq!(fake.delivered(TOKEN).len(), 4);
        assert_eq!(fake.max_in_any_window(TOKEN, Duration::from_secs(2)), 4);
        assert_eq!(fake.max_in_any_window(TOKEN, Duration::from_mins(1)), 6);
        assert_eq!(fake.max_in_any_window("other", Duration::from_mins(1)), 0);
    }

    #[tokio::test]
    async fn mode_http500_and_errcode() {
        let fake = FakeDingTalk::start(vec![FakeRobot::new(TOKEN)]).await;
        let client = client();
        let url = url_for(&fake, TOKEN);
        let body = markdown("HertzBeat", "x");

        fake.set_mode(Mode::Http500);
        let response = client.post(&url).json(&body).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 500);
        assert_eq!(response.text().await.unwrap(), "internal error");

        fake.set_mode(Mode::Errcode(-1, "system busy".to_owned()));
        let answer = post(&client, &url, &body).await;
        assert_eq!(answer, (200, -1, "system busy".to_owned()));

        fake.set_mode(Mode::Normal);
        assert_eq!(post(&client, &url, &body).await, (200, 0, "ok".to_owned()));

        let requests = fake.requests();
        let outcomes: Vec<_> = requests
            .iter()
            .map(|r| (r.http_status, r.errcode))
            .collect();
        assert_eq!(outcomes, [(500, None), (200, Some(-1)), (200, Some(0))]);
    }

    #[tokio::test]
    async fn mode_hang_answers_after_mode_change() {
        let fake = FakeDingTalk::start(vec![FakeRobot::new(TOKEN)]).await;
        let client = client();
        let url = url_for(&fake, TOKEN);

        fake.set_mode(Mode::Hang);
        let pending = tokio::spawn({
            let client = client.clone();
            async move { post(&client, &url, &markdown("HertzBeat", "x")).await }
        });
        let seen = fake
            .wait_until("the hanging request arrives", WAIT, |r| r.len() == 1)
            .await;
        assert_eq!((seen[0].http_status, seen[0].errcode), (0, None));
        assert!(!pending.is_finished());

        fake.set_mode(Mode::Normal);
        assert_eq!(pending.await.unwrap(), (200, 0, "ok".to_owned()));
        let seen = fake
            .wait_until("the request is delivered", WAIT, |r| {
                r.iter().any(|r| r.errcode == Some(0))
            })
            .await;
        assert_eq!(seen.len(), 1);
    }

    #[tokio::test]
    async fn mode_refuse_then_normal_on_the_same_port() {
        let fake = FakeDingTalk::start(vec![FakeRobot::new(TOKEN)]).await;
        let keep_alive = client();
        let url = url_for(&fake, TOKEN);
        let body = markdown("HertzBeat", "x");
        let ok = (200, 0, "ok".to_owned());
        assert_eq!(post(&keep_alive, &url, &body).await, ok);

        fake.set_mode(Mode::Refuse);
        let port = url::Url::parse(&fake.api_url()).unwrap().port().unwrap();
        let refused = TcpStream::connect(("127.0.0.1", port)).await.unwrap_err();
        assert_eq!(refused.kind(), io::ErrorKind::ConnectionRefused);
        let error = client().post(&url).json(&body).send().await.unwrap_err();
        assert!(error.is_connect(), "{error:?}");
        // The pooled keep-alive connection is closed as well.
        assert!(keep_alive.post(&url).json(&body).send().await.is_err());

        fake.set_mode(Mode::Normal);
        assert_eq!(fake.api_url(), format!("http://127.0.0.1:{port}{PATH}"));
        assert_eq!(post(&keep_alive, &url, &body).await, ok);
        assert_eq!(post(&client(), &url, &body).await, ok);
        assert_eq!(fake.delivered(TOKEN).len(), 3);
    }

    #[tokio::test]
    async fn keep_alive_connection_is_reused() {
        let fake = FakeDingTalk::start(vec![FakeRobot::new(TOKEN)]).await;
        let client = client();
        let url = url_for(&fake, TOKEN);
        for _ in 0..5 {
            let answer = post(&client, &url, &markdown("HertzBeat", "x")).await;
            assert_eq!(answer, (200, 0, "ok".to_owned()));
        }
        assert_eq!(fake.delivered(TOKEN).len(), 5);
        assert_eq!(fake.connections(), 1);
    }

    #[tokio::test]
    async fn dropping_the_fake_releases_hanging_requests() {
        let fake = FakeDingTalk::start(vec![FakeRobot::new(TOKEN)]).await;
        let url = url_for(&fake, TOKEN);
        fake.set_mode(Mode::Hang);
        let pending = tokio::spawn(async move {
            client()
                .post(&url)
                .json(&markdown("HertzBeat", "x"))
                .send()
                .await
        });
        fake.wait_until("the hanging request arrives", WAIT, |r| r.len() == 1)
            .await;
        drop(fake);
        assert!(pending.await.unwrap().is_err());
    }
}
