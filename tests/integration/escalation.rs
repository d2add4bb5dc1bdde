//! Reaching the person on call (issue 23), with a real Alertmanager and the fake
//! DingTalk: a critical group `@`s the member on call (and reaches them 1:1 through a
//! robot of an application); nobody acknowledging it → one DING to the primary, then one
//! call to the secondary and a message that `@`s them; an acknowledgement, the group's
//! resolution, or a silence made in Alertmanager before the first step → no DING ever
//! (over a quiet period); a restart between the notification
//! and the step → the step once; two replicas sharing Redis → one DING; in passthrough
//! mode a mention step still reaches the group; the response histograms move.

use std::time::Duration;

use serde_json::Value;
use testkit::{Bridge, FakeApp, FakeDingTalk, FakeRobot, Mode, Redis, Request};

use crate::alertmanager::{Alertmanager, TestAlert};
use crate::{BINARY, QUIET, QUIET_WITHIN};

const KEY: &str = "dingoncallapp";
const SECRET: &str = "oncall-app-secret";
const GROUP: &str = "cidOnCall==";
const LINK_KEY: &str = "a-test-key-of-at-least-32-bytes-0123456789";
const FORM: Option<&str> = Some("application/x-www-form-urlencoded");
const WAIT: Duration = Duration::from_secs(30);

/// The fake DingTalk: webhook robot `ops-token`, and the application with its robot.
async fn dingtalk() -> FakeDingTalk {
    let dingtalk = FakeDingTalk::start(vec![FakeRobot::new("ops-token")]).await;
    dingtalk.add_app(FakeApp::new(KEY, SECRET).robot(KEY, &[GROUP]));
    dingtalk
}

/// The config: `primary` rotates (its first handoff is far ahead, so 张三 is on call),
/// `secondary` is 王五; the strategy `critical` mentions the primary through both robots
/// and escalates by `steps`. `extra` (top-level YAML) is added: `alertmanager:` and
/// `actions:`, `cluster:`, `delivery:`.
fn config(dingtalk: &FakeDingTalk, steps: &str, extra: &str) -> String {
    format!(
        r#"
dingtalk: {{ api_url: "{}", openapi_url: "{}", timeout: 2s }}
{extra}
oncall:
  primary:
    timezone: Asia/Shanghai
    rotation: {{ every: 1w, handoff: "Mon 10:00", start: "2099-01-05" }}
    members:
      - {{ name: 张三, mobile: "13800000001", user_id: manager123 }}
      - {{ name: 李四, mobile: "13800000002", user_id: user456 }}
  secondary:
    members: [{{ name: 王五, mobile: "13800000003", user_id: user789 }}]
robots:
  ops: {{ access_token: ops-token }}
  oncall-app: {{ app_key: {KEY}, app_secret: {SECRET}, open_conversation_id: "{GROUP}" }}
strategies:
  - name: critical
    matchers: ['severity="critical"']
    robots: [ops, oncall-app]
    mention: {{ oncall: [primary] }}
    escalate:
{steps}"#,
        dingtalk.api_url(),
        dingtalk.openapi_url(),
    )
}

/// One DING to the primary after `seconds`.
fn one_ding(seconds: u32) -> String {
    format!("      - {{ after: {seconds}s, notify: primary, via: ding_app, robot: oncall-app }}\n")
}

/// `alertmanager:` and `actions:` of a bridge at `bridge_url` (links to acknowledge).
fn acting(bridge_url: &str, alertmanager: &Alertmanager) -> String {
    format!(
        "external_url: \"{bridge_url}\"\nalertmanager:\n  urls: [\"{}\"]\nactions:\n  key: {LINK_KEY}\n",
        alertmanager.url()
    )
}

