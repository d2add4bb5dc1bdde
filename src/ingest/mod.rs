//! Ingest: a webhook's body turned into a [`Notification`], the one model of an alert
//! group that everything after this stage reads.
//!
//! The model is Alertmanager's webhook payload (version 4, [`alertmanager`]), with the
//! fields Grafana adds ([`grafana`]); HertzBeat's body maps onto it ([`hertzbeat`]), with
//! what it lacks derived. Routing, rendering and delivery read [`Notification::source`]
//! only where a link must point back at the right tool. Parsing only: no HTTP (the server
//! reads the body), no routing.

pub mod alertmanager;
pub mod grafana;
pub mod hertzbeat;

use std::fmt;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub use alertmanager::{Alert, LabelSet, Notification, Status, parse};

/// Where a notification came from: the endpoint it was posted to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// `POST /alertmanager` (and the drop-in `/dingtalk/{robot}/send`).
    #[default]
    Alertmanager,
    /// `POST /grafana`: a Grafana webhook contact point.
    Grafana,
    /// `POST /hertzbeat`: a HertzBeat webhook notice.
    #[serde(rename = "hertzbeat")]
    HertzBeat,
}

impl Source {
    /// Every source, in the order docs and metrics list them.
    pub const ALL: [Source; 3] = [Source::Alertmanager, Source::Grafana, Source::HertzBeat];

    /// The lower-case name metrics and the API use.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Alertmanager => "alertmanager",
            Source::Grafana => "grafana",
            Source::HertzBeat => "hertzbeat",
        }
    }

    /// The tool's own name, as messages show it.
    pub fn title(self) -> &'static str {
        match self {
            Source::Alertmanager => "Alertmanager",
            Source::Grafana => "Grafana",
            Source::HertzBeat => "HertzBeat",
        }
    }

    /// Whether it is Alertmanager (what a stored notification without a source was).
    pub fn is_alertmanager(&self) -> bool {
        *self == Source::Alertmanager
    }

    /// The source called `name` ([`Source::as_str`]).
    pub fn named(name: &str) -> Option<Source> {
        Source::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a request body is not a usable notification.
#[derive(Debug, thiserror::Error)]
#[error("invalid {} payload: {reason}", from.title())]
pub struct PayloadError {
    /// The source whose payload it was meant to be.
    pub from: Source,
    /// What is wrong, in one line.
    pub reason: String,
}

/// Parses `body` as `source` sends it, at `now`; HertzBeat's times are read in
/// `hertzbeat_zone`.
pub fn parse_from(
    source: Source,
    body: &[u8],
    hertzbeat_zone: &TimeZone,
    now: Timestamp,
) -> Result<Notification, PayloadError> {
    match source {
        Source::Alertmanager => alertmanager::parse(body),
        Source::Grafana => grafana::parse(body),
        Source::HertzBeat => hertzbeat::parse(body, hertzbeat_zone, now),
    }
}

/// A fingerprint for a source that sends none: the first 8 bytes of the SHA-256 of the
/// labels in name order (each name and value followed by a 0xff byte), in hex. Stable for
/// a label set, whatever order the source wrote it in.
pub fn fingerprint(labels: &LabelSet) -> String {
    let mut hash = Sha256::new();
    for (name, value) in labels {
        hash.update(name.as_bytes());
        hash.update([0xff]);
        hash.update(value.as_bytes());
        hash.update([0xff]);
    }
    hex(&hash.finalize()[..8])
}

/// `bytes` in lower-case hex.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The labels every alert of `alerts` has with the same value.
pub fn shared_labels(alerts: &[Alert]) -> LabelSet {
    let Some((first, rest)) = alerts.split_first() else {
        return LabelSet::new();
    };
    first
        .labels
        .iter()
        .filter(|(name, value)| rest.iter().all(|a| a.labels.get(*name) == Some(value)))
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect()
}
