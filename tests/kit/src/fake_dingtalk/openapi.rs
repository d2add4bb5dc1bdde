//! DingTalk's OpenAPI for robots of internal applications, as the fake serves it beside
//! the webhook: `POST /v1.0/oauth2/accessToken` and `POST /v1.0/robot/groupMessages/send`,
//! and the checks of the token, the robot and its group, the message, and the rate that
//! the interactive cards of `cards.rs` and the DINGs and one-to-one messages of `ding.rs`
//! share with group messages. No I/O here: the server hands in the parsed request and the
//! time.
//!
//! Field names follow DingTalk's OpenAPI SDK (`alibabacloud-go/dingtalk`, `oauth2_1_0`
//! `GetAccessTokenRequest`/`ResponseBody`, `robot_1_0` `OrgGroupSendRequest`). Errors are
//! an HTTP status with `{"code","message","requestid"}`: the group-message codes as
//! DingTalk's "the robot sends a group message" lists them, the throttling code as its
//! "调用频次与限流" page does (20 calls a second per application and API), and
//! `InvalidAuthentication` with HTTP 400 for a token it does not take, as DingTalk's SDK
//! reports it. DingTalk's code for wrong application credentials was not found in a public
//! source; the fake answers that too as HTTP 400 `InvalidAuthentication`.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use hyper::{Method, StatusCode};
use serde_json::{Value, json};

use super::rules::{Answer, Call};

/// Path of the access-token call.
pub(super) const TOKEN_PATH: &str = "/v1.0/oauth2/accessToken";
/// Path of the group-message call.
pub(super) const GROUP_PATH: &str = "/v1.0/robot/groupMessages/send";
/// Header the group-message call takes the token in.
pub(super) const TOKEN_HEADER: &str = "x-acs-dingtalk-access-token";
/// Longest `msgParam` the group-message call takes, in bytes.
pub const MAX_MSG_PARAM_BYTES: usize = 15_000;

/// An internal application known to the fake, with its robots.
#[derive(Clone, Debug)]
pub struct FakeApp {
    /// The AppKey.
    pub app_key: String,
    /// The AppSecret.
    pub app_secret: String,
    /// `expireIn` of the tokens it is given; a token is refused after it.
    pub expire_in: Duration,
    /// Its robots: robot code, and the groups (openConversationId) each is in.
    pub robots: Vec<(String, Vec<String>)>,
    /// Calls it may make per rolling second to each rate-limited API (group messages,
    /// card sends and updates, DINGs and their read statuses, one-to-one messages:
    /// DingTalk counts per application and API), all robots together.
    pub per_second: usize,
}

impl FakeApp {
    /// An application with tokens of 7200 s (DingTalk's usual `expireIn`), 20 calls a
    /// second to each API, and no robots.
    pub fn new(app_key: &str, app_secret: &str) -> Self {
        FakeApp {
            app_key: app_key.to_owned(),
            app_secret: app_secret.to_owned(),
            expire_in: Duration::from_secs(7200),
            robots: Vec::new(),
            per_second: 20,
        }
    }

    /// Adds a robot with this code in these groups.
    pub fn robot(mut self, robot_code: &str, groups: &[&str]) -> Self {
        let groups = groups.iter().map(|&g| g.to_owned()).collect();
        self.robots.push((robot_code.to_owned(), groups));
        self
    }

    /// Gives tokens that last `expire_in`.
    pub fn expire_in(mut self, expire_in: Duration) -> Self {
        self.expire_in = expire_in;
        self
    }
}

/// The applications, the tokens given out, and each application's recent sends.
#[derive(Default)]
pub(super) struct OpenApi {
    apps: HashMap<String, AppState>,
    /// Token → application key and expiry.
    tokens: HashMap<String, (String, Instant)>,
    issued: u64,
}

struct AppState {
    app: FakeApp,
    /// The recent calls to each rate-limited API, by its path.
    calls: HashMap<&'static str, VecDeque<Instant>>,
}

