//! `deliver::backoff`: retry delays double from 1 s up to 60 s, scaled by jitter.

use std::time::Duration;

use alertmanager_dingtalk::deliver::backoff;

fn check(attempt: u32, jitter: f64, expected: Duration) {
    assert_eq!(
        backoff(attempt, jitter),
        expected,
        "attempt {attempt}, jitter {jitter}"
    );
}

const fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[test]
fn doubles_from_one_second() {
    check(1, 1.0, secs(1));
    check(2, 1.0, secs(2));
    check(3, 1.0, secs(4));
    check(4, 1.0, secs(8));
    check(5, 1.0, secs(16));
    check(6, 1.0, secs(32));
}

#[test]
fn is_capped_at_a_minute() {
    check(7, 1.0, secs(60));
    check(8, 1.0, secs(60));
    check(17, 1.0, secs(60));
    check(100, 1.0, secs(60));
    check(u32::MAX, 1.0, secs(60));
}

#[test]
fn jitter_scales_the_delay() {
    check(1, 0.5, Duration::from_millis(500));
    check(3, 0.5, secs(2));
    check(7, 0.5, secs(30));
    check(4, 0.75, secs(6));
}

#[test]
fn jitter_is_kept_between_half_and_one() {
    check(1, 0.0, Duration::from_millis(500));
    check(7, 0.1, secs(30));
    check(7, 2.0, secs(60));
    check(3, -1.0, secs(2));
}

#[test]
fn never_above_a_minute_and_never_shorter_for_a_later_attempt() {
    for jitter in [0.0, 0.5, 0.6, 0.99, 1.0, 1.5] {
        let delays: Vec<Duration> = (1..=70).map(|attempt| backoff(attempt, jitter)).collect();
        assert!(
            delays.iter().all(|d| *d <= secs(60)),
            "{jitter}: {delays:?}"
        );
        assert!(delays.iter().all(|d| *d >= Duration::from_millis(500)));
        assert!(
            delays.windows(2).all(|w| w[0] <= w[1]),
            "{jitter}: {delays:?}"
        );
    }
}
