//! Duplicate suppression's memory of recent notifications: within the window, across
//! it, after a forget, and bounded in a storm.

use std::time::{Duration, Instant};

use alertmanager_dingtalk::accept::dedup::{CAPACITY, RecentNotifications};

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
