//! `route::route` and `ActiveTime::contains`: which strategies and robots each alert goes
//! to, and when a strategy's window is open.

use alertmanager_dingtalk::dingtalk::Mention;
use alertmanager_dingtalk::ingest::{self, Alert};
use alertmanager_dingtalk::route::matcher::Matcher;
use alertmanager_dingtalk::route::{ActiveTime, Held, LabelMentions, Strategy, route};
use jiff::Timestamp;
use jiff::civil::{Time, Weekday};
use jiff::tz::TimeZone;

/// Wednesday 2024-05-01 10:00 in Shanghai.
const WEDNESDAY_MORNING: &str = "2024-05-01T02:00:00Z";

fn strategy(name: &str, matchers: &[&str], robots: &[&str]) -> Strategy {
    Strategy {
        name: name.to_owned(),
        matchers: matchers
            .iter()
            .map(|m| Matcher::parse(m).unwrap())
            .collect(),
        robots: robots.iter().map(|r| (*r).to_owned()).collect(),
        send_resolved: true,
        mention: Mention::default(),
        mention_from_labels: LabelMentions::default(),
        mention_oncall: Vec::new(),
        escalate: Vec::new(),
        active_time: None,
        continue_matching: false,
        template: "default".to_owned(),
        msgtype: None,
    }
}

fn continuing(mut strategy: Strategy) -> Strategy {
    strategy.continue_matching = true;
    strategy
}

fn without_resolved(mut strategy: Strategy) -> Strategy {
    strategy.send_resolved = false;
    strategy
}

fn active(mut strategy: Strategy, window: ActiveTime) -> Strategy {
    strategy.active_time = Some(window);
    strategy
}

/// Alerts from `(status, team)` pairs; a team of "" leaves the label out.
fn alerts(specs: &[(&str, &str)]) -> Vec<Alert> {
    let alerts: Vec<serde_json::Value> = specs
        .iter()
        .enumerate()
        .map(|(i, (status, team))| {
            let mut labels = serde_json::json!({ "alertname": format!("Alert{i}") });
            if !team.is_empty() {
                labels["team"] = serde_json::json!(team);
            }
            serde_json::json!({
                "status": status,
                "labels": labels,
                "annotations": {},
                "startsAt": "2024-05-01T00:00:00Z",
                "endsAt": if *status == "resolved" { "2024-05-01T01:00:00Z" } else { "0001-01-01T00:00:00Z" },
            })
        })
        .collect();
    let body = serde_json::json!({ "version": "4", "status": "firing", "alerts": alerts });
    ingest::parse(body.to_string().as_bytes()).unwrap().alerts
}

fn at(utc: &str) -> Timestamp {
    utc.parse().unwrap()
}

/// The expected outcome of routing, by strategy name.
#[derive(Debug, Default, PartialEq)]
struct Expect<'a> {
    /// (strategy, robot) → alert indexes.
    messages: Vec<((&'a str, &'a str), Vec<usize>)>,
    /// (alert, strategy, why).
    held: Vec<(usize, &'a str, Held)>,
    unrouted: Vec<usize>,
}

fn check(strategies: &[Strategy], alerts: &[Alert], now: &str, expected: Expect<'_>) {
    let routes = route(strategies, alerts, at(now));
    let name = |index: usize| strategies[index].name.as_str();
    let actual = Expect {
        messages: routes
            .messages
            .iter()
            .map(|((s, robot), alerts)| ((name(*s), robot.as_str()), alerts.clone()))
            .collect(),
        held: routes
            .held
            .iter()
            .map(|(alert, s, why)| (*alert, name(*s), *why))
            .collect(),
        unrouted: routes.unrouted.clone(),
    };
    assert_eq!(actual, expected);
    assert_eq!(
        routes.matched.len(),
        alerts.len(),
        "one `matched` entry per alert"
    );
}

