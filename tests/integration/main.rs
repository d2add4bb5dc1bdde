//! Integration tests: the real binary over loopback against a fake DingTalk and, end to
//! end, a real Alertmanager.

mod alertmanager;
mod bridge;
mod fake_dingtalk;

mod delivery;
mod end_to_end;
mod operations;
mod reliability;
mod webhook;
