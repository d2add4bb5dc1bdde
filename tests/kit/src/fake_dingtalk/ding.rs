//! DingTalk's DINGs and one-to-one messages of application robots, as the fake serves
//! them beside group messages: `POST /v1.0/robot/ding/send`,
//! `POST /v1.0/robot/ding/readStatuses/query` and `POST /v1.0/robot/oToMessages/batchSend`,
//! and the DINGs and messages they leave behind. No I/O here: the server hands in the
//! parsed request and the time.
//!
//! Field names follow DingTalk's OpenAPI SDK (`alibabacloud-go/dingtalk`, `robot_1_0`):
//! `RobotSendDingRequest` (action `RobotSendDing`) takes `robotCode`, `remindType` (1 in
//! the app, 2 by SMS, 3 by phone call), `receiverUserIdList` and `content`, and
//! `RobotSendDingResponseBody` answers `openDingId` and `failedList` (which the fake leaves
//! out); `QueryRobotDingReadStatusRequest` (action `QueryRobotDingReadStatus`) takes
//! `robotCode` and `openDingId`, and its answer is `success` and
//! `result.robotDingReadInfoList`, a `userId` and a `readStatus` string per receiver;
//! `BatchSendOTORequest` takes `robotCode`, `userIds`, `msgKey` and `msgParam` (a JSON
//! string), and `BatchSendOTOResponseBody` answers `processQueryKey`,
//! `invalidStaffIdList`, `flowControlledStaffIdList` and `filteredStaffIdList`. DingTalk's page on a robot
//! sending a DING (open.dingtalk.com/document/development/robot-sends-nail-message) adds
//! the optional `callVoice` and how many receivers a DING takes: 200 in the app, 20 by SMS
//! or phone call, more answered HTTP 400 `ding.receivercount.limit`.
//!
//! What the fake enforces: the token, the robot's application and the application's rate
//! per API, with the answers group messages get (`openapi.rs`), but no group, as these
//! calls go to people; the fields above, a missing or mistyped one answered HTTP 400
//! `invalidParameter.param.invalid`; the receiver limits; and for a one-to-one message
//! the `msgKey` and `msgParam` rules of group messages (no keyword check: the fake applies
//! none to application robots).
//!
//! The fake's own, not DingTalk's documented behaviour: a `readStatus` is `UNREAD` until a
//! test calls [`FakeDingTalk::mark_ding_read`], then `READ` (the SDK says only that it is a
//! string); an `openDingId` the robot did not send is a bad parameter. Not modelled:
//! users (every user id reaches someone, so `failedList` and the staff id lists stay
//! empty), per-user flow control, a limit on `userIds`, and recalling a DING.

use std::fmt::Debug;
use std::time::{Duration, Instant};

use hyper::StatusCode;
use serde_json::{Value, json};

use super::openapi::{self, OpenApi, check_message, check_request};
use super::rules::{Answer, Call};
use super::stream::random_hex;
use super::{FakeDingTalk, State};

/// Path of the call that sends a DING.
pub(super) const DING_SEND_PATH: &str = "/v1.0/robot/ding/send";
/// Path of the call that asks who read a DING.
pub(super) const DING_READ_PATH: &str = "/v1.0/robot/ding/readStatuses/query";
/// Path of the call that sends a one-to-one message to each of some users.
pub(super) const ONE_TO_ONE_PATH: &str = "/v1.0/robot/oToMessages/batchSend";
/// Most receivers of a DING in the app (`remindType` 1).
pub(super) const MAX_IN_APP_RECEIVERS: usize = 200;
/// Most receivers of a DING by SMS or phone call (`remindType` 2 or 3).
pub(super) const MAX_SMS_OR_CALL_RECEIVERS: usize = 20;
/// The fake's `readStatus` of a receiver who has not read the DING.
const UNREAD: &str = "UNREAD";
/// The fake's `readStatus` of a receiver who has.
const READ: &str = "READ";

