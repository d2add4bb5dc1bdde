//! `migrate`: prometheus-webhook-dingtalk's own example config becomes a config that
//! passes `check`, and a migrated config delivers `/dingtalk/{target}/send` to the same
//! robots, signed with the same secrets, mentioning the same people.

use testkit::{Bridge, CommandOutput, FakeDingTalk, FakeRobot, payload, run_command, temp_dir};

use crate::BINARY;

const EXAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/prometheus-webhook-dingtalk.example.yml"
);

/// `migrate FILE`, then `check` on what it printed.
fn migrate_and_check(source: &str) -> (CommandOutput, CommandOutput) {
    let dir = temp_dir("migrate");
    std::fs::write(dir.join("config.yml"), source).unwrap();
    let migrated = run_command(BINARY, &dir, &["migrate", "config.yml"], &[]);
    std::fs::write(dir.join("config.yaml"), &migrated.stdout).unwrap();
    let checked = run_command(BINARY, &dir, &["check", "--config", "config.yaml"], &[]);
    let _ = std::fs::remove_dir_all(&dir);
    (migrated, checked)
}

#[test]
fn the_example_config_migrates_to_one_that_passes_check() {
    let (migrated, checked) = migrate_and_check(&std::fs::read_to_string(EXAMPLE).unwrap());

    assert!(migrated.success, "{}", migrated.stderr);
    assert!(checked.success, "{}\n{}", checked.stderr, migrated.stdout);
    assert!(
        checked.stdout.contains("5 robots (1 signed)"),
        "{}",
        checked.stdout
    );
    // The Go template of webhook_legacy is named as not carried over.
    assert!(
        migrated.stdout.contains(
            r#"#   - targets.webhook_legacy.message: title "{{ template \"legacy.title\" . }}""#
        ),
        "{}",
        migrated.stdout
    );
}

#[test]
fn a_file_without_targets_is_refused() {
    let (migrated, _) = migrate_and_check("timeout: 5s\n");
    assert!(!migrated.success);
    assert!(
        migrated.stderr.contains("no `targets:`"),
        "{}",
        migrated.stderr
    );
}

#[tokio::test]
async fn migrated_targets_reach_the_same_robots_signed_and_mentioning_the_same_people() {
    let dingtalk = FakeDingTalk::start(vec![
        FakeRobot::new("alpha-token").secret("SECalpha"),
        FakeRobot::new("beta-token"),
    ])
    .await;
    let api = dingtalk.api_url();
    let source = format!(
        r#"
timeout: 3s
templates:
  - contrib/templates/legacy/template.tmpl
targets:
  alpha:
    url: {api}?access_token=alpha-token
    secret: SECalpha
    mention:
      mobiles: ['13800000001', '13900000002']
  beta:
    url: {api}?access_token=beta-token
    mention:
      all: true
"#
    );
    let (migrated, checked) = migrate_and_check(&source);
    assert!(checked.success, "{}\n{}", checked.stderr, migrated.stdout);
    let bridge = Bridge::start(BINARY, &migrated.stdout).await;

    let alert = payload("firing", &[("MigratedAlert", &[])]);
    for target in ["alpha", "beta"] {
        let path = format!("/dingtalk/{target}/send");
        let (status, body) = bridge.post(&path, &alert, Some("application/json")).await;
        assert_eq!(status, 200, "{target}: {body}");
    }

    dingtalk
        .wait_until("both messages", std::time::Duration::from_secs(10), |r| {
            r.iter().filter(|r| r.errcode == Some(0)).count() == 2
        })
        .await;
    // The fake checks alpha's signature against SECalpha: delivered means signed right.
    let alpha = dingtalk.delivered("alpha-token");
    assert_eq!(alpha.len(), 1);
    let mobiles = &alpha[0].body["at"]["atMobiles"];
    assert_eq!(mobiles, &serde_json::json!(["13800000001", "13900000002"]));
    let beta = dingtalk.delivered("beta-token");
    assert_eq!(beta.len(), 1);
    assert_eq!(beta[0].body["at"]["isAtAll"], true);
}
