//! Acting on an alert from its message (issue 21): a real Alertmanager notifies the bridge,
//! the message carries `Acknowledge` and `Silence …` links, opening one does nothing, the
//! page's form silences the group in that Alertmanager (once, however often pressed) or
//! acknowledges it, and a link that is changed or expired does nothing at all.

use std::time::Duration;

use alertmanager_dingtalk::act::link::{Action, Link, group_id};
use alertmanager_dingtalk::dingtalk::Secret;
use testkit::{Bridge, FakeDingTalk, FakeRobot, Request};

use crate::alertmanager::{Alertmanager, TestAlert};
use crate::{BINARY, QUIET, QUIET_WITHIN};

const WAIT: Duration = Duration::from_secs(30);
const KEY: &str = "a-test-key-of-at-least-32-bytes-0123456789";
pub(crate) const FORM: Option<&str> = Some("application/x-www-form-urlencoded");

fn config(api_url: &str, actions: &str) -> String {
    format!(
        r#"
dingtalk: {{ api_url: "{api_url}" }}
{actions}
robots:
  ops: {{ access_token: ops-token }}
strategies:
  - name: default
    robots: [ops]
"#
    )
}

/// The `actions:` of a bridge at `bridge_url` making silences in `alertmanagers`.
fn actions(bridge_url: &str, alertmanagers: &[String]) -> String {
    let urls: Vec<String> = alertmanagers.iter().map(|u| format!("\"{u}\"")).collect();
    format!(
        "external_url: \"{bridge_url}\"\nalertmanager:\n  urls: [{}]\nactions:\n  key: {KEY}\n  link_ttl: 1h\n",
        urls.join(", ")
    )
}

/// A bridge whose actions use `alertmanagers`, and a real Alertmanager notifying it. The
/// bridge starts without actions (its own address is known only once it listens) and is
/// reloaded with them.
async fn bridge_and_alertmanager(
    dingtalk: &FakeDingTalk,
    alertmanagers_before: &[String],
) -> (Bridge, Alertmanager) {
    let bridge = Bridge::start(BINARY, &config(&dingtalk.api_url(), "")).await;
    let alertmanager = Alertmanager::start(&format!("{}/alertmanager", bridge.url)).await;
    let mut urls = alertmanagers_before.to_vec();
    urls.push(alertmanager.url());
    let with_actions = config(&dingtalk.api_url(), &actions(&bridge.url, &urls));
    std::fs::write(bridge.dir().join("config.yaml"), with_actions).unwrap();
    let (status, answer) = bridge.post("/-/reload", "", None).await;
    assert_eq!(status, 200, "{answer}");
    (bridge, alertmanager)
}

/// The links of `message`'s markdown text: label and address, in order.
fn links(message: &Request) -> Vec<(String, String)> {
    let text = message.text();
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        rest = &rest[open + 1..];
        let Some((label, after)) = rest.split_once("](") else {
            break;
        };
        let Some((url, after)) = after.split_once(')') else {
            break;
        };
        found.push((label.to_owned(), url.to_owned()));
        rest = after;
    }
    found
}

/// The address of the link labelled `label` in `message`.
pub(crate) fn link_url(message: &Request, label: &str) -> String {
    links(message)
        .into_iter()
        .find(|(l, _)| l == label)
        .unwrap_or_else(|| panic!("no [{label}] link in {:?}", message.text()))
        .1
}

/// The path of the link labelled `label` in `message`.
fn link_path(message: &Request, bridge: &Bridge, label: &str) -> String {
    let url = link_url(message, label);
    url.strip_prefix(&bridge.url)
        .unwrap_or_else(|| panic!("{url} is not the bridge's"))
        .to_owned()
}

/// The `form_token` of the action page `page`.
pub(crate) fn form_token(page: &str) -> String {
    let marker = "name=\"form_token\" value=\"";
    let start = page.find(marker).expect("a form") + marker.len();
    page[start..].split('"').next().unwrap().to_owned()
}

