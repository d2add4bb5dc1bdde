//! `gate::Gate`: the one critical section that checks and records a send, the pause after
//! a rate-limit answer, pacing, and the size budget. Time is paused.

use std::time::Duration;

use alertmanager_dingtalk::dingtalk::RateLimit;
use alertmanager_dingtalk::dingtalk::{MESSAGE_BUDGET, MIN_BUDGET};
use alertmanager_dingtalk::limit::{FIRST_PAUSE, Gate, MAX_PAUSE, paced_slots};
use jiff::Timestamp;
use tokio::time::Instant;

use crate::robot;

const fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn limit(count: u32, window: u64) -> RateLimit {
    RateLimit {
        count,
        window: secs(window),
    }
}

#[tokio::test(start_paused = true)]
async fn reserve_records_until_the_window_is_full_then_says_when() {
    let gate = Gate::default();
    let limit = limit(4, 60);
    let start = Instant::now();
    // Three go at once; the fourth is the last slot, paced.
    for _ in 0..3 {
        assert_eq!(gate.reserve(limit, start), Ok(()));
    }
    assert_eq!(gate.room(limit, start), 1);
    assert_eq!(
        gate.reserve(limit, start),
        Err(start + secs(15)),
        "paced: window / count"
    );
    assert_eq!(gate.reserve(limit, start + secs(15)), Ok(()));
    // Full: the next slot opens when the first send leaves the window (plus the margin).
    let reopens = start + secs(60) + secs(1);
    assert_eq!(gate.reserve(limit, start + secs(20)), Err(reopens));
    assert_eq!(gate.next_slot(limit, start + secs(20)), reopens);
    assert_eq!(gate.reserve(limit, reopens), Ok(()));
}

#[tokio::test(start_paused = true)]
async fn next_slot_records_nothing() {
    let gate = Gate::default();
    let limit = limit(1, 60);
    let now = Instant::now();
    for _ in 0..5 {
        assert_eq!(gate.next_slot(limit, now), now);
    }
    assert_eq!(gate.reserve(limit, now), Ok(()));
    assert!(gate.reserve(limit, now).is_err());
}

#[test]
fn a_quarter_of_the_window_is_paced() {
    assert_eq!(paced_slots(limit(20, 60)), 5);
    assert_eq!(paced_slots(limit(3, 60)), 1);
    assert_eq!(paced_slots(limit(1, 60)), 1);
}

#[tokio::test(start_paused = true)]
async fn pauses_double_up_to_ten_minutes_and_start_over_after_a_success() {
    let gate = Gate::default();
    let now = Instant::now();
    let pauses: Vec<Duration> = (0..6).map(|_| gate.pause(now)).collect();
    assert_eq!(pauses, [60, 120, 240, 480, 600, 600].map(secs));
    assert_eq!(FIRST_PAUSE, secs(60));
    assert_eq!(MAX_PAUSE, secs(600));
    // The last pause holds the gate.
    assert_eq!(gate.next_slot(limit(20, 60), now), now + secs(600));
    assert_eq!(gate.view(now).paused_until, Some(now + secs(600)));

    gate.succeeded(Timestamp::now());
    assert_eq!(gate.view(now).paused_until, None);
    assert_eq!(gate.next_slot(limit(20, 60), now), now);
    assert_eq!(gate.pause(now), secs(60));
}

#[tokio::test(start_paused = true)]
async fn a_pause_that_ended_is_not_shown() {
    let gate = Gate::default();
    let now = Instant::now();
    gate.pause(now);
    assert_eq!(gate.view(now + secs(61)).paused_until, None);
    assert_eq!(
        gate.next_slot(limit(20, 60), now + secs(61)),
        now + secs(61)
    );
}

#[test]
fn each_too_long_answer_lowers_the_budget_below_what_was_refused() {
    let gate = Gate::default();
    assert_eq!(gate.size_budget(&robot(&[], &[])), MESSAGE_BUDGET);
    assert_eq!(gate.shrink(18_000), 13_500);
    // A refusal larger than the budget still lowers it.
    assert_eq!(gate.shrink(19_000), 10_125);
    assert_eq!(gate.shrink(4_000), 3_000);
    assert_eq!(gate.size_budget(&robot(&[], &[])), 3_000);
    // Never below the floor: a refused short message is given up on instead.
    assert_eq!(gate.shrink(500), MIN_BUDGET);
    assert_eq!(gate.shrink(MIN_BUDGET), MIN_BUDGET);
}

/// The API reads the gate while a send holds the robot's lane.
#[tokio::test(start_paused = true)]
async fn the_view_is_read_while_the_lane_is_held() {
    let gate = Gate::default();
    let limit = limit(20, 60);
    let lane = gate.lane().await;
    assert!(lane.reserve(limit, None).await.is_ok());
    let view = gate.view(Instant::now());
    assert_eq!(view.in_window, 1);
    assert!(
        tokio::time::timeout(Duration::from_millis(1), gate.lane())
            .await
            .is_err(),
        "the lane is held"
    );
    let asked = Instant::now();
    assert!(gate.lane_until(asked + secs(5)).await.is_none());
    assert_eq!(Instant::now(), asked + secs(5), "waited until the deadline");
    drop(lane);
    assert!(
        gate.lane_until(Instant::now()).await.is_some(),
        "a free lane is taken at once"
    );
}

#[tokio::test(start_paused = true)]
async fn a_lane_reserve_past_its_deadline_says_when_and_records_nothing() {
    let gate = Gate::default();
    let limit = limit(1, 60);
    let start = Instant::now();
    let lane = gate.lane().await;
    assert!(lane.reserve(limit, Some(start)).await.is_ok());
    let reopens = start + secs(61);
    let refused = lane.reserve(limit, Some(start + secs(10))).await;
    assert_eq!(refused.err(), Some(reopens));
    assert_eq!(gate.view(Instant::now()).in_window, 1);
    // Without a deadline it waits for the slot.
    assert!(lane.reserve(limit, None).await.is_ok());
    assert_eq!(Instant::now(), reopens);
}

/// The check and the record are one critical section: threads reserving at the same
/// instant together take exactly the slots the window has before pacing.
#[test]
fn concurrent_reservations_never_take_more_than_the_window() {
    let limit = limit(20, 60);
    for _ in 0..20 {
        let gate = std::sync::Arc::new(Gate::default());
        let now = Instant::now();
        let start = std::sync::Arc::new(std::sync::Barrier::new(8));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (gate, start) = (gate.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    (0..50).filter(|_| gate.reserve(limit, now).is_ok()).count()
                })
            })
            .collect();
        let taken: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
        // 20 a minute, the last quarter paced: 15 at one instant.
        assert_eq!(taken, 15);
    }
}
