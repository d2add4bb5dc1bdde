//! Duplicate suppression: what makes two notifications the same, and the memory of recent
//! notifications: within the window, across it, after a forget, and bounded in a storm.

use std::time::{Duration, Instant};

use alertmanager_dingtalk::accept::dedup::{CAPACITY, RecentNotifications, group_of};
use alertmanager_dingtalk::ingest;

const WINDOW: Duration = Duration::from_secs(60);

#[test]
fn an_identity_is_new_once_per_window() {
    let start = Instant::now();
    let at = |seconds: u64| start + Duration::from_secs(seconds);
    let mut recent = RecentNotifications::default();
    assert!(!recent.contains("group-a", WINDOW, at(0)));
    assert!(recent.insert("group-a", WINDOW, at(0)));
    assert!(!recent.insert("group-a", WINDOW, at(1)), "second copy");
    assert!(recent.contains("group-a", WINDOW, at(59)));
    assert!(recent.insert("group-b", WINDOW, at(30)), "another identity");
    assert!(!recent.contains("group-a", WINDOW, at(60)), "window over");
    assert!(recent.contains("group-b", WINDOW, at(60)));
    assert!(recent.insert("group-a", WINDOW, at(61)));
    assert_eq!(recent.len(), 2);
}

#[test]
fn a_forgotten_identity_is_new_again_and_its_old_entry_expires_harmlessly() {
    let start = Instant::now();
    let at = |seconds: u64| start + Duration::from_secs(seconds);
    let mut recent = RecentNotifications::default();
    assert!(recent.insert("group-a", WINDOW, at(0)));
    recent.remove("group-a");
    assert!(!recent.contains("group-a", WINDOW, at(1)));
    assert!(recent.insert("group-a", WINDOW, at(10)));
    // The entry of t=0 expires at 60 s; the one of t=10 must outlive it.
    assert!(recent.contains("group-a", WINDOW, at(65)));
    assert!(!recent.contains("group-a", WINDOW, at(70)));
}

#[test]
fn a_storm_is_remembered_up_to_the_capacity_oldest_forgotten_first() {
    let now = Instant::now();
    let mut recent = RecentNotifications::default();
    for i in 0..CAPACITY + 10 {
        assert!(recent.insert(&format!("group-{i}"), WINDOW, now));
    }
    assert_eq!(recent.len(), CAPACITY);
    assert!(!recent.contains("group-9", WINDOW, now), "among the oldest");
    assert!(recent.contains("group-10", WINDOW, now));
    assert!(recent.contains(&format!("group-{}", CAPACITY + 9), WINDOW, now));
}

/// A notification as Alertmanager sends it, with one alert `fp` in `status` since
/// `starts_at`.
fn notification(group: &str, alerts: &[(&str, &str, &str)]) -> ingest::Notification {
    let alerts: Vec<serde_json::Value> = alerts
        .iter()
        .map(|(fingerprint, status, starts_at)| {
            serde_json::json!({
                "status": status,
                "labels": {"alertname": "Flapping"},
                "startsAt": starts_at,
                "fingerprint": fingerprint,
            })
        })
        .collect();
    let status = if alerts.iter().any(|a| a["status"] == "firing") {
        "firing"
    } else {
        "resolved"
    };
    let body = serde_json::json!({"groupKey": group, "status": status, "alerts": alerts});
    ingest::parse(body.to_string().as_bytes()).unwrap()
}

/// Issue 20: an alert that fires again after it resolved is a new notification, though
/// the first firing one looked the same but for `startsAt`; an HA pair's copies are still
/// one notification, in whatever order they list the alerts.
#[test]
fn a_flap_is_no_duplicate_and_an_ha_copy_is() {
    let fired = notification("g", &[("fp1", "firing", "2026-12-06T08:00:00Z")]);
    let resolved = notification("g", &[("fp1", "resolved", "2026-12-06T08:00:00Z")]);
    let fired_again = notification("g", &[("fp1", "firing", "2026-12-06T08:00:40.5Z")]);
    let identities = [&fired, &resolved, &fired_again].map(|n| n.identity());
    assert_ne!(identities[0], identities[1]);
    assert_ne!(identities[1], identities[2]);
    assert_ne!(identities[0], identities[2], "a flap is a change");

    let two = [
        ("fp1", "firing", "2026-12-06T08:00:00Z"),
        ("fp2", "resolved", "2026-12-06T07:00:00Z"),
    ];
    let copy = notification("g", &[two[1], two[0]]);
    assert_eq!(notification("g", &two).identity(), copy.identity());
    let other_group = notification("h", &[("fp1", "firing", "2026-12-06T08:00:00Z")]);
    assert_ne!(other_group.identity(), identities[0]);
}

#[test]
fn a_notification_is_a_duplicate_only_of_its_groups_last_one() {
    let start = Instant::now();
    let at = |seconds: u64| start + Duration::from_secs(seconds);
    // Identities as `dedup::identity` writes them; this groupKey holds a `|` itself.
    let firing = r#"#{}:{alertname=~"A|B"}|firing|fp-a:firing:1"#;
    let resolved = r#"#{}:{alertname=~"A|B"}|resolved|fp-a:resolved:1"#;
    let other_group = "#{}:{alertname=\"C\"}|firing|fp-c:firing:1";
    assert_eq!(group_of(firing), r#"#{}:{alertname=~"A|B"}"#);
    let mut recent = RecentNotifications::default();
    assert!(recent.insert(firing, WINDOW, at(0)));
    assert!(
        !recent.insert(firing, WINDOW, at(1)),
        "a copy of the group's last one"
    );
    assert!(recent.insert(other_group, WINDOW, at(2)));
    assert!(recent.insert(resolved, WINDOW, at(3)));
    assert!(
        recent.insert(firing, WINDOW, at(4)),
        "fires again as before: the group's last one is the resolved one"
    );
    assert!(recent.insert(resolved, WINDOW, at(5)), "and resolves again");
    assert!(
        !recent.insert(resolved, WINDOW, at(6)),
        "whose copy is a duplicate"
    );
    assert!(
        !recent.insert(other_group, WINDOW, at(7)),
        "other groups keep theirs"
    );
    assert_eq!(recent.len(), 2, "one identity per group");
}
