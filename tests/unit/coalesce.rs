//! `deliver::digest::digests`: a robot's pending messages merged into size-bounded digests.

use std::collections::HashSet;

use alertmanager_dingtalk::deliver::digest::{Digest, digests};
use alertmanager_dingtalk::dingtalk::{MAX_TEXT_BYTES, MESSAGE_BUDGET, Mention, Message};
use alertmanager_dingtalk::ingest::Status;
use alertmanager_dingtalk::queue::{Envelope, GroupSummary};
use jiff::Timestamp;
use proptest::prelude::*;
use proptest::test_runner::RngAlgorithm;

const KEYWORD: &str = "HertzBeat";
const EXTERNAL_URL: &str = "http://alertmanager.example.com:9093";
/// The on-call people a message may mention.
const MOBILES: [&str; 5] = [
    "13800000000",
    "13900000001",
    "13700000002",
    "13600000003",
    "13500000004",
];

fn envelope(id: u64, status: Status, title: &str, alerts: &[&str], mobiles: &[&str]) -> Envelope {
    // What the renderer sends for the group alone: a message that digests pass through
    // unchanged when it is the only one pending.
    let lines: Vec<String> = alerts.iter().map(|a| format!("- {a}")).collect();
    let lines = lines.join("\n");
    let mention = Mention {
        mobiles: mobiles.iter().map(|m| (*m).to_owned()).collect(),
        ..Mention::default()
    };
    Envelope {
        id,
        robot: "ops".to_owned(),
        strategy: "default".to_owned(),
        message: Message {
            title: format!("{title} · {KEYWORD}"),
            text: format!("### {title}\n\n{lines}\n\n{KEYWORD}"),
            mention,
            buttons: Vec::new(),
            msgtype: None,
        },
        summary: GroupSummary {
            status,
            title: title.to_owned(),
            alerts: alerts.iter().map(|a| (*a).to_owned()).collect(),
            external_url: EXTERNAL_URL.to_owned(),
            group_key: String::new(),
        },
        accepted_at: Timestamp::UNIX_EPOCH,
    }
}

/// The one digest of `pending`.
fn single(pending: &[Envelope]) -> Digest {
    let mut all = digests(pending, KEYWORD, MESSAGE_BUDGET);
    assert_eq!(all.len(), 1, "{all:#?}");
    all.remove(0)
}

#[test]
fn nothing_pending_no_digest() {
    assert!(digests::<Envelope>(&[], KEYWORD, MESSAGE_BUDGET).is_empty());
}

#[test]
fn one_message_is_sent_unchanged() {
    let only = envelope(7, Status::Firing, "[FIRING:1] HighCPU", &["HighCPU"], &[]);
    let digest = single(std::slice::from_ref(&only));
    assert_eq!(digest.ids, [7]);
    assert_eq!(digest.message, only.message);
}

#[test]
fn firing_listed_before_resolved_oldest_first() {
    let pending = [
        envelope(
            1,
            Status::Resolved,
            "[RESOLVED] DiskFull",
            &["DiskFull"],
            &["13800000000"],
        ),
        envelope(
            2,
            Status::Firing,
            "[FIRING:1] HighCPU",
            &["HighCPU"],
            &["13900000001"],
        ),
        envelope(
            3,
            Status::Firing,
            "[FIRING:1] HighMemory",
            &["HighMemory"],
            &["13800000000"],
        ),
    ];
    let digest = single(&pending);
    assert_eq!(digest.ids, [2, 3, 1]);
    let message = &digest.message;
    assert_eq!(
        message.title,
        "[DIGEST] 3 alert groups: 2 firing, 1 resolved · HertzBeat"
    );
    let text = &message.text;
    assert!(text.starts_with("### [DIGEST] 3 alert groups: 2 firing, 1 resolved\n\n"));
    let at = |needle: &str| {
        text.find(needle)
            .unwrap_or_else(|| panic!("{needle}: {text}"))
    };
    assert!(at("**[FIRING:1] HighCPU**") < at("**[FIRING:1] HighMemory**"));
    assert!(at("**[FIRING:1] HighMemory**") < at("**[RESOLVED] DiskFull**"));
    assert!(text.contains(&format!("[Alertmanager]({EXTERNAL_URL}) · {KEYWORD}")));
    assert_eq!(message.mention.mobiles, ["13900000001", "13800000000"]);
    assert!(text.ends_with("\n\n@13900000001 @13800000000"), "{text}");
}