/// One DING a robot sent, as the fake keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FakeDing {
    /// The `openDingId` it was answered with.
    pub open_ding_id: String,
    /// The robot that sent it.
    pub robot_code: String,
    /// Its `remindType`: 1 in the app, 2 by SMS, 3 by phone call.
    pub remind_type: u8,
    /// Its `receiverUserIdList`, in order.
    pub receivers: Vec<String>,
    /// Its `content`.
    pub content: String,
    /// Its `callVoice`, if it had one.
    pub call_voice: Option<String>,
    /// When it arrived.
    pub at: Instant,
    /// The receivers a test marked as having read it, in the order marked.
    pub read_by: Vec<String>,
}

impl FakeDing {
    /// The `readStatus` the fake answers for `user_id`, "UNREAD" or "READ"; `None` for
    /// someone it was not sent to.
    pub fn read_status(&self, user_id: &str) -> Option<&'static str> {
        if !self.receivers.iter().any(|r| r == user_id) {
            return None;
        }
        Some(if self.read_by.iter().any(|r| r == user_id) {
            READ
        } else {
            UNREAD
        })
    }
}

/// One one-to-one message a robot sent, to each of its users, as the fake keeps it.
#[derive(Clone, Debug, PartialEq)]
pub struct FakeOneToOneMessage {
    /// The robot that sent it.
    pub robot_code: String,
    /// Its `userIds`, in order.
    pub user_ids: Vec<String>,
    /// Its `msgKey`, such as `sampleMarkdown`.
    pub msg_key: String,
    /// Its `msgParam`, parsed from its JSON string.
    pub msg_param: Value,
    /// The `processQueryKey` it was answered with.
    pub process_query_key: String,
    /// When it arrived.
    pub at: Instant,
}

/// The DINGs and one-to-one messages sent so far, each in arrival order.
#[derive(Default)]
pub(super) struct Dings {
    dings: Vec<FakeDing>,
    one_to_one: Vec<FakeOneToOneMessage>,
}

/// The answer to a DING or one-to-one call at `now`; `None` if `call` is not one.
pub(super) fn answer(state: &mut State, call: &Call, now: Instant) -> Option<Answer> {
    let (openapi, dings) = (&mut state.openapi, &mut state.dings);
    let answer = match call.path.as_str() {
        DING_SEND_PATH => send_ding(openapi, dings, call, now),
        DING_READ_PATH => read_statuses(openapi, dings, call, now),
        ONE_TO_ONE_PATH => send_one_to_one(openapi, dings, call, now),
        _ => return None,
    };
    Some(answer.unwrap_or_else(|error| error))
}

/// Sends a DING to its receivers: a new `openDingId`, every receiver unread.
fn send_ding(
    openapi: &mut OpenApi,
    dings: &mut Dings,
    call: &Call,
    now: Instant,
) -> Result<Answer, Answer> {
    let (app_key, robot_code) = robot_of(openapi, call, now)?;
    let remind_type = call
        .body
        .get("remindType")
        .and_then(Value::as_u64)
        .and_then(|t| u8::try_from(t).ok())
        .filter(|t| (1..=3).contains(t))
        .ok_or_else(|| bad_parameter("remindType must be 1, 2 or 3"))?;
    let receivers = user_ids(call, "receiverUserIdList")?;
    let content = string(call, "content")?;
    let call_voice = match call.body.get("callVoice") {
        None | Some(Value::Null) => None,
        Some(Value::String(voice)) => Some(voice.clone()),
        Some(_) => return Err(bad_parameter("callVoice must be a string")),
    };
    let limit = match remind_type {
        1 => MAX_IN_APP_RECEIVERS,
        _ => MAX_SMS_OR_CALL_RECEIVERS,
    };
    if receivers.len() > limit {
        return Err(openapi::error(
            StatusCode::BAD_REQUEST,
            "ding.receivercount.limit",
            "ding receiver count limit",
        ));
    }
    openapi.admit(&app_key, DING_SEND_PATH, now)?;
    let mut open_ding_id = format!("fake-ding-{}", random_hex());
    while dings.dings.iter().any(|d| d.open_ding_id == open_ding_id) {
        open_ding_id = format!("fake-ding-{}", random_hex());
    }
    dings.dings.push(FakeDing {
        open_ding_id: open_ding_id.clone(),
        robot_code: robot_code.to_owned(),
        remind_type,
        receivers,
        content: content.to_owned(),
        call_voice,
        at: now,
        read_by: Vec::new(),
    });
    Ok(Answer::OpenApi(
        StatusCode::OK,
        json!({ "openDingId": open_ding_id }),
    ))
}

