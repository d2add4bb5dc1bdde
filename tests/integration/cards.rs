//! Cards updated in place (issue 22): a robot of an application with `msgtype: card` shows
//! each alert group as one interactive card per episode. A real Alertmanager's firing,
//! growth and resolution of a group make one card and updates of it, not messages; a
//! restart in between still updates the same card; a group that fires again after it
//! resolved gets a new card; a second replica updates the card the first one sent; a
//! card DingTalk no longer has is replaced.

use std::time::Duration;

use testkit::{Bridge, FakeApp, FakeCard, FakeDingTalk, Redis, payload};

use crate::BINARY;
use crate::alertmanager::{Alertmanager, TestAlert};

const KEY: &str = "dingcardapp";
const SECRET: &str = "card-app-secret";
const GROUP: &str = "cidCards==";
const WAIT: Duration = Duration::from_secs(30);

async fn dingtalk() -> FakeDingTalk {
    let dingtalk = FakeDingTalk::start(Vec::new()).await;
    dingtalk.add_app(FakeApp::new(KEY, SECRET).robot(KEY, &[GROUP]));
    dingtalk
}

/// A bridge whose robot `ops` sends cards to [`GROUP`], with `extra` config.
fn config(dingtalk: &FakeDingTalk, extra: &str) -> String {
    format!(
        "{extra}dingtalk:\n  openapi_url: \"{}\"\n  timeout: 2s\n\
         delivery:\n  queue_dir: queue\n\
         robots:\n  ops:\n    app_key: {KEY}\n    app_secret: {SECRET}\n    \
         open_conversation_id: \"{GROUP}\"\n    msgtype: card\n\
         strategies:\n  - name: all\n    robots: [ops]\n",
        dingtalk.openapi_url(),
    )
}

/// Waits until the group's cards satisfy `cond`.
async fn cards(
    dingtalk: &FakeDingTalk,
    what: &str,
    cond: impl Fn(&[FakeCard]) -> bool,
) -> Vec<FakeCard> {
    dingtalk.wait_for_cards(what, WAIT, cond).await
}

