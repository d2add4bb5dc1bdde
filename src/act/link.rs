//! Capability links: `{external_url}/act/{payload}.{signature}`, where the payload is the
//! base64url JSON of one action on one alert group (its id, the matchers a silence would
//! have, the silence's length) and the link's expiry, and the signature is the base64url
//! HMAC-SHA256 of the payload under the `actions` key. Whoever holds a link may do what it
//! names until it expires; a link with another signature, or one changed in any byte, is
//! refused. The same key on every replica makes a link minted by one work on all.
//!
//! Pure: no I/O, no clock (`now` is a parameter).

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq;
use url::Url;

use crate::config::ActionsConfig;
use crate::dingtalk::Secret;
use crate::ingest::Notification;

/// The path links live under.
pub const PATH: &str = "/act/";

/// What a link does to its group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "do", rename_all = "lowercase")]
pub enum Action {
    /// Record who took the group on.
    Acknowledge,
    /// Silence the group in Alertmanager for this long.
    Silence {
        /// The silence's length, in seconds.
        seconds: u64,
    },
}

impl Action {
    /// A silence of `length`.
    pub fn silence(length: Duration) -> Action {
        Action::Silence {
            seconds: length.as_secs(),
        }
    }

    /// The label of the action in the built-in English template: `Acknowledge`,
    /// `Silence 1h`, `Silence 1d 12h`.
    pub fn label(self) -> String {
        match self {
            Action::Acknowledge => "Acknowledge".to_owned(),
            Action::Silence { seconds } => format!("Silence {}", short(seconds)),
        }
    }

    /// The label in the built-in Chinese template: `认领`, `静默 1小时`.
    pub fn label_zh(self) -> String {
        match self {
            Action::Acknowledge => "认领".to_owned(),
            Action::Silence { seconds } => format!("静默 {}", short_zh(seconds)),
        }
    }
}

/// One action on one alert group, as a link carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    /// What to do.
    #[serde(flatten)]
    pub action: Action,
    /// The group's id: [`group_id`] of its `groupKey`.
    pub group: String,
    /// The matchers a silence of the group has: label name and value, each matched
    /// exactly.
    pub matchers: Vec<(String, String)>,
    /// When the link stops working, in seconds since the Unix epoch.
    pub expires: i64,
}

/// Why a link was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// Not a link of this bridge: malformed, or its signature is not the key's.
    #[error("this link is not valid: it was changed, or it is not from this bridge")]
    Invalid,
    /// The link's lifetime (`actions.link_ttl`) is over.
    #[error("this link has expired")]
    Expired,
}

/// The id of the alert group with `group_key`: the first 12 bytes of its SHA-256, as hex.
/// The same on every replica, and short enough for a link.
pub fn group_id(group_key: &str) -> String {
    let digest = Sha256::digest(group_key.as_bytes());
    digest[..12].iter().map(|b| format!("{b:02x}")).collect()
}

/// The id of the alert group of `receiver` whose `group_by` labels have `labels`: what a
/// command knows of a group, from Alertmanager's API (which does not name the `groupKey`).
/// Messages look an acknowledgement up under this id too.
pub fn labels_group_id<'a>(
    receiver: &str,
    labels: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> String {
    let mut key = format!("receiver {receiver:?}");
    for (name, value) in labels {
        key.push_str(&format!(" {name}={value:?}"));
    }
    group_id(&key)
}

/// The ids a group is acknowledged under: a link acknowledges it under its `groupKey`
/// ([`group_id`]), a command under its receiver and labels ([`labels_group_id`]), as
/// Alertmanager's API names no `groupKey`.
pub fn ack_ids(
    group_key: &str,
    receiver: &str,
    group_labels: &std::collections::BTreeMap<String, String>,
) -> [String; 2] {
    [group_id(group_key), labels_group_id(receiver, group_labels)]
}

impl Link {
    /// The link's token, `{payload}.{signature}`, signed with `key`.
    pub fn token(&self, key: &Secret) -> String {
        // Serializing plain strings and numbers cannot fail.
        let json = serde_json::to_vec(self).unwrap_or_default();
        let payload = URL_SAFE_NO_PAD.encode(json);
        let signature = URL_SAFE_NO_PAD.encode(mac(key, payload.as_bytes()));
        format!("{payload}.{signature}")
    }

    /// The link as people open it: `external_url` with `/act/{token}`.
    pub fn url(&self, external_url: &Url, key: &Secret) -> String {
        let base = external_url.as_str().trim_end_matches('/');
        format!("{base}{PATH}{}", self.token(key))
    }

