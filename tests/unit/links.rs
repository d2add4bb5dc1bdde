//! `act::Link`: capability links that act on one alert group, signed and expiring.

use alertmanager_dingtalk::act::link::{Action, Link, LinkError, group_id};
use alertmanager_dingtalk::dingtalk::Secret;
use jiff::Timestamp;
use url::Url;

const KEY: &str = "0123456789abcdef0123456789abcdef";

fn at(second: i64) -> Timestamp {
    Timestamp::from_second(second).unwrap()
}

fn link(action: Action) -> Link {
    Link {
        action,
        group: group_id("{}:{alertname=\"DiskFull\"}"),
        matchers: vec![("alertname".to_owned(), "DiskFull".to_owned())],
        expires: 1_800_000_000,
    }
}

#[test]
fn a_link_reads_back_with_its_key_until_it_expires() {
    let key = Secret::new(KEY);
    let silence = link(Action::silence(std::time::Duration::from_secs(3600)));
    let token = silence.token(&key);
    assert_eq!(
        Link::verify(&token, &key, at(1_700_000_000)),
        Ok(silence.clone())
    );
    // Another replica with the same key reads it too.
    assert_eq!(
        Link::verify(&token, &Secret::new(KEY), at(1_799_999_999)),
        Ok(silence.clone())
    );
    assert_eq!(
        Link::verify(&token, &key, at(1_800_000_000)),
        Err(LinkError::Expired)
    );
    let url = silence.url(&Url::parse("https://bridge.example.com/").unwrap(), &key);
    assert_eq!(url, format!("https://bridge.example.com/act/{token}"));
}

#[test]
fn a_changed_or_foreign_link_is_invalid_whatever_it_says() {
    let key = Secret::new(KEY);
    let token = link(Action::Acknowledge).token(&key);
    let now = at(1_700_000_000);
    let other_key = Secret::new("fedcba9876543210fedcba9876543210");
    assert_eq!(
        Link::verify(&token, &other_key, now),
        Err(LinkError::Invalid)
    );
    // Any other payload under the same signature: a longer silence, another group, a later
    // expiry.
    let (_, signature) = token.split_once('.').unwrap();
    for forged in [
        link(Action::silence(std::time::Duration::from_secs(
            86_400 * 365,
        ))),
        Link {
            group: group_id("another group"),
            ..link(Action::Acknowledge)
        },
        Link {
            expires: i64::MAX,
            ..link(Action::Acknowledge)
        },
    ] {
        let (payload, _) = forged
            .token(&key)
            .split_once('.')
            .map(|(p, s)| (p.to_owned(), s.to_owned()))
            .unwrap();
        let tampered = format!("{payload}.{signature}");
        assert_eq!(Link::verify(&tampered, &key, now), Err(LinkError::Invalid));
    }
    // One character changed anywhere.
    for index in [0, token.len() / 2, token.len() - 1] {
        let mut bytes = token.clone().into_bytes();
        bytes[index] = if bytes[index] == b'A' { b'B' } else { b'A' };
        let changed = String::from_utf8(bytes).unwrap();
        assert_eq!(
            Link::verify(&changed, &key, now),
            Err(LinkError::Invalid),
            "{index}"
        );
    }
    for garbage in ["", ".", "abc", "abc.def", "%%%.%%%"] {
        assert_eq!(
            Link::verify(garbage, &key, now),
            Err(LinkError::Invalid),
            "{garbage}"
        );
    }
}

#[test]
fn labels_ids_and_group_ids() {
    assert_eq!(Action::Acknowledge.label(), "Acknowledge");
    let hours = |h: u64| Action::silence(std::time::Duration::from_secs(h * 3600));
    assert_eq!(hours(1).label(), "Silence 1h");
    assert_eq!(hours(4).label(), "Silence 4h");
    assert_eq!(hours(24).label(), "Silence 1d");
    assert_eq!(hours(36).label(), "Silence 1d 12h");
    assert_eq!(Action::Acknowledge.label_zh(), "认领");
    assert_eq!(hours(1).label_zh(), "静默 1小时");
    assert_eq!(hours(24).label_zh(), "静默 1天");
    let id = group_id("{}:{alertname=\"DiskFull\"}");
    assert_eq!(id.len(), 24);
    assert_eq!(id, group_id("{}:{alertname=\"DiskFull\"}"));
    assert_ne!(id, group_id("{}:{alertname=\"DiskSlow\"}"));
    let key = Secret::new(KEY);
    let ack = link(Action::Acknowledge);
    assert_eq!(
        ack.id(),
        link(Action::Acknowledge).id(),
        "the same link, the same id"
    );
    assert_ne!(ack.id(), link(hours(1)).id());
    assert!(!ack.token(&key).contains(&ack.id()));
}
