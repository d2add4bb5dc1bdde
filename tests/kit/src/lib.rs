//! The test kit of alertmanager-dingtalk: what `tests/` and `benches/` share to drive the
//! bridge from outside, as Alertmanager and DingTalk see it.
//!
//! # Layout
//!
//! - [`fake_dingtalk`] — an in-process fake of DingTalk's robot API on loopback that
//!   answers like the real one (errcodes, signing, keywords, rate limit, size limit) and
//!   injects faults; it records what it was sent, or only counts it under load. It keeps
//!   the interactive cards application robots send and update; its Stream mode pushes
//!   robot messages over a WebSocket and takes session replies. It serves HTTP, or HTTPS
//!   with a certificate the test made.
//! - [`bridge`] — the bridge binary as a child process: start, restart, signals, its JSON
//!   log, HTTP to it, its offline subcommands.
//! - [`daemon`] — other real servers the end-to-end tests start (Alertmanager,
//!   Prometheus), from their Debian packages.
//! - [`redis`] — a real Redis for cluster mode, which a test can stop and start again
//!   empty.
//! - [`sentinel`] — Redis Sentinels watching a master, to fail it over.
//! - [`tinyproxy`] — a real HTTP proxy with basic credentials, and the tunnels it carried.
//! - [`webhook`] — Alertmanager webhook bodies, small and hand-named or grown to any size
//!   from a real alert.
//! - [`scratch`] — a fresh temporary directory, a free loopback port.
//!
//! It must not depend on the root crate: whatever it knows of the bridge is the bridge's
//! behaviour over HTTP, so a test cannot pass by sharing the code it checks. Nothing it
//! starts listens or connects beyond 127.0.0.1.

#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod bridge;
pub mod daemon;
pub mod fake_dingtalk;
pub mod redis;
pub mod scratch;
pub mod sentinel;
pub mod tinyproxy;
pub mod webhook;

pub use bridge::{Bridge, CommandOutput, http, run_command};
pub use daemon::{Daemon, installed};
pub use fake_dingtalk::{
    BotMessage, Counts, FakeApp, FakeCard, FakeDingTalk, FakeRobot, FakeTls, Mode, Request,
    SessionReply, StreamAck, StreamOpen,
};
pub use redis::Redis;
pub use scratch::{free_port, temp_dir};
pub use sentinel::{MASTER_NAME, Sentinels};
pub use tinyproxy::{PROXY_PASSWORD, PROXY_USER, Tinyproxy};
pub use webhook::{payload, payload_since, webhook_body};