#[test]
fn keyword_in_text_though_no_title_has_it() {
    let pending = [
        envelope(1, Status::Firing, "A", &["A"], &[]),
        envelope(2, Status::Firing, "B", &["B"], &[]),
    ];
    let digest = digests(&pending, "告警机器人", MESSAGE_BUDGET);
    assert_eq!(digest.len(), 1);
    assert!(digest[0].message.title.ends_with(" · 告警机器人"));
    assert!(digest[0].message.text.contains("告警机器人"));
}

#[test]
fn identical_names_collapsed_in_first_seen_order() {
    let pending = [
        envelope(
            1,
            Status::Firing,
            "[FIRING:4] Disk",
            &["DiskFull", "DiskSlow", "DiskFull", "DiskFull"],
            &[],
        ),
        envelope(2, Status::Firing, "[FIRING:1] HighCPU", &["HighCPU"], &[]),
    ];
    let text = single(&pending).message.text;
    assert!(
        text.contains("**[FIRING:4] Disk**\n\n- DiskFull ×3\n- DiskSlow\n\n"),
        "{text}"
    );
}

#[test]
fn chinese_alert_name_intact() {
    let pending = [
        envelope(1, Status::Firing, "[FIRING:1] 磁盘", &["磁盘告警"], &[]),
        envelope(
            2,
            Status::Resolved,
            "[RESOLVED] 内存",
            &["内存使用率过高"],
            &[],
        ),
    ];
    let text = single(&pending).message.text;
    assert!(text.contains("- 磁盘告警\n"), "{text}");
    assert!(text.contains("- 内存使用率过高\n"), "{text}");
}

#[test]
fn no_url_no_link() {
    let mut pending = [
        envelope(1, Status::Firing, "A", &["A"], &[]),
        envelope(2, Status::Firing, "B", &["B"], &[]),
    ];
    for e in &mut pending {
        e.summary.external_url.clear();
    }
    let text = single(&pending).message.text;
    assert!(!text.contains("[Alertmanager]"), "{text}");
    assert!(text.ends_with(&format!("\n\n{KEYWORD}")), "{text}");
}

// Properties.

/// How many distinct alert names a case draws its messages' names from.
const NAME_POOL: usize = 60;

/// An alert name: 1..=40 chars of ASCII letters, digits and Chinese.
fn name() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9磁盘告警内存使用率过高网络延迟]{1,40}"
}

/// 1..=`most` pending messages with increasing ids, oldest first, each with 1..=30 alert
/// names from one shared pool (so duplicates within and across messages are common),
/// firing or resolved, mentioning 0..=3 of the on-call mobiles.
///
/// Names are drawn once per case and messages pick them by index: generating 150 × 30
/// strings per case would make the test slow for no more coverage.
fn pending(most: usize) -> impl Strategy<Value = Vec<Envelope>> {
    let message = (
        1..=256u64,
        prop::collection::vec(0..NAME_POOL, 1..=30),
        any::<bool>(),
        prop::sample::subsequence(MOBILES.to_vec(), 0..=3),
    );
    (
        prop::collection::vec(name(), NAME_POOL),
        prop::collection::vec(message, 1..=most),
    )
        .prop_map(|(pool, messages)| {
            let mut id = 0;
            messages
                .into_iter()
                .map(|(gap, picks, firing, mobiles)| {
                    id += gap;
                    let status = if firing {
                        Status::Firing
                    } else {
                        Status::Resolved
                    };
                    let names: Vec<&str> = picks.iter().map(|&i| pool[i].as_str()).collect();
                    let title = format!("[{}:{}] {}", status.as_str(), names.len(), names[0]);
                    envelope(id, status, &title, &names, &mobiles)
                })
                .collect()
        })
}

/// The most bytes a group's entry may take: its title, and per alert name the name plus
/// `- `, ` ×NN`, the line break, all generously rounded up. An over-estimate, which only
/// loosens the bound on the number of digests.
fn entry_bound(envelope: &Envelope) -> usize {
    let summary = &envelope.summary;
    summary.title.len() + 16 + summary.alerts.iter().map(|a| a.len() + 12).sum::<usize>()
}

/// The most bytes a digest's text has besides its entries: heading (counts of at most 3
/// digits), footer (link and keyword), the `@` text of all five mobiles, and blank lines;
/// about 250 in fact, rounded up.
const FRAME_BOUND: usize = 1000;

/// The names a text lists, as `- Name` or `- Name ×3` lines.
fn listed_names(text: &str) -> HashSet<&str> {
    text.lines()
        .filter_map(|line| line.strip_prefix("- "))
        .map(|name| name.rsplit_once(" ×").map_or(name, |(name, _)| name))
        .collect()
}

