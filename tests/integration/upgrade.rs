//! Upgrades keep the queue: a queue file the release before issue 20 wrote (commit 313bcee;
//! `tests/data/queue-313bcee/`, made as its README says) is migrated and read by this one,
//! its pending messages delivered once each and its dead letter listed and retried; so is
//! a copy of it killed with SIGKILL halfway through its migration. The state files of
//! format version 1 (`tests/data/format-1/`: queue, acknowledgements, cards, escalations)
//! are read and acted on.

use std::time::Duration;

use serde_json::Value;
use testkit::{Bridge, FakeApp, FakeDingTalk, FakeRobot, Request, payload};

use crate::{BINARY, QUIET, QUIET_WITHIN};

/// The queue file, as release 313bcee left it: three messages pending for `ops`, one dead
/// letter of `dead`.
const OLD_QUEUE: &[u8] = include_bytes!("../data/queue-313bcee/queue.redb");

fn config(api_url: &str) -> String {
    format!(
        r#"
dingtalk: {{ api_url: "{api_url}" }}
delivery:
  queue_dir: data/queue
robots:
  ops: {{ access_token: ops-token }}
  dead: {{ access_token: dead-token }}
strategies:
  - name: ops
    matchers: ['team="ops"']
    robots: [ops]
"#
    )
}

fn delivered_about(requests: &[Request], token: &str, name: &str) -> usize {
    requests
        .iter()
        .filter(|r| r.delivered() && r.token == token && r.text().contains(name))
        .count()
}

#[tokio::test]
async fn a_queue_written_by_the_release_before_is_delivered_after_the_upgrade() {
    let dingtalk = FakeDingTalk::start(vec![
        FakeRobot::new("ops-token"),
        FakeRobot::new("dead-token"),
    ])
    .await;
    let bridge = Bridge::start_with_files(
        BINARY,
        &config(&dingtalk.api_url()),
        &[("data/queue/queue.redb", OLD_QUEUE)],
    )
    .await;

    let pending = ["OldPending1", "OldPending2", "OldPending3"];
    dingtalk
        .wait_until("the old release's queue", Duration::from_secs(30), |r| {
            pending
                .iter()
                .all(|name| delivered_about(r, "ops-token", name) > 0)
        })
        .await;
    let requests = dingtalk.wait_until_quiet(QUIET, QUIET_WITHIN).await;
    for name in pending {
        assert_eq!(delivered_about(&requests, "ops-token", name), 1, "{name}");
    }

    let (_, dead) = bridge.get("/api/v1/dead-letters").await;
    let dead: Vec<Value> = serde_json::from_str(&dead).unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0]["robot"], "dead");
    assert_eq!(dead[0]["alerts"][0], "OldDead");
    let (status, _) = bridge.post("/api/v1/dead-letters/retry", "", None).await;
    assert_eq!(status, 200);
    dingtalk
        .wait_until(
            "the old dead letter, retried",
            Duration::from_secs(30),
            |r| delivered_about(r, "dead-token", "OldDead") == 1,
        )
        .await;
    bridge.wait_idle().await;
}

/// Where the state this release wrote is kept: see its README.
const FIXTURE_DIR: &str = "tests/data/format-1";
/// The files of the fixture, as the bridge names them under `delivery.queue_dir`.
const STATE_FILES: [&str; 4] = ["queue.redb", "state.redb", "cards.redb", "escalations.redb"];
/// The bridge's address in the fixture's links: the writer strips it to follow them.
const EXTERNAL_URL: &str = "http://127.0.0.1:8060";
const APP_KEY: &str = "dingfixtureapp";
const APP_SECRET: &str = "fixture-app-secret";
const CARD_GROUP: &str = "cidFixture==";
const LINK_KEY: &str = "a-fixture-key-of-at-least-32-bytes-0123456";

/// The fake DingTalk of the fixture's robots: `ops`, `dead`, and the application's `cards`.
async fn fixture_dingtalk() -> FakeDingTalk {
    let dingtalk = FakeDingTalk::start(vec![
        FakeRobot::new("ops-token"),
        FakeRobot::new("dead-token"),
    ])
    .await;
    dingtalk.add_app(FakeApp::new(APP_KEY, APP_SECRET).robot(APP_KEY, &[CARD_GROUP]));
    dingtalk
}

