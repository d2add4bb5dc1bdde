//! Escalation episodes as stored (issue 23): the fields read back, and which step is due
//! when, with claims that make a step happen once and repeat at most once after a cut-off
//! attempt. Pure: the time is a value.

use std::collections::BTreeMap;
use std::time::Duration;

use alertmanager_dingtalk::escalate::episode::{self, Acked, Done, Due, Episode, LEASE, Stored};
use alertmanager_dingtalk::oncall::{Step, Via};
use jiff::Timestamp;

const START: &str = "2026-12-07T02:00:00Z";

fn at(seconds_after_start: u64) -> Timestamp {
    START.parse::<Timestamp>().unwrap() + Duration::from_secs(seconds_after_start)
}

fn step(after_seconds: u64, via: Via) -> Step {
    Step {
        after: Duration::from_secs(after_seconds),
        notify: "primary".to_owned(),
        via,
        robot: "app".to_owned(),
    }
}

/// A DING after 5 minutes, a call after 15.
fn steps() -> Vec<Step> {
    vec![step(300, Via::DingApp), step(900, Via::DingCall)]
}

fn episode() -> Episode {
    Episode {
        group_key: "{}:{alertname=\"HighCPU\"}".to_owned(),
        strategy: "critical".to_owned(),
        receiver: "dingtalk".to_owned(),
        group_labels: BTreeMap::from([("alertname".to_owned(), "HighCPU".to_owned())]),
        title: "[FIRING:1] HighCPU".to_owned(),
        started: at(0),
    }
}

fn done(seconds: u64) -> Done {
    Done {
        at: at(seconds),
        via: "ding_app".to_owned(),
        member: "张三".to_owned(),
        outcome: "sent".to_owned(),
        open_ding_id: Some("ding-1".to_owned()),
    }
}

/// The episode's fields with these claims `(step, attempt, seconds)` and steps done.
fn fields(claims: &[(usize, u8, u64)], taken: &[(usize, u64)]) -> BTreeMap<String, String> {
    let id = episode::id(&episode().group_key, "critical");
    let mut fields = BTreeMap::new();
    fields.insert(
        episode::episode_field(&id),
        serde_json::to_string(&episode()).unwrap(),
    );
    for (index, attempt, seconds) in claims {
        fields.insert(
            episode::claim_field(&id, *index, *attempt),
            at(*seconds).to_string(),
        );
    }
    for (index, seconds) in taken {
        let json = serde_json::to_string(&done(*seconds)).unwrap();
        fields.insert(episode::done_field(&id, *index), json);
    }
    fields
}

fn stored(claims: &[(usize, u8, u64)], taken: &[(usize, u64)]) -> Stored {
    let mut all = episode::read(&fields(claims, taken));
    assert_eq!(all.len(), 1);
    all.remove(0)
}

#[test]
fn each_step_is_due_after_its_time_and_claimed_once() {
    // Claims (step, attempt, at), steps taken (step, at), now, and what is due.
    type Case<'a> = (&'a [(usize, u8, u64)], &'a [(usize, u64)], u64, Due);
    let cases: &[Case] = &[
        // Nothing before the first step's time.
        (&[], &[], 299, Due::Wait { at: at(300) }),
        (
            &[],
            &[],
            300,
            Due::Claim {
                index: 0,
                attempt: 1,
            },
        ),
        // Claimed: the claimant is taking it; nothing to do until its lease ends.
        (
            &[(0, 1, 300)],
            &[],
            301,
            Due::Wait {
                at: at(300) + LEASE,
            },
        ),
        // Cut off in the middle: one more attempt.
        (
            &[(0, 1, 300)],
            &[],
            300 + LEASE.as_secs(),
            Due::Claim {
                index: 0,
                attempt: 2,
            },
        ),
        // Taken: the next step waits for its own time.
        (&[(0, 1, 300)], &[(0, 301)], 400, Due::Wait { at: at(900) }),
        (
            &[(0, 1, 300)],
            &[(0, 301)],
            900,
            Due::Claim {
                index: 1,
                attempt: 1,
            },
        ),
        // Both attempts cut off: given up on, and the next step goes on.
        (
            &[(0, 1, 300), (0, 2, 420)],
            &[],
            500,
            Due::Wait {
                at: at(420) + LEASE,
            },
        ),
        (
            &[(0, 1, 300), (0, 2, 420)],
            &[],
            900,
            Due::Claim {
                index: 1,
                attempt: 1,
            },
        ),
        // Every step taken.
        (&[], &[(0, 301), (1, 901)], 5000, Due::Finished),
    ];
    for (claims, taken, now, expected) in cases {
        let due = stored(claims, taken).due(&steps(), at(*now));
        assert_eq!(
            due, *expected,
            "claims {claims:?}, taken {taken:?}, at +{now}s"
        );
    }
}

#[test]
fn the_fields_read_back_into_the_episode() {
    let id = episode::id(&episode().group_key, "critical");
    let mut all = fields(&[(0, 1, 300), (0, 2, 420)], &[(0, 430)]);
    let acked = Acked {
        by: "Alice".to_owned(),
        at: at(500),
    };
    all.insert(
        episode::ack_field(&id),
        serde_json::to_string(&acked).unwrap(),
    );
    // Another episode's leftovers, without the episode itself: ignored.
    all.insert(
        "ffff/done/0".to_owned(),
        serde_json::to_string(&done(1)).unwrap(),
    );

    let read = episode::read(&all);
    assert_eq!(read.len(), 1);
    let stored = &read[0];
    assert_eq!(stored.id, id);
    assert_eq!(stored.episode, episode());
    assert_eq!(
        stored.claims,
        BTreeMap::from([((0, 1), at(300)), ((0, 2), at(420))])
    );
    assert_eq!(stored.done, BTreeMap::from([(0, done(430))]));
    assert_eq!(stored.acked, Some(acked));
    // Removing the episode removes all of its fields, and only those.
    let mut of = episode::fields_of(&all, &id);
    of.sort();
    assert_eq!(of.len(), 5);
    assert!(of.iter().all(|field| field.starts_with(&id)));
}

#[test]
fn episodes_of_one_group_under_two_strategies_are_two() {
    let key = episode().group_key;
    assert_ne!(episode::id(&key, "critical"), episode::id(&key, "warning"));
    assert_eq!(episode::id(&key, "critical"), episode::id(&key, "critical"));
    assert!(!episode::id(&key, "a/b").contains('/'));
}