/// `cases` cases with a cheaper random generator than the default ChaCha, which dominates
/// the run time in debug builds.
fn fast_rng(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        rng_algorithm: RngAlgorithm::XorShift,
        ..ProptestConfig::default()
    }
}

fn envelope_of(pending: &[Envelope], id: u64) -> &Envelope {
    pending.iter().find(|e| e.id == id).unwrap()
}

proptest! {
    #![proptest_config(fast_rng(256))]

    #[test]
    fn digests_hold_every_message_within_limits(pending in pending(150)) {
        let all = digests(&pending, KEYWORD, MESSAGE_BUDGET);

        // (a) Every id in exactly one digest.
        let mut ids: Vec<u64> = all.iter().flat_map(|d| d.ids.iter().copied()).collect();
        ids.sort_unstable();
        let mut expected: Vec<u64> = pending.iter().map(|e| e.id).collect();
        expected.sort_unstable();
        prop_assert_eq!(ids, expected);

        for digest in &all {
            let message = &digest.message;
            // (b) Every alert name listed in its digest: no group is near the limit, so none
            // is cut.
            let listed = listed_names(&message.text);
            for id in &digest.ids {
                for name in &envelope_of(&pending, *id).summary.alerts {
                    prop_assert!(listed.contains(name.as_str()), "{} missing", name);
                }
            }
            // (c) Within DingTalk's limits.
            prop_assert!(message.text.len() <= MAX_TEXT_BYTES);
            prop_assert!(message.title.len() <= 256);
            // (d) The keyword in title and text.
            prop_assert!(message.title.contains(KEYWORD));
            prop_assert!(message.text.contains(KEYWORD));
            // (f) Firing groups before resolved ones, each oldest first.
            let statuses: Vec<Status> = digest
                .ids
                .iter()
                .map(|id| envelope_of(&pending, *id).summary.status)
                .collect();
            let first_resolved = statuses
                .iter()
                .position(|s| *s == Status::Resolved)
                .unwrap_or(statuses.len());
            prop_assert!(statuses[first_resolved..].iter().all(|s| *s == Status::Resolved));
            prop_assert!(digest.ids[..first_resolved].is_sorted());
            prop_assert!(digest.ids[first_resolved..].is_sorted());
        }

        // (e) Packing is not wasteful. A digest is closed only when the next entry does not
        // fit, so every digest but the last holds entries of more than
        // MAX - FRAME_BOUND - (largest entry) bytes; k digests then need
        // sum > (k - 1) * (MAX - FRAME_BOUND - largest).
        if pending.len() > 1 {
            let sum: usize = pending.iter().map(entry_bound).sum();
            let largest = pending.iter().map(entry_bound).max().unwrap_or(0);
            let bound = 1 + sum / (MAX_TEXT_BYTES - FRAME_BOUND - largest);
            prop_assert!(all.len() <= bound, "{} digests, at most {}", all.len(), bound);
        }
    }
}

/// 3000 distinct long names: far more than one message holds.
fn huge_names() -> Vec<String> {
    (0..3000)
        .map(|i| format!("磁盘告警DiskPressureOnNode{i:04}网络延迟"))
        .collect()
}

/// The count of `…and N more alerts`, if the text has that line.
fn more_alerts(text: &str) -> Option<usize> {
    let (_, rest) = text.split_once("…and ")?;
    rest.split_once(" more alert")?.0.parse().ok()
}

proptest! {
    #![proptest_config(fast_rng(32))]

    // Two or three messages: a single one would be sent unchanged, not digested.
    #[test]
    fn huge_group_is_cut_with_a_count(
        others in pending(2),
        huge_at in 0..=2usize,
        firing in any::<bool>(),
    ) {
        let names = huge_names();
        let status = if firing { Status::Firing } else { Status::Resolved };
        let mut pending = others;
        let huge_id = 1000;
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let huge = envelope(huge_id, status, "[FIRING:3000] DiskPressure", &refs, &[]);
        pending.insert(huge_at.min(pending.len()), huge);

        let all = digests(&pending, KEYWORD, MESSAGE_BUDGET);
        for digest in &all {
            prop_assert!(digest.message.text.len() <= MAX_TEXT_BYTES);
            prop_assert!(digest.message.title.len() <= 256);
        }
        let holder = all.iter().find(|d| d.ids.contains(&huge_id)).unwrap();
        let text = &holder.message.text;
        let listed = listed_names(text);
        let shown = names.iter().filter(|n| listed.contains(n.as_str())).count();
        prop_assert!(shown > 0);
        prop_assert_eq!(more_alerts(text), Some(names.len() - shown));
    }
}
