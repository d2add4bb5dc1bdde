//! What DingTalk's answers mean: whether a failed send is worth retrying, and what the
//! operator should check.
//!
//! DingTalk answers HTTP 200 for most failures and puts the reason in `errcode`, so the
//! classification looks at the code first and the HTTP status only when there is no code.

use std::fmt;

use super::Robot;

/// What the delivery worker should do after a failed send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Try the same message again after a backoff.
    Later,
    /// DingTalk says the robot sends too fast: pause the whole robot, then try again.
    AfterPause,
    /// DingTalk says the message is too long: send its alerts again in shorter messages.
    Shorter,
    /// Trying again cannot help; the configuration or the message must change.
    Never,
}

/// A failed send, with everything needed to log it without secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// DingTalk answered with a non-zero `errcode`.
    Rejected {
        /// DingTalk's error code.
        errcode: i64,
        /// DingTalk's own message, e.g. "keywords not in content".
        errmsg: String,
    },
    /// An HTTP status other than 200 without a DingTalk error body.
    Http(u16),
    /// HTTP 200 with a body that is not DingTalk's `{errcode, errmsg}`.
    BadAnswer(String),
    /// The request did not complete: connection, TLS or timeout.
    Network(String),
}

impl SendError {
    /// Whether and how the message should be retried.
    pub fn retry(&self) -> Retry {
        match self {
            SendError::Rejected { errcode, .. } => match errcode {
                130101 | 410100 | 660026 => Retry::AfterPause,
                460101 => Retry::Shorter,
                // System busy / internal error on DingTalk's side.
                -1 | 500 | 9001 => Retry::Later,
                _ => Retry::Never,
            },
            SendError::Http(429) => Retry::AfterPause,
            SendError::Http(status) if *status >= 500 => Retry::Later,
            SendError::Http(_) => Retry::Never,
            SendError::BadAnswer(_) | SendError::Network(_) => Retry::Later,
        }
    }

    /// The label used for this failure in the `dingtalk_errors_total` metric.
    pub fn metric_code(&self) -> String {
        match self {
            SendError::Rejected { errcode, .. } => errcode.to_string(),
            SendError::Http(status) => format!("http_{status}"),
            SendError::BadAnswer(_) => "bad_answer".to_owned(),
            SendError::Network(_) => "network".to_owned(),
        }
    }

    /// What DingTalk's answer means, in plain language (README "Troubleshooting" has the
    /// same table).
    pub fn meaning(&self) -> String {
        let meaning = match self.cause() {
            Cause::NoKeyword => "the message contains none of the robot's custom keywords",
            Cause::ClockSkew => {
                "the signed request's timestamp is too far from DingTalk's clock (more than an hour)"
            }
            Cause::WrongSignature => "the 加签 signature does not match the robot's secret",
            Cause::IpNotAllowed => "this host's public IP is not in the robot's IP allowlist",
            Cause::OtherSecurity => "a security setting of the robot rejected the message",
            Cause::WrongToken => "the access token is missing or wrong, or the robot was deleted",
            Cause::RobotDisabled => "the robot is disabled in its group",
            Cause::NoSuchRobot => "the robot does not exist or was disabled",
            Cause::GroupDissolved => "the group was dissolved",
            Cause::TooLong => "DingTalk counted the message as longer than it takes",
            Cause::NotJsonContentType => "DingTalk wants Content-Type: application/json",
            Cause::UnreadableJson => "DingTalk could not read the message JSON",
            Cause::TooFast => {
                "the robot sent more than 20 messages in a minute; DingTalk blocks it for up to 10 minutes"
            }
            Cause::DailyQuota => "the robot reached DingTalk's daily message quota",
            Cause::DingTalkBusy | Cause::ServerError => "DingTalk is having trouble",
            Cause::UnknownErrcode => {
                "an errcode this bridge does not know; DingTalk's errmsg says more"
            }
            Cause::NotFound => "the URL is not DingTalk's robot API",
            Cause::OtherHttp => "a request error without a DingTalk answer",
            Cause::BadAnswer => "an HTTP 200 whose body is not DingTalk's answer",
            Cause::Network => "the request did not complete (connection, TLS or timeout)",
        };
        meaning.to_owned()
    }