impl OpenApi {
    pub(super) fn add(&mut self, app: FakeApp) {
        let state = AppState {
            app,
            calls: HashMap::new(),
        };
        self.apps.insert(state.app.app_key.clone(), state);
    }

    /// Whether an application with this key and secret is known (Stream mode's
    /// `clientId` and `clientSecret` are the AppKey and AppSecret).
    pub(super) fn authenticates(&self, app_key: &str, app_secret: &str) -> bool {
        self.apps
            .get(app_key)
            .is_some_and(|state| state.app.app_secret == app_secret)
    }

    /// Makes every token given out so far invalid, as if DingTalk had revoked them.
    pub(super) fn revoke_tokens(&mut self) {
        self.tokens.clear();
    }

    /// The answer to an OpenAPI call at `now`; `None` if `call` is not one.
    pub(super) fn answer(&mut self, call: &Call, now: Instant) -> Option<Answer> {
        let answer = match call.path.as_str() {
            TOKEN_PATH => self.token(call, now),
            GROUP_PATH => self.group_message(call, now),
            _ => return None,
        };
        Some(answer.unwrap_or_else(|error| error))
    }

    fn token(&mut self, call: &Call, now: Instant) -> Result<Answer, Answer> {
        check_request(call)?;
        let field = |name: &str| call.body.get(name).and_then(Value::as_str);
        let app = field("appKey")
            .and_then(|key| self.apps.get(key))
            .filter(|state| field("appSecret") == Some(state.app.app_secret.as_str()))
            .ok_or_else(|| {
                error(
                    StatusCode::BAD_REQUEST,
                    "InvalidAuthentication",
                    "appKey or appSecret is invalid",
                )
            })?;
        self.issued += 1;
        let token = format!("fake-access-token-{}", self.issued);
        let expire_in = app.app.expire_in;
        self.tokens
            .insert(token.clone(), (app.app.app_key.clone(), now + expire_in));
        Ok(Answer::OpenApi(
            StatusCode::OK,
            json!({ "accessToken": token, "expireIn": expire_in.as_secs() }),
        ))
    }

    fn group_message(&mut self, call: &Call, now: Instant) -> Result<Answer, Answer> {
        check_request(call)?;
        let app_key = self.app_of(call, now)?;
        let field = |name: &str| {
            call.body
                .get(name)
                .and_then(Value::as_str)
                .unwrap_or_default()
        };
        self.check_robot(&app_key, field("robotCode"), field("openConversationId"))?;
        check_message(field("msgKey"), field("msgParam"))?;
        let calls = self.admit(&app_key, GROUP_PATH, now)?;
        Ok(Answer::OpenApi(
            StatusCode::OK,
            json!({ "processQueryKey": format!("fake-query-{calls}") }),
        ))
    }

    /// The application whose access token the call carries in its header, if DingTalk
    /// takes that token at `now`.
    pub(super) fn app_of(&self, call: &Call, now: Instant) -> Result<String, Answer> {
        call.header_token
            .as_deref()
            .and_then(|token| self.tokens.get(token))
            .filter(|(_, expires)| now < *expires)
            .map(|(app_key, _)| app_key.clone())
            .ok_or_else(|| {
                error(
                    StatusCode::BAD_REQUEST,
                    "InvalidAuthentication",
                    "不合法的access_token",
                )
            })
    }