    /// Reads and checks `token` against `key` at `now`: the link, or why it is refused.
    /// The signature is checked before anything of the payload is read.
    pub fn verify(token: &str, key: &Secret, now: Timestamp) -> Result<Link, LinkError> {
        let (payload, signature) = token.split_once('.').ok_or(LinkError::Invalid)?;
        let given = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| LinkError::Invalid)?;
        let expected = mac(key, payload.as_bytes());
        if !bool::from(given.ct_eq(&expected)) {
            return Err(LinkError::Invalid);
        }
        let json = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| LinkError::Invalid)?;
        let link: Link = serde_json::from_slice(&json).map_err(|_| LinkError::Invalid)?;
        if now.as_second() >= link.expires {
            return Err(LinkError::Expired);
        }
        Ok(link)
    }

    /// An id of the link for logs and for finding what it did before: a hash of its
    /// payload, never its signature.
    pub fn id(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        let digest = Sha256::digest(&json);
        digest[..8].iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl fmt::Display for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} of group {}", self.action.label(), self.group)
    }
}

/// HMAC-SHA256 of `data` under `key`.
fn mac(key: &Secret, data: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(key.expose().as_bytes())
        .expect("HMAC-SHA256 takes a key of any length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// `1h`, `30m`, `1d`, `1d 12h`.
fn short(seconds: u64) -> String {
    in_units(seconds, ["d", "h", "m", "s"], " ")
}

/// `1小时`, `30分钟`, `1天`, `1天12小时`.
fn short_zh(seconds: u64) -> String {
    in_units(seconds, ["天", "小时", "分钟", "秒"], "")
}

/// `seconds` in days, hours and minutes (`units`, then the unit of seconds for less than
/// a minute), the parts joined by `separator`.
fn in_units(seconds: u64, units: [&str; 4], separator: &str) -> String {
    let [day, hour, minute, second] = units;
    let parts = [
        (seconds / 86_400, day),
        (seconds / 3600 % 24, hour),
        (seconds / 60 % 60, minute),
    ];
    let shown: Vec<String> = parts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| format!("{n}{unit}"))
        .collect();
    if shown.is_empty() {
        format!("{seconds}{second}")
    } else {
        shown.join(separator)
    }
}

/// The links of a message about `notification` under `actions` at `now`: Acknowledge, then
/// one silence per `silence_durations` (none when the group has no labels to match, or
/// did not come from Alertmanager).
/// Each expires `link_ttl` after `now`.
pub fn links(
    actions: &ActionsConfig,
    notification: &Notification,
    now: Timestamp,
) -> Vec<(Action, String)> {
    let ttl = i64::try_from(actions.link_ttl.as_secs()).unwrap_or(i64::MAX);
    let group = group_id(&notification.group_key);
    let matchers = silence_matchers(notification);
    // A silence is made in Alertmanager: alerts from elsewhere have their own (Grafana's
    // `silenceURL` link) or none.
    let from_alertmanager = notification.source.is_alertmanager();
    let silences = actions
        .silence_durations
        .iter()
        .filter(|_| from_alertmanager && !matchers.is_empty())
        .map(|length| Action::silence(*length));
    std::iter::once(Action::Acknowledge)
        .chain(silences)
        .map(|action| {
            let link = Link {
                action,
                group: group.clone(),
                matchers: matchers.clone(),
                expires: now.as_second().saturating_add(ttl),
            };
            (action, link.url(&actions.external_url, &actions.key))
        })
        .collect()
}

/// What a silence of the group matches: its `groupLabels`; without them, the labels its
/// alerts share, or the one alert's labels.
pub fn silence_matchers(notification: &Notification) -> Vec<(String, String)> {
    let labels = match (
        &notification.alerts[..],
        notification.group_labels.is_empty(),
    ) {
        (_, false) => &notification.group_labels,
        ([only], true) => &only.labels,
        (_, true) => &notification.common_labels,
    };
    labels
        .iter()
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect()
}

impl Link {
    /// The token the link's page puts in its form, so that only a form the bridge served
    /// for this link acts: another site cannot make a logged-in browser post one.
    pub fn form_token(&self, key: &Secret) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        let mut data = b"form\n".to_vec();
        data.extend(json);
        URL_SAFE_NO_PAD.encode(mac(key, &data))
    }

    /// Whether `given` is this link's [`form_token`](Self::form_token), compared in
    /// constant time.
    pub fn accepts_form_token(&self, key: &Secret, given: &str) -> bool {
        bool::from(self.form_token(key).as_bytes().ct_eq(given.as_bytes()))
    }
}
