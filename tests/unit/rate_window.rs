//! `RateLimit::from_str` and `RateWindow`: at most `count` sends in any rolling window.

use std::time::Duration;

use alertmanager_dingtalk::dingtalk::RateLimit;
use alertmanager_dingtalk::limit::RateWindow;
use tokio::time::Instant;

fn check(text: &str, expected: Result<(u32, Duration), &str>) {
    let actual = text
        .parse::<RateLimit>()
        .map(|limit| (limit.count, limit.window));
    match (actual, expected) {
        (Ok(actual), Ok(expected)) => assert_eq!(actual, expected, "{text:?}"),
        (Err(message), Err(mentions)) => {
            assert!(message.contains(mentions), "{text:?}: {message:?}")
        }
        (actual, expected) => panic!("{text:?}: got {actual:?}, expected {expected:?}"),
    }
}

const fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[test]
fn rate_limits_parse() {
    check("20/min", Ok((20, secs(60))));
    check("20/m", Ok((20, secs(60))));
    check("1/s", Ok((1, secs(1))));
    check("1/sec", Ok((1, secs(1))));
    check("100/h", Ok((100, secs(3600))));
    check("5/90s", Ok((5, secs(90))));
    check("5/1m30s", Ok((5, secs(90))));
    check(" 20 / min ", Ok((20, secs(60))));
    assert_eq!("20/min".parse::<RateLimit>(), Ok(RateLimit::DINGTALK));
    assert_eq!(RateLimit::default(), RateLimit::DINGTALK);
}

#[test]
fn bad_rate_limits_are_refused() {
    check("0/min", Err("allows no messages"));
    check("abc", Err("should look like 20/min"));
    check("20", Err("should look like 20/min"));
    check("/min", Err("should look like 20/min"));
    check("-1/min", Err("should look like 20/min"));
    check("20/0s", Err("should look like 20/min"));
    check("20/fortnight", Err("should look like 20/min"));
    check("20/-5s", Err("should look like 20/min"));
}

fn limit(count: u32, window: u64) -> RateLimit {
    RateLimit {
        count,
        window: secs(window),
    }
}

/// How long a send blocks its slot: the window plus a margin of 1/20 of it, at most 1 s,
/// because DingTalk measures the window when requests arrive, not when they leave.
fn span(limit: RateLimit) -> Duration {
    limit.window + (limit.window / 20).min(secs(1))
}

#[test]
fn the_margin_is_a_twentieth_of_the_window_up_to_a_second() {
    for (limit, expected) in [
        (RateLimit::DINGTALK, secs(61)),
        (limit(5, 90), secs(91)),
        (limit(3, 10), Duration::from_millis(10_500)),
        (limit(1, 1), Duration::from_millis(1_050)),
    ] {
        let t0 = Instant::now();
        let mut window = RateWindow::new(limit);
        for _ in 0..limit.count {
            window.record(t0);
        }
        assert_eq!(window.next_slot(t0), t0 + expected, "{limit}");
        assert_eq!(span(limit), expected);
    }
}

#[test]
fn a_full_window_opens_when_its_oldest_send_leaves() {
    let t0 = Instant::now();
    let mut window = RateWindow::new(RateLimit::DINGTALK);
    for _ in 0..20 {
        assert_eq!(window.next_slot(t0), t0, "room for 20");
        window.record(t0);
    }
    assert_eq!(window.in_window(t0), 20);
    // Not before the window (60 s) and its margin (1 s) have passed.
    assert_eq!(window.next_slot(t0), t0 + secs(61));
    assert_eq!(window.next_slot(t0 + secs(59)), t0 + secs(61));
    assert_eq!(window.next_slot(t0 + secs(60)), t0 + secs(61));
    assert_eq!(window.in_window(t0 + secs(60)), 20);
    assert_eq!(window.next_slot(t0 + secs(61)), t0 + secs(61));
    assert_eq!(window.in_window(t0 + secs(61)), 0);
}

