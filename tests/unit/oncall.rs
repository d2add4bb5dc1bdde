//! On-call schedules (issue 23): who is on call at an instant, the handoffs that come,
//! overrides, what `check` prints, and the errors of `oncall:` and `escalate:` at their
//! lines. Time is a value here: every question names its instant.

use alertmanager_dingtalk::accept::plan;
use alertmanager_dingtalk::ingest;
use alertmanager_dingtalk::oncall::{self, Schedule, Schedules};
use jiff::Timestamp;

use crate::config::{check_errors, check_ok};

/// A config with `oncall` (indented as a top-level key's body) and a webhook robot `ops`.
fn with_oncall(oncall: &str) -> Schedules {
    let yaml = format!(
        "timezone: Asia/Shanghai\noncall:\n{oncall}robots:\n  ops:\n    access_token: abc\nstrategies:\n  - name: all\n    robots: [ops]\n"
    );
    check_ok(&yaml).oncall
}

const WEEKLY: &str = "
  primary:
    rotation: { every: 1w, handoff: \"Mon 10:00\", start: \"2026-12-07\" }
    members:
      - { name: 张三, mobile: \"13800000001\", user_id: manager123 }
      - { name: 李四, mobile: \"13800000002\", user_id: user456 }
      - { name: 王五, user_id: user789 }
    overrides:
      - { from: \"2026-12-24 18:00\", to: \"2026-12-26 10:00\", member: 李四 }
";

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

fn primary() -> Schedule {
    with_oncall(WEEKLY).remove("primary").unwrap()
}

/// Who `schedule` has on call at each instant (RFC 3339).
fn check(schedule: &Schedule, expected: &[(&str, &str)]) {
    for (when, who) in expected {
        assert_eq!(schedule.on_call(at(when)).name, *who, "at {when}");
    }
}

#[test]
fn a_weekly_rotation_hands_off_at_its_local_time_each_week() {
    // Asia/Shanghai is UTC+8 all year: Monday 10:00 there is 02:00 UTC.
    check(
        &primary(),
        &[
            // Before the first handoff, and during the first shift: the first member.
            ("2026-12-01T00:00:00Z", "张三"),
            ("2026-12-07T01:59:59Z", "张三"),
            ("2026-12-07T02:00:00Z", "张三"),
            ("2026-12-14T01:59:59Z", "张三"),
            ("2026-12-14T02:00:00Z", "李四"),
            ("2026-12-21T02:00:00Z", "王五"),
            // Round again, and many weeks later.
            ("2026-12-28T02:00:00Z", "张三"),
            // Twelve weeks on: round four times.
            ("2027-03-01T02:00:00Z", "张三"),
            ("2027-03-08T02:00:00Z", "李四"),
        ],
    );
}

#[test]
fn an_override_puts_its_member_on_call_from_its_start_up_to_its_end() {
    check(
        &primary(),
        &[
            // 王五's week; 李四 from Thursday 18:00 to Saturday 10:00 local.
            ("2026-12-24T09:59:59Z", "王五"),
            ("2026-12-24T10:00:00Z", "李四"),
            ("2026-12-26T01:59:59Z", "李四"),
            ("2026-12-26T02:00:00Z", "王五"),
        ],
    );
}

#[test]
fn the_next_handoffs_include_an_override_and_its_end() {
    let schedule = primary();
    let handoffs: Vec<(String, &str)> = schedule
        .handoffs(at("2026-12-22T00:00:00Z"), 4)
        .iter()
        .map(|h| (h.at.to_string(), h.member.name.as_str()))
        .collect();
    assert_eq!(
        handoffs,
        [
            ("2026-12-24T10:00:00Z".to_owned(), "李四"),
            ("2026-12-26T02:00:00Z".to_owned(), "王五"),
            ("2026-12-28T02:00:00Z".to_owned(), "张三"),
            ("2027-01-04T02:00:00Z".to_owned(), "李四"),
        ]
    );
}

#[test]
fn shorter_rotations_hand_off_at_a_time_of_day_in_utc() {
    let schedules = with_oncall(
        "
  day:
    timezone: UTC
    rotation: { every: 1d, handoff: \"09:00\", start: \"2026-12-07\" }
    members: [{ name: a, user_id: a }, { name: b, user_id: b }]
  half:
    timezone: UTC
    rotation: { every: 12h, handoff: \"08:00\", start: \"2026-12-07\" }
    members: [{ name: x, user_id: x }, { name: y, user_id: y }, { name: z, user_id: z }]
",
    );
    check(
        &schedules["day"],
        &[
            ("2026-12-07T08:59:00Z", "a"),
            ("2026-12-08T08:59:00Z", "a"),
            ("2026-12-08T09:00:00Z", "b"),
            ("2026-12-09T09:00:00Z", "a"),
        ],
    );
    check(
        &schedules["half"],
        &[
            ("2026-12-07T19:59:00Z", "x"),
            ("2026-12-07T20:00:00Z", "y"),
            ("2026-12-08T08:00:00Z", "z"),
            ("2026-12-08T20:00:00Z", "x"),
        ],
    );
}

#[test]
fn a_schedule_of_one_member_needs_no_rotation_and_never_hands_off() {
    let schedules = with_oncall("  solo:\n    members: [{ name: 独, mobile: \"13800000009\" }]\n");
    let solo = &schedules["solo"];
    check(
        solo,
        &[
            ("2020-01-01T00:00:00Z", "独"),
            ("2030-01-01T00:00:00Z", "独"),
        ],
    );
    assert!(solo.handoffs(at("2026-12-07T00:00:00Z"), 3).is_empty());
}

#[test]
fn check_prints_who_is_on_call_and_the_next_handoffs() {
    let schedules = with_oncall(WEEKLY);
    let shifts = oncall::shifts(&schedules, at("2026-12-15T00:00:00Z"), 2);
    let lines: Vec<String> = shifts.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "on call in primary (Asia/Shanghai): 李四; next: 王五 at 2026-12-21 10:00 +08:00, 李四 at 2026-12-24 18:00 +08:00"
        ]
    );
}

#[test]
fn a_mention_of_a_schedule_names_its_member_on_call() {
    let schedules = with_oncall(WEEKLY);
    let names = ["primary".to_owned()];
    let mention = oncall::mention(&schedules, &names, at("2026-12-15T00:00:00Z"));
    assert_eq!(mention.mobiles, ["13800000002"]);
    assert_eq!(mention.user_ids, ["user456"]);
    // 王五 has no mobile: only the user id.
    let mention = oncall::mention(&schedules, &names, at("2026-12-22T00:00:00Z"));
    assert!(mention.mobiles.is_empty());
    assert_eq!(mention.user_ids, ["user789"]);
}

#[test]
fn schedule_errors_are_reported_at_their_lines() {
    check_errors(
        "\
oncall:
  primary:
    rotation: { every: 1w, handoff: \"10:00\", start: \"2026-12-07\" }
    members: [{ name: a, user_id: a }, { name: b, user_id: b }]
  secondary:
    rotation: { every: 1d, handoff: \"Mon 10:00\", start: \"2026-12-07\" }
    members: [{ name: a, user_id: a }, { name: b, user_id: b }]
  third:
    rotation: { every: 1w, handoff: \"Tue 10:00\", start: \"2026-12-07\" }
    members: [{ name: a, user_id: a }, { name: b, user_id: b }]
  fourth:
    rotation: { every: 1d, handoff: \"10:00\", start: \"2026-12-07\" }
    members:
      - { name: a, user_id: a }
      - { name: a, mobile: \"1\" }
      - { name: c }
  fifth:
    rotation: { every: 1d, start: \"2026-12-07\" }
    members: [{ name: a, user_id: a }, { name: b, user_id: b }]
    overrides:
      - { from: \"2026-12-24 18:00\", to: \"2026-12-26 10:00\", member: a }
      - { from: \"2026-12-25 18:00\", to: \"2026-12-27 10:00\", member: b }
      - { from: \"2026-12-29 18:00\", to: \"2026-12-28 10:00\", member: b }
      - { from: \"2026-12-30 18:00\", to: \"2026-12-31 10:00\", member: nobody }
  sixth:
    members: [{ name: a, user_id: a }, { name: b, user_id: b }]
robots:
  ops:
    access_token: abc
strategies:
  - name: all
    robots: [ops]
",
        &[
            (3, "a rotation of whole weeks hands off on a day and time"),
            (
                6,
                "a rotation shorter than a week hands off at a time of day",
            ),
            (
                9,
                "hands off on Tuesdays, but `start` 2026-12-07 is a Monday",
            ),
            (15, "member `a` is listed twice"),
            (16, "member `c` needs a `mobile` or a `user_id`"),
            (22, "this override overlaps another"),
            (23, "an override's `to` must come after its `from`"),
            (24, "override names `nobody`, who is not a member"),
            (25, "schedule `sixth` has several members but no `rotation`"),
        ],
    );
}

#[test]
fn mentions_and_steps_are_checked_against_schedules_and_robots() {
    check_errors(
        "\
oncall:
  primary:
    members: [{ name: a, mobile: \"13800000001\" }]
robots:
  ops:
    access_token: abc
    mention: { oncall: [primray] }
  app:
    app_key: key
    app_secret: secret
    robot_code: code
    open_conversation_id: cid
strategies:
  - name: all
    robots: [ops]
    mention: { oncall: [secondary] }
    escalate:
      - { after: 5m, notify: primary, via: mention }
      - { after: 5m, notify: primray, via: ding_app, robot: app }
      - { after: 5m, notify: primary, via: ding_app, robot: ops }
      - { after: 5m, notify: primary, via: ding_call, robot: app }
      - { after: 5m, notify: primary, via: pager }
      - { after: 5m, notify: primary, via: ding_sms }
      - { after: 5m, notify: primary, via: mention, robot: app }
      - { after: 1m, notify: primary, via: mention }
",
        &[
            (
                7,
                "`primray` is not a schedule of `oncall:` (schedules: primary)",
            ),
            (16, "`secondary` is not a schedule of `oncall:`"),
            (19, "step notifies `primray`, which is not a schedule"),
            (
                20,
                "robot `ops` is a webhook robot; a DING is sent by a robot of an application",
            ),
            (
                21,
                "member `a` of schedule `primary` has no `user_id`, which a DING needs",
            ),
            (
                22,
                "`via: pager` is not one of ding_app, ding_sms, ding_call, mention",
            ),
            (23, "a `via: ding_sms` step needs `robot`"),
            (
                24,
                "robot `app` is a robot of an application, which cannot mention people",
            ),
            (25, "steps must be in order"),
        ],
    );
}

#[test]
fn a_template_may_name_the_member_on_call_but_not_a_schedule_that_does_not_exist() {
    check_errors(
        "\
oncall:
  primary:
    members: [{ name: a, mobile: \"13800000001\" }]
templates:
  good:
    text: \"on call: {{ oncall.primary.name }}\"
  bad:
    text: \"on call: {{ oncall.secondary.name }}\"
robots:
  ops:
    access_token: abc
strategies:
  - name: all
    robots: [ops]
    template: good
",
        &[(8, "reads a variable templates are not given")],
    );
}

const PLANNED: &str = "
  primary:
    rotation: { every: 1w, handoff: \"Mon 10:00\", start: \"2026-12-07\" }
    members:
      - { name: 张三, mobile: \"13800000001\", user_id: manager123 }
      - { name: 李四, mobile: \"13800000002\", user_id: user456 }
templates:
  oncall:
    text: \"{{ alertname }} for {{ oncall.primary.name }}\"
robots:
  ops:
    access_token: abc
  app:
    app_key: key
    app_secret: secret
    robot_code: code
    open_conversation_id: cid
    mention: { oncall: [primary] }
strategies:
  - name: critical
    robots: [ops, app]
    template: oncall
    mention: { oncall: [primary] }
";

fn planned_at(now: &str) -> Vec<plan::PlannedMessage> {
    let config = check_ok(&format!("timezone: Asia/Shanghai\noncall:{PLANNED}"));
    let body = r#"{"version": "4", "status": "firing", "receiver": "r", "groupKey": "g",
        "groupLabels": {"alertname": "HighCPU"}, "commonLabels": {"alertname": "HighCPU"},
        "commonAnnotations": {}, "externalURL": "", "alerts": [{"status": "firing",
        "labels": {"alertname": "HighCPU"}, "annotations": {}, "startsAt": "2026-12-15T00:00:00Z",
        "fingerprint": "1"}]}"#;
    let notification = ingest::parse(body.as_bytes()).unwrap();
    plan::plan(&config, &notification, at(now)).messages
}

#[test]
fn a_webhook_robot_mentions_the_member_on_call_when_the_message_is_planned() {
    for (now, mobile, user_id, name) in [
        ("2026-12-08T00:00:00Z", "13800000001", "manager123", "张三"),
        ("2026-12-15T00:00:00Z", "13800000002", "user456", "李四"),
    ] {
        let messages = planned_at(now);
        let ops = messages.iter().find(|m| m.robot == "ops").unwrap();
        assert_eq!(ops.message.mention.mobiles, [mobile]);
        assert_eq!(ops.message.mention.user_ids, [user_id]);
        // DingTalk shows a mention only when the text carries its `@`.
        assert!(
            ops.message.text.contains(&format!("@{mobile}")),
            "{}",
            ops.message.text
        );
        assert!(ops.message.text.contains(&format!("HighCPU for {name}")));
    }
}

#[test]
fn a_robot_of_an_application_reaches_the_member_on_call_one_to_one_instead() {
    let messages = planned_at("2026-12-15T00:00:00Z");
    let app = messages.iter().find(|m| m.robot == "app").unwrap();
    // The group message names nobody: its call has no `at`.
    assert!(!app.message.text.contains('@'), "{}", app.message.text);
    assert!(app.message.mention.mobiles.is_empty());
    assert_eq!(app.message.mention.user_ids, ["user456"]);
    let config = check_ok(&format!("timezone: Asia/Shanghai\noncall:{PLANNED}"));
    let robot = &config.robots["app"];
    let body: serde_json::Value =
        serde_json::from_str(&robot.one_to_one_body(&app.message).unwrap()).unwrap();
    assert_eq!(body["robotCode"], "code");
    assert_eq!(body["userIds"], serde_json::json!(["user456"]));
    assert_eq!(body["msgKey"], "sampleMarkdown");
    let param: serde_json::Value =
        serde_json::from_str(body["msgParam"].as_str().unwrap()).unwrap();
    assert!(param["text"].as_str().unwrap().contains("HighCPU for 李四"));
    // A webhook robot's message goes to its group only.
    let ops = messages.iter().find(|m| m.robot == "ops").unwrap();
    assert_eq!(config.robots["ops"].one_to_one_body(&ops.message), None);
}

#[test]
fn unknown_keys_of_schedules_and_steps_are_reported_every_one() {
    check_errors(
        "\
oncall:
  primary:
    rotaton: { every: 1w }
    members: [{ name: a, mobile: \"1\", userid: a }]
  secondary:
    rotation: { every: 1d, handof: \"10:00\", start: \"2026-12-07\" }
    members: [{ name: a, mobile: \"1\" }, { name: b, mobile: \"2\" }]
    overrides: [{ from: \"2026-12-24 18:00\", until: \"2026-12-26 10:00\", member: a }]
robots:
  ops:
    access_token: abc
    mention: { oncal: [primary] }
strategies:
  - name: all
    robots: [ops]
    escalate: [{ aftr: 5m, notify: primary, via: mention }]
",
        &[
            (3, "unknown key `rotaton` in oncall.primary"),
            (4, "unknown key `userid` in oncall.primary.members[0]"),
            (6, "unknown key `handof` in oncall.secondary.rotation"),
            (8, "an override needs `to`"),
            (8, "unknown key `until` in oncall.secondary.overrides[0]"),
            (12, "unknown key `oncal` in robots.ops.mention"),
            (16, "a step needs `after`"),
            (16, "unknown key `aftr` in strategies[0].escalate[0]"),
        ],
    );
}

#[test]
fn check_warns_that_an_action_card_leaves_the_person_on_call_unheard_but_not_a_robot_of_an_application()
 {
    let config = check_ok(
        "\
oncall:
  primary:
    members: [{ name: a, mobile: \"13800000001\", user_id: a }]
robots:
  cards:
    access_token: abc
    msgtype: actionCard
    mention: { oncall: [primary] }
  app:
    app_key: key
    app_secret: secret
    open_conversation_id: cid
strategies:
  - name: all
    robots: [app]
    mention: { oncall: [primary] }
  - name: cards
    robots: [cards]
",
    );
    let warnings = config.warnings();
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    assert!(
        warnings[0].starts_with("robot `cards` sends action cards"),
        "{warnings:#?}"
    );
}