    /// Whether `robot_code` is a robot of application `app_key` in the group
    /// `open_conversation_id`; `Err` carries DingTalk's answer when it is not.
    pub(super) fn check_robot(
        &self,
        app_key: &str,
        robot_code: &str,
        open_conversation_id: &str,
    ) -> Result<(), Answer> {
        let app = self.check_robot_code(app_key, robot_code)?;
        let in_group = app.robots.iter().any(|(code, groups)| {
            code == robot_code && groups.iter().any(|g| g == open_conversation_id)
        });
        if !in_group {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "invalid.openConversationId",
                "openConversationId 不合法",
            ));
        }
        Ok(())
    }

    /// Whether `robot_code` is a robot of application `app_key`, in whatever group; the
    /// application, or DingTalk's answer when it is not.
    pub(super) fn check_robot_code(
        &self,
        app_key: &str,
        robot_code: &str,
    ) -> Result<&FakeApp, Answer> {
        let owner = self
            .apps
            .values()
            .find(|state| state.app.robots.iter().any(|(code, _)| code == robot_code))
            .ok_or_else(|| {
                error(
                    StatusCode::BAD_REQUEST,
                    "invalidParameter.robotCode.notExsit",
                    "robot 不存在",
                )
            })?;
        if owner.app.app_key != app_key {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "invalidParameter.robotCode.auth",
                "robotCode 与应用不匹配",
            ));
        }
        Ok(&owner.app)
    }

    /// Counts a call of application `app_key` to the API at path `api` against its
    /// per-second limit, which DingTalk sets per application and API; the calls in the
    /// current second, this one included, or the throttling answer.
    pub(super) fn admit(
        &mut self,
        app_key: &str,
        api: &'static str,
        now: Instant,
    ) -> Result<usize, Answer> {
        let state = self
            .apps
            .get_mut(app_key)
            .expect("the application of a token given out");
        let calls = state.calls.entry(api).or_default();
        while calls
            .front()
            .is_some_and(|&at| now.duration_since(at) >= Duration::from_secs(1))
        {
            calls.pop_front();
        }
        if calls.len() >= state.app.per_second {
            return Err(error(
                StatusCode::FORBIDDEN,
                "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi",
                "调用频率超过限制",
            ));
        }
        calls.push_back(now);
        Ok(calls.len())
    }
}

/// Method and body, as any OpenAPI call that is a POST needs them.
pub(super) fn check_request(call: &Call) -> Result<(), Answer> {
    check_call(call, &Method::POST)
}

/// The method the OpenAPI call takes, and a JSON body.
pub(super) fn check_call(call: &Call, method: &Method) -> Result<(), Answer> {
    if call.method != *method {
        return Err(error(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            &format!("{method} only"),
        ));
    }
    if call.body.is_null() {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "MissingBody",
            "the body is not JSON",
        ));
    }
    Ok(())
}

/// The message parameters for `msg_key`: the JSON string of the fields that key takes,
/// parsed (group and one-to-one messages take the same).
pub(super) fn check_message(msg_key: &str, msg_param: &str) -> Result<Value, Answer> {
    let invalid = |message: &'static str| {
        error(
            StatusCode::BAD_REQUEST,
            "invalidParameter.msgParam.invalid",
            message,
        )
    };
    if msg_param.len() > MAX_MSG_PARAM_BYTES {
        return Err(invalid("msgParam is too long"));
    }
    let param: Value =
        serde_json::from_str(msg_param).map_err(|_| invalid("msgParam is not JSON"))?;
    // The fields of each key, and its numbered buttons (`actionTitleN`, `actionURLN`).
    let (fields, buttons): (&[&str], usize) = match msg_key {
        "sampleText" => (&["content"], 0),
        "sampleMarkdown" => (&["title", "text"], 0),
        "sampleActionCard" => (&["title", "text", "singleTitle", "singleURL"], 0),
        "sampleActionCard2" => (&["title", "text"], 2),
        "sampleActionCard3" => (&["title", "text"], 3),
        "sampleActionCard4" => (&["title", "text"], 4),
        "sampleActionCard5" => (&["title", "text"], 5),
        _ => {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "invalidParameter.msgKey.invalid",
                "msgKey 不合法",
            ));
        }
    };
    let mut required = fields
        .iter()
        .map(|&field| field.to_owned())
        .chain((1..=buttons).flat_map(|n| [format!("actionTitle{n}"), format!("actionURL{n}")]));
    if required.all(|key| param.get(&key).is_some_and(Value::is_string)) {
        Ok(param)
    } else {
        Err(invalid("msgParam lacks a field of its msgKey"))
    }
}

/// An OpenAPI error answer.
pub(super) fn error(status: StatusCode, code: &str, message: &str) -> Answer {
    Answer::OpenApi(
        status,
        json!({ "code": code, "message": message, "requestid": "FAKE-REQUEST-ID" }),
    )
}