#[test]
fn sends_spread_out_free_slots_one_by_one() {
    let t0 = Instant::now();
    let mut window = RateWindow::new(RateLimit::DINGTALK);
    // One send every 2 s for 40 s.
    for i in 0..20 {
        let now = t0 + secs(2 * i);
        assert_eq!(window.next_slot(now), now);
        window.record(now);
    }
    assert_eq!(window.next_slot(t0 + secs(40)), t0 + secs(61));
    window.record(t0 + secs(61));
    // The send at 2 s is now the oldest.
    assert_eq!(window.next_slot(t0 + secs(61)), t0 + secs(63));
    assert_eq!(window.in_window(t0 + secs(62)), 20);
    assert_eq!(window.in_window(t0 + secs(63)), 19);
}

#[test]
fn a_new_limit_applies_to_the_history() {
    let t0 = Instant::now();
    let mut window = RateWindow::new(RateLimit::DINGTALK);
    for i in 0..10 {
        window.record(t0 + secs(i));
    }
    assert_eq!(window.next_slot(t0 + secs(10)), t0 + secs(10));
    window.set_limit(limit(5, 60));
    // The fifth most recent send was at 5 s.
    assert_eq!(window.next_slot(t0 + secs(10)), t0 + secs(5 + 61));
    window.set_limit(limit(30, 60));
    assert_eq!(window.next_slot(t0 + secs(10)), t0 + secs(10));
}

/// The most sends in any half-open interval `[start, start + length)`. The busiest such
/// interval can always be moved to start at a send, so those are the ones checked.
fn busiest(sends: &[Instant], length: Duration) -> usize {
    sends
        .iter()
        .map(|start| {
            sends
                .iter()
                .filter(|t| *t >= start && **t < *start + length)
                .count()
        })
        .max()
        .unwrap_or(0)
}

/// Sends `demand` (times at which a message is ready, in order) through a window of
/// `limit`, each at its slot, and returns when each was sent.
fn simulate(limit: RateLimit, demand: &[Instant]) -> Vec<Instant> {
    let mut window = RateWindow::new(limit);
    let mut sent: Vec<Instant> = Vec::new();
    for &ready in demand {
        // Messages go in order: none before the previous one.
        let now = sent.last().map_or(ready, |last| ready.max(*last));
        let slot = window.next_slot(now);
        assert!(slot >= now);
        assert_eq!(
            window.next_slot(slot),
            slot,
            "the slot is free when it comes"
        );
        window.record(slot);
        sent.push(slot);
    }
    sent
}

#[test]
fn no_rolling_window_ever_holds_more_than_the_limit() {
    let t0 = Instant::now();
    for limit in [RateLimit::DINGTALK, limit(1, 1), limit(5, 90), limit(3, 10)] {
        // Everything at once.
        let burst = vec![t0; 200];
        // Every 2 s.
        let steady: Vec<Instant> = (0..200).map(|i| t0 + secs(2 * i)).collect();
        // Irregular: quiet spells and bursts.
        let mut rng = fastrand::Rng::with_seed(20);
        let mut at = t0;
        let irregular: Vec<Instant> = (0..200)
            .map(|_| {
                at += Duration::from_millis(rng.u64(0..5_000)) * u32::from(rng.u8(0..4) == 0);
                at
            })
            .collect();
        for demand in [burst, steady, irregular] {
            let sent = simulate(limit, &demand);
            assert_eq!(sent.len(), 200);
            // Not even a window stretched by the margin holds more than the limit.
            for length in [limit.window, span(limit)] {
                let busiest = busiest(&sent, length);
                assert!(
                    busiest <= limit.count as usize,
                    "{limit}: {busiest} sends within {length:?}"
                );
            }
        }
    }
}

#[test]
fn a_backlog_is_sent_as_fast_as_the_limit_allows() {
    let t0 = Instant::now();
    let sent = simulate(RateLimit::DINGTALK, &[t0; 200]);
    // 20 at once, then the next 20 a window and its margin later, and so on.
    for (i, at) in sent.iter().enumerate() {
        assert_eq!(*at, t0 + secs(61 * (i as u64 / 20)), "send {i}");
    }
    let steady: Vec<Instant> = (0..200).map(|i| t0 + secs(2 * i)).collect();
    // One send every 2 s is 30 a minute: the first 20 go on demand, then the window
    // holds them back to one every 61 s / 20.
    let sent = simulate(RateLimit::DINGTALK, &steady);
    assert_eq!(&sent[..20], &steady[..20]);
    assert_eq!(sent[20], t0 + secs(61));
    assert_eq!(sent[40], t0 + secs(122));
}
