//! alertmanager-dingtalk: a bridge from Prometheus Alertmanager webhooks to DingTalk group
//! robots.
//!
//! # Layout
//!
//! Data flows one way, and the modules are named after the stages:
//!
//! - [`server`]: the HTTP front door (webhook, drop-in robot path, admin API, status page,
//!   metrics, health, reload).
//! - [`payload`]: the Alertmanager webhook payload, tolerant of fields it does not know.
//! - [`accept`]: what happens to a notification: queued, or sent at once (passthrough).
//! - [`dedup`]: the copy of a notification an Alertmanager HA pair sends twice, sent once.
//! - [`cluster`]: with `cluster:`, the rate windows, pauses and duplicate claims that
//!   replicas share through Redis.
//! - [`plan`], [`matcher`] and [`route`]: which strategies, and so which robots, each alert
//!   goes to.
//! - [`render`]: one DingTalk message per (robot, strategy), keyword-carrying and size-bounded.
//! - [`queue`]: pending messages, one queue per robot, and the dead letters.
//! - [`deliver`]: one worker per robot that sends through the robot's [`gate`] (rate
//!   window from [`rate_window`], pause, size budget), retries and gives up.
//! - [`coalesce`]: in a storm, a robot's pending messages merged into size-bounded digests.
//! - [`dingtalk`]: the only module that knows DingTalk's HTTP API: signing, sending, errcodes.
//! - [`metrics`]: the service's own Prometheus metrics.
//!
//! Around them: [`auth`] checks the bearer token of inbound requests, [`config`] loads
//! and validates `config.yaml` into a [`config::Config`], [`runtime`] hands out the
//! configuration in force and pins the restart-only settings, [`app`] composes the
//! running service, [`preview`] shows what a notification would send (for `render` and
//! the status page), [`probe`] sends a test message to a robot and explains the answer,
//! [`migrate`] turns a prometheus-webhook-dingtalk config into ours, and [`cli`]
//! implements the `check`, `render` and `test-robot` subcommands.
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

pub mod accept;
pub mod app;
pub mod auth;
pub mod cli;
pub mod cluster;
pub mod coalesce;
pub mod config;
pub mod dedup;
pub mod deliver;
pub mod dingtalk;
pub mod gate;
pub mod matcher;
pub mod metrics;
pub mod migrate;
pub mod payload;
pub mod plan;
pub mod preview;
pub mod probe;
pub mod queue;
pub mod rate_window;
pub mod render;
pub mod route;
pub mod runtime;
pub mod server;
