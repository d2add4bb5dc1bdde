//! Unit tests of the library's parts that need no network: the inbound token, duplicate
//! suppression, matching, routing, signing, DingTalk's answers, rendering, digests,
//! environment expansion, config loading, the durable queue file, the rate window, payload
//! parsing and retry backoff. Each module is one area with one `check` helper and many
//! small cases. No sleeping: time is passed in as values.

mod auth;
mod backoff;
mod coalesce;
mod config;
mod dedup;
mod durable;
mod env;
mod errcode;
mod matcher;
mod message;
mod payload;
mod rate_window;
mod render;
mod route;
mod sign;

use alertmanager_dingtalk::payload::Notification;

/// A fixture from `tests/data/unit/`, as bytes.
fn fixture_bytes(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/unit")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// A fixture from `tests/data/unit/`, parsed as a webhook notification.
fn fixture(name: &str) -> Notification {
    alertmanager_dingtalk::payload::parse(&fixture_bytes(name))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}
