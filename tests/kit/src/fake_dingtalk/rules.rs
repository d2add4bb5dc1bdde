//! DingTalk's rules: which answer a robot request gets in [`Mode::Normal`](super::Mode),
//! check by check in DingTalk's order, and the per-robot rate window. No I/O here: the
//! server hands in the parsed request and the time.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, StatusCode};
use serde_json::{Value, json};
use sha2::Sha256;

use super::{FakeRobot, PATH};

/// Largest message a robot accepts by default, title and text together, in bytes.
pub(super) const MAX_MESSAGE_BYTES: usize = 20_000;
/// Largest accepted distance between `timestamp` and the server clock.
const MAX_CLOCK_SKEW_MS: u64 = 60 * 60 * 1000;
/// DingTalk's (fixed) message for errcode 130101.
pub(super) const TOO_FAST: &str = "send too fast, exceed 20 times per minute";

/// Per-robot configuration and rate-limit bookkeeping.
pub(super) struct RobotState {
    robot: FakeRobot,
    /// Arrival times of the requests counted in the current window.
    counted: VecDeque<Instant>,
    /// Start of the current block, if any.
    blocked_since: Option<Instant>,
}

impl RobotState {
    pub(super) fn new(robot: FakeRobot) -> Self {
        Self {
            robot,
            counted: VecDeque::new(),
            blocked_since: None,
        }
    }

    /// Blocks the robot from `now` for its `block_for`.
    pub(super) fn block(&mut self, now: Instant) {
        self.blocked_since = Some(now);
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
pub(super) struct Call {
    pub(super) method: Method,
    pub(super) path: String,
    pub(super) content_type: Option<String>,
    pub(super) query: Vec<(String, String)>,
    /// The OpenAPI's `x-acs-dingtalk-access-token` header.
    pub(super) header_token: Option<String>,
    pub(super) body: Value,
}

impl Call {
    /// The credential the request carries: the webhook's `access_token`, or the OpenAPI's
    /// token header; "" when it has none.
    pub(super) fn token(&self) -> &str {
        self.param("access_token")
            .or(self.header_token.as_deref())
            .unwrap_or_default()
    }

    /// The first value of a (decoded) query parameter.
    pub(super) fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// Runs DingTalk's checks in order; `Err` carries the rejection.
    pub(super) fn check(
        &self,
        robots: &mut HashMap<String, RobotState>,
        now: Instant,
    ) -> Result<(), Answer> {
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
        // DingTalk documents 20000 bytes of content without saying what it counts; the
        // title and the text together is the stricter reading, so a client that fits it
        // fits either.
        let max_bytes = robot.robot.max_bytes;
        if message.bytes() > max_bytes {
            let errmsg = format!("message too long, exceed {max_bytes} bytes");
            return Err(fail(460101, errmsg));
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
    /// The markdown or action card title; "" for a text message.
    title: &'a str,
    /// The markdown or action card text, or a text message's content.
    text: &'a str,
}

impl<'a> Message<'a> {
    /// Extracts a `markdown`, `text` or `actionCard` message (with `btns`, each with a
    /// `title` and an `actionURL`); `None` if malformed or unsupported.
    fn parse(body: &'a Value) -> Option<Self> {
        let titled = |part: &'a Value| {
            Some(Self {
                title: part.get("title")?.as_str()?,
                text: part.get("text")?.as_str()?,
            })
        };
        match body.get("msgtype")?.as_str()? {
            "markdown" => titled(body.get("markdown")?),
            "actionCard" => {
                let card = body.get("actionCard")?;
                let buttons = card.get("btns")?.as_array()?;
                let well_formed = buttons.iter().all(|b| {
                    b.get("title").is_some_and(Value::is_string)
                        && b.get("actionURL").is_some_and(Value::is_string)
                });
                if !well_formed {
                    return None;
                }
                titled(card)
            }
            "text" => Some(Self {
                title: "",
                text: body.get("text")?.get("content")?.as_str()?,
            }),
            _ => None,
        }
    }

    /// Its size as the limit counts it: title and text together, in UTF-8 bytes.
    fn bytes(&self) -> usize {
        self.title.len() + self.text.len()
    }

    /// Whether the title or text contains `keyword`.
    fn contains(&self, keyword: &str) -> bool {
        self.title.contains(keyword) || self.text.contains(keyword)
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
pub(super) fn expected_sign(timestamp: &str, secret: &str) -> Option<String> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).ok()?;
    mac.update(format!("{timestamp}\n{secret}").as_bytes());
    Some(BASE64.encode(mac.finalize().into_bytes()))
}

/// Milliseconds since the Unix epoch.
pub(super) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// An answer to a request.
pub(super) enum Answer {
    /// HTTP 200 with `{"errcode":N,"errmsg":"..."}`.
    Json(i64, Cow<'static, str>),
    /// A plain-text answer with this status.
    Plain(StatusCode, &'static str),
    /// An OpenAPI answer: this status with this JSON body.
    OpenApi(StatusCode, Value),
}

/// The body of [`Answer::OK`], DingTalk's answer to a delivered message.
const OK_BODY: &str = r#"{"errcode":0,"errmsg":"ok"}"#;

impl Answer {
    /// Delivered.
    pub(super) const OK: Answer = Answer::Json(0, Cow::Borrowed("ok"));

    pub(super) fn errcode(&self) -> Option<i64> {
        match self {
            Answer::Json(code, _) => Some(*code),
            Answer::Plain(..) | Answer::OpenApi(..) => None,
        }
    }

    /// Whether the message was delivered: errcode 0, or the OpenAPI's `processQueryKey`.
    pub(super) fn delivered(&self) -> bool {
        match self {
            Answer::Json(code, _) => *code == 0,
            Answer::OpenApi(status, body) => {
                *status == StatusCode::OK && body.get("processQueryKey").is_some()
            }
            Answer::Plain(..) => false,
        }
    }

    pub(super) fn status(&self) -> StatusCode {
        match self {
            Answer::Json(..) => StatusCode::OK,
            Answer::Plain(status, _) | Answer::OpenApi(status, _) => *status,
        }
    }

    pub(super) fn into_response(self) -> hyper::Response<Full<Bytes>> {
        let status = self.status();
        // The answer to a delivered message is built once: it is most answers under load.
        let (body, content_type) = match self {
            Answer::Json(0, errmsg) if errmsg == "ok" => {
                (Bytes::from_static(OK_BODY.as_bytes()), "application/json")
            }
            Answer::Json(errcode, errmsg) => (
                Bytes::from(json!({ "errcode": errcode, "errmsg": errmsg }).to_string()),
                "application/json",
            ),
            Answer::Plain(_, text) => (Bytes::from_static(text.as_bytes()), "text/plain"),
            Answer::OpenApi(_, body) => (Bytes::from(body.to_string()), "application/json"),
        };
        let mut response = hyper::Response::new(Full::new(body));
        *response.status_mut() = status;
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        response
    }
}

/// A DingTalk error answer.
pub(super) fn fail(errcode: i64, errmsg: impl Into<Cow<'static, str>>) -> Answer {
    Answer::Json(errcode, errmsg.into())
}