/// The read status of each receiver of a DING the robot sent.
fn read_statuses(
    openapi: &mut OpenApi,
    dings: &Dings,
    call: &Call,
    now: Instant,
) -> Result<Answer, Answer> {
    let (app_key, robot_code) = robot_of(openapi, call, now)?;
    let open_ding_id = string(call, "openDingId")?;
    let ding = dings
        .dings
        .iter()
        .find(|d| d.open_ding_id == open_ding_id && d.robot_code == robot_code)
        .ok_or_else(|| bad_parameter("openDingId: no DING of this robot"))?;
    openapi.admit(&app_key, DING_READ_PATH, now)?;
    let infos: Vec<Value> = ding
        .receivers
        .iter()
        .map(|user_id| {
            let status = ding.read_status(user_id).unwrap_or(UNREAD);
            json!({ "userId": user_id, "readStatus": status })
        })
        .collect();
    Ok(Answer::OpenApi(
        StatusCode::OK,
        json!({ "success": true, "result": { "robotDingReadInfoList": infos } }),
    ))
}

/// Sends a one-to-one message to each user, checked as a group message is.
fn send_one_to_one(
    openapi: &mut OpenApi,
    dings: &mut Dings,
    call: &Call,
    now: Instant,
) -> Result<Answer, Answer> {
    let (app_key, robot_code) = robot_of(openapi, call, now)?;
    let user_ids = user_ids(call, "userIds")?;
    let field = |name: &str| {
        call.body
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    let msg_param = check_message(field("msgKey"), field("msgParam"))?;
    openapi.admit(&app_key, ONE_TO_ONE_PATH, now)?;
    let process_query_key = format!("fake-oto-query-{}", random_hex());
    dings.one_to_one.push(FakeOneToOneMessage {
        robot_code: robot_code.to_owned(),
        user_ids,
        msg_key: field("msgKey").to_owned(),
        msg_param,
        process_query_key: process_query_key.clone(),
        at: now,
    });
    Ok(Answer::OpenApi(
        StatusCode::OK,
        json!({
            "processQueryKey": process_query_key,
            "invalidStaffIdList": [],
            "flowControlledStaffIdList": [],
            "filteredStaffIdList": [],
        }),
    ))
}

/// The application of the call's token and the `robotCode`, once it is one of its robots.
fn robot_of<'a>(
    openapi: &OpenApi,
    call: &'a Call,
    now: Instant,
) -> Result<(String, &'a str), Answer> {
    check_request(call)?;
    let app_key = openapi.app_of(call, now)?;
    let robot_code = string(call, "robotCode")?;
    openapi.check_robot_code(&app_key, robot_code)?;
    Ok((app_key, robot_code))
}

/// The required string field `name`, not empty.
fn string<'a>(call: &'a Call, name: &str) -> Result<&'a str, Answer> {
    call.body
        .get(name)
        .and_then(Value::as_str)
        .filter(|value| !value.is_empty())
        .ok_or_else(|| bad_parameter(&format!("{name} is required, as a string")))
}

/// The required field `name`: a non-empty array of non-empty user ids.
fn user_ids(call: &Call, name: &str) -> Result<Vec<String>, Answer> {
    let ids = call.body.get(name).and_then(Value::as_array);
    ids.filter(|ids| !ids.is_empty())
        .and_then(|ids| {
            let ids = ids.iter().map(|id| id.as_str().filter(|id| !id.is_empty()));
            ids.map(|id| id.map(str::to_owned)).collect()
        })
        .ok_or_else(|| bad_parameter(&format!("{name} is required, as an array of user ids")))
}

