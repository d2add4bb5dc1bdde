//! The JSON of stored values, and the keys log lines name when a value cannot be read.

use std::fmt::Display;

use super::DurableStore;
use crate::queue::QueueError;

impl DurableStore {
    /// Decodes a stored value, or warns (naming its key) and returns `None`.
    pub(super) fn decode<T: serde::de::DeserializeOwned>(
        &self,
        key: &dyn Display,
        bytes: &[u8],
    ) -> Option<T> {
        match serde_json::from_slice(bytes) {
            Ok(value) => Some(value),
            Err(error) => {
                tracing::warn!(
                    message = "Skipping a queue entry that cannot be read.",
                    file = %self.path.display(),
                    key = %key,
                    %error,
                );
                None
            }
        }
    }

    /// Encodes a value to store.
    pub(super) fn encode<T: serde::Serialize>(
        &self,
        what: &dyn Display,
        value: &T,
    ) -> Result<Vec<u8>, QueueError> {
        serde_json::to_vec(value).map_err(|e| self.fail(format!("cannot encode {what}: {e}")))
    }
}

/// The key of a pending message, for log messages.
pub(super) struct PendingKey<'a>(pub(super) &'a str, pub(super) u64);

impl Display for PendingKey<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pending ({}, {})", self.0, self.1)
    }
}

/// The key of a dead letter, for log messages.
pub(super) struct DeadKey(pub(super) u64);

impl Display for DeadKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "dead {}", self.0)
    }
}

/// What the scan at start reads of a pending message: when it was accepted and its group,
/// not the message.
#[derive(serde::Deserialize)]
pub(super) struct PendingOf {
    pub(super) accepted_at: jiff::Timestamp,
    strategy: String,
    summary: SummaryOf,
}

#[derive(serde::Deserialize)]
struct SummaryOf {
    #[serde(default)]
    group_key: String,
}

impl PendingOf {
    /// The message's group, as `Envelope::group` says it.
    pub(super) fn group(&self) -> Option<u64> {
        crate::queue::group_id(&self.summary.group_key, &self.strategy)
    }
}

/// What counting dead letters reads of one: its robot, not the message.
#[derive(serde::Deserialize)]
pub(super) struct DeadLetterOf {
    envelope: RobotOf,
}

#[derive(serde::Deserialize)]
struct RobotOf {
    robot: String,
}

impl DeadLetterOf {
    pub(super) fn robot(self) -> String {
        self.envelope.robot
    }
}
