//! Everything that knows DingTalk's robot APIs: robots and their credentials, the JSON
//! message bodies, request signing, application access tokens, sending, and the meaning of
//! DingTalk's answers.
//!
//! A robot is one of two kinds ([`Endpoint`]): a custom robot posts to its webhook
//! ([`Webhook`]) with an `access_token` (and maybe a signature), and answers `errcode`; an
//! application robot ([`app`]) posts through the OpenAPI with its application's access
//! token ([`token`]), and answers an HTTP status with `code`. Everything outside this
//! module treats both alike. A pool names webhook robots and is sent through them.
//!
//! Architecture invariant: no other module builds DingTalk JSON or reads DingTalk's codes.
//! Credentials live in [`Secret`]s, which implement `Debug` as `***` and no `Display`, so a
//! credential can only reach a log through [`Secret::expose`].

mod answer;
pub mod app;
pub mod card;
mod cause;
mod client;
pub mod ding;
mod error;
mod limits;
pub mod markdown;
mod proxy;
pub mod sign;
pub mod stream;
pub mod token;
mod webhook;

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use serde::{Deserialize, Serialize};

pub use answer::classify;
pub use app::{App, AppRobot};
pub use cause::{Answer, CAUSES, Cause};
pub use client::{Client, ClientError, OnCall};
pub use error::{Call, Retry, SendError};
pub use limits::{
    MAX_BUTTON_BYTES, MAX_MESSAGE_BYTES, MAX_TEXT_BYTES, MAX_TITLE_BYTES, MESSAGE_BUDGET,
    MIN_BUDGET, RateLimit,
};
pub use proxy::Proxy;
pub use webhook::Webhook;

/// What delivery needs from DingTalk: send one encoded message to one robot. The retry
/// loop, the rate window and the metrics live outside it, so tests can script it.
pub trait Sender: Send + Sync {
    /// POSTs `body` (from [`Robot::body`]) to `robot`; success is DingTalk's acceptance.
    fn send<'a>(&'a self, robot: &'a Robot, body: String) -> SendFuture<'a>;

    /// Sends or updates the card `body` (from [`card::body`]) of `robot`, a robot of an
    /// application.
    fn card<'a>(&'a self, robot: &'a Robot, body: String, call: card::CardCall) -> SendFuture<'a>;

    /// Sends `body` (from [`Robot::one_to_one_body`]) 1:1 to the people it names, from
    /// `robot`, a robot of an application.
    fn one_to_one<'a>(&'a self, robot: &'a Robot, body: String) -> SendFuture<'a>;
}

/// The answer to [`Sender::send`].
pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<(), SendError>> + Send + 'a>>;

/// A credential (access token, signing secret, application secret) that must never be
/// logged or printed.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Secret(String);

impl Secret {
    /// Wraps a credential.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The credential itself, for the one place that needs it: building the request.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// A configured group robot.
#[derive(Debug, Clone)]
pub struct Robot {
    /// The name used in `config.yaml`, metrics and logs.
    pub name: String,
    /// Where and how its messages are sent.
    pub endpoint: Endpoint,
    /// Security keywords; every message carries one of them.
    pub keywords: Vec<String>,
    /// Who every message of this robot mentions.
    pub mention: Mention,
    /// The on-call schedules whose member on call every message of this robot mentions
    /// too (`mention.oncall`), looked up when the message is planned.
    pub oncall: Vec<String>,
    /// How many messages the robot may send per rolling window.
    pub rate_limit: RateLimit,
    /// Message type to send.
    pub msgtype: MsgType,
    /// Whether people may command the bridge through this robot, and who: robots of an
    /// application only (Stream mode).
    pub commands: Option<Commands>,
}

/// Who may command the bridge through a robot ([`stream`]): members of the robot's group.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Commands {
    /// The staff ids (userid) allowed; empty: every member of the group.
    pub users: Vec<String>,
}

impl Commands {
    /// Whether the person with `staff_id` may give commands.
    pub fn allows(&self, staff_id: &str) -> bool {
        self.users.is_empty() || self.users.iter().any(|user| user == staff_id)
    }
}

/// The two kinds of DingTalk group robot, and a pool of robots of one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A custom robot, addressed by its webhook.
    Webhook(Webhook),
    /// A robot of an internal application, addressed through the OpenAPI.
    App(AppRobot),
    /// A pool (`pools:`) of the webhook robots named, of one group and configured alike;
    /// no address of its own: the delivery worker picks a member for each message.
    Pool(Vec<String>),
}

