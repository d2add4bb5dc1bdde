//! What a failed send means to an operator: the cause DingTalk's answer names, in plain
//! language, and what to change. README "Troubleshooting" has the same table.
//!
//! The OpenAPI codes are those DingTalk documents: the throttling codes in "调用频次与限流"
//! (open.dingtalk.com/document/development/how-to-process-api-throttling-on-the-dingtalk-server),
//! the group-message codes in "the robot sends a group message"
//! (open.dingtalk.com/document/orgapp/the-robot-sends-a-group-message), and
//! `InvalidAuthentication` ("不合法的access_token") as DingTalk's SDK reports a rejected
//! token.

use super::errcode::{Call, INVALID_TOKEN};
use super::{Robot, SendError};

impl SendError {
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
            Cause::BadAnswer => "a success status whose body is not DingTalk's answer",
            Cause::Network => "the request did not complete (connection, TLS or timeout)",
            Cause::AppCredentials => "DingTalk refused the application's app_key and app_secret",
            Cause::TokenRejected => {
                "DingTalk refused the application's access token, even one fetched just before"
            }
            Cause::MissingPermission => {
                "the application lacks the permission to send messages as a robot"
            }
            Cause::NoSuchRobotCode => "no robot of the application has this robot_code",
            Cause::RobotOfOtherApp => "the robot does not belong to the application of app_key",
            Cause::NoSuchConversation => {
                "no group has this open_conversation_id, or the robot is not in it"
            }
            Cause::AppRobotStopped => "the robot is stopped",
            Cause::ApiThrottled => {
                "the application called the OpenAPI faster than DingTalk allows (per second)"
            }
            Cause::MonthlyQuota => "the organisation used up its OpenAPI calls for the month",
            Cause::UnreadableParams => "DingTalk could not read the message's msgKey or msgParam",
            Cause::UnknownCode => "a code this bridge does not know; DingTalk's message says more",
            Cause::MsgParamTooLong => "the message is longer than the OpenAPI takes in msgParam",
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
            Cause::NotFound if robot.is_app() => {
                "check dingtalk.openapi_url: it should be DingTalk's OpenAPI address, \
                 https://api.dingtalk.com, without a path"
            }
            Cause::NotFound => {
                "check dingtalk.api_url (or the robot's webhook): it should end in /robot/send"
            }
            Cause::OtherHttp if robot.is_app() => "check dingtalk.openapi_url and proxy_url",
            Cause::OtherHttp => "check dingtalk.api_url and proxy_url",
            Cause::BadAnswer if robot.is_app() => {
                "the answer is not DingTalk's; check dingtalk.openapi_url and any proxy in between"
            }
            Cause::BadAnswer => {
                "the answer is not DingTalk's; check dingtalk.api_url and any proxy in between"
            }
            Cause::Network => {
                "check that this host can reach DingTalk (DNS, firewall, proxy_url / HTTPS_PROXY)"
            }
            Cause::AppCredentials => {
                "copy the AppKey (Client ID) and AppSecret (Client Secret) again from the \
                 application's credentials page in DingTalk's developer console"
            }
            Cause::TokenRejected => {
                "check that app_key and app_secret are those of the application the robot \
                 belongs to, and that nothing in between rewrites the x-acs-dingtalk-access-token \
                 header"
            }
            Cause::MissingPermission => {
                "grant the application the permission to send messages as an enterprise robot \
                 (企业内机器人发送消息权限) in the developer console, then publish a new version"
            }
            Cause::NoSuchRobotCode => {
                "set robot_code to the RobotCode on the robot's page in the developer console \
                 (often the AppKey), and check that the robot has been published"
            }
            Cause::RobotOfOtherApp => {
                "use the app_key and app_secret of the application the robot belongs to"
            }
            Cause::NoSuchConversation => {
                "add the robot to the group, and copy the group's openConversationId (cid...) \
                 again into open_conversation_id"
            }
            Cause::AppRobotStopped => {
                "the robot has been stopped: enable it on its page in the developer console"
            }
            Cause::ApiThrottled => {
                "the robot pauses and tries again; check that nothing else calls DingTalk's \
                 OpenAPI with this application at the same time"
            }
            Cause::MonthlyQuota => {
                "DingTalk limits a standard organisation to 5000 OpenAPI calls a month; the robot \
                 pauses and tries again, but only a larger plan (or next month) lets it through"
            }
            Cause::UnreadableParams => {
                "check any proxy that rewrites requests; report the requestid to DingTalk if it \
                 persists"
            }
            Cause::UnknownCode => "see DingTalk's message; the message is not retried",
            Cause::MsgParamTooLong => {
                "its alerts are sent again in shorter messages, and later messages to this robot \
                 are kept shorter"
            }
        };
        hint.to_owned()
    }

    /// Which failure this is, for [`meaning`](Self::meaning) and [`hint`](Self::hint): one
    /// reading of the errcode and its errmsg for both.
    pub(super) fn cause(&self) -> Cause {
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
            SendError::OpenApi {
                call, status, code, ..
            } => match code.as_str() {
                "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi"
                | "Forbidden.AccessDenied.QpsLimitForApi" => Cause::ApiThrottled,
                "Forbidden.AccessDenied.ApiCountLimitForOrg" => Cause::MonthlyQuota,
                _ if *status == 429 => Cause::ApiThrottled,
                _ if *status >= 500 => Cause::ServerError,
                _ if *call == Call::AccessToken => Cause::AppCredentials,
                INVALID_TOKEN => Cause::TokenRejected,
                code if code.contains("PermissionDenied") => Cause::MissingPermission,
                "invalidParameter.robotCode.notExsit" => Cause::NoSuchRobotCode,
                "invalidParameter.robotCode.auth" => Cause::RobotOfOtherApp,
                "invalid.openConversationId" => Cause::NoSuchConversation,
                "bot.stopped" => Cause::AppRobotStopped,
                "invalidParameter.msgParam.invalid" | "invalidParameter.msgKey.invalid" => {
                    Cause::UnreadableParams
                }
                _ => Cause::UnknownCode,
            },
            SendError::TooLong { .. } => Cause::MsgParamTooLong,
        }
    }
}

/// The failures `meaning` and `hint` tell apart.
pub(super) enum Cause {
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
    /// The access-token call refused the application's credentials.
    AppCredentials,
    TokenRejected,
    MissingPermission,
    NoSuchRobotCode,
    RobotOfOtherApp,
    NoSuchConversation,
    AppRobotStopped,
    ApiThrottled,
    MonthlyQuota,
    UnreadableParams,
    /// An OpenAPI code this bridge does not know.
    UnknownCode,
    MsgParamTooLong,
}
