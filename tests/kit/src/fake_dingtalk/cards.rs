//! DingTalk's interactive cards of application robots (互动卡片, the built-in
//! `StandardCard` template), as the fake serves them beside group messages:
//! `POST /v1.0/im/v1.0/robot/interactiveCards/send` and
//! `PUT /v1.0/im/robots/interactiveCards`, and the cards they leave behind, each with the
//! history of its data. No I/O here: the server hands in the parsed request and the time.
//!
//! Field names follow DingTalk's OpenAPI SDK (`alibabacloud-go/dingtalk`, `im_1_0`):
//! `SendRobotInteractiveCardRequest` takes `cardTemplateId`, `cardBizId`, `robotCode`,
//! `openConversationId` and `cardData` (a JSON string), and optionally `callbackUrl`,
//! `pullStrategy`, `sendOptions`, `singleChatReceiver`; `UpdateRobotInteractiveCardRequest`
//! takes `cardBizId` and optionally `cardData`, `updateOptions`, `userIdPrivateDataMap`,
//! `unionIdPrivateDataMap`; both answer a body of one `processQueryKey`
//! (`SendRobotInteractiveCardResponseBody`, `UpdateRobotInteractiveCardResponseBody`).
//! The card data is the `StandardCard` JSON of open-dingtalk `dingtalk-stream-sdk-python`
//! (`interactive_card.py`): `config`, `header.title.text`, and `contents`, blocks of type
//! `markdown`, `text`, `divider`, `image` or `action`, whose buttons have a `label.text`
//! and, to open a link, a `url.all`.
//!
//! What the fake enforces: the token, the robot and its group, and the application's rate
//! per API, with the answers group messages get (`openapi.rs`); the `StandardCard`
//! template; a `cardBizId`; and `cardData` that is a JSON object with a `contents` array.
//! As the SDK documents `cardBizId` ("同一个outTrackId重复创建，卡片数据不覆盖更新"), a send
//! with the id of a card that exists is taken and leaves that card's data as it was; the
//! fake counts such sends. An update replaces the card's data: the fake appends it to the
//! card's history.
//!
//! Not public, hence the fake's guesses: the code of a bad parameter (HTTP 400
//! `param.error`, "参数无效", which third-party clients of these calls watch for) and the
//! answer to an update of a card that does not exist (HTTP 400 `param.cardNotExist`).
//! Not modelled, and refused with `param.error` rather than pretended: templates other
//! than `StandardCard`, updates of private data only (no `cardData`), and
//! `updateOptions.updateCardDataByKey`. A card lives in the group of its first send (a
//! send of the same id to another group is only counted), and `cardBizId`s are one
//! namespace across the fake's applications. A single chat (`singleChatReceiver` without
//! `openConversationId`) fails the group check.

use std::time::{Duration, Instant};

use hyper::{Method, StatusCode};
use serde_json::{Value, json};

use super::openapi::{self, OpenApi, check_call, check_request};
use super::rules::{Answer, Call};
use super::stream::random_hex;
use super::{FakeDingTalk, State};

/// Path of the call that sends a card.
pub(super) const CARD_SEND_PATH: &str = "/v1.0/im/v1.0/robot/interactiveCards/send";
/// Path of the call that updates a card.
pub(super) const CARD_UPDATE_PATH: &str = "/v1.0/im/robots/interactiveCards";
/// The built-in template, the only one the fake knows.
const STANDARD_CARD: &str = "StandardCard";

/// One interactive card sent to a group, as the fake keeps it.
#[derive(Clone, Debug, PartialEq)]
pub struct FakeCard {
    /// The `cardBizId` it was sent with.
    pub biz_id: String,
    /// The group it was sent to.
    pub open_conversation_id: String,
    /// The robot that sent it.
    pub robot_code: String,
    /// Its `cardData`, parsed: the send first, then each update in order.
    pub history: Vec<Value>,
    /// Sends with its `cardBizId` after the first: taken, but they left it as it was.
    pub repeated_sends: usize,
}

/// What [`FakeCard::latest`] is for a card without data (only one built by hand).
static NO_DATA: Value = Value::Null;

