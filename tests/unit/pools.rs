//! `pools:` and `sources:` in the config: a pool becomes the robot `pool:<name>` that
//! strategies name, its robots must be webhook robots configured alike; every mistake is
//! reported at its line.

use alertmanager_dingtalk::dingtalk::{Endpoint, SendError};

use crate::config::{check_errors, check_ok};

const POOL: &str = "\
robots:
  ops-a:
    access_token: a
  ops-b:
    access_token: b
    secret: SECb
  ops-c:
    access_token: c
pools:
  ops: [ops-a, ops-b, ops-c]
strategies:
  - name: all
    robots: [pool:ops]
";

#[test]
fn a_pool_is_a_robot_strategies_name_with_its_members_settings() {
    let config = check_ok(POOL);
    let pool = &config.robots["pool:ops"];
    assert_eq!(
        pool.endpoint,
        Endpoint::Pool(vec!["ops-a".into(), "ops-b".into(), "ops-c".into()])
    );
    assert_eq!(pool.pool_members().unwrap().len(), 3);
    assert_eq!(pool.keywords, config.robots["ops-a"].keywords);
    assert_eq!(pool.redacted_url(), "pool of ops-a, ops-b, ops-c");
    assert!(!pool.is_app() && pool.commands.is_none());
    assert_eq!(config.strategies[0].robots, ["pool:ops"]);
    let summary = config.summary();
    assert!(
        summary.contains(": 3 robots (1 signed), 1 pools, 1 strategies"),
        "{summary}"
    );
}

#[test]
fn pool_mistakes_are_reported_at_their_lines() {
    check_errors(
        "\
robots:
  ops-a:
    access_token: a
  ops-b:
    access_token: b
    keywords: [Other]
  app:
    app_key: k
    app_secret: s
    open_conversation_id: cid
  pool:x:
    access_token: x
pools:
  ops: [ops-a, ops-b, nope, ops-a, app]
  empty: []
strategies:
  - name: all
    robots: [pool:ops, pool:missing]
",
        &[
            (11, "robot name `pool:x` starts with `pool:`"),
            (14, "robot `ops-b` has other `keywords` than `ops-a`"),
            (14, "names robot `nope`, which is not defined"),
            (14, "names robot `ops-a` twice"),
            (14, "robot `app` is not a webhook robot"),
            (15, "pool `empty` has no robots"),
            (18, "names robot `pool:missing`, which is not defined"),
        ],
    );
}

#[test]
fn source_settings_are_checked() {
    check_errors(
        "\
robots:
  ops:
    access_token: a
sources:
  grafana:
    signature_header: X-Sig
    hmac_key: nope
  hertzbeat:
    timezone: Mars/Olympus
strategies:
  - name: all
    robots: [ops]
",
        &[
            (6, "`signature_header` without `hmac_secret`"),
            (7, "unknown key `hmac_key` in sources.grafana"),
            (9, "Mars/Olympus"),
        ],
    );
    let config = check_ok(
        "\
robots:
  ops:
    access_token: a
timezone: UTC
sources:
  grafana:
    hmac_secret: s3cret
strategies:
  - name: all
    robots: [ops]
",
    );
    let hmac = config.sources.grafana_hmac.as_ref().unwrap();
    assert_eq!(hmac.header, "X-Grafana-Alert-Signature");
    assert_eq!(hmac.secret.expose(), "s3cret");
    assert!(
        !format!("{config:?}").contains("s3cret"),
        "the secret is never shown"
    );
    // HertzBeat's times are read in the config's zone unless it names its own.
    assert_eq!(config.sources.hertzbeat_timezone, jiff::tz::TimeZone::UTC);
}

#[test]
fn only_refusals_of_the_robot_itself_pass_a_message_to_another_robot() {
    let refused = |errcode, errmsg: &str| SendError::Rejected {
        errcode,
        errmsg: errmsg.to_owned(),
    };
    for robots_fault in [
        refused(300001, "token is not exist"),
        refused(310000, "keywords not in content"),
        refused(310000, "sign not match"),
        refused(400102, "robot disabled"),
    ] {
        assert!(robots_fault.is_robots_fault(), "{robots_fault}");
    }
    for messages_fault in [
        refused(40035, "missing parameter json"),
        refused(460101, "message too long"),
        refused(130101, "send too fast"),
        SendError::Http(500),
    ] {
        assert!(!messages_fault.is_robots_fault(), "{messages_fault}");
    }
}
