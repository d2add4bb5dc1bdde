//! Reaching one person through a robot of an application: a DING (in the app, by SMS or
//! by phone call), whether it was read, and a 1:1 robot message.
//!
//! Field names and paths as in DingTalk's OpenAPI SDK (alibabacloud-go/dingtalk
//! `robot_1_0`): `RobotSendDing` (`POST /v1.0/robot/ding/send`: `robotCode`, `remindType`
//! 1 in the app, 2 SMS, 3 phone call, `receiverUserIdList`, `content`; answered with
//! `openDingId`), `QueryRobotDingReadStatus` (`POST /v1.0/robot/ding/readStatuses/query`:
//! `robotCode`, `openDingId`; answered with `result.robotDingReadInfoList` of `userId` and
//! `readStatus`) and `BatchSendOTO` (`POST /v1.0/robot/oToMessages/batchSend`: `robotCode`,
//! `userIds`, `msgKey`, `msgParam`, as a group message). DingTalk's documentation of the
//! DING call (open.dingtalk.com/document/development/robot-sends-nail-message) says SMS and
//! phone DINGs need a purchased allowance and DINGs are for DingTalk's professional and
//! exclusive editions.

use serde::Deserialize;

use super::app::{self, AppRobot};
use super::client::{self, Client};
use super::{Call, Endpoint, Message, MsgType, Robot, SendError};

/// Path of the DING call under `dingtalk.openapi_url`.
pub const SEND_PATH: &str = "/v1.0/robot/ding/send";
/// Path of the call that says who read a DING.
pub const READ_STATUS_PATH: &str = "/v1.0/robot/ding/readStatuses/query";
/// Path of the 1:1 message call.
pub const ONE_TO_ONE_PATH: &str = "/v1.0/robot/oToMessages/batchSend";

/// The body of a DING of `remind_type` from `robot` to `user_ids`, saying `content`.
pub fn send_body(robot: &AppRobot, remind_type: u8, user_ids: &[String], content: &str) -> String {
    serde_json::json!({
        "robotCode": robot.robot_code,
        "remindType": remind_type,
        "receiverUserIdList": user_ids,
        "content": content,
    })
    .to_string()
}

/// The body asking who read the DING `open_ding_id` of `robot`.
pub fn read_status_body(robot: &AppRobot, open_ding_id: &str) -> String {
    serde_json::json!({ "robotCode": robot.robot_code, "openDingId": open_ding_id }).to_string()
}

/// The body sending `message` (as `msgtype`) 1:1 to `user_ids` from `robot`.
pub fn one_to_one_body(
    robot: &AppRobot,
    msgtype: MsgType,
    message: &Message,
    user_ids: &[String],
) -> String {
    let (msg_key, msg_param) = app::sample(msgtype, message);
    serde_json::json!({
        "robotCode": robot.robot_code,
        "userIds": user_ids,
        "msgKey": msg_key,
        "msgParam": msg_param.to_string(),
    })
    .to_string()
}

impl Client {
    /// Sends a DING of `remind_type` from `robot` to `user_ids`; its `openDingId`.
    pub async fn ding(
        &self,
        robot: &Robot,
        remind_type: u8,
        user_ids: &[String],
        content: &str,
    ) -> Result<String, SendError> {
        let app_robot = client::app_robot(robot, Call::Ding)?;
        let body = send_body(app_robot, remind_type, user_ids, content);
        let sent: Sent = self.call_app(&app_robot.app, Call::Ding, body).await?;
        Ok(sent.open_ding_id)
    }

    /// Who of its receivers read the DING `open_ding_id` of `robot`.
    pub async fn ding_read(
        &self,
        robot: &Robot,
        open_ding_id: &str,
    ) -> Result<Vec<ReadInfo>, SendError> {
        let app_robot = client::app_robot(robot, Call::DingReadStatus)?;
        let body = read_status_body(app_robot, open_ding_id);
        let api = Call::DingReadStatus;
        let read: ReadStatuses = self.call_app(&app_robot.app, api, body).await?;
        Ok(read.result.robot_ding_read_info_list)
    }

    /// Sends `body` (from [`Robot::one_to_one_body`]) 1:1 to the people it names.
    pub async fn one_to_one(&self, robot: &Robot, body: String) -> Result<(), SendError> {
        let app = &client::app_robot(robot, Call::OneToOne)?.app;
        self.call_app::<client::Sent>(app, Call::OneToOne, body)
            .await
            .map(drop)
    }
}

impl Robot {
    /// For a robot of an application, the body that sends `message` 1:1 to the people on
    /// call it names ([`Message::mention`]'s user ids: such a robot's group message
    /// mentions nobody, so they are reached this way); `None` for a webhook robot or a
    /// message that names nobody.
    pub fn one_to_one_body(&self, message: &Message) -> Option<String> {
        let Endpoint::App(robot) = &self.endpoint else {
            return None;
        };
        let user_ids = &message.mention.user_ids;
        let msgtype = match message.msgtype.unwrap_or(self.msgtype) {
            // A card is its group's; one person gets it as an action card.
            MsgType::Card => MsgType::ActionCard,
            other => other,
        };
        (!user_ids.is_empty()).then(|| one_to_one_body(robot, msgtype, message, user_ids))
    }
}

/// The answer to a DING.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Sent {
    open_ding_id: String,
}

/// The answer to a read-status query.
#[derive(Debug, Deserialize)]
struct ReadStatuses {
    result: ReadResult,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ReadResult {
    #[serde(default)]
    robot_ding_read_info_list: Vec<ReadInfo>,
}

/// Whether one receiver read a DING, as DingTalk says it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadInfo {
    /// The receiver.
    pub user_id: String,
    /// DingTalk's word for it.
    pub read_status: String,
}
