//! A group's newer state supersedes its pending older ones (issue 20): what the lines are,
//! what their message says, and, on paused time with a scripted DingTalk, that a group
//! which fires and resolves three times while its robot is paused reaches DingTalk as its
//! latest state.

use std::time::Duration;

use alertmanager_dingtalk::deliver::supersede::{Line, supersede};
use alertmanager_dingtalk::dingtalk::MESSAGE_BUDGET;
use alertmanager_dingtalk::ingest::Status;
use alertmanager_dingtalk::metrics::RobotLabels;
use alertmanager_dingtalk::queue::Envelope;
use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::robot;
use crate::scripted::{Harness, Scripted, config, envelope, too_fast};

/// A message of group `group` in `status` naming `alerts`, accepted `minute` minutes
/// after 08:00 UTC.
fn state(id: u64, group: &str, status: Status, alerts: &[&str], minute: i64) -> Envelope {
    let mut message = envelope(id, "ops", alerts[0]);
    let shown = match status {
        Status::Firing => format!("[FIRING:{}]", alerts.len()),
        Status::Resolved => "[RESOLVED]".to_owned(),
    };
    let title = format!("{shown} {group} · HertzBeat");
    message.message.title.clone_from(&title);
    message.message.text = format!("### {title}\n\n{}\n\nHertzBeat", alerts.join("\n"));
    message.summary.status = status;
    message.summary.title = title;
    message.summary.alerts = alerts.iter().map(|a| (*a).to_owned()).collect();
    message.summary.group_key = group.to_owned();
    message.accepted_at = Timestamp::from_second(1_796_544_000 + minute * 60).unwrap();
    message
}

/// Fired, resolved, fired, … `count` times over, one a minute.
fn flaps(group: &str, count: usize, first_id: u64) -> Vec<Envelope> {
    (0..count)
        .map(|i| {
            let status = if i % 2 == 0 {
                Status::Firing
            } else {
                Status::Resolved
            };
            state(first_id + i as u64, group, status, &["Flapping"], i as i64)
        })
        .collect()
}

fn ids(line: &Line) -> Vec<u64> {
    line.superseded
        .iter()
        .chain([&line.latest])
        .map(|e| e.id)
        .collect()
}

#[test]
fn a_groups_newest_state_supersedes_the_older_ones_where_the_oldest_waited() {
    let mut pending = flaps("g", 6, 1);
    pending.insert(1, state(100, "other", Status::Firing, &["Other"], 0));
    let lines = supersede(pending, &TimeZone::UTC, MESSAGE_BUDGET);
    assert_eq!(lines.len(), 2);
    assert_eq!(
        ids(&lines[0]),
        [1, 2, 3, 4, 5, 6],
        "g first: its oldest came first"
    );
    assert_eq!(lines[0].latest.id, 6);
    assert_eq!(lines[0].latest.summary.status, Status::Resolved);
    assert_eq!(ids(&lines[1]), [100]);
    assert!(lines[1].superseded.is_empty());
}

#[test]
fn only_the_same_group_and_strategy_supersede_and_messages_without_a_group_never() {
    let mut other_strategy = state(3, "g", Status::Resolved, &["A"], 2);
    other_strategy.strategy = "pager".to_owned();
    let pending = vec![
        state(1, "g", Status::Firing, &["A"], 0),
        state(2, "", Status::Firing, &["B"], 1),
        other_strategy,
        state(4, "", Status::Resolved, &["B"], 3),
    ];
    let lines = supersede(pending, &TimeZone::UTC, MESSAGE_BUDGET);
    let shape: Vec<Vec<u64>> = lines.iter().map(ids).collect();
    assert_eq!(shape, [vec![1], vec![2], vec![3], vec![4]]);
}