/// The config the fixture was written with, and is read with.
fn fixture_config(dingtalk: &FakeDingTalk) -> String {
    format!(
        r#"
dingtalk: {{ api_url: "{}", openapi_url: "{}", timeout: 2s }}
external_url: "{EXTERNAL_URL}"
actions: {{ key: {LINK_KEY} }}
# Nothing listens there: only acknowledgements are made.
alertmanager: {{ urls: ["http://127.0.0.1:9"] }}
delivery: {{ queue_dir: data/queue }}
oncall:
  primary:
    members: [{{ name: 张三, mobile: "13800000001", user_id: manager123 }}]
robots:
  ops: {{ access_token: ops-token }}
  dead: {{ access_token: dead-token }}
  cards: {{ app_key: {APP_KEY}, app_secret: {APP_SECRET}, open_conversation_id: "{CARD_GROUP}", msgtype: card }}
strategies:
  - name: dead
    matchers: ['team="dead"']
    robots: [dead]
  - name: cards
    matchers: ['team="cards"']
    robots: [cards]
  - name: critical
    matchers: ['severity="critical"']
    robots: [ops]
    escalate:
      - {{ after: 1m, notify: primary, via: mention, robot: ops }}
  - name: ops
    matchers: ['team="ops"']
    robots: [ops]
"#,
        dingtalk.api_url(),
        dingtalk.openapi_url(),
    )
}

fn alert(status: &str, name: &str, label: (&str, &str)) -> String {
    payload(status, &[(name, &[label])])
}

/// Writes the fixture of this release's state files (run by hand, once per format version:
/// `cargo nextest run --test integration --run-ignored only write_the_fixture`): a card
/// (`FixtureCard`), an acknowledgement (`FixtureAcked`, by `Fixture`), an escalation
/// episode whose step is due a minute later (`FixtureEscalated`), three messages pending
/// for `ops` (`FixturePending1` to `3`, its robot blocked) and a dead letter of `dead`
/// (`FixtureDead`, its robot deleted).
#[tokio::test]
#[ignore = "writes tests/data/format-1; run by hand for a new format version"]
async fn write_the_fixture() {
    let dingtalk = fixture_dingtalk().await;
    let mut bridge = Bridge::start(BINARY, &fixture_config(&dingtalk)).await;
    let wait = Duration::from_secs(30);

    bridge
        .notify(&alert("firing", "FixtureCard", ("team", "cards")))
        .await;
    dingtalk
        .wait_for_cards("the card", wait, |cards| cards.len() == 1)
        .await;

    bridge
        .notify(&alert("firing", "FixtureAcked", ("severity", "critical")))
        .await;
    let message = crate::actions::first_message(&dingtalk, "FixtureAcked").await;
    let ack = crate::actions::link_url(&message, "Acknowledge");
    let ack = ack.strip_prefix(EXTERNAL_URL).unwrap();
    let (_, page) = bridge.get(ack).await;
    let form = format!(
        "form_token={}&do=act&name=Fixture",
        crate::actions::form_token(&page)
    );
    let (status, done) = bridge.post(ack, form, crate::actions::FORM).await;
    assert!(
        status == 200 && done.contains("Acknowledged by Fixture"),
        "{done}"
    );

    bridge
        .notify(&alert(
            "firing",
            "FixtureEscalated",
            ("severity", "critical"),
        ))
        .await;
    crate::actions::first_message(&dingtalk, "FixtureEscalated").await;

    dingtalk.block_robot("ops-token");
    for n in 1..=3 {
        let name = format!("FixturePending{n}");
        bridge
            .notify(&alert("firing", &name, ("team", "ops")))
            .await;
    }
    dingtalk.delete_robot("dead-token");
    bridge
        .notify(&alert("firing", "FixtureDead", ("team", "dead")))
        .await;
    bridge
        .wait_for_metric("alertmanager_dingtalk_queue_depth{robot=\"ops\"}", 3.0)
        .await;
    wait_for_dead_letters(&bridge, 1).await;

    bridge.signal("TERM");
    assert!(bridge.wait_exit(wait).await.success());
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(FIXTURE_DIR);
    std::fs::create_dir_all(&fixture).unwrap();
    for name in STATE_FILES {
        std::fs::copy(
            bridge.dir().join("data/queue").join(name),
            fixture.join(name),
        )
        .unwrap();
    }
}