/// A bridge with `steps` and a real Alertmanager notifying it; reloaded, once both listen,
/// with `alertmanager:` and `actions:` (and `extra`).
async fn bridge_and_alertmanager(
    dingtalk: &FakeDingTalk,
    steps: &str,
    extra: &str,
) -> (Bridge, Alertmanager) {
    let bridge = Bridge::start(BINARY, &config(dingtalk, steps, extra)).await;
    let alertmanager = Alertmanager::start(&format!("{}/alertmanager", bridge.url)).await;
    let both = format!("{extra}\n{}", acting(&bridge.url, &alertmanager));
    std::fs::write(
        bridge.dir().join("config.yaml"),
        config(dingtalk, steps, &both),
    )
    .unwrap();
    let (status, answer) = bridge.post("/-/reload", "", None).await;
    assert_eq!(status, 200, "{answer}");
    (bridge, alertmanager)
}

fn critical(name: &str) -> [(&str, &str); 2] {
    [("alertname", name), ("severity", "critical")]
}

/// The first message about `name` the webhook robot delivered.
async fn first_message(dingtalk: &FakeDingTalk, name: &str) -> Request {
    let about = |r: &Request| r.delivered() && r.token == "ops-token" && r.text().contains(name);
    let requests = dingtalk
        .wait_until(&format!("a message about {name}"), WAIT, |all| {
            all.iter().any(about)
        })
        .await;
    requests.into_iter().find(about).unwrap()
}

/// The sum of histogram `series`' `_count` over its label sets matching `strategy`.
async fn histogram_count(bridge: &Bridge, series: &str) -> f64 {
    bridge
        .metric(&format!(
            "alertmanager_dingtalk_{series}_count{{strategy=\"critical\"}}"
        ))
        .await
}

