//! A failed send, as DingTalk answered it; what the answer means and whether it is worth
//! retrying is `cause.rs`'s table.
//!
//! Webhook robots: DingTalk answers HTTP 200 for most failures and puts the reason in
//! `errcode`, so the classification looks at the code first and the HTTP status only when
//! there is no code. Application robots: the OpenAPI answers an HTTP error status with
//! `{code, message, requestid}`, and `code` decides.

use std::fmt;

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
    /// The HTTP proxy refused to carry the request: why.
    Proxy(String),
    /// The OpenAPI refused a call for an application robot.
    OpenApi {
        /// Which call.
        call: Call,
        /// The HTTP status.
        status: u16,
        /// DingTalk's error code, e.g. `invalid.openConversationId`.
        code: String,
        /// DingTalk's own message.
        message: String,
        /// DingTalk's `requestid`, for its support.
        request_id: String,
    },
    /// The message is longer than the API takes; it was not sent.
    TooLong {
        /// Its length as the API would count it.
        bytes: usize,
        /// What the API takes.
        limit: usize,
    },
}

/// The OpenAPI calls an application robot makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// `POST /v1.0/oauth2/accessToken`.
    AccessToken,
    /// `POST /v1.0/robot/groupMessages/send`.
    GroupMessage,
    /// `POST /v1.0/gateway/connections/open`: a Stream connection's endpoint and ticket.
    StreamOpen,
    /// `POST /v1.0/im/v1.0/robot/interactiveCards/send`: a new card.
    CardSend,
    /// `PUT /v1.0/im/robots/interactiveCards`: a card updated.
    CardUpdate,
    /// `POST /v1.0/robot/ding/send`: a DING.
    Ding,
    /// `POST /v1.0/robot/ding/readStatuses/query`: who read a DING.
    DingReadStatus,
    /// `POST /v1.0/robot/oToMessages/batchSend`: a 1:1 message.
    OneToOne,
}

impl Call {
    /// Its path under `dingtalk.openapi_url`.
    pub fn path(self) -> &'static str {
        match self {
            Call::AccessToken => super::app::TOKEN_PATH,
            Call::GroupMessage => super::app::GROUP_MESSAGE_PATH,
            Call::StreamOpen => super::app::STREAM_OPEN_PATH,
            Call::CardSend => super::card::SEND_PATH,
            Call::CardUpdate => super::card::UPDATE_PATH,
            Call::Ding => super::ding::SEND_PATH,
            Call::DingReadStatus => super::ding::READ_STATUS_PATH,
            Call::OneToOne => super::ding::ONE_TO_ONE_PATH,
        }
    }
}

/// DingTalk's answer to a group message sent with a token it does not take (expired or
/// revoked): `{"code":"InvalidAuthentication","message":"不合法的access_token"}`.
pub(super) const INVALID_TOKEN: &str = "InvalidAuthentication";

impl SendError {
    /// Whether DingTalk refused the access token a group message carried: the client then
    /// fetches another and sends once more.
    pub(super) fn token_rejected(&self) -> bool {
        matches!(
            self,
            SendError::OpenApi { call, code, .. }
                if code == INVALID_TOKEN && !matches!(call, Call::AccessToken | Call::StreamOpen)
        )
    }

    /// Whether DingTalk refused the robot rather than the message: its token (300001,
    /// 300005, 400101), its security settings (310000: keyword, signature, clock, IP
    /// allowlist), its state in the group (400102, 400106). Another robot of the same group
    /// may deliver what this one cannot.
    pub fn is_robots_fault(&self) -> bool {
        matches!(
            self,
            SendError::Rejected { errcode, .. }
                if matches!(errcode, 300001 | 300005 | 310000 | 400101 | 400102 | 400106)
        )
    }

    /// The label used for this failure in the `dingtalk_errors_total` metric.
    pub fn metric_code(&self) -> String {
        match self {
            SendError::Rejected { errcode, .. } => errcode.to_string(),
            SendError::Http(status) => format!("http_{status}"),
            SendError::BadAnswer(_) => "bad_answer".to_owned(),
            SendError::Network(_) => "network".to_owned(),
            SendError::Proxy(_) => "proxy".to_owned(),
            SendError::OpenApi { status, code, .. } if code.is_empty() => format!("http_{status}"),
            SendError::OpenApi { code, .. } => code.clone(),
            SendError::TooLong { .. } => "too_long".to_owned(),
        }
    }
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
            SendError::Proxy(reason) => write!(f, "request to DingTalk failed: {reason}"),
            SendError::OpenApi {
                call,
                status,
                code,
                message,
                request_id,
            } => write!(
                f,
                "DingTalk refused the {call} call: HTTP {status}, code {code} ({message}), \
                 requestid {request_id}"
            ),
            SendError::TooLong { bytes, limit } => write!(
                f,
                "the message takes {bytes} bytes of msgParam, over the {limit} DingTalk takes; \
                 it was not sent"
            ),
        }
    }
}

impl std::error::Error for SendError {}

impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Call::AccessToken => "access-token",
            Call::GroupMessage => "group-message",
            Call::StreamOpen => "stream-open",
            Call::CardSend => "card-send",
            Call::CardUpdate => "card-update",
            Call::Ding => "ding",
            Call::DingReadStatus => "ding-read-status",
            Call::OneToOne => "one-to-one",
        })
    }
}
