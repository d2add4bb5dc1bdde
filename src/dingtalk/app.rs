//! Robots of an internal application ("企业内部应用机器人"): the application's credentials,
//! the robot and group a message goes to, and the OpenAPI's group-message body.
//!
//! Field names are those of DingTalk's OpenAPI SDK (`alibabacloud-go/dingtalk`,
//! `robot_1_0` `OrgGroupSendRequest`: `robotCode`, `openConversationId`, `msgKey`,
//! `msgParam`); the message keys and their parameters are those of DingTalk's
//! "types of messages sent by enterprise robots"
//! (open.dingtalk.com/document/orgapp/types-of-messages-sent-by-enterprise-robots).

use url::Url;

use super::{Message, MsgType, Secret};

/// Path of the access-token call under `dingtalk.openapi_url`
/// (`oauth2_1_0` `GetAccessToken`).
pub const TOKEN_PATH: &str = "/v1.0/oauth2/accessToken";
/// Path of the group-message call under `dingtalk.openapi_url` (`robot_1_0` `OrgGroupSend`).
pub const GROUP_MESSAGE_PATH: &str = "/v1.0/robot/groupMessages/send";
/// Path of the call that opens a Stream connection (see [`super::stream`]) under
/// `dingtalk.openapi_url`.
pub const STREAM_OPEN_PATH: &str = "/v1.0/gateway/connections/open";
/// The longest `msgParam` the group-message call takes, in bytes ("the robot sends a group
/// message", open.dingtalk.com/document/orgapp/the-robot-sends-a-group-message). A longer
/// one is never sent: it fails as [`SendError::TooLong`](super::SendError::TooLong) and its
/// alerts go again in shorter messages, as after a webhook robot's errcode 460101.
pub const MAX_MSG_PARAM_BYTES: usize = 15_000;
/// What title and text of a message to an application robot take together: the limit less
/// 15 % for JSON escaping (a newline takes two bytes in `msgParam`) and buttons.
pub const APP_MESSAGE_BUDGET: usize = MAX_MSG_PARAM_BYTES / 20 * 17;

/// An internal application: what its access token is fetched with.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct App {
    /// `dingtalk.openapi_url`: where both calls go.
    pub openapi_url: Url,
    /// The application's AppKey (Client ID); not a secret.
    pub app_key: String,
    /// The application's AppSecret (Client Secret).
    pub app_secret: Secret,
}

impl App {
    /// The URL of the call at `path` under `openapi_url`.
    pub fn url(&self, path: &str) -> Url {
        let mut url = self.openapi_url.clone();
        let base = url.path().trim_end_matches('/').to_owned();
        url.set_path(&format!("{base}{path}"));
        url
    }
}

/// A robot of an application in one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppRobot {
    /// The application the robot belongs to.
    pub app: App,
    /// The robot's code, often the application's AppKey.
    pub robot_code: String,
    /// The group the robot posts to.
    pub open_conversation_id: String,
}

/// The group-message body for `message`, sent as `msgtype`, and the length of its
/// `msgParam` in bytes.
pub fn encode(robot: &AppRobot, msgtype: MsgType, message: &Message) -> (String, usize) {
    let (msg_key, msg_param) = sample(msgtype, message);
    let msg_param = msg_param.to_string();
    let param_bytes = msg_param.len();
    let body = serde_json::json!({
        "robotCode": robot.robot_code,
        "openConversationId": robot.open_conversation_id,
        "msgKey": msg_key,
        "msgParam": msg_param,
    });
    (body.to_string(), param_bytes)
}

/// The message key and its parameters. The API has no `at`, so messages to these robots
/// mention nobody (`Robot::can_mention`; `check` warns of mentions configured for them).
pub(super) fn sample(msgtype: MsgType, message: &Message) -> (&'static str, serde_json::Value) {
    let buttons = &message.buttons;
    match msgtype {
        MsgType::Text => ("sampleText", serde_json::json!({ "content": message.text })),
        MsgType::ActionCard | MsgType::Card if buttons.len() == 1 => (
            "sampleActionCard",
            serde_json::json!({
                "title": message.title,
                "text": message.text,
                "singleTitle": buttons[0].title,
                "singleURL": buttons[0].url,
            }),
        ),
        // sampleActionCard2 to 5: two to five buttons, one under the other.
        MsgType::ActionCard | MsgType::Card if (2..=5).contains(&buttons.len()) => {
            let mut param = serde_json::json!({ "title": message.title, "text": message.text });
            for (n, button) in (1..).zip(buttons) {
                param[format!("actionTitle{n}")] = button.title.as_str().into();
                param[format!("actionURL{n}")] = button.url.as_str().into();
            }
            let key = match buttons.len() {
                2 => "sampleActionCard2",
                3 => "sampleActionCard3",
                4 => "sampleActionCard4",
                _ => "sampleActionCard5",
            };
            (key, param)
        }
        MsgType::Markdown | MsgType::ActionCard | MsgType::Card => (
            "sampleMarkdown",
            serde_json::json!({ "title": message.title, "text": message.text }),
        ),
    }
}