#[test]
fn the_message_is_the_latest_state_with_what_changed_and_every_alert_named() {
    let pending = vec![
        state(1, "g", Status::Firing, &["DiskFull", "DiskSlow"], 0),
        state(2, "g", Status::Resolved, &["DiskFull"], 1),
        state(3, "g", Status::Firing, &["DiskFull"], 2),
        state(4, "g", Status::Resolved, &["DiskFull"], 3),
    ];
    let lines = supersede(pending, &TimeZone::UTC, MESSAGE_BUDGET);
    let [line] = lines.as_slice() else {
        panic!("{lines:?}")
    };
    let robot = robot(&["HertzBeat"], &[]);
    let message = line.message(&TimeZone::UTC, &robot, MESSAGE_BUDGET);
    assert!(message.title.starts_with("[RESOLVED]"), "{}", message.title);
    assert!(
        message.text.starts_with(&line.latest.message.text.clone()),
        "{}",
        message.text
    );
    assert!(
        message
            .text
            .ends_with("While waiting to be sent, this group fired 2× and resolved 2× since 08:00; this is its latest state. Also in the earlier messages: DiskSlow."),
        "{}",
        message.text
    );
    assert!(message.text.contains("HertzBeat"));

    let in_digest = line.for_digest(&TimeZone::UTC);
    assert_eq!(in_digest.summary.alerts, ["DiskFull", "DiskSlow"]);
    assert!(
        in_digest
            .summary
            .title
            .ends_with("(fired 2× and resolved 2× since 08:00)"),
        "{}",
        in_digest.summary.title
    );
}

#[test]
fn the_note_fits_the_budget_and_a_note_too_long_for_it_merges_nothing() {
    let robot = robot(&["HertzBeat"], &[]);
    let mut pending = flaps("g", 3, 1);
    pending[2].message.text = format!("### big\n\n{}\n\nHertzBeat", "line\n".repeat(2000));
    let budget = 3000;
    let lines = supersede(pending, &TimeZone::UTC, budget);
    let message = lines[0].message(&TimeZone::UTC, &robot, budget);
    assert!(message.size() <= budget, "{}", message.size());
    assert!(message.text.contains("HertzBeat"));
    assert!(message.text.ends_with("this is its latest state."));

    // Older messages naming many alerts the newest does not: listing them would crowd out
    // the message, so each goes as it is.
    let many: Vec<String> = (0..300).map(|i| format!("Alert{i:03}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let pending = vec![
        state(1, "g", Status::Firing, &many, 0),
        state(2, "g", Status::Resolved, &["Alert000"], 1),
    ];
    let lines = supersede(pending, &TimeZone::UTC, budget);
    let shape: Vec<Vec<u64>> = lines.iter().map(ids).collect();
    assert_eq!(shape, [vec![1], vec![2]]);
}

#[tokio::test(start_paused = true)]
async fn a_group_that_flaps_while_the_robot_is_paused_arrives_as_its_latest_state() {
    let dingtalk = Scripted::accepting();
    // The first send is answered "too fast": the robot pauses for a minute.
    dingtalk.then([too_fast()]);
    let harness = Harness::new(&config("", "", ""), dingtalk.clone());
    let queue = &harness.delivery.queue;
    // Accepted over the last minutes, so that none is older than delivery.max_age.
    let now = Timestamp::now();
    let mut states: Vec<Envelope> = flaps("g", 6, 0)
        .into_iter()
        .enumerate()
        .map(|(i, mut state)| {
            state.id = queue.next_id();
            state.accepted_at = now - jiff::SignedDuration::from_mins(6 - i as i64);
            state
        })
        .collect();
    let fired = states.remove(0);
    queue.push(vec![fired], usize::MAX).await.unwrap();
    harness.delivery.wake("ops");
    harness
        .until("the pause", Duration::from_secs(5), |h| {
            let gate = h.delivery.gate("ops");
            gate.view(tokio::time::Instant::now())
                .paused_until
                .is_some()
        })
        .await;
    // Resolved, fired, resolved, fired, resolved, while the robot waits.
    let rest = states;
    queue.push(rest, usize::MAX).await.unwrap();
    harness.drained("ops", Duration::from_secs(600)).await;

    let accepted = dingtalk.accepted();
    assert!(
        accepted.len() <= 2,
        "{:#?}",
        accepted.iter().map(|s| s.title()).collect::<Vec<_>>()
    );
    let last = accepted.last().unwrap();
    assert!(last.title().starts_with("[RESOLVED]"), "{}", last.title());
    assert!(
        last.text().contains("fired 3× and resolved 3× since"),
        "{}",
        last.text()
    );
    let superseded = harness
        .delivery
        .metrics
        .messages_superseded
        .get_or_create(&RobotLabels {
            robot: "ops".to_owned(),
        })
        .get();
    assert_eq!(superseded, 5);
    assert!(
        queue.dead_letters().await.unwrap().is_empty(),
        "settled, not dead"
    );
}
