//! Fixtures shared by the micro-benchmarks that need the service's library: the
//! 50-strategy config (`data/strategies.yaml`) loaded by the service's own loader, webhook
//! bodies parsed by its own parser, and a fixed clock. The bodies themselves are the test
//! kit's ([`testkit::webhook_body`]).

use std::path::Path;

use alertmanager_dingtalk::config::{self, Config};
use alertmanager_dingtalk::ingest::{self, Notification};
use jiff::Timestamp;
pub use testkit::webhook_body;

/// Alerts per notification: one is the usual group, ten a busy one, a hundred a large
/// one, and a thousand an outage. From about forty alerts on, the default template's text
/// passes DingTalk's 20000 bytes and rendering truncates.
pub const SIZES: [usize; 4] = [1, 10, 100, 1000];

/// Wednesday 2024-05-01 10:00 in Shanghai: inside office hours, outside night windows,
/// so the strategies' `active_time` windows are both open and closed.
pub fn now() -> Timestamp {
    "2024-05-01T02:00:00Z".parse().expect("a valid timestamp")
}

/// `data/strategies.yaml`, loaded as the service loads its config: compiled matchers,
/// templates and robots.
pub fn config() -> Config {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/data/strategies.yaml");
    config::load_with_env(&file, |_| None).unwrap_or_else(|e| panic!("{e}"))
}

/// [`webhook_body`] parsed, as the webhook handler has it before routing.
pub fn notification(n: usize) -> Notification {
    ingest::parse(&webhook_body(n)).expect("a valid payload")
}