async fn wait_for_histogram(bridge: &Bridge, series: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while histogram_count(bridge, series).await < 1.0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{series} never observed\n{}",
            bridge.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn nobody_acknowledging_gets_one_ding_then_a_call_and_a_mention_of_the_secondary() {
    let dingtalk = dingtalk().await;
    let steps = format!(
        "{}      - {{ after: 6s, notify: secondary, via: ding_call, robot: oncall-app }}\n\
         \x20     - {{ after: 6s, notify: secondary, via: mention, robot: ops }}\n",
        one_ding(3)
    );
    let (bridge, alertmanager) = bridge_and_alertmanager(&dingtalk, &steps, "").await;
    alertmanager
        .post_alerts(&[TestAlert::firing(&critical("EscDiskFull"))])
        .await;

    // The webhook robot's message @s the member on call: the mobile in `at`, the `@` in
    // the text.
    let message = first_message(&dingtalk, "EscDiskFull").await;
    assert_eq!(
        message.body["at"]["atMobiles"],
        serde_json::json!(["13800000001"])
    );
    assert_eq!(
        message.body["at"]["atUserIds"],
        serde_json::json!(["manager123"])
    );
    assert!(
        message.text().contains("@13800000001"),
        "{}",
        message.text()
    );
    // The robot of an application cannot @: its message goes 1:1 to them as well.
    let one_to_one = dingtalk
        .wait_for_one_to_one_messages("the 1:1 message", WAIT, |m| !m.is_empty())
        .await;
    assert_eq!(one_to_one[0].user_ids, ["manager123"]);
    assert_eq!(one_to_one[0].robot_code, KEY);

    // Nobody acknowledges: one DING in the app to the primary, then a call to the
    // secondary that says the first DING was not read, and a message that @s them.
    let dings = dingtalk
        .wait_for_dings("the DING and the call", WAIT, |d| d.len() >= 2)
        .await;
    assert_eq!(dings[0].remind_type, 1);
    assert_eq!(dings[0].receivers, ["manager123"]);
    assert!(
        dings[0].content.contains("EscDiskFull"),
        "{}",
        dings[0].content
    );
    assert_eq!(dings[1].remind_type, 3);
    assert_eq!(dings[1].receivers, ["user789"]);
    assert!(
        dings[1].content.contains("Earlier DING to 张三: UNREAD"),
        "{}",
        dings[1].content
    );
    let mentioned = dingtalk
        .wait_until("the mention of the secondary", WAIT, |all| {
            all.iter()
                .any(|r| r.delivered() && r.text().contains("@13800000003"))
        })
        .await;
    let mention = mentioned
        .iter()
        .find(|r| r.text().contains("@13800000003"))
        .unwrap();
    assert_eq!(
        mention.body["at"]["atMobiles"],
        serde_json::json!(["13800000003"])
    );
    assert!(mention.text().contains("王五"), "{}", mention.text());

    // Nothing more: each step once.
    dingtalk.wait_until_quiet(QUIET, QUIET_WITHIN).await;
    assert_eq!(dingtalk.dings().len(), 2);
    let escalations = [("1", "ding_app"), ("2", "ding_call"), ("3", "mention")];
    for (step, via) in escalations {
        let series = format!(
            "alertmanager_dingtalk_escalations_total{{step=\"{step}\",via=\"{via}\",outcome=\"sent\"}}"
        );
        assert_eq!(bridge.metric(&series).await, 1.0, "{series}");
    }

    // The API and the status page show who is on call and what escalated.
    let (status, oncall) = bridge.get("/api/v1/oncall").await;
    assert_eq!(status, 200, "{oncall}");
    let oncall: Value = serde_json::from_str(&oncall).unwrap();
    assert_eq!(oncall["schedules"][0]["schedule"], "primary");
    assert_eq!(oncall["schedules"][0]["on_call"]["name"], "张三");
    assert_eq!(oncall["schedules"][0]["next"][0]["name"], "李四");
    assert_eq!(oncall["episodes"][0]["strategy"], "critical");
    assert_eq!(oncall["episodes"][0]["steps"].as_array().unwrap().len(), 3);
    let (_, page) = bridge.get("/").await;
    assert!(page.contains("id=\"oncall\""), "{page}");
    assert!(page.contains("1. ding_app to 张三: sent"), "{page}");

    // Resolution ends the episode and is measured.
    alertmanager
        .post_alerts(&[TestAlert::resolved(&critical("EscDiskFull"))])
        .await;
    wait_for_histogram(&bridge, "time_to_resolve_seconds").await;
    let (_, oncall) = bridge.get("/api/v1/oncall").await;
    let oncall: Value = serde_json::from_str(&oncall).unwrap();
    assert_eq!(oncall["episodes"], serde_json::json!([]));
}

#[tokio::test]
async fn an_acknowledgement_before_the_first_step_means_no_ding_ever() {
    let dingtalk = dingtalk().await;
    let (bridge, alertmanager) = bridge_and_alertmanager(&dingtalk, &one_ding(5), "").await;
    alertmanager
        .post_alerts(&[TestAlert::firing(&critical("EscAcked"))])
        .await;
    let message = first_message(&dingtalk, "EscAcked").await;
    let ack = link_path(&message, &bridge, "Acknowledge");
    let (_, page) = bridge.get(&ack).await;
    let form = format!("form_token={}&do=act&name=Bob", form_token(&page));
    let (status, done) = bridge.post(&ack, form, FORM).await;
    assert_eq!(status, 200);
    assert!(done.contains("Acknowledged by Bob"), "{done}");
    wait_for_histogram(&bridge, "time_to_acknowledge_seconds").await;

    // Past the step's time, and quiet after it: no DING.
    tokio::time::sleep(Duration::from_secs(5)).await;
    dingtalk.wait_until_quiet(QUIET, QUIET_WITHIN).await;
    assert!(dingtalk.dings().is_empty(), "{:?}", dingtalk.dings());
    let (_, oncall) = bridge.get("/api/v1/oncall").await;
    assert!(oncall.contains("\"acknowledged_by\": \"Bob\""), "{oncall}");
}

#[tokio::test]
async fn resolution_before_the_first_step_means_no_ding_ever() {
    let dingtalk = dingtalk().await;
    let (bridge, alertmanager) = bridge_and_alertmanager(&dingtalk, &one_ding(5), "").await;
    let labels = critical("EscResolved");
    alertmanager
        .post_alerts(&[TestAlert::firing(&labels)])
        .await;
    first_message(&dingtalk, "EscResolved").await;
    alertmanager
        .post_alerts(&[TestAlert::resolved(&labels)])
        .await;
    wait_for_histogram(&bridge, "time_to_resolve_seconds").await;

    tokio::time::sleep(Duration::from_secs(5)).await;
    dingtalk.wait_until_quiet(QUIET, QUIET_WITHIN).await;
    assert!(dingtalk.dings().is_empty(), "{:?}", dingtalk.dings());
}

#[tokio::test]
async fn a_group_silenced_in_alertmanager_is_not_escalated() {
    let dingtalk = dingtalk().await;
    let (mut bridge, alertmanager) = bridge_and_alertmanager(&dingtalk, &one_ding(4), "").await;
    alertmanager
        .post_alerts(&[TestAlert::firing(&critical("EscSilenced"))])
        .await;
    first_message(&dingtalk, "EscSilenced").await;
    // A silence made in Alertmanager itself, not through the bridge.
    let silence = serde_json::json!({
        "matchers": [{ "name": "alertname", "value": "EscSilenced", "isRegex": false, "isEqual": true }],
        "startsAt": jiff::Timestamp::now().to_string(),
        "endsAt": (jiff::Timestamp::now() + Duration::from_secs(3600)).to_string(),
        "createdBy": "test",
        "comment": "maintenance",
    });
    let created = testkit::http()
        .post(format!("{}/api/v2/silences", alertmanager.url()))
        .json(&silence)
        .send()
        .await
        .unwrap();
    assert!(created.status().is_success(), "{:?}", created.text().await);

    bridge
        .wait_for_log("the step held", WAIT, |line| {
            line["message"] == "Escalation held: Alertmanager has the group silenced."
        })
        .await;
    dingtalk.wait_until_quiet(QUIET, QUIET_WITHIN).await;
    assert!(dingtalk.dings().is_empty(), "{:?}", dingtalk.dings());
}

#[tokio::test]
async fn a_ding_dingtalk_refuses_is_given_up_on_counted_and_logged() {
    let dingtalk = dingtalk().await;
    let (mut bridge, alertmanager) = bridge_and_alertmanager(&dingtalk, &one_ding(3), "").await;
    alertmanager
        .post_alerts(&[TestAlert::firing(&critical("EscRefused"))])
        .await;
    first_message(&dingtalk, "EscRefused").await;
    // DingTalk's answer when the organisation has no DING allowance left (its DING
    // documentation's error table).
    let quota = "ding.serverquota.insufficient".to_owned();
    dingtalk.set_mode(Mode::OpenApiError(400, quota));
    bridge
        .wait_for_log("the refusal", WAIT, |line| {
            line["message"] == "DingTalk refused a DING; the escalation step is given up on."
        })
        .await;
    let refused =
        "alertmanager_dingtalk_escalations_total{step=\"1\",via=\"ding_app\",outcome=\"refused\"}";
    bridge.wait_for_metric(refused, 1.0).await;
    // Given up on: not tried again, and nothing recorded as sent.
    dingtalk.wait_until_quiet(QUIET, QUIET_WITHIN).await;
    assert!(dingtalk.dings().is_empty());
    assert_eq!(bridge.metric(refused).await, 1.0);
    let (_, oncall) = bridge.get("/api/v1/oncall").await;
    assert!(oncall.contains("\"outcome\": \"refused\""), "{oncall}");
}

#[tokio::test]
async fn in_passthrough_mode_a_mention_step_still_reaches_the_group() {
    let dingtalk = dingtalk().await;
    let steps = "      - { after: 2s, notify: secondary, via: mention, robot: ops }\n";
    let passthrough = "delivery: { mode: passthrough }";
    let (bridge, alertmanager) = bridge_and_alertmanager(&dingtalk, steps, passthrough).await;
    alertmanager
        .post_alerts(&[TestAlert::firing(&critical("EscPassthrough"))])
        .await;
    first_message(&dingtalk, "EscPassthrough").await;
    let mentioned = |r: &Request| r.delivered() && r.text().contains("@13800000003");
    dingtalk
        .wait_until("the mention of the secondary", WAIT, |all| {
            all.iter().any(mentioned)
        })
        .await;
    dingtalk.wait_until_quiet(QUIET, QUIET_WITHIN).await;
    assert_eq!(
        dingtalk.requests().iter().filter(|r| mentioned(r)).count(),
        1
    );
    let series =
        "alertmanager_dingtalk_escalations_total{step=\"1\",via=\"mention\",outcome=\"sent\"}";
    assert_eq!(bridge.metric(series).await, 1.0);
}

#[tokio::test]
async fn a_restart_between_the_notification_and_the_step_takes_the_step_once() {
    let dingtalk = dingtalk().await;
    let durable = "delivery: { queue_dir: queue }";
    let (bridge, alertmanager) = bridge_and_alertmanager(&dingtalk, &one_ding(4), durable).await;
    alertmanager
        .post_alerts(&[TestAlert::firing(&critical("EscRestart"))])
        .await;
    first_message(&dingtalk, "EscRestart").await;
    assert!(dingtalk.dings().is_empty());

    // Stopped before the step, started again: the step is taken, once.
    let bridge = bridge.restart().await;
    alertmanager
        .notify_to(&format!("{}/alertmanager", bridge.url))
        .await;
    dingtalk
        .wait_for_dings("the DING after the restart", WAIT, |d| !d.is_empty())
        .await;
    // Stopped after it, started again: not again.
    let bridge = bridge.restart().await;
    dingtalk.wait_until_quiet(QUIET, QUIET_WITHIN).await;
    tokio::time::sleep(QUIET).await;
    assert_eq!(dingtalk.dings().len(), 1, "{:?}", dingtalk.dings());
    assert!(bridge.log().contains("Listening."));
}

#[tokio::test]
async fn two_replicas_sharing_redis_send_one_ding() {
    let dingtalk = dingtalk().await;
    let redis = Redis::start();
    let cluster = format!(
        "cluster:\n  redis_url: \"{}\"\n  replicas: 2\n",
        redis.url()
    );
    let (first, alertmanager) = bridge_and_alertmanager(&dingtalk, &one_ding(3), &cluster).await;
    let both = format!("{cluster}\n{}", acting(&first.url, &alertmanager));
    let second = Bridge::start(BINARY, &config(&dingtalk, &one_ding(3), &both)).await;

    // The first replica takes the notification; both look at the episode in Redis, and
    // only the one that claims the step first sends the DING.
    alertmanager
        .post_alerts(&[TestAlert::firing(&critical("EscReplicas"))])
        .await;
    first_message(&dingtalk, "EscReplicas").await;
    dingtalk
        .wait_for_dings("the DING", WAIT, |d| !d.is_empty())
        .await;
    dingtalk.wait_until_quiet(QUIET, QUIET_WITHIN).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(dingtalk.dings().len(), 1, "{:?}", dingtalk.dings());
    let sent =
        "alertmanager_dingtalk_escalations_total{step=\"1\",via=\"ding_app\",outcome=\"sent\"}";
    assert_eq!(first.metric(sent).await + second.metric(sent).await, 1.0);
}

/// The path of the link labelled `label` in `message`'s markdown.
fn link_path(message: &Request, bridge: &Bridge, label: &str) -> String {
    let marker = format!("[{label}](");
    let text = message.text();
    let start = text
        .find(&marker)
        .unwrap_or_else(|| panic!("no [{label}] link in {text:?}"))
        + marker.len();
    let url = text[start..].split(')').next().unwrap();
    url.strip_prefix(&bridge.url).unwrap().to_owned()
}

/// The `form_token` of an action page.
fn form_token(page: &str) -> String {
    let marker = "name=\"form_token\" value=\"";
    let start = page.find(marker).expect("a form") + marker.len();
    page[start..].split('"').next().unwrap().to_owned()
}