    /// A plain-language suggestion of what to check on `robot`.
    pub fn hint(&self, robot: &Robot) -> String {
        let hint = match self.cause() {
            Cause::NoKeyword => {
                return format!(
                    "add {} as a custom keyword in the robot's security settings \
                     (or set `keywords:` to one the robot has)",
                    robot.primary_keyword()
                );
            }
            // "timestamp 与请求调用时间误差不能超过1小时": DingTalk's custom robot security
            // settings, open.dingtalk.com/document/robots/customize-robot-security-settings.
            Cause::ClockSkew => {
                "this host's clock is more than an hour off: fix it (NTP); DingTalk checks the \
                 timestamp of signed requests"
            }
            Cause::WrongSignature => {
                "the robot uses 加签 signing: set the robot's `secret` (SEC...) to the one shown \
                 in its security settings, and make sure this host's clock is correct"
            }
            Cause::IpNotAllowed => {
                "this host's public IP is not in the robot's IP allowlist: add it in the robot's \
                 security settings"
            }
            Cause::OtherSecurity => {
                "a security setting of the robot rejected the message: check its keywords, \
                 signing secret and IP allowlist"
            }
            Cause::WrongToken => {
                "the access_token is wrong or the robot was deleted: copy the webhook address \
                 again from the group's robot settings"
            }
            Cause::RobotDisabled => {
                "the robot has been disabled in the group: enable it in the group's robot settings"
            }
            Cause::NoSuchRobot => {
                "the robot does not exist or was disabled: re-create it and update the token"
            }
            Cause::GroupDissolved => {
                "the group no longer exists: point the robot at a new group's webhook"
            }
            Cause::TooLong => {
                "DingTalk counted the message as longer than it takes; its alerts are sent again \
                 in shorter messages, and later messages to this robot are kept shorter"
            }
            Cause::NotJsonContentType => {
                "DingTalk wants Content-Type: application/json; check any proxy that rewrites requests"
            }
            Cause::UnreadableJson => {
                "DingTalk could not read the message JSON; check any proxy that rewrites requests"
            }
            Cause::TooFast => {
                return format!(
                    "DingTalk counted more than 20 messages of this robot in a minute and blocks \
                     it for up to 10 minutes; its rate_limit here is {}: keep rate_limit × \
                     replicas sharing the robot at or below 20/min, and check that nothing else \
                     posts with the same token",
                    robot.rate_limit
                );
            }
            Cause::DailyQuota => {
                "the robot reached DingTalk's daily message quota; messages resume tomorrow"
            }
            Cause::UnknownErrcode => "see DingTalk's errmsg; the message is not retried",
            Cause::DingTalkBusy | Cause::ServerError => {
                "DingTalk is having trouble; the message will be retried"
            }
            Cause::NotFound => {
                "check dingtalk.api_url (or the robot's webhook): it should end in /robot/send"
            }
            Cause::OtherHttp => "check dingtalk.api_url and proxy_url",
            Cause::BadAnswer => {
                "the answer is not DingTalk's; check dingtalk.api_url and any proxy in between"
            }
            Cause::Network => {
                "check that this host can reach DingTalk (DNS, firewall, proxy_url / HTTPS_PROXY)"
            }
        };
        hint.to_owned()
    }

    /// Which failure this is, for [`meaning`](Self::meaning) and [`hint`](Self::hint): one
    /// reading of the errcode and its errmsg for both.
    fn cause(&self) -> Cause {
        match self {
            SendError::Rejected { errcode, errmsg } => {
                let errmsg = errmsg.to_ascii_lowercase();
                match errcode {
                    310000 if errmsg.contains("keyword") => Cause::NoKeyword,
                    310000 if errmsg.contains("timestamp") => Cause::ClockSkew,
                    310000 if errmsg.contains("sign") => Cause::WrongSignature,
                    310000 if errmsg.contains("ip") => Cause::IpNotAllowed,
                    310000 => Cause::OtherSecurity,
                    300001 | 300005 | 400101 => Cause::WrongToken,
                    400102 => Cause::RobotDisabled,
                    400106 => Cause::NoSuchRobot,
                    400013 => Cause::GroupDissolved,
                    460101 => Cause::TooLong,
                    43004 => Cause::NotJsonContentType,
                    40035 => Cause::UnreadableJson,
                    130101 | 410100 => Cause::TooFast,
                    660026 => Cause::DailyQuota,
                    -1 | 500 | 9001 => Cause::DingTalkBusy,
                    _ => Cause::UnknownErrcode,
                }
            }
            SendError::Http(status) if *status >= 500 => Cause::ServerError,
            SendError::Http(404) => Cause::NotFound,
            SendError::Http(_) => Cause::OtherHttp,
            SendError::BadAnswer(_) => Cause::BadAnswer,
            SendError::Network(_) => Cause::Network,
        }
    }
}

/// The failures `meaning` and `hint` tell apart.
enum Cause {
    NoKeyword,
    ClockSkew,
    WrongSignature,
    IpNotAllowed,
    OtherSecurity,
    WrongToken,
    RobotDisabled,
    NoSuchRobot,
    GroupDissolved,
    TooLong,
    NotJsonContentType,
    UnreadableJson,
    TooFast,
    DailyQuota,
    /// DingTalk's own "system busy" errcodes.
    DingTalkBusy,
    UnknownErrcode,
    /// An HTTP 5xx without a DingTalk answer.
    ServerError,
    NotFound,
    OtherHttp,
    BadAnswer,
    Network,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Rejected { errcode, errmsg } => {
                write!(
                    f,
                    "DingTalk rejected the message: errcode {errcode} ({errmsg})"
                )
            }
            SendError::Http(status) => write!(f, "DingTalk answered HTTP {status}"),
            SendError::BadAnswer(body) => write!(f, "unexpected answer from DingTalk: {body}"),
            SendError::Network(reason) => write!(f, "request to DingTalk failed: {reason}"),
        }
    }
}

impl std::error::Error for SendError {}
