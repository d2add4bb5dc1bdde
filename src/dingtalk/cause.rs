//! What DingTalk's answers mean: [`CAUSES`], one table that says for each answer (an
//! `errcode`, an OpenAPI `code`, an HTTP status, a transport error) what it means, whether
//! and how the message is retried, and what the operator should check. A failed send
//! takes the first row that names its answer; [`SendError::retry`],
//! [`SendError::meaning`] and [`SendError::hint`] all read that row, and
//! docs/troubleshooting.md's tables are tested against it. A new code is a new row.
//!
//! This module owns what an answer *means*; what to do about it (backoff, the length of
//! a pause, how much shorter) is the delivery worker's and the gate's.
//!
//! Over 400 lines because the table is: one row per cause, each with its texts.
//!
//! The errcodes are those DingTalk's custom robot documentation and its users report;
//! the OpenAPI codes are those DingTalk documents: the throttling codes in "调用频次与限流"
//! (open.dingtalk.com/document/development/how-to-process-api-throttling-on-the-dingtalk-server),
//! the group-message codes in "the robot sends a group message"
//! (open.dingtalk.com/document/orgapp/the-robot-sends-a-group-message), and
//! `InvalidAuthentication` ("不合法的access_token") as DingTalk's SDK reports a rejected
//! token. The clock-skew rule, "timestamp 与请求调用时间误差不能超过1小时", is from the
//! custom robot security settings
//! (open.dingtalk.com/document/robots/customize-robot-security-settings).

use super::Robot;
use super::error::{Call, INVALID_TOKEN, Retry, SendError};

/// One row of [`CAUSES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cause {
    /// The answers this row covers; a failed send takes the first row naming its answer.
    pub answers: &'static [Answer],
    /// What the answer means, in plain language.
    pub meaning: &'static str,
    /// Whether and how the message is retried.
    pub retry: Retry,
    /// What to check. `{keyword}` stands for the robot's first keyword, `{rate_limit}`
    /// for its `rate_limit`.
    pub hint: &'static str,
    /// The hint for a robot of an application, where it differs.
    pub app_hint: Option<&'static str>,
}