/// Waits until the bridge lists `count` dead letters; returns them.
async fn wait_for_dead_letters(bridge: &Bridge, count: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (_, dead) = bridge.get("/api/v1/dead-letters").await;
        let dead: Vec<Value> = serde_json::from_str(&dead).unwrap();
        if dead.len() == count {
            return dead;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{dead:?}\n{}",
            bridge.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// How many messages about `name` delivered `@` the member on call.
fn mentions_about(requests: &[Request], name: &str) -> usize {
    requests
        .iter()
        .filter(|r| r.delivered() && r.text().contains(name) && r.text().contains("@13800000001"))
        .count()
}

#[tokio::test]
async fn the_state_this_release_wrote_is_read_and_acted_on_by_every_later_one() {
    let dingtalk = fixture_dingtalk().await;
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(FIXTURE_DIR);
    let files: Vec<(String, Vec<u8>)> = STATE_FILES
        .iter()
        .map(|name| {
            let bytes = std::fs::read(fixture.join(name)).unwrap();
            (format!("data/queue/{name}"), bytes)
        })
        .collect();
    let files: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(path, bytes)| (path.as_str(), bytes.as_slice()))
        .collect();
    let bridge = Bridge::start_with_files(BINARY, &fixture_config(&dingtalk), &files).await;
    let wait = Duration::from_secs(30);

    // The acknowledgement.
    let (_, acks) = bridge.get("/api/v1/acks").await;
    let acks: Value = serde_json::from_str(&acks).unwrap();
    assert_eq!(acks[0]["by"], "Fixture", "{acks}");

    // The pending messages, and the escalation's step that fell due meanwhile; not the
    // acknowledged group's.
    let pending = ["FixturePending1", "FixturePending2", "FixturePending3"];
    dingtalk
        .wait_until("the pending messages and the step", wait, |r| {
            pending
                .iter()
                .all(|name| delivered_about(r, "ops-token", name) > 0)
                && mentions_about(r, "FixtureEscalated") > 0
        })
        .await;

    // The card: a change of its group updates the card it was sent as.
    bridge
        .notify(&alert("resolved", "FixtureCard", ("team", "cards")))
        .await;
    let requests = dingtalk
        .wait_until("the card's change", wait, |r| {
            r.iter().any(|r| r.is_card_update() || r.is_card_send())
        })
        .await;
    let first = requests
        .iter()
        .find(|r| r.is_card_update() || r.is_card_send())
        .unwrap();
    assert!(first.is_card_update(), "{first:?}");

    // The dead letter, retried.
    let dead = wait_for_dead_letters(&bridge, 1).await;
    assert_eq!(dead[0]["robot"], "dead");
    assert_eq!(dead[0]["alerts"][0], "FixtureDead");
    let (status, _) = bridge.post("/api/v1/dead-letters/retry", "", None).await;
    assert_eq!(status, 200);

    let requests = dingtalk.wait_until_quiet(QUIET, QUIET_WITHIN).await;
    for name in pending {
        assert_eq!(delivered_about(&requests, "ops-token", name), 1, "{name}");
    }
    assert_eq!(delivered_about(&requests, "dead-token", "FixtureDead"), 1);
    assert_eq!(mentions_about(&requests, "FixtureEscalated"), 1);
    assert_eq!(mentions_about(&requests, "FixtureAcked"), 0);
}

/// The queue file of release 313bcee with `extra` more messages pending for `ops` (copies
/// of its first, under new ids), so that migrating it takes long enough to be interrupted.
fn large_old_queue(extra: u64) -> Vec<u8> {
    const PENDING: redb::TableDefinition<(&str, u64), &[u8]> =
        redb::TableDefinition::new("pending");
    let dir = testkit::temp_dir("large-old-queue");
    let path = dir.join("queue.redb");
    std::fs::write(&path, OLD_QUEUE).unwrap();
    {
        use redb::ReadableTable as _;
        let database = redb::Database::create(&path).unwrap();
        let txn = database.begin_write().unwrap();
        {
            let mut pending = txn.open_table(PENDING).unwrap();
            let (first, mut message) = {
                let (key, value) = pending.first().unwrap().unwrap();
                let message: Value = serde_json::from_slice(value.value()).unwrap();
                (key.value().1, message)
            };
            for id in first + 1_000..first + 1_000 + extra {
                message["id"] = id.into();
                let json = serde_json::to_vec(&message).unwrap();
                pending.insert(("ops", id), json.as_slice()).unwrap();
            }
        }
        txn.commit().unwrap();
    }
    let bytes = std::fs::read(&path).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    bytes
}

/// Whether `bytes` (a queue file) records a format version.
fn records_a_version(bytes: &[u8]) -> bool {
    let dir = testkit::temp_dir("format-record");
    let path = dir.join("queue.redb");
    std::fs::write(&path, bytes).unwrap();
    let database = redb::Database::create(&path).unwrap();
    let txn = redb::ReadableDatabase::begin_read(&database).unwrap();
    let recorded = txn
        .open_table(redb::TableDefinition::<&str, &[u8]>::new("format"))
        .is_ok();
    drop((txn, database));
    let _ = std::fs::remove_dir_all(&dir);
    recorded
}

#[tokio::test]
async fn a_migration_killed_halfway_leaves_a_file_the_next_start_migrates_and_delivers() {
    use std::io::BufRead as _;
    // Enough for the migration to take about half a second in a debug build.
    const EXTRA: u64 = 5_000;
    let dingtalk = FakeDingTalk::start(vec![
        FakeRobot::new("ops-token"),
        FakeRobot::new("dead-token"),
    ])
    .await;
    let config = config(&dingtalk.api_url());
    let dir = testkit::temp_dir("killed-migration");
    std::fs::create_dir_all(dir.join("data/queue")).unwrap();
    std::fs::write(dir.join("config.yaml"), &config).unwrap();
    std::fs::write(dir.join("data/queue/queue.redb"), large_old_queue(EXTRA)).unwrap();

    // Killed as soon as it says it migrates.
    let mut child = std::process::Command::new(BINARY)
        .current_dir(&dir)
        .args(["--config", "config.yaml", "--log-format", "json"])
        .args(["--listen", "127.0.0.1:0"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut said = Vec::new();
    for line in stderr.lines() {
        let line = line.unwrap();
        let migrating = line.contains("Migrating the file to this release's format.");
        said.push(line);
        if migrating {
            child.kill().unwrap();
            break;
        }
    }
    assert!(child.wait().is_ok_and(|s| !s.success()), "{said:?}");
    let left = std::fs::read(dir.join("data/queue/queue.redb")).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        !records_a_version(&left),
        "the migration ended before the kill: nothing was interrupted"
    );

    // The next start migrates the file and delivers what it holds.
    let mut bridge =
        Bridge::start_with_files(BINARY, &config, &[("data/queue/queue.redb", &left)]).await;
    let migrated = bridge
        .wait_for_log("the migration", Duration::from_secs(5), |line| {
            line["message"] == "Migrating the file to this release's format."
        })
        .await;
    assert_eq!(migrated["from"], 0);
    assert_eq!(migrated["to"], 1);
    let depth = bridge
        .metric("alertmanager_dingtalk_queue_depth{robot=\"ops\"}")
        .await;
    assert!(depth >= EXTRA as f64, "{depth}");
    dingtalk
        .wait_until(
            "the old release's first message",
            Duration::from_secs(30),
            |r| delivered_about(r, "ops-token", "OldPending1") > 0,
        )
        .await;
}

#[tokio::test]
async fn a_state_file_of_a_newer_release_stops_the_start_and_is_left_as_it_was() {
    let dingtalk = fixture_dingtalk().await;
    let dir = testkit::temp_dir("newer-format");
    std::fs::create_dir_all(dir.join("data/queue")).unwrap();
    std::fs::write(dir.join("config.yaml"), fixture_config(&dingtalk)).unwrap();
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(FIXTURE_DIR);
    let queue = dir.join("data/queue/queue.redb");
    std::fs::copy(fixture.join("queue.redb"), &queue).unwrap();
    {
        let database = redb::Database::create(&queue).unwrap();
        let txn = database.begin_write().unwrap();
        txn.open_table(redb::TableDefinition::<&str, &[u8]>::new("format"))
            .unwrap()
            .insert("version", b"2".as_slice())
            .unwrap();
        txn.commit().unwrap();
    }
    let before = std::fs::read(&queue).unwrap();

    let output = tokio::task::spawn_blocking({
        let dir = dir.clone();
        move || {
            testkit::run_command(
                BINARY,
                &dir,
                &["--config", "config.yaml", "--listen", "127.0.0.1:0"],
                &[],
            )
        }
    })
    .await
    .unwrap();
    assert!(!output.success, "{}", output.stderr);
    assert!(
        output
            .stderr
            .contains("format version 2 is newer than this release reads (up to 1)"),
        "{}",
        output.stderr
    );
    assert!(std::fs::read(&queue).unwrap() == before, "the file changed");
    let mut names: Vec<String> = std::fs::read_dir(dir.join("data/queue"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["queue.redb"], "nothing moved aside or added");
    let _ = std::fs::remove_dir_all(&dir);
}