/// The messages about `name` delivered so far.
fn messages_about(requests: &[Request], name: &str) -> Vec<Request> {
    requests
        .iter()
        .filter(|r| r.delivered() && r.text().contains(name))
        .cloned()
        .collect()
}

/// The first message about `name` delivered.
pub(crate) async fn first_message(dingtalk: &FakeDingTalk, name: &str) -> Request {
    let requests = dingtalk
        .wait_until(&format!("a message about {name}"), WAIT, |r| {
            !messages_about(r, name).is_empty()
        })
        .await;
    messages_about(&requests, name).remove(0)
}

#[tokio::test]
async fn a_silence_link_shows_then_silences_once_and_unsilences() {
    let dingtalk = FakeDingTalk::start(vec![FakeRobot::new("ops-token")]).await;
    // The first Alertmanager is down: the second is used.
    let down = format!("http://127.0.0.1:{}", testkit::free_port());
    let (bridge, alertmanager) = bridge_and_alertmanager(&dingtalk, &[down]).await;
    let labels = [("alertname", "ActDiskFull"), ("instance", "db-1")];
    alertmanager
        .post_alerts(&[TestAlert::firing(&labels)])
        .await;
    let message = first_message(&dingtalk, "ActDiskFull").await;
    let labels_shown: Vec<String> = links(&message).into_iter().map(|(l, _)| l).collect();
    for label in ["Acknowledge", "Silence 1h", "Silence 4h", "Silence 1d"] {
        assert!(
            labels_shown.iter().any(|l| l == label),
            "{label} in {labels_shown:?}"
        );
    }
    assert!(message.text().contains("HertzBeat"), "the keyword stays");

    // Opening the link does nothing, and shows what a silence would match.
    let silence = link_path(&message, &bridge, "Silence 1h");
    let (status, page) = bridge.get(&silence).await;
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("Silence 1h") && page.contains("alertname=&quot;ActDiskFull&quot;"),
        "{page}"
    );
    for other in ["Acknowledge", "Silence 4h"] {
        let (status, _) = bridge.get(&link_path(&message, &bridge, other)).await;
        assert_eq!(status, 200);
    }
    assert!(
        alertmanager.silences().await.is_empty(),
        "a GET made a silence"
    );

    // The form makes one silence, however often it is sent.
    let form = format!(
        "form_token={}&do=act&name=Alice&comment=disk+swap",
        form_token(&page)
    );
    let (status, done) = bridge.post(&silence, form.clone(), FORM).await;
    assert_eq!(status, 200, "{done}");
    assert!(done.contains("Silenced until"), "{done}");
    let (status, again) = bridge.post(&silence, form, FORM).await;
    assert_eq!(status, 200);
    assert!(again.contains("silenced the group already"), "{again}");
    let active = alertmanager.active_silences().await;
    assert_eq!(active.len(), 1, "{active:#?}");
    assert_eq!(active[0]["createdBy"], "Alice");
    assert_eq!(
        active[0]["matchers"],
        serde_json::json!([{"name": "alertname", "value": "ActDiskFull", "isRegex": false, "isEqual": true}])
    );

    // Alertmanager notifies nothing more of the silenced group: a new alert joins it.
    alertmanager
        .post_alerts(&[TestAlert::firing(&[
            ("alertname", "ActDiskFull"),
            ("instance", "db-2"),
        ])])
        .await;
    let requests = dingtalk.wait_until_quiet(QUIET, QUIET_WITHIN).await;
    assert_eq!(
        messages_about(&requests, "ActDiskFull").len(),
        1,
        "notified while silenced"
    );

    // Unsilence, from the page of the group.
    let (_, page) = bridge.get(&silence).await;
    let id = active[0]["id"].as_str().unwrap();
    assert!(page.contains(id) && page.contains("Unsilence"), "{page}");
    let form = format!(
        "form_token={}&do=unsilence&silence={id}&name=Alice",
        form_token(&page)
    );
    let (status, done) = bridge.post(&silence, form, FORM).await;
    assert_eq!(status, 200, "{done}");
    assert!(alertmanager.active_silences().await.is_empty());

    let metrics = bridge.get("/metrics").await.1;
    for series in [
        r#"alertmanager_dingtalk_actions_total{action="silence",outcome="done"} 1"#,
        r#"alertmanager_dingtalk_actions_total{action="silence",outcome="repeated"} 1"#,
        r#"alertmanager_dingtalk_actions_total{action="unsilence",outcome="done"} 1"#,
    ] {
        assert!(metrics.contains(series), "{series} in\n{metrics}");
    }
    let log = bridge.log();
    assert!(log.contains(r#""message":"Action.""#), "audited: {log}");
    assert_secrets_hidden(&[&log, &metrics, &page], &silence);
}

/// Neither the key nor a link's signature shows in `outputs`.
fn assert_secrets_hidden(outputs: &[&str], path: &str) {
    let signature = path.rsplit('.').next().unwrap();
    for output in outputs {
        assert!(!output.contains(KEY), "the key shows");
        assert!(!output.contains(signature), "a link's signature shows");
    }
}

#[tokio::test]
async fn acknowledging_shows_in_the_next_message_and_the_api_until_the_group_resolves() {
    let dingtalk = FakeDingTalk::start(vec![FakeRobot::new("ops-token")]).await;
    let (bridge, alertmanager) = bridge_and_alertmanager(&dingtalk, &[]).await;
    let labels = [("alertname", "ActHighLoad")];
    alertmanager
        .post_alerts(&[TestAlert::firing(&labels)])
        .await;
    let message = first_message(&dingtalk, "ActHighLoad").await;
    let ack = link_path(&message, &bridge, "Acknowledge");
    let (_, page) = bridge.get(&ack).await;
    assert!(page.contains("Nobody has acknowledged it"), "{page}");
    let form = format!("form_token={}&do=act&name=Bob", form_token(&page));
    let (status, done) = bridge.post(&ack, form.clone(), FORM).await;
    assert_eq!(status, 200);
    assert!(done.contains("Acknowledged by Bob"), "{done}");
    let (_, again) = bridge.post(&ack, form.replace("Bob", "Carol"), FORM).await;
    assert!(again.contains("Already acknowledged by Bob"), "{again}");

    let (_, acks) = bridge.get("/api/v1/acks").await;
    let acks: serde_json::Value = serde_json::from_str(&acks).unwrap();
    assert_eq!(acks[0]["by"], "Bob");
    assert_eq!(acks[0]["alerts"], serde_json::json!(["ActHighLoad"]));

    // The group's next message (it resolves) says who acknowledged it; then it is gone.
    alertmanager
        .post_alerts(&[TestAlert::resolved(&labels)])
        .await;
    let requests = dingtalk
        .wait_until("the resolved message", WAIT, |r| {
            messages_about(r, "ActHighLoad").len() == 2
        })
        .await;
    let resolved = &messages_about(&requests, "ActHighLoad")[1];
    assert!(
        resolved.title().contains("RESOLVED"),
        "{}",
        resolved.title()
    );
    assert!(
        resolved.text().contains("Acknowledged by Bob"),
        "{}",
        resolved.text()
    );
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (_, acks) = bridge.get("/api/v1/acks").await;
        if acks.trim() == "[]" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still acknowledged: {acks}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn changed_expired_and_unsigned_links_do_nothing() {
    let dingtalk = FakeDingTalk::start(vec![FakeRobot::new("ops-token")]).await;
    let (bridge, alertmanager) = bridge_and_alertmanager(&dingtalk, &[]).await;
    let labels = [("alertname", "ActTampered")];
    alertmanager
        .post_alerts(&[TestAlert::firing(&labels)])
        .await;
    let message = first_message(&dingtalk, "ActTampered").await;
    let silence = link_path(&message, &bridge, "Silence 1h");
    let (_, page) = bridge.get(&silence).await;
    let form = format!("form_token={}&do=act&name=Mallory", form_token(&page));

    // A link whose payload says a longer silence under the original signature.
    let (payload, signature) = silence.rsplit_once('.').unwrap();
    let forged_link = Link {
        action: Action::silence(Duration::from_secs(365 * 86_400)),
        group: group_id("{}:{alertname=\"ActTampered\"}"),
        matchers: vec![("alertname".to_owned(), "ActTampered".to_owned())],
        expires: 4_000_000_000,
    };
    let forged_token = forged_link.token(&Secret::new("not-the-key-not-the-key-not-the-key"));
    let forged_payload = forged_token.split_once('.').unwrap().0;
    let tampered = format!("/act/{forged_payload}.{signature}");
    let cut = format!("{payload}.{}", &signature[1..]);
    for bad in [
        tampered.as_str(),
        cut.as_str(),
        &format!("/act/{forged_token}"),
    ] {
        let (status, page) = bridge.get(bad).await;
        assert_eq!(status, 403, "{bad}: {page}");
        assert!(
            !page.contains("ActTampered"),
            "a refused link shows the group"
        );
        let (status, _) = bridge.post(bad, form.clone(), FORM).await;
        assert_eq!(status, 403);
    }
    // A link of the right key whose time is over.
    let expired = Link {
        expires: 1_000_000_000,
        ..forged_link
    };
    let expired = format!("/act/{}", expired.token(&Secret::new(KEY)));
    let (status, page) = bridge.get(&expired).await;
    assert_eq!(status, 410, "{page}");
    let (status, _) = bridge.post(&expired, form.clone(), FORM).await;
    assert_eq!(status, 410);
    // The right link, with a form that was not served for it.
    let (status, _) = bridge
        .post(&silence, "form_token=forged&do=act&name=Mallory", FORM)
        .await;
    assert_eq!(status, 403);
    // A page of another site posting the right form.
    let cross_site = bridge
        .client()
        .post(format!("{}{silence}", bridge.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("origin", "https://evil.example")
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(cross_site.status().as_u16(), 403);
    assert!(
        alertmanager.silences().await.is_empty(),
        "something was silenced"
    );
    let metrics = bridge.get("/metrics").await.1;
    assert!(
        metrics
            .contains(r#"alertmanager_dingtalk_actions_total{action="unknown",outcome="invalid"}"#)
            && metrics.contains(
                r#"alertmanager_dingtalk_actions_total{action="unknown",outcome="expired"}"#
            ),
        "{metrics}"
    );
    assert_secrets_hidden(&[&bridge.log(), &metrics], &silence);
}

/// Two replicas sharing one Redis: a link one of them minted works on the other, and an
/// acknowledgement made on one is seen by both.
#[tokio::test]
async fn replicas_take_each_others_links_and_share_acknowledgements() {
    let redis = testkit::Redis::start();
    let dingtalk = FakeDingTalk::start(vec![FakeRobot::new("ops-token")]).await;
    let cluster = format!(
        "cluster:\n  redis_url: \"{}\"\n  replicas: 2\n  timeout: 500ms\n",
        redis.url()
    );
    let first = Bridge::start(BINARY, &config(&dingtalk.api_url(), &cluster)).await;
    let second = Bridge::start(BINARY, &config(&dingtalk.api_url(), &cluster)).await;
    let alertmanager = Alertmanager::start(&format!("{}/alertmanager", first.url)).await;
    for bridge in [&first, &second] {
        let actions = actions(&bridge.url, &[alertmanager.url()]);
        let both = config(&dingtalk.api_url(), &format!("{cluster}{actions}"));
        std::fs::write(bridge.dir().join("config.yaml"), both).unwrap();
        let (status, answer) = bridge.post("/-/reload", "", None).await;
        assert_eq!(status, 200, "{answer}");
    }
    alertmanager
        .post_alerts(&[TestAlert::firing(&[("alertname", "ActShared")])])
        .await;
    let message = first_message(&dingtalk, "ActShared").await;

    // The first replica minted the links; the second takes them.
    let ack = link_path(&message, &first, "Acknowledge");
    let (status, page) = second.get(&ack).await;
    assert_eq!(status, 200, "{page}");
    let form = format!("form_token={}&do=act&name=Dana", form_token(&page));
    let (status, done) = second.post(&ack, form, FORM).await;
    assert_eq!(status, 200, "{done}");
    assert!(done.contains("Acknowledged by Dana"), "{done}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, acks) = first.get("/api/v1/acks").await;
        if acks.contains("\"Dana\"") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "not shared: {acks}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Acknowledging the group again on the first replica shows Dana, not Erin.
    let (_, page) = first.get(&ack).await;
    assert!(page.contains("Acknowledged by Dana"), "{page}");
    let form = format!("form_token={}&do=act&name=Erin", form_token(&page));
    let (_, again) = first.post(&ack, form, FORM).await;
    assert!(again.contains("Already acknowledged by Dana"), "{again}");

    let silence = link_path(&message, &first, "Silence 4h");
    let (_, page) = second.get(&silence).await;
    let form = format!("form_token={}&do=act&name=Dana", form_token(&page));
    let (status, _) = second.post(&silence, form, FORM).await;
    assert_eq!(status, 200);
    assert_eq!(alertmanager.active_silences().await.len(), 1);
}

/// What the browser saw of the action page at `url`; with `submit`, after pressing its
/// button as `name`. With `screenshot`, the page as it opened, saved there.
fn browse(
    url: &str,
    name: &str,
    submit: bool,
    screenshot: Option<&std::path::Path>,
) -> serde_json::Value {
    let mut env = vec![
        ("LINK_URL", url.as_ref()),
        ("NAME", name.as_ref()),
        ("SUBMIT", if submit { "1" } else { "0" }.as_ref()),
    ];
    if let Some(screenshot) = screenshot {
        env.push(("SCREENSHOT", screenshot.as_os_str()));
    }
    crate::browser::run("action_page.mjs", &env)
}

/// The page in a real browser, JavaScript off: opening it silences nothing, its form
/// does, the name is remembered; the page sends its `Referer` to no other site and allows no script. Takes
/// the screenshot of docs/actions.md.
#[tokio::test]
async fn the_page_works_in_a_real_browser_without_javascript() {
    let dingtalk = FakeDingTalk::start(vec![FakeRobot::new("ops-token")]).await;
    let (bridge, alertmanager) = bridge_and_alertmanager(&dingtalk, &[]).await;
    alertmanager
        .post_alerts(&[
            TestAlert::firing(&[("alertname", "ActBrowser"), ("severity", "critical")])
                .annotate("summary", "Disk almost full"),
        ])
        .await;
    let message = first_message(&dingtalk, "ActBrowser").await;
    let url = format!(
        "{}{}",
        bridge.url,
        link_path(&message, &bridge, "Silence 1h")
    );
    let screenshot =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/action-page.png");

    let looked = {
        let url = url.clone();
        tokio::task::spawn_blocking(move || browse(&url, "", false, Some(&screenshot)))
            .await
            .unwrap()
    };
    assert_eq!(looked["status"], 200, "{looked:#}");
    assert_eq!(looked["heading"], "Silence 1h");
    assert_eq!(
        looked["matchers"],
        serde_json::json!(["alertname=\"ActBrowser\""])
    );
    assert_eq!(looked["headers"]["referrer-policy"], "same-origin");
    let csp = looked["headers"]["content-security-policy"]
        .as_str()
        .unwrap_or_default();
    assert!(
        csp.contains("default-src 'none'") && !csp.contains("script"),
        "{csp}"
    );
    assert!(
        alertmanager.silences().await.is_empty(),
        "opening the page silenced"
    );

    let pressed = tokio::task::spawn_blocking(move || browse(&url, "Frank", true, None))
        .await
        .unwrap();
    assert_eq!(pressed["submitStatus"], 200, "{pressed:#}");
    let done = pressed["done"].as_str().unwrap_or_default();
    assert!(done.starts_with("Silenced until"), "{pressed:#}");
    assert_eq!(pressed["rememberedName"], "Frank");
    let active = alertmanager.active_silences().await;
    assert_eq!(active.len(), 1, "{active:#?}");
    assert_eq!(active[0]["createdBy"], "Frank");
    assert!(
        active[0]["comment"]
            .as_str()
            .unwrap()
            .contains("from the browser test"),
        "{active:#?}"
    );
}