#[test]
fn first_matching_strategy_wins() {
    check(
        &[
            strategy("db", &[r#"team="db""#], &["dba"]),
            strategy("all", &[], &["ops"]),
        ],
        &alerts(&[("firing", "db"), ("firing", "web")]),
        WEDNESDAY_MORNING,
        Expect {
            messages: vec![(("db", "dba"), vec![0]), (("all", "ops"), vec![1])],
            ..Expect::default()
        },
    );
}

#[test]
fn continue_goes_on_to_later_strategies() {
    check(
        &[
            continuing(strategy("db", &[r#"team="db""#], &["dba"])),
            strategy("all", &[], &["ops"]),
            strategy("never reached", &[], &["audit"]),
        ],
        &alerts(&[("firing", "db"), ("firing", "web")]),
        WEDNESDAY_MORNING,
        Expect {
            messages: vec![(("db", "dba"), vec![0]), (("all", "ops"), vec![0, 1])],
            ..Expect::default()
        },
    );
}

#[test]
fn matched_lists_every_strategy_an_alert_matched() {
    let strategies = [
        continuing(strategy("db", &[r#"team="db""#], &["dba"])),
        continuing(strategy("all", &[], &["ops"])),
        strategy("web", &[r#"team="web""#], &["web"]),
    ];
    let alerts = alerts(&[("firing", "db"), ("firing", "web"), ("firing", "")]);
    let routes = route(&strategies, &alerts, at(WEDNESDAY_MORNING));
    assert_eq!(
        routes.matched,
        vec![vec!["db", "all"], vec!["all", "web"], vec!["all"]]
    );
}

#[test]
fn strategy_without_matchers_matches_everything() {
    check(
        &[strategy("all", &[], &["ops"])],
        &alerts(&[("firing", "db"), ("firing", ""), ("resolved", "web")]),
        WEDNESDAY_MORNING,
        Expect {
            messages: vec![(("all", "ops"), vec![0, 1, 2])],
            ..Expect::default()
        },
    );
}

#[test]
fn every_matcher_of_a_strategy_must_hold() {
    check(
        &[strategy(
            "db-critical",
            &[r#"team="db""#, r#"alertname=~"Alert[02]""#],
            &["dba"],
        )],
        &alerts(&[("firing", "db"), ("firing", "db"), ("firing", "db")]),
        WEDNESDAY_MORNING,
        Expect {
            messages: vec![(("db-critical", "dba"), vec![0, 2])],
            unrouted: vec![1],
            ..Expect::default()
        },
    );
}

#[test]
fn unmatched_alerts_are_listed_as_unrouted() {
    check(
        &[strategy("db", &[r#"team="db""#], &["dba"])],
        &alerts(&[("firing", "web"), ("firing", "db"), ("firing", "")]),
        WEDNESDAY_MORNING,
        Expect {
            messages: vec![(("db", "dba"), vec![1])],
            unrouted: vec![0, 2],
            ..Expect::default()
        },
    );
    check(
        &[],
        &alerts(&[("firing", "web")]),
        WEDNESDAY_MORNING,
        Expect {
            unrouted: vec![0],
            ..Expect::default()
        },
    );
}

#[test]
fn one_message_per_strategy_and_robot() {
    check(
        &[
            continuing(strategy("db", &[r#"team="db""#], &["dba", "ops"])),
            strategy("all", &[], &["ops"]),
        ],
        &alerts(&[("firing", "db"), ("firing", "web"), ("firing", "db")]),
        WEDNESDAY_MORNING,
        Expect {
            messages: vec![
                (("db", "dba"), vec![0, 2]),
                (("db", "ops"), vec![0, 2]),
                (("all", "ops"), vec![0, 1, 2]),
            ],
            ..Expect::default()
        },
    );
}

#[test]
fn resolved_alerts_are_held_without_send_resolved_and_not_passed_on() {
    check(
        &[
            without_resolved(strategy("db", &[r#"team="db""#], &["dba"])),
            strategy("all", &[], &["ops"]),
        ],
        &alerts(&[("firing", "db"), ("resolved", "db"), ("resolved", "web")]),
        WEDNESDAY_MORNING,
        Expect {
            messages: vec![(("db", "dba"), vec![0]), (("all", "ops"), vec![2])],
            held: vec![(1, "db", Held::Resolved)],
            ..Expect::default()
        },
    );
}

#[test]
fn held_alerts_count_as_matched_not_unrouted() {
    let strategies = [without_resolved(strategy("all", &[], &["ops"]))];
    let alerts = alerts(&[("resolved", "db")]);
    let routes = route(&strategies, &alerts, at(WEDNESDAY_MORNING));
    assert!(routes.messages.is_empty());
    assert_eq!(routes.held, vec![(0, 0, Held::Resolved)]);
    assert_eq!(routes.matched, vec![vec!["all"]]);
    assert!(routes.unrouted.is_empty());
}

#[test]
fn a_held_alert_still_continues_when_the_strategy_says_so() {
    check(
        &[
            continuing(without_resolved(strategy(
                "db",
                &[r#"team="db""#],
                &["dba"],
            ))),
            strategy("all", &[], &["ops"]),
        ],
        &alerts(&[("resolved", "db")]),
        WEDNESDAY_MORNING,
        Expect {
            messages: vec![(("all", "ops"), vec![0])],
            held: vec![(0, "db", Held::Resolved)],
            ..Expect::default()
        },
    );
}

#[test]
fn alerts_outside_the_active_time_are_held_and_not_passed_on() {
    let strategies = [
        active(
            strategy("office", &[r#"team="db""#], &["dba"]),
            office_hours(),
        ),
        strategy("all", &[], &["ops"]),
    ];
    let alerts = alerts(&[("firing", "db"), ("firing", "web")]);
    // Wednesday 10:00 in Shanghai: the window is open.
    check(
        &strategies,
        &alerts,
        WEDNESDAY_MORNING,
        Expect {
            messages: vec![(("office", "dba"), vec![0]), (("all", "ops"), vec![1])],
            ..Expect::default()
        },
    );
    // Saturday 10:00 in Shanghai: closed.
    check(
        &strategies,
        &alerts,
        "2024-05-04T02:00:00Z",
        Expect {
            messages: vec![(("all", "ops"), vec![1])],
            held: vec![(0, "office", Held::Inactive)],
            ..Expect::default()
        },
    );
}

#[test]
fn held_reasons_have_labels() {
    assert_eq!(Held::Inactive.as_str(), "inactive");
    assert_eq!(Held::Resolved.as_str(), "resolved");
}

fn shanghai() -> TimeZone {
    TimeZone::get("Asia/Shanghai").unwrap()
}

/// Monday to Friday 09:00–18:00 in Shanghai.
fn office_hours() -> ActiveTime {
    ActiveTime {
        days: vec![
            Weekday::Monday,
            Weekday::Tuesday,
            Weekday::Wednesday,
            Weekday::Thursday,
            Weekday::Friday,
        ],
        start: Time::constant(9, 0, 0, 0),
        end: Time::constant(18, 0, 0, 0),
        timezone: shanghai(),
    }
}

/// Friday 22:00 to Saturday 06:00 in Shanghai.
fn friday_night() -> ActiveTime {
    ActiveTime {
        days: vec![Weekday::Friday],
        start: Time::constant(22, 0, 0, 0),
        end: Time::constant(6, 0, 0, 0),
        timezone: shanghai(),
    }
}

/// Whether `window` contains the Shanghai civil time `local` (e.g. "2024-05-04T03:00").
fn check_local(window: &ActiveTime, local: &str, expected: bool) {
    let instant = local
        .parse::<jiff::civil::DateTime>()
        .unwrap()
        .in_tz("Asia/Shanghai")
        .unwrap()
        .timestamp();
    assert_eq!(window.contains(instant), expected, "{local} Asia/Shanghai");
}

/// Whether `window` contains the UTC instant `utc`.
fn check_utc(window: &ActiveTime, utc: &str, expected: bool) {
    assert_eq!(window.contains(at(utc)), expected, "{utc}");
}

#[test]
fn office_hours_are_read_in_the_window_time_zone() {
    let window = office_hours();
    // Wednesday 10:00 in Shanghai is 02:00 UTC, outside 09:00–18:00 if read as UTC.
    check_utc(&window, "2024-05-01T02:00:00Z", true);
    // Saturday 10:00 in Shanghai.
    check_utc(&window, "2024-05-04T02:00:00Z", false);
    // Wednesday 18:00 in Shanghai: the end is exclusive.
    check_utc(&window, "2024-05-01T10:00:00Z", false);
    // Wednesday 17:59:59 and 09:00:00 in Shanghai: inside.
    check_utc(&window, "2024-05-01T09:59:59Z", true);
    check_utc(&window, "2024-05-01T01:00:00Z", true);
    // Wednesday 08:59:59 in Shanghai.
    check_utc(&window, "2024-05-01T00:59:59Z", false);
    // Wednesday 23:00 UTC is Thursday 07:00 in Shanghai: before opening.
    check_utc(&window, "2024-05-01T23:00:00Z", false);
    // Sunday 20:00 UTC is Monday 04:00 in Shanghai; Monday 01:30 UTC is Monday 09:30.
    check_utc(&window, "2024-05-05T20:00:00Z", false);
    check_utc(&window, "2024-05-06T01:30:00Z", true);
    // Friday 17:30 in Shanghai is inside even though it is Friday 09:30 UTC.
    check_utc(&window, "2024-05-03T09:30:00Z", true);
}

#[test]
fn a_window_across_midnight_belongs_to_the_day_it_opens() {
    let window = friday_night();
    check_local(&window, "2024-05-03T21:00", false); // Fri, before opening
    check_local(&window, "2024-05-03T21:59:59", false);
    check_local(&window, "2024-05-03T22:00", true); // Fri, opening
    check_local(&window, "2024-05-03T23:00", true);
    check_local(&window, "2024-05-04T00:00", true); // Sat, after midnight
    check_local(&window, "2024-05-04T03:00", true);
    check_local(&window, "2024-05-04T05:59:59", true);
    check_local(&window, "2024-05-04T06:00", false); // Sat, end is exclusive
    check_local(&window, "2024-05-04T23:00", false); // Sat evening: Sat is not in `days`
    check_local(&window, "2024-05-06T03:00", false); // Mon 03:00: Sun did not open it
    check_local(&window, "2024-05-02T23:00", false); // Thu evening
    check_local(&window, "2024-05-03T03:00", false); // Fri 03:00: Thu did not open it
}
