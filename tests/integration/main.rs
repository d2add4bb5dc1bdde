//! Integration tests: the real binary over loopback against a fake DingTalk and, end to
//! end, a real Alertmanager.

mod alertmanager;
mod bridge;
mod daemon;
mod prometheus;

mod delivery;
mod deploy;
mod end_to_end;
mod operations;
mod reliability;
mod self_monitoring;
mod webhook;
