//! alertmanager-dingtalk: a bridge from Prometheus Alertmanager webhooks to DingTalk group
//! robots.
//!
//! # Layout
//!
//! Data flows one way, and the modules are named after the stages, in this order:
//!
//! - [`server`]: the HTTP front door; its route table names every endpoint, its methods
//!   and who may call it.
//! - [`ingest`]: a webhook's body turned into a [`ingest::Notification`].
//! - [`accept`]: what happens to a notification: duplicate suppression, the plan (route
//!   and render), then queued, or sent at once (passthrough). [`accept::notification`]
//!   is the whole path in one place: read it first.
//! - [`route`]: which strategies, and so which robots, each alert goes to.
//! - [`render`]: one DingTalk message per (robot, strategy), keyword-carrying and
//!   size-bounded.
//! - [`queue`]: pending messages, one queue per robot, and the dead letters.
//! - [`limit`]: when a send may start: the rolling window, pauses, pacing, and the window
//!   replicas share.
//! - [`deliver`]: one worker per robot that lets a group's newer state supersede its
//!   older ones, merges a backlog into digests, sends, retries and gives up; the one
//!   function every send goes through.
//! - [`dingtalk`]: the only module that knows DingTalk's APIs: bodies, signing, tokens,
//!   and what each answer means.
//! - [`cluster`]: with `cluster:`, the rate windows, pauses and duplicate claims that
//!   replicas share through Redis.
//! - [`metrics`]: the service's own Prometheus metrics.
//!
//! Around them: [`config`] loads and validates `config.yaml` into a
//! [`config::Config`]; [`snapshot`] hands out the configuration in force and pins the
//! restart-only settings; [`app`] composes the running service; [`cli`] is the other front
//! door, the subcommands; [`tools`] holds what both doors offer the operator (preview,
//! probe, migrate).
//!
//! Actions flow back through [`act`]: a message's signed links, opened in a browser,
//! acknowledge the alert group or silence it in Alertmanager; and commands written to a
//! robot of an application arrive over [`stream`] (DingTalk's Stream mode) and are done
//! by [`act::commands`].
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

pub mod accept;
pub mod act;
pub mod app;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod deliver;
pub mod dingtalk;
pub mod escalate;
pub mod ingest;
pub mod limit;
pub mod metrics;
pub mod oncall;
pub mod queue;
pub mod render;
pub mod route;
pub mod server;
pub mod snapshot;
pub mod storage;
pub mod stream;
pub mod tools;