impl Robot {
    /// The URL messages are POSTed to, without credentials: safe for logs and `render`
    /// output.
    pub fn redacted_url(&self) -> String {
        match &self.endpoint {
            Endpoint::Webhook(webhook) => {
                let mut url = webhook.api_url.clone();
                url.query_pairs_mut().append_pair("access_token", "***");
                url.to_string()
            }
            Endpoint::App(robot) => robot.app.url(app::GROUP_MESSAGE_PATH).to_string(),
            Endpoint::Pool(members) => format!("pool of {}", members.join(", ")),
        }
    }

    /// For a robot of an application, which application, robot and group, for `render`,
    /// `test-robot` and the status page; `None` for a webhook robot.
    pub fn app_note(&self) -> Option<String> {
        match &self.endpoint {
            Endpoint::Webhook(_) | Endpoint::Pool(_) => None,
            Endpoint::App(robot) => Some(format!(
                "application {}, robot {}, group {}",
                robot.app.app_key, robot.robot_code, robot.open_conversation_id
            )),
        }
    }

    /// Whether it is a webhook robot with a signing secret.
    pub fn is_signed(&self) -> bool {
        matches!(&self.endpoint, Endpoint::Webhook(webhook) if webhook.secret.is_some())
    }

    /// Whether it is a robot of an application.
    pub fn is_app(&self) -> bool {
        matches!(self.endpoint, Endpoint::App(_))
    }

    /// The robots of a pool, as `pools:` names them; `None` for a robot.
    pub fn pool_members(&self) -> Option<&[String]> {
        match &self.endpoint {
            Endpoint::Pool(members) => Some(members),
            Endpoint::Webhook(_) | Endpoint::App(_) => None,
        }
    }

    /// Whether its messages can `@` people. A robot of an application cannot: the
    /// group-message call has no `at` (`robot_1_0` `OrgGroupSendRequest` in DingTalk's
    /// OpenAPI SDK), so its messages mention nobody, not even as `@` text.
    pub fn can_mention(&self) -> bool {
        !self.is_app()
    }

    /// Bytes of title and text a message to this robot may take before DingTalk was seen
    /// to take less.
    pub fn message_budget(&self) -> usize {
        match self.endpoint {
            Endpoint::Webhook(_) | Endpoint::Pool(_) => MESSAGE_BUDGET,
            Endpoint::App(_) => app::APP_MESSAGE_BUDGET,
        }
    }

    /// The request body for `message` to this robot; [`SendError::TooLong`] when it is
    /// longer than the robot's API takes, so it is sent again in shorter messages instead.
    pub fn body(&self, message: &Message) -> Result<String, SendError> {
        let msgtype = message.msgtype.unwrap_or(self.msgtype);
        match &self.endpoint {
            Endpoint::Webhook(_) | Endpoint::Pool(_) => Ok(encode_as(msgtype, message)),
            Endpoint::App(robot) => {
                let (body, param_bytes) = app::encode(robot, msgtype, message);
                if param_bytes > app::MAX_MSG_PARAM_BYTES {
                    return Err(SendError::TooLong {
                        bytes: param_bytes,
                        limit: app::MAX_MSG_PARAM_BYTES,
                    });
                }
                Ok(body)
            }
        }
    }

    /// Whether `message` goes as its group's card: a robot of an application whose
    /// messages (or this one's strategy) are cards.
    pub fn sends_cards(&self, message: &Message) -> bool {
        matches!(self.endpoint, Endpoint::App(_))
            && message.msgtype.unwrap_or(self.msgtype) == MsgType::Card
    }

    /// The keyword to name in hints and to add to messages that lack one.
    pub fn primary_keyword(&self) -> &str {
        self.keywords.first().map_or("", String::as_str)
    }
}

