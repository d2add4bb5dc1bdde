//! The test kit of alertmanager-dingtalk: what `tests/` and `benches/` share to drive the
//! bridge from outside, as Alertmanager and DingTalk see it.
//!
//! # Layout
//!
//! - [`fake_dingtalk`] — an in-process fake of DingTalk's robot API on loopback that
//!   answers like the real one (errcodes, signing, keywords, rate limit, size limit) and
//!   injects faults; it records what it was sent, or only counts it under load.
//!
//! It must not depend on the root crate: whatever it knows of the bridge is the bridge's
//! behaviour over HTTP, so a test cannot pass by sharing the code it checks. Nothing it
//! starts listens or connects beyond 127.0.0.1.

#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod fake_dingtalk;

pub use fake_dingtalk::{FakeDingTalk, FakeRobot, Mode, Request};