/// DingTalk's answer to a missing or mistyped parameter of these calls.
fn bad_parameter(detail: &str) -> Answer {
    openapi::error(
        StatusCode::BAD_REQUEST,
        "invalidParameter.param.invalid",
        &format!("参数无效: {detail}"),
    )
}

/// DINGs and one-to-one messages, as tests inspect them.
impl FakeDingTalk {
    /// Every DING sent so far, in arrival order.
    pub fn dings(&self) -> Vec<FakeDing> {
        self.shared.lock().dings.dings.clone()
    }

    /// The DING answered with `open_ding_id`, if there is one.
    pub fn ding(&self, open_ding_id: &str) -> Option<FakeDing> {
        let state = self.shared.lock();
        let mut dings = state.dings.dings.iter();
        dings.find(|d| d.open_ding_id == open_ding_id).cloned()
    }

    /// Marks the DING `open_ding_id` as read by its receiver `user_id`, as if they had
    /// opened it: its read status answers "READ" from now on. Whether `user_id` is a
    /// receiver of such a DING.
    pub fn mark_ding_read(&self, open_ding_id: &str, user_id: &str) -> bool {
        let marked = {
            let mut state = self.shared.lock();
            let mut dings = state.dings.dings.iter_mut();
            match dings.find(|d| d.open_ding_id == open_ding_id) {
                Some(ding) if ding.receivers.iter().any(|r| r == user_id) => {
                    if !ding.read_by.iter().any(|r| r == user_id) {
                        ding.read_by.push(user_id.to_owned());
                    }
                    true
                }
                _ => false,
            }
        };
        self.shared.changed.notify_waiters();
        marked
    }

    /// Every one-to-one message sent so far, in arrival order.
    pub fn one_to_one_messages(&self) -> Vec<FakeOneToOneMessage> {
        self.shared.lock().dings.one_to_one.clone()
    }

    /// Waits until `cond` holds for the DINGs and returns them; panics with `what` on
    /// timeout.
    pub async fn wait_for_dings(
        &self,
        what: &str,
        timeout: Duration,
        cond: impl Fn(&[FakeDing]) -> bool,
    ) -> Vec<FakeDing> {
        let select = |state: &State| state.dings.dings.clone();
        self.wait_for_kept("DING(s)", what, timeout, select, cond)
            .await
    }

    /// Waits until `cond` holds for the one-to-one messages and returns them; panics with
    /// `what` on timeout.
    pub async fn wait_for_one_to_one_messages(
        &self,
        what: &str,
        timeout: Duration,
        cond: impl Fn(&[FakeOneToOneMessage]) -> bool,
    ) -> Vec<FakeOneToOneMessage> {
        let select = |state: &State| state.dings.one_to_one.clone();
        self.wait_for_kept("one-to-one message(s)", what, timeout, select, cond)
            .await
    }

    /// Waits until `cond` holds for what `select` reads from the state; panics on timeout
    /// with `what` and each of those, called `kind`.
    async fn wait_for_kept<T: Debug>(
        &self,
        kind: &str,
        what: &str,
        timeout: Duration,
        select: impl Fn(&State) -> Vec<T>,
        cond: impl Fn(&[T]) -> bool,
    ) -> Vec<T> {
        let found = self
            .wait_for_state(timeout, |state| {
                let kept = select(state);
                cond(&kept).then_some(kept)
            })
            .await;
        if let Some(kept) = found {
            return kept;
        }
        let kept = select(&self.shared.lock());
        let summary: Vec<String> = kept.iter().map(|k| format!("  {k:?}")).collect();
        panic!(
            "timed out after {timeout:?} waiting until {what}; {} {kind}:\n{}",
            kept.len(),
            summary.join("\n")
        );
    }
}