/// An answer as a row of [`CAUSES`] names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// A webhook robot's `errcode`, whatever its `errmsg`.
    Errcode(i64),
    /// A webhook robot's `errcode` whose `errmsg` contains this (lower case).
    ErrcodeSaying(i64, &'static str),
    /// Any `errcode` no earlier row names.
    OtherErrcode,
    /// An OpenAPI `code`.
    Code(&'static str),
    /// An OpenAPI `code` containing this.
    CodeContaining(&'static str),
    /// Any refusal of the OpenAPI's access-token call that no earlier row names.
    TokenCallRefused,
    /// Any OpenAPI `code` no earlier row names.
    OtherCode,
    /// An HTTP status, with an OpenAPI `code` or without any answer of DingTalk's.
    Status(u16),
    /// Any HTTP 5xx, with or without an OpenAPI `code`.
    ServerError,
    /// An HTTP status without any answer of DingTalk's.
    BareStatus(u16),
    /// Any status without an answer of DingTalk's that no earlier row names.
    OtherBareStatus,
    /// A success status whose body is not DingTalk's answer.
    BadAnswer,
    /// The request did not complete.
    Network,
    /// The HTTP proxy refused to carry the request.
    Proxy,
    /// A message longer than the OpenAPI's `msgParam` takes, not sent.
    TooLong,
}

impl Answer {
    /// Whether `error` is this answer.
    fn names(self, error: &SendError) -> bool {
        match (self, error) {
            (Answer::Errcode(code), SendError::Rejected { errcode, .. }) => code == *errcode,
            (Answer::ErrcodeSaying(code, word), SendError::Rejected { errcode, errmsg }) => {
                code == *errcode && errmsg.to_ascii_lowercase().contains(word)
            }
            (Answer::OtherErrcode, SendError::Rejected { .. }) => true,
            (Answer::Code(name), SendError::OpenApi { code, .. }) => name == code,
            (Answer::CodeContaining(part), SendError::OpenApi { code, .. }) => code.contains(part),
            (Answer::TokenCallRefused, SendError::OpenApi { call, .. }) => {
                *call == Call::AccessToken
            }
            (Answer::OtherCode, SendError::OpenApi { .. }) => true,
            (
                Answer::Status(wanted),
                SendError::Http(status) | SendError::OpenApi { status, .. },
            ) => wanted == *status,
            (Answer::ServerError, SendError::Http(status) | SendError::OpenApi { status, .. }) => {
                *status >= 500
            }
            (Answer::BareStatus(wanted), SendError::Http(status)) => wanted == *status,
            (Answer::OtherBareStatus, SendError::Http(_))
            | (Answer::BadAnswer, SendError::BadAnswer(_))
            | (Answer::Network, SendError::Network(_))
            | (Answer::Proxy, SendError::Proxy(_))
            | (Answer::TooLong, SendError::TooLong { .. }) => true,
            _ => false,
        }
    }
}

/// Said of DingTalk's own trouble, in two rows.
const DINGTALK_TROUBLE: &str = "DingTalk is having trouble";
/// What to do about DingTalk's own trouble.
const WILL_BE_RETRIED: &str = "DingTalk is having trouble; the message will be retried";

/// What every answer of DingTalk means. Webhook robots' `errcode`s first, then the
/// OpenAPI's codes, then what either kind of robot can meet.
pub const CAUSES: &[Cause] = &[
    Cause {
        answers: &[Answer::ErrcodeSaying(310000, "keyword")],
        meaning: "the message contains none of the robot's custom keywords",
        retry: Retry::Never,
        hint: "add {keyword} as a custom keyword in the robot's security settings (or set \
               `keywords:` to one the robot has)",
        app_hint: None,
    },
    Cause {
        answers: &[Answer::ErrcodeSaying(310000, "timestamp")],
        meaning: "the signed request's timestamp is too far from DingTalk's clock (more than \
                  an hour)",
        retry: Retry::Never,
        hint: "this host's clock is more than an hour off: fix it (NTP); DingTalk checks the \
               timestamp of signed requests",
        app_hint: None,
    },
    Cause {
        answers: &[Answer::ErrcodeSaying(310000, "sign")],
        meaning: "the 加签 signature does not match the robot's secret",
        retry: Retry::Never,
        hint: "the robot uses 加签 signing: set the robot's `secret` (SEC...) to the one shown \
               in its security settings, and make sure this host's clock is correct",
        app_hint: None,
    },
    Cause {
        answers: &[Answer::ErrcodeSaying(310000, "ip")],
        meaning: "this host's public IP is not in the robot's IP allowlist",
        retry: Retry::Never,
        hint: "this host's public IP is not in the robot's IP allowlist: add it in the robot's \
               security settings",
        app_hint: None,
    },
    Cause {
        answers: &[Answer::Errcode(310000)],
        meaning: "a security setting of the robot rejected the message",
        retry: Retry::Never,
        hint: "a security setting of the robot rejected the message: check its keywords, \
               signing secret and IP allowlist",
        app_hint: None,
    },
    Cause {
        answers: &[
            Answer::Errcode(300001),
            Answer::Errcode(300005),
            Answer::Errcode(400101),
        ],
        meaning: "the access token is missing or wrong, or the robot was deleted",
        retry: Retry::Never,
        hint: "the access_token is wrong or the robot was deleted: copy the webhook address \
               again from the group's robot settings",
        app_hint: None,
    },
    Cause {
        answers: &[Answer::Errcode(400102)],
        meaning: "the robot is disabled in its group",
        retry: Retry::Never,
        hint: "the robot has been disabled in the group: enable it in the group's robot settings",
        app_hint: None,
    },
    Cause {
        answers: &[Answer::Errcode(400106)],
        meaning: "the robot does not exist or was disabled",
        retry: Retry::Never,
        hint: "the robot does not exist or was disabled: re-create it and update the token",
        app_hint: None,
    },
    Cause {
        answers: &[Answer::Errcode(400013)],
        meaning: "the group was dissolved",
        retry: Retry::Never,
        hint: "the group no longer exists: point the robot at a new group's webhook",
        app_hint: None,
    },
    Cause {
        answers: &[Answer::Errcode(460101)],
        meaning: "DingTalk counted the message as longer than it takes",
        retry: Retry::Shorter,
        hint: "DingTalk counted the message as longer than it takes; its alerts are sent again \
               in shorter messages, and later messages to this robot are kept shorter",
        app_hint: None,
    },
    Cause {
        answers: &[Answer::Errcode(43004)],
        meaning: "DingTalk wants Content-Type: application/json",
        retry: Retry::Never,
        hint: "DingTalk wants Content-Type: application/json; check any proxy that rewrites \
               requests",
        app_hint: None,
    },
    Cause {
        answers: &[Answer::Errcode(40035)],
        meaning: "DingTalk could not read the message JSON",
        retry: Retry::Never,
        hint: "DingTalk could not read the message JSON; check any proxy that rewrites requests",
        app_hint: None,
    },
    Cause {
        answers: &[Answer::Errcode(130101), Answer::Errcode(410100)],
        meaning: "the robot sent more than 20 messages in a minute; DingTalk blocks it for up to \
                  10 minutes",
        retry: Retry::AfterPause,
        hint: "DingTalk counted more than 20 messages of this robot in a minute and blocks it \
               for up to 10 minutes; its rate_limit here is {rate_limit}: keep rate_limit × \
               replicas sharing the robot at or below 20/min, and check that nothing else \
               posts with the same token",
        app_hint: None,
    },
    Cause {
        answers: &[Answer::Errcode(660026)],
        meaning: "the robot reached DingTalk's daily message quota",
        retry: Retry::AfterPause,
        hint: "the robot reached DingTalk's daily message quota; messages resume tomorrow",
        app_hint: None,
    },
    Cause {
        answers: &[
            Answer::Errcode(-1),
            Answer::Errcode(500),
            Answer::Errcode(9001),
        ],
        meaning: DINGTALK_TROUBLE,
        retry: Retry::Later,
        hint: WILL_BE_RETRIED,
        app_hint: None,
    },
    Cause {
        answers: &[Answer::OtherErrcode],
        meaning: "an errcode this bridge does not know; DingTalk's errmsg says more",
        retry: Retry::Never,
        hint: "see DingTalk's errmsg; the message is not retried",
        app_hint: None,
    },
    Cause {
        answers: &[
            Answer::Code("Forbidden.AccessDenied.QpsLimitForAppkeyAndApi"),
            Answer::Code("Forbidden.AccessDenied.QpsLimitForApi"),
            Answer::Status(429),
        ],
        meaning: "the robot called DingTalk faster than it allows (per second), or a proxy in \
                  between throttled it",
        retry: Retry::AfterPause,
        hint: "the robot pauses and tries again; check that nothing else posts with the same \
               token at the same time, and the limits of any proxy in between",
        app_hint: Some(
            "the robot pauses and tries again; check that nothing else calls DingTalk's \
             OpenAPI with this application at the same time",
        ),
    },
    Cause {
        answers: &[Answer::Code("Forbidden.AccessDenied.ApiCountLimitForOrg")],
        meaning: "the organisation used up its OpenAPI calls for the month",
        retry: Retry::AfterPause,
        hint: "DingTalk limits a standard organisation to 5000 OpenAPI calls a month; the robot \
               pauses and tries again, but only a larger plan (or next month) lets it through",
        app_hint: None,
    },
    Cause {
        answers: &[Answer::ServerError],
        meaning: DINGTALK_TROUBLE,
        retry: Retry::Later,
        hint: WILL_BE_RETRIED,
        app_hint: None,
    },
    Cause {
        answers: &[Answer::TokenCallRefused],
        meaning: "DingTalk refused the application's app_key and app_secret",
        retry: Retry::Never,
        hint: "copy the AppKey (Client ID) and AppSecret (Client Secret) again from the \
               application's credentials page in DingTalk's developer console",
        app_hint: None,
    },
    Cause {
        answers: &[Answer::Code(INVALID_TOKEN)],
        meaning: "DingTalk refused the application's access token, even one fetched just before",
        retry: Retry::Never,
        hint: "check that app_key and app_secret are those of the application the robot \
               belongs to, and that nothing in between rewrites the x-acs-dingtalk-access-token \
               header",
        app_hint: None,
    },
    Cause {
        answers: &[Answer::CodeContaining("PermissionDenied")],
        meaning: "the application lacks the permission to send messages as a robot",
        retry: Retry::Never,
        hint: "grant the application the permission to send messages as an enterprise robot \
               (企业内机器人发送消息权限) in the developer console, then publish a new version",
        app_hint: None,
    },
    Cause {
        answers: &[Answer::Code("invalidParameter.robotCode.notExsit")],
        meaning: "no robot of the application has this robot_code",
        retry: Retry::Never,
        hint: "set robot_code to the RobotCode on the robot's page in the developer console \
               (often the AppKey), and check that the robot has been published",
        app_hint: None,
    },
    Cause {
        answers: &[Answer::Code("invalidParameter.robotCode.auth")],
        meaning: "the robot does not belong to the application of app_key",
        retry: Retry::Never,
        hint: "use the app_key and app_secret of the application the robot belongs to",
        app_hint: None,
    },
    Cause {
        answers: &[Answer::Code("invalid.openConversationId")],
        meaning: "no group has this open_conversation_id, or the robot is not in it",
        retry: Retry::Never,
        hint: "add the robot to the group, and copy the group's openConversationId (cid...) \
               again into open_conversation_id",
        app_hint: None,
    },
    Cause {
        answers: &[Answer::Code("bot.stopped")],
        meaning: "the robot is stopped",
        retry: Retry::Never,
        hint: "the robot has been stopped: enable it on its page in the developer console",
        app_hint: None,
    },
    Cause {
        answers: &[
            Answer::Code("invalidParameter.msgParam.invalid"),
            Answer::Code("invalidParameter.msgKey.invalid"),
        ],
        meaning: "DingTalk could not read the message's msgKey or msgParam",
        retry: Retry::Never,
        hint: "check any proxy that rewrites requests; report the requestid to DingTalk if it \
               persists",
        app_hint: None,
    },
    Cause {
        answers: &[Answer::OtherCode],
        meaning: "a code this bridge does not know; DingTalk's message says more",
        retry: Retry::Never,
        hint: "see DingTalk's message; the message is not retried",
        app_hint: None,
    },
    Cause {
        answers: &[Answer::TooLong],
        meaning: "the message is longer than the OpenAPI takes in msgParam",
        retry: Retry::Shorter,
        hint: "its alerts are sent again in shorter messages, and later messages to this robot \
               are kept shorter",
        app_hint: None,
    },
    Cause {
        answers: &[Answer::Proxy, Answer::BareStatus(407)],
        meaning: "the HTTP proxy refused to carry the request (HTTP 407: it wants \
                  credentials, or refused the ones given; or it refused the tunnel to DingTalk)",
        retry: Retry::Later,
        hint: "check the credentials in dingtalk.proxy_url (or HTTPS_PROXY), and that the \
               proxy lets this host CONNECT to DingTalk on port 443",
        app_hint: None,
    },
    Cause {
        answers: &[Answer::BareStatus(404)],
        meaning: "the URL is not DingTalk's robot API",
        retry: Retry::Never,
        hint: "check dingtalk.api_url (or the robot's webhook): it should end in /robot/send",
        app_hint: Some(
            "check dingtalk.openapi_url: it should be DingTalk's OpenAPI address, \
             https://api.dingtalk.com, without a path",
        ),
    },
    Cause {
        answers: &[Answer::OtherBareStatus],
        meaning: "a request error without a DingTalk answer",
        retry: Retry::Never,
        hint: "check dingtalk.api_url and proxy_url",
        app_hint: Some("check dingtalk.openapi_url and proxy_url"),
    },
    Cause {
        answers: &[Answer::BadAnswer],
        meaning: "a success status whose body is not DingTalk's answer",
        retry: Retry::Later,
        hint: "the answer is not DingTalk's; check dingtalk.api_url and any proxy in between",
        app_hint: Some(
            "the answer is not DingTalk's; check dingtalk.openapi_url and any proxy in between",
        ),
    },
    Cause {
        answers: &[Answer::Network],
        meaning: "the request did not complete (connection, TLS or timeout)",
        retry: Retry::Later,
        hint: "check that this host can reach DingTalk (DNS, firewall, proxy_url / HTTPS_PROXY)",
        app_hint: None,
    },
];

impl SendError {
    /// The row of [`CAUSES`] this failure is: the first that names it.
    pub fn cause(&self) -> &'static Cause {
        CAUSES
            .iter()
            .find(|cause| cause.answers.iter().any(|answer| answer.names(self)))
            // Every kind of failure has a catch-all row; the test of the table checks it.
            .unwrap_or(&CAUSES[CAUSES.len() - 1])
    }

    /// Whether and how the message should be retried.
    pub fn retry(&self) -> Retry {
        self.cause().retry
    }

    /// What DingTalk's answer means, in plain language.
    pub fn meaning(&self) -> String {
        self.cause().meaning.to_owned()
    }

    /// A plain-language suggestion of what to check on `robot`.
    pub fn hint(&self, robot: &Robot) -> String {
        let cause = self.cause();
        let hint = match cause.app_hint {
            Some(app_hint) if robot.is_app() => app_hint,
            _ => cause.hint,
        };
        hint.replace("{keyword}", robot.primary_keyword())
            .replace("{rate_limit}", &robot.rate_limit.to_string())
    }
}
