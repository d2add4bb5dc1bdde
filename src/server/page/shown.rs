//! How the page shows values its sections share.

use jiff::Timestamp;

use crate::snapshot::Snapshot;

/// `at` to the second in the config's `timezone`, as templates show times.
pub(super) fn local(at: Timestamp, snapshot: &Snapshot) -> String {
    at.to_zoned_datetime(snapshot.config.timezone.clone())
        .strftime("%Y-%m-%d %H:%M:%S %Z")
        .to_string()
}
