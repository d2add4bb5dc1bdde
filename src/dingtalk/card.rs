//! Interactive cards of robots of an application (互动卡片), with DingTalk's built-in
//! `StandardCard` template, so no template has to be created: a card is sent once, under
//! an id of the sender's choosing (`cardBizId`), and updated in place under that id.
//!
//! Field names as in DingTalk's OpenAPI SDK (alibabacloud-go/dingtalk `im_1_0`):
//! `SendRobotInteractiveCardRequest` (`cardTemplateId`, `cardBizId`, `robotCode`,
//! `openConversationId`, `cardData`) and `UpdateRobotInteractiveCardRequest` (`cardBizId`,
//! `cardData`). The card's data, a JSON string, has the shape of open-dingtalk's
//! dingtalk-stream-sdk-python `interactive_card.py`: `config`, a `header` with a `title`,
//! and `contents` of `markdown`, `divider` and `action` blocks whose buttons open links
//! (`actionType: "openLink"`, `url.all`). The SDK documents that a second send with the
//! same `cardBizId` does not overwrite the card ("同一个outTrackId重复创建，卡片数据不覆盖更新").

use serde_json::{Value, json};

use super::Message;
use super::app::AppRobot;

/// Path of the call that sends a card, under `dingtalk.openapi_url`.
pub const SEND_PATH: &str = "/v1.0/im/v1.0/robot/interactiveCards/send";
/// Path of the call that updates a card (`PUT`), under `dingtalk.openapi_url`.
pub const UPDATE_PATH: &str = "/v1.0/im/robots/interactiveCards";
/// The built-in template: a header, markdown and buttons.
const TEMPLATE: &str = "StandardCard";

/// What a card call does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardCall {
    /// Send a new card.
    Send,
    /// Update a card sent before.
    Update,
}

/// The body that sends (`Send`) or updates `message` as card `biz_id` of `robot`.
pub fn body(call: CardCall, robot: &AppRobot, biz_id: &str, message: &Message) -> String {
    let data = data(message).to_string();
    match call {
        CardCall::Send => json!({
            "cardTemplateId": TEMPLATE,
            "robotCode": robot.robot_code,
            "openConversationId": robot.open_conversation_id,
            "cardBizId": biz_id,
            "cardData": data,
        }),
        CardCall::Update => json!({
            "cardBizId": biz_id,
            "cardData": data,
        }),
    }
    .to_string()
}

/// The card's data: the message's title as the header, its markdown, and its buttons.
fn data(message: &Message) -> Value {
    let mut contents = vec![json!({ "type": "markdown", "text": message.text, "id": "text" })];
    if !message.buttons.is_empty() {
        let buttons: Vec<Value> = (0..)
            .zip(&message.buttons)
            .map(|(n, button)| {
                json!({
                    "type": "button",
                    "label": { "type": "text", "text": button.title, "id": format!("label_{n}") },
                    "actionType": "openLink",
                    "url": { "all": button.url },
                    "status": if n == 0 { "primary" } else { "normal" },
                    "id": format!("button_{n}"),
                })
            })
            .collect();
        contents.push(json!({ "type": "divider", "id": "divider" }));
        contents.push(json!({ "type": "action", "actions": buttons, "id": "actions" }));
    }
    json!({
        "config": { "autoLayout": true, "enableForward": true },
        "header": { "title": { "type": "text", "text": message.title } },
        "contents": contents,
    })
}