/// The DingTalk message types this bridge can send.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MsgType {
    /// Markdown with title and text: headings, bold, links.
    #[default]
    Markdown,
    /// Plain text.
    Text,
    /// Markdown with buttons under it (View in Alertmanager, Silence, Source); sent as
    /// markdown when a message has no buttons, such as a digest. DingTalk's `at` covers
    /// text and markdown only (its custom robot documentation,
    /// open.dingtalk.com/document/robots/custom-robot-access, lists `at` for those two), so
    /// an action card notifies nobody it mentions.
    #[serde(rename = "actionCard")]
    ActionCard,
    /// For a robot of an application: an interactive card (DingTalk's `StandardCard`),
    /// sent once per alert group and updated in place as the group changes ([`card`]). A
    /// message that covers no one group (a digest, a test message) goes as an action card.
    Card,
}

/// Who a message mentions (`@`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Mention {
    /// `@all` in the group.
    pub all: bool,
    /// Mobile numbers of the people to mention.
    pub mobiles: Vec<String>,
    /// DingTalk user ids of the people to mention.
    pub user_ids: Vec<String>,
}

impl Mention {
    /// Whether it mentions nobody.
    pub fn is_empty(&self) -> bool {
        !self.all && self.mobiles.is_empty() && self.user_ids.is_empty()
    }

    /// This mention plus `other`'s, without duplicates.
    pub fn merged(&self, other: &Mention) -> Mention {
        let union = |a: &[String], b: &[String]| {
            let mut all = a.to_vec();
            all.extend(b.iter().filter(|x| !a.contains(x)).cloned());
            all
        };
        Mention {
            all: self.all || other.all,
            mobiles: union(&self.mobiles, &other.mobiles),
            user_ids: union(&self.user_ids, &other.user_ids),
        }
    }

    /// The `@mobile @userid` text DingTalk needs in the message body to show mentions.
    pub fn at_text(&self) -> String {
        self.mobiles
            .iter()
            .chain(&self.user_ids)
            .map(|who| format!("@{who}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// A rendered message, before it is encoded for DingTalk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Title shown in the notification list (markdown only; the text repeats it).
    pub title: String,
    /// The body.
    pub text: String,
    /// Who to mention.
    pub mention: Mention,
    /// Buttons of an action card; none for other types and for digests.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub buttons: Vec<Button>,
    /// The strategy's `msgtype` where it overrides the robot's; `None` sends it as the
    /// robot's type (digests, test messages, direct webhooks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msgtype: Option<MsgType>,
}

/// A button of an action card: a title and the page it opens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Button {
    /// What the button says.
    pub title: String,
    /// The page it opens.
    pub url: String,
}

impl Message {
    /// Bytes of title and text together: what the size budget covers. (Buttons, at
    /// most [`MAX_BUTTON_BYTES`], live in the budget's margin under DingTalk's limit.)
    pub fn size(&self) -> usize {
        self.title.len() + self.text.len()
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct At<'a> {
    at_mobiles: &'a [String],
    at_user_ids: &'a [String],
    is_at_all: bool,
}

/// The JSON body a webhook robot of `robot_msgtype` (which the message's own `msgtype`
/// overrides) sends for `message`.
pub fn encode(robot_msgtype: MsgType, message: &Message) -> String {
    encode_as(message.msgtype.unwrap_or(robot_msgtype), message)
}

fn encode_as(msgtype: MsgType, message: &Message) -> String {
    let at = At {
        at_mobiles: &message.mention.mobiles,
        at_user_ids: &message.mention.user_ids,
        is_at_all: message.mention.all,
    };
    let body = match msgtype {
        MsgType::Markdown => serde_json::json!({
            "msgtype": "markdown",
            "markdown": { "title": message.title, "text": message.text },
            "at": at,
        }),
        MsgType::Text => serde_json::json!({
            "msgtype": "text",
            "text": { "content": message.text },
            "at": at,
        }),
        // DingTalk's "independent jump" action card: one button per link, side by side.
        MsgType::ActionCard if !message.buttons.is_empty() => {
            let buttons: Vec<_> = message
                .buttons
                .iter()
                .map(|b| serde_json::json!({ "title": b.title, "actionURL": b.url }))
                .collect();
            serde_json::json!({
                "msgtype": "actionCard",
                "actionCard": {
                    "title": message.title,
                    "text": message.text,
                    "btnOrientation": "1",
                    "btns": buttons,
                },
            })
        }
        MsgType::ActionCard => return encode_as(MsgType::Markdown, message),
        // Only robots of an application take cards; `check` refuses them for webhooks.
        MsgType::Card => return encode_as(MsgType::ActionCard, message),
    };
    body.to_string()
}
