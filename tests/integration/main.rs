//! Integration tests: the real binary over loopback against a fake DingTalk and, end to
//! end, a real Alertmanager.

mod alertmanager;
mod prometheus;

mod delivery;
mod deploy;
mod end_to_end;
mod operations;
mod reliability;
mod self_monitoring;
mod webhook;

/// The binary under test, for the test kit's process harness.
const BINARY: &str = env!("CARGO_BIN_EXE_alertmanager-dingtalk");
