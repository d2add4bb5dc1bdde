//! Unit tests of the library's parts that need no network: the inbound token, duplicate
//! suppression, matching, routing, signing, DingTalk's answers (of both robot kinds),
//! robots of applications and their token cache, rendering, digests,
//! environment expansion, config loading, the queue and its file, the rate window and the
//! gate, payload parsing and retry backoff; and the delivery core (worker, passthrough)
//! against a scripted DingTalk (`scripted`), and the shape of `src/` (`layout`). The pure
//! modules take time as values; what waits runs on paused tokio time, where a ten-minute
//! pause takes microseconds. Only the queue file's reopen backoff waits in real time.
#![allow(clippy::unwrap_used)]

mod actions_config;
mod actions_render;
mod app_robots;
mod auth;
mod backoff;
mod cards;
mod causes;
mod coalesce;
mod commands;
mod config;
mod dedup;
mod delivery;
mod doc_links;
mod durable;
mod env;
mod errcode;
mod escalation;
mod fuzz_replay;
mod gate;
mod injection;
mod layout;
mod links;
mod matcher;
mod mentions;
mod message;
mod oncall;
mod openapi_answers;
mod passthrough;
mod payload;
mod pools;
mod queue;
mod rate_window;
mod render;
mod route;
mod scripted;
mod sign;
mod sources;
mod storage;
mod supersede;
mod templates;
mod web_config;
mod window;

use alertmanager_dingtalk::config::{Config, load_with_env};
use alertmanager_dingtalk::dingtalk::RateLimit;
use alertmanager_dingtalk::dingtalk::{Endpoint, Mention, MsgType, Robot, Secret, Webhook};
use alertmanager_dingtalk::ingest::Notification;
use url::Url;

/// A robot named `ops` with these keywords, mentioning these mobiles, at DingTalk's rate.
fn robot(keywords: &[&str], mobiles: &[&str]) -> Robot {
    Robot {
        name: "ops".to_owned(),
        endpoint: Endpoint::Webhook(Webhook {
            api_url: Url::parse("https://oapi.dingtalk.com/robot/send").unwrap(),
            access_token: Secret::new("token"),
            secret: None,
        }),
        keywords: keywords.iter().map(|k| (*k).to_owned()).collect(),
        mention: Mention {
            mobiles: mobiles.iter().map(|m| (*m).to_owned()).collect(),
            ..Mention::default()
        },
        oncall: Vec::new(),
        rate_limit: RateLimit::DINGTALK,
        msgtype: MsgType::Markdown,
        commands: None,
    }
}

/// The webhook of a webhook robot; panics for a robot of an application or a pool.
fn webhook(robot: &Robot) -> &Webhook {
    match &robot.endpoint {
        Endpoint::Webhook(webhook) => webhook,
        Endpoint::App(_) | Endpoint::Pool(_) => {
            panic!("robot `{}` is not a webhook robot", robot.name)
        }
    }
}

/// A fixture from `tests/data/unit/`, as bytes.
fn fixture_bytes(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/unit")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// A fixture from `tests/data/unit/`, parsed as a webhook notification.
fn fixture(name: &str) -> Notification {
    alertmanager_dingtalk::ingest::parse(&fixture_bytes(name))
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// `yaml` loaded as a config file; its environment is empty.
fn load_config(yaml: &str) -> Config {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let file = std::env::temp_dir().join(format!(
        "alertmanager-dingtalk-unit-config-{}-{}.yaml",
        std::process::id(),
        NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    std::fs::write(&file, yaml).unwrap();
    let config = load_with_env(&file, |_| None);
    let _ = std::fs::remove_file(&file);
    config.unwrap_or_else(|errors| panic!("{errors}\n{yaml}"))
}