/// A webhook of group `DiskFull` with an alert per instance (distinct fingerprints).
fn disk_full(status: &str, instances: &[&str]) -> String {
    let labels: Vec<[(&str, &str); 1]> = instances.iter().map(|i| [("instance", *i)]).collect();
    let alerts: Vec<(&str, &[(&str, &str)])> =
        labels.iter().map(|l| ("DiskFull", l.as_slice())).collect();
    let mut body: serde_json::Value = serde_json::from_str(&payload(status, &alerts)).unwrap();
    body["groupKey"] = "{}:{alertname=\"DiskFull\"}".into();
    for (alert, instance) in body["alerts"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .zip(instances)
    {
        alert["fingerprint"] = format!("fp-{instance}").into();
    }
    body.to_string()
}

fn group_messages(dingtalk: &FakeDingTalk) -> usize {
    dingtalk
        .requests()
        .iter()
        .filter(|r| r.path.contains("groupMessages"))
        .count()
}

#[tokio::test]
async fn a_group_is_one_card_updated_in_place_and_a_new_episode_a_new_card() {
    let dingtalk = dingtalk().await;
    let bridge = Bridge::start(BINARY, &config(&dingtalk, "")).await;
    let alertmanager = Alertmanager::start(&format!("{}/alertmanager", bridge.url)).await;
    let db1 = [("alertname", "DiskFull"), ("instance", "db-1")];
    let db2 = [("alertname", "DiskFull"), ("instance", "db-2")];

    alertmanager.post_alerts(&[TestAlert::firing(&db1)]).await;
    let first = cards(&dingtalk, "a card about db-1", |c| {
        c.len() == 1 && c[0].markdown().contains("db-1")
    })
    .await;
    let card = first[0].biz_id.clone();
    assert!(
        first[0].title().contains("FIRING:1"),
        "{:?}",
        first[0].title()
    );

    alertmanager
        .post_alerts(&[TestAlert::firing(&db1), TestAlert::firing(&db2)])
        .await;
    cards(&dingtalk, "the card updated with db-2", |c| {
        c.len() == 1 && c[0].markdown().contains("db-2") && c[0].title().contains("FIRING:2")
    })
    .await;

    // A restart in between: the card is kept with the queue.
    let bridge = bridge.restart().await;
    alertmanager
        .notify_to(&format!("{}/alertmanager", bridge.url))
        .await;
    alertmanager
        .post_alerts(&[TestAlert::resolved(&db1), TestAlert::resolved(&db2)])
        .await;
    let resolved = cards(&dingtalk, "the same card resolved", |c| {
        c.len() == 1 && c[0].title().contains("RESOLVED")
    })
    .await;
    assert_eq!(resolved[0].biz_id, card);
    assert!(resolved[0].updates() >= 2, "{:?}", resolved[0]);

    // Firing again after it resolved: a new episode, a new card.
    alertmanager.post_alerts(&[TestAlert::firing(&db1)]).await;
    let again = cards(&dingtalk, "a second card", |c| {
        c.len() == 2 && c[1].title().contains("FIRING:1")
    })
    .await;
    assert_ne!(again[1].biz_id, card);
    assert_eq!(
        again[0].title(),
        resolved[0].title(),
        "the first card stays resolved"
    );
    assert_eq!(group_messages(&dingtalk), 0, "cards, not messages");
    let sends = bridge
        .metric("alertmanager_dingtalk_openapi_calls_total{api=\"card-send\"}")
        .await;
    assert!(
        sends >= 1.0,
        "the restarted bridge sent the second card: {sends}"
    );
}

#[tokio::test]
async fn a_second_replica_updates_the_card_the_first_sent() {
    let dingtalk = dingtalk().await;
    let redis = Redis::start();
    let cluster = format!(
        "cluster:\n  redis_url: \"{}\"\n  replicas: 2\n",
        redis.url()
    );
    let first = Bridge::start(BINARY, &config(&dingtalk, &cluster)).await;
    let second = Bridge::start(BINARY, &config(&dingtalk, &cluster)).await;

    let firing = disk_full("firing", &["db-1"]);
    let (status, answer) = first.post("/alertmanager", &firing, None).await;
    assert_eq!(status, 200, "{answer}");
    let sent = cards(&dingtalk, "the first replica's card", |c| c.len() == 1).await;

    let grown = disk_full("firing", &["db-1", "db-2"]);
    let (status, answer) = second.post("/alertmanager", &grown, None).await;
    assert_eq!(status, 200, "{answer}");
    let updated = cards(&dingtalk, "the card updated by the second replica", |c| {
        c.len() == 1 && c[0].markdown().contains("db-2")
    })
    .await;
    assert_eq!(updated[0].biz_id, sent[0].biz_id);
    assert_eq!(group_messages(&dingtalk), 0);
}

#[tokio::test]
async fn a_card_dingtalk_no_longer_has_is_replaced() {
    let dingtalk = dingtalk().await;
    let bridge = Bridge::start(BINARY, &config(&dingtalk, "")).await;
    let firing = disk_full("firing", &["db-1"]);
    bridge.post("/alertmanager", &firing, None).await;
    let sent = cards(&dingtalk, "a card", |c| c.len() == 1).await;
    assert!(dingtalk.forget_card(&sent[0].biz_id));

    let grown = disk_full("firing", &["db-1", "db-2"]);
    bridge.post("/alertmanager", &grown, None).await;
    let replaced = cards(&dingtalk, "a new card", |c| {
        c.len() == 1 && c[0].markdown().contains("db-2")
    })
    .await;
    assert_ne!(replaced[0].biz_id, sent[0].biz_id);
    assert!(
        bridge
            .log()
            .contains("DingTalk refused to update a card; sending a new one.")
    );
}

/// The `form_token` of the action page `page`.
fn form_token(page: &str) -> String {
    let marker = "name=\"form_token\" value=\"";
    let start = page.find(marker).expect("a form") + marker.len();
    page[start..].split('"').next().unwrap().to_owned()
}

#[tokio::test]
async fn a_link_or_a_command_shows_on_the_card_without_a_notification() {
    let dingtalk = dingtalk().await;
    let bridge = Bridge::start(BINARY, &config(&dingtalk, "")).await;
    let alertmanager = Alertmanager::start(&format!("{}/alertmanager", bridge.url)).await;
    let acting = format!(
        "external_url: \"{}\"\nalertmanager:\n  urls: [\"{}\"]\n\
         actions:\n  key: a-test-key-of-at-least-32-bytes-0123456789\n\
         dingtalk:\n  api_url: \"{}\"\n",
        bridge.url,
        alertmanager.url(),
        dingtalk.api_url(),
    );
    // One `dingtalk:` section: the api_url joins the one `config` writes.
    let commanding = config(&dingtalk, &acting)
        .replacen("dingtalk:\n  openapi_url", "  openapi_url", 1)
        .replace(
            "    msgtype: card\n",
            "    msgtype: card\n    commands: true\n",
        );
    std::fs::write(bridge.dir().join("config.yaml"), commanding).unwrap();
    let (status, answer) = bridge.post("/-/reload", "", None).await;
    assert_eq!(status, 200, "{answer}");
    assert!(dingtalk.wait_for_stream_connections(1, WAIT).await);

    alertmanager
        .post_alerts(&[TestAlert::firing(&[("alertname", "CardLoad")])])
        .await;
    let sent = cards(&dingtalk, "a card with its buttons", |c| {
        c.len() == 1
            && c[0]
                .buttons()
                .iter()
                .any(|(label, _)| label.starts_with("Acknowledge"))
    })
    .await;
    let (_, url) = sent[0]
        .buttons()
        .into_iter()
        .find(|(label, _)| label.starts_with("Acknowledge"))
        .unwrap();
    let path = url
        .strip_prefix(&bridge.url)
        .expect("the bridge's link")
        .to_owned();
    let (_, page) = bridge.get(&path).await;
    let form = format!("form_token={}&do=act&name=Bob", form_token(&page));
    let (status, _) = bridge
        .post(&path, form, Some("application/x-www-form-urlencoded"))
        .await;
    assert_eq!(status, 200);
    let acknowledged = cards(&dingtalk, "the card saying who acknowledged it", |c| {
        c.len() == 1 && c[0].markdown().contains("Acknowledged by Bob")
    })
    .await;
    assert_eq!(acknowledged[0].biz_id, sent[0].biz_id);

    let message =
        testkit::BotMessage::new(GROUP, "silence 2h alertname=CardLoad").sender("Alice", "alice01");
    dingtalk.push_bot_message(message);
    cards(&dingtalk, "the card saying who silenced it", |c| {
        c.len() == 1
            && c[0]
                .markdown()
                .contains("Silenced by Alice (alice01) until")
            && c[0].markdown().contains("Acknowledged by Bob")
    })
    .await;
    assert_eq!(dingtalk.cards().len(), 1, "still one card");
}

#[tokio::test]
async fn a_group_that_fires_again_as_before_gets_a_new_card_and_a_copy_none() {
    let dingtalk = dingtalk().await;
    let redis = Redis::start();
    // With cluster:, so that duplicates are also claimed in Redis.
    let cluster = format!("cluster:\n  redis_url: \"{}\"\n", redis.url());
    let bridge = Bridge::start(BINARY, &config(&dingtalk, &cluster)).await;
    let firing = disk_full("firing", &["db-1"]);
    let resolved = disk_full("resolved", &["db-1"]);
    for body in [&firing, &firing] {
        let (status, answer) = bridge.post("/alertmanager", body, None).await;
        assert_eq!(status, 200, "{answer}");
    }
    cards(&dingtalk, "one card", |c| c.len() == 1).await;
    bridge.post("/alertmanager", &resolved, None).await;
    cards(&dingtalk, "the card resolved", |c| {
        c.len() == 1 && c[0].title().contains("RESOLVED")
    })
    .await;
    // The very same firing notification again, within dedup_window.
    bridge.post("/alertmanager", &firing, None).await;
    let again = cards(&dingtalk, "a second card", |c| c.len() == 2).await;
    assert!(
        again[1].title().contains("FIRING:1"),
        "{:?}",
        again[1].title()
    );
    assert_eq!(
        again[0].updates(),
        1,
        "the copy at the start was suppressed"
    );
    let suppressed = bridge
        .metric("alertmanager_dingtalk_duplicates_suppressed_total")
        .await;
    assert_eq!(suppressed, 1.0);
}

#[tokio::test]
async fn openapi_calls_are_counted_and_the_quota_warns_at_80_percent() {
    let dingtalk = dingtalk().await;
    let quota = "dingtalk:\n  monthly_call_quota: 2\n";
    // One `dingtalk:` section: the quota joins the one `config` writes.
    let config = config(&dingtalk, quota).replacen("dingtalk:\n  openapi_url", "  openapi_url", 1);
    let bridge = Bridge::start(BINARY, &config).await;
    bridge
        .post("/alertmanager", &disk_full("firing", &["db-1"]), None)
        .await;
    cards(&dingtalk, "a card", |c| c.len() == 1).await;
    bridge
        .wait_for_metric("alertmanager_dingtalk_openapi_month_calls", 1.0)
        .await;
    assert_eq!(
        bridge
            .metric("alertmanager_dingtalk_openapi_quota_warning")
            .await,
        0.0
    );
    assert!(!bridge.log().contains("80% of dingtalk.monthly_call_quota"));

    bridge
        .post(
            "/alertmanager",
            &disk_full("firing", &["db-1", "db-2"]),
            None,
        )
        .await;
    cards(&dingtalk, "the card updated", |c| {
        c.len() == 1 && c[0].updates() == 1
    })
    .await;
    bridge
        .wait_for_metric("alertmanager_dingtalk_openapi_quota_warning", 1.0)
        .await;
    assert_eq!(
        bridge
            .metric("alertmanager_dingtalk_openapi_month_calls")
            .await,
        2.0
    );
    let calls = |api: &str| format!("alertmanager_dingtalk_openapi_calls_total{{api=\"{api}\"}}");
    assert_eq!(bridge.metric(&calls("card-send")).await, 1.0);
    assert_eq!(bridge.metric(&calls("card-update")).await, 1.0);
    assert_eq!(
        bridge.metric(&calls("access-token")).await,
        1.0,
        "counted, not in the month's"
    );
    assert!(bridge.log().contains("80% of dingtalk.monthly_call_quota"));
}
