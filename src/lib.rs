//! alertmanager-dingtalk: a bridge from Prometheus Alertmanager webhooks to DingTalk group
//! robots.
//!
//! # Layout
//!
//! Data flows one way, and the modules are named after the stages:
//!
//! - [`server`]: the HTTP front door (webhook, drop-in robot path, metrics, health, reload).
//! - [`payload`]: the Alertmanager webhook payload, tolerant of fields it does not know.
//! - [`dedup`]: the copy of a notification an Alertmanager HA pair sends twice, sent once.
//! - [`matcher`] and [`route`]: which strategies, and so which robots, each alert goes to.
//! - [`render`]: one DingTalk message per (robot, strategy), keyword-carrying and size-bounded.
//! - [`queue`]: pending messages, one queue per robot.
//! - [`deliver`]: one worker per robot that rate-limits ([`rate_window`]), sends, retries.
//! - [`coalesce`]: in a storm, a robot's pending messages merged into size-bounded digests.
//! - [`dingtalk`]: the only module that knows DingTalk's HTTP API: signing, sending, errcodes.
//! - [`metrics`]: the service's own Prometheus metrics.
//!
//! Around them: [`auth`] checks the bearer token of inbound requests, [`config`] loads
//! and validates `config.yaml` into a [`config::Config`], [`app`] holds the running
//! config and swaps it on reload, and [`cli`] implements the `check` and `render`
//! subcommands.
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

pub mod app;
pub mod auth;
pub mod cli;
pub mod coalesce;
pub mod config;
pub mod dedup;
pub mod deliver;
pub mod dingtalk;
pub mod matcher;
pub mod metrics;
pub mod payload;
pub mod plan;
pub mod queue;
pub mod rate_window;
pub mod render;
pub mod route;
pub mod server;
