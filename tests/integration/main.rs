//! Integration tests: the real binary over loopback against a fake DingTalk and, end to
//! end, a real Alertmanager.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

mod actions;
mod alertmanager;
mod browser;
mod prometheus;

mod app_robots;
mod cards;
mod cluster;
mod commands;
mod delivery;
mod deploy;
mod diagnosis;
mod end_to_end;
mod escalation;
mod failover;
mod flapping;
mod limits;
mod migration;
mod operations;
mod pools;
mod proxy;
mod reliability;
mod self_monitoring;
mod slow_disk;
mod sources;
mod status_page;
mod supersede;
mod upgrade;
mod web_config;
mod webhook;

/// The binary under test, for the test kit's process harness.
const BINARY: &str = env!("CARGO_BIN_EXE_alertmanager-dingtalk");

/// How long nothing more may reach the fake DingTalk before a test counts "exactly once"
/// or "not again": longer than the bridge's first retry backoff (at most 1 s).
const QUIET: Duration = Duration::from_secs(2);
/// Upper bound for a quiet period to come.
const QUIET_WITHIN: Duration = Duration::from_secs(20);