impl FakeCard {
    /// Its data as the group sees it now: the latest entry of its history.
    pub fn latest(&self) -> &Value {
        self.history.last().unwrap_or(&NO_DATA)
    }

    /// The title of its latest data (`header.title.text`), "" without one.
    pub fn title(&self) -> String {
        self.latest()
            .pointer("/header/title/text")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    }

    /// The texts of the `markdown` and `text` blocks of its latest data, joined by "\n".
    pub fn markdown(&self) -> String {
        self.contents()
            .filter(|block| matches!(block["type"].as_str(), Some("markdown" | "text")))
            .filter_map(|block| block["text"].as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The buttons of the `action` blocks of its latest data, in order: the label and the
    /// link it opens (`url.all`, "" for a button that opens none).
    pub fn buttons(&self) -> Vec<(String, String)> {
        self.contents()
            .filter(|block| block["type"] == "action")
            .filter_map(|block| block["actions"].as_array())
            .flatten()
            .filter(|action| action["type"] == "button")
            .map(|button| {
                let text = |pointer: &str| {
                    button
                        .pointer(pointer)
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned()
                };
                (text("/label/text"), text("/url/all"))
            })
            .collect()
    }

    /// How many updates it took.
    pub fn updates(&self) -> usize {
        self.history.len().saturating_sub(1)
    }

    /// The blocks of its latest data.
    fn contents(&self) -> impl Iterator<Item = &Value> {
        self.latest()
            .get("contents")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
    }
}

/// The cards sent so far, in creation order.
#[derive(Default)]
pub(super) struct Cards {
    cards: Vec<FakeCard>,
}

impl Cards {
    fn get_mut(&mut self, biz_id: &str) -> Option<&mut FakeCard> {
        self.cards.iter_mut().find(|card| card.biz_id == biz_id)
    }
}

/// The answer to a card call at `now`; `None` if `call` is not one.
pub(super) fn answer(state: &mut State, call: &Call, now: Instant) -> Option<Answer> {
    let answer = match call.path.as_str() {
        CARD_SEND_PATH => send(&mut state.openapi, &mut state.cards, call, now),
        CARD_UPDATE_PATH => update(&mut state.openapi, &mut state.cards, call, now),
        _ => return None,
    };
    Some(answer.unwrap_or_else(|error| error))
}

/// Sends a card: a new one for a new `cardBizId`, only counted for a known one.
fn send(
    openapi: &mut OpenApi,
    cards: &mut Cards,
    call: &Call,
    now: Instant,
) -> Result<Answer, Answer> {
    check_request(call)?;
    let app_key = openapi.app_of(call, now)?;
    let field = |name: &str| {
        call.body
            .get(name)
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    let (robot_code, group) = (field("robotCode"), field("openConversationId"));
    openapi.check_robot(&app_key, robot_code, group)?;
    if field("cardTemplateId") != STANDARD_CARD {
        return Err(bad_parameter(
            "cardTemplateId: the fake knows only StandardCard",
        ));
    }
    let biz_id = biz_id(call)?;
    let data = card_data(call)?;
    openapi.admit(&app_key, CARD_SEND_PATH, now)?;
    match cards.get_mut(biz_id) {
        Some(card) => card.repeated_sends += 1,
        None => cards.cards.push(FakeCard {
            biz_id: biz_id.to_owned(),
            open_conversation_id: group.to_owned(),
            robot_code: robot_code.to_owned(),
            history: vec![data],
            repeated_sends: 0,
        }),
    }
    Ok(taken())
}

/// Updates a card that exists: its new data goes to the end of its history.
fn update(
    openapi: &mut OpenApi,
    cards: &mut Cards,
    call: &Call,
    now: Instant,
) -> Result<Answer, Answer> {
    check_call(call, &Method::PUT)?;
    let app_key = openapi.app_of(call, now)?;
    let biz_id = biz_id(call)?;
    if call.body.pointer("/updateOptions/updateCardDataByKey") == Some(&Value::Bool(true)) {
        return Err(bad_parameter(
            "updateOptions.updateCardDataByKey: the fake replaces the whole cardData only",
        ));
    }
    let data = card_data(call)?;
    let card = cards.get_mut(biz_id).ok_or_else(|| {
        // A guess: no public source names DingTalk's answer for an unknown cardBizId.
        openapi::error(StatusCode::BAD_REQUEST, "param.cardNotExist", "卡片不存在")
    })?;
    openapi.admit(&app_key, CARD_UPDATE_PATH, now)?;
    card.history.push(data);
    Ok(taken())
}

/// The `cardBizId`, which both calls require.
fn biz_id(call: &Call) -> Result<&str, Answer> {
    call.body
        .get("cardBizId")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
        .ok_or_else(|| bad_parameter("cardBizId is required"))
}

/// The `cardData` string, parsed: a `StandardCard` has a `contents` array.
fn card_data(call: &Call) -> Result<Value, Answer> {
    let data = call
        .body
        .get("cardData")
        .and_then(Value::as_str)
        .ok_or_else(|| bad_parameter("cardData is required, as a JSON string"))?;
    let data: Value =
        serde_json::from_str(data).map_err(|_| bad_parameter("cardData is not JSON"))?;
    if data.get("contents").is_some_and(Value::is_array) {
        Ok(data)
    } else {
        Err(bad_parameter("cardData has no contents array"))
    }
}

/// The answer to a call taken: a new `processQueryKey`.
fn taken() -> Answer {
    let key = format!("fake-card-query-{}", random_hex());
    Answer::OpenApi(StatusCode::OK, json!({ "processQueryKey": key }))
}

/// The fake's guess at DingTalk's answer to a bad parameter of a card call.
fn bad_parameter(detail: &str) -> Answer {
    openapi::error(
        StatusCode::BAD_REQUEST,
        "param.error",
        &format!("参数无效: {detail}"),
    )
}

/// Interactive cards, as tests inspect them.
impl FakeDingTalk {
    /// Every card sent so far, in the order they were created.
    pub fn cards(&self) -> Vec<FakeCard> {
        self.shared.lock().cards.cards.clone()
    }

    /// The card sent with `cardBizId` `biz_id`, if there is one.
    pub fn card(&self, biz_id: &str) -> Option<FakeCard> {
        let state = self.shared.lock();
        state
            .cards
            .cards
            .iter()
            .find(|c| c.biz_id == biz_id)
            .cloned()
    }

    /// The cards sent to the group `open_conversation_id`, in the order they were created.
    pub fn cards_in_group(&self, open_conversation_id: &str) -> Vec<FakeCard> {
        let state = self.shared.lock();
        let cards = state.cards.cards.iter();
        cards
            .filter(|c| c.open_conversation_id == open_conversation_id)
            .cloned()
            .collect()
    }

    /// Makes the card `biz_id` disappear, as when DingTalk no longer keeps it: later
    /// updates are refused, a later send creates it anew. Whether there was one.
    pub fn forget_card(&self, biz_id: &str) -> bool {
        let cards = &mut self.shared.lock().cards.cards;
        let before = cards.len();
        cards.retain(|c| c.biz_id != biz_id);
        cards.len() < before
    }

    /// Waits until `cond` holds for the cards and returns them; panics with `what` on
    /// timeout.
    pub async fn wait_for_cards(
        &self,
        what: &str,
        timeout: Duration,
        cond: impl Fn(&[FakeCard]) -> bool,
    ) -> Vec<FakeCard> {
        let found = self
            .wait_for_state(timeout, |state| {
                let cards = &state.cards.cards;
                cond(cards).then(|| cards.clone())
            })
            .await;
        if let Some(cards) = found {
            return cards;
        }
        let cards = self.cards();
        let summary: Vec<String> = cards
            .iter()
            .map(|c| {
                format!(
                    "  {:?} group={:?} updates={} repeated_sends={} title={:?}",
                    c.biz_id,
                    c.open_conversation_id,
                    c.updates(),
                    c.repeated_sends,
                    c.title()
                )
            })
            .collect();
        panic!(
            "timed out after {timeout:?} waiting until {what}; {} card(s):\n{}",
            cards.len(),
            summary.join("\n")
        );
    }
}
