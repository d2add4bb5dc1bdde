//! Robots of internal applications: chosen by their keys in `config.yaml`, the
//! group-message body each message type becomes, the size limit of `msgParam`, mentions
//! they cannot make, and the access-token cache (on paused time).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use alertmanager_dingtalk::accept::plan;
use alertmanager_dingtalk::dingtalk::app::{APP_MESSAGE_BUDGET, MAX_MSG_PARAM_BYTES};
use alertmanager_dingtalk::dingtalk::token::Tokens;
use alertmanager_dingtalk::dingtalk::{
    App, Button, Endpoint, MESSAGE_BUDGET, Mention, Message, MsgType, Retry, Secret, SendError,
};
use jiff::SignedDuration;
use serde_json::Value;
use url::Url;

use crate::config::{check_errors, check_ok};
use crate::{fixture, load_config};

const APP_ROBOT: &str = "\
robots:
  oncall:
    app_key: dingappkey
    app_secret: app-secret-value
    open_conversation_id: cidGroup==
strategies:
  - name: all
    robots: [oncall]
";

#[test]
fn app_keys_make_a_robot_of_an_application_whose_code_is_the_app_key_unless_given() {
    let config = check_ok(APP_ROBOT);
    let Endpoint::App(robot) = &config.robots["oncall"].endpoint else {
        panic!("oncall should be a robot of an application");
    };
    assert_eq!(robot.app.app_key, "dingappkey");
    assert_eq!(robot.app.app_secret.expose(), "app-secret-value");
    assert_eq!(robot.robot_code, "dingappkey");
    assert_eq!(robot.open_conversation_id, "cidGroup==");
    assert_eq!(robot.app.openapi_url.as_str(), "https://api.dingtalk.com/");
    assert!(
        config
            .summary()
            .contains("1 robots (0 signed, 1 of applications)")
    );

    let own_code = check_ok(&APP_ROBOT.replace(
        "    open_conversation_id",
        "    robot_code: dingrobot\n    open_conversation_id",
    ));
    let Endpoint::App(robot) = &own_code.robots["oncall"].endpoint else {
        panic!("oncall should be a robot of an application");
    };
    assert_eq!(robot.robot_code, "dingrobot");
}

#[test]
fn openapi_url_and_app_secret_file_are_taken() {
    let secret_file = std::env::temp_dir().join(format!(
        "alertmanager-dingtalk-unit-app-secret-{}",
        std::process::id()
    ));
    std::fs::write(&secret_file, "from-file\n").unwrap();
    let yaml = format!(
        "dingtalk:\n  openapi_url: http://127.0.0.1:9/proxy\n{}",
        APP_ROBOT.replace(
            "app_secret: app-secret-value",
            &format!("app_secret_file: {}", secret_file.display())
        )
    );
    let config = check_ok(&yaml);
    std::fs::remove_file(&secret_file).unwrap();
    let robot = &config.robots["oncall"];
    let Endpoint::App(app_robot) = &robot.endpoint else {
        panic!("oncall should be a robot of an application");
    };
    assert_eq!(app_robot.app.app_secret.expose(), "from-file");
    assert_eq!(
        robot.redacted_url(),
        "http://127.0.0.1:9/proxy/v1.0/robot/groupMessages/send"
    );
    let debug = format!("{config:?}");
    assert!(!debug.contains("from-file"), "{debug}");
}

#[test]
fn a_robot_is_one_kind_with_all_its_keys() {
    check_errors(
        "robots:\n  oncall:\n    access_token: abc\n    app_key: dingappkey\n",
        &[(
            2,
            "has `access_token`, a webhook robot's key, and `app_key`",
        )],
    );
    check_errors(
        "robots:\n  oncall:\n    app_key: dingappkey\n    open_conversation_id: cid==\n",
        &[(2, "needs `app_secret` or `app_secret_file`")],
    );
    check_errors(
        "robots:\n  oncall:\n    app_key: dingappkey\n    app_secret: s\n",
        &[(2, "needs `open_conversation_id`")],
    );
    check_errors(
        "robots:\n  oncall:\n    app_key: ' '\n    app_secret: s\n    open_conversation_id: cid==\n",
        &[(3, "has an empty `app_key`")],
    );
    check_errors(
        "robots:\n  oncall:\n    open_conversation_id: cid==\n    robot_code: x\n",
        &[(2, "needs `app_key`"), (2, "needs `app_secret`")],
    );
    check_errors(
        &format!("dingtalk:\n  openapi_url: ftp://x\n{APP_ROBOT}"),
        &[(2, "must be http or https")],
    );
}

#[test]
fn mentions_of_a_robot_of_an_application_are_dropped_with_a_warning() {
    let config = load_config(&APP_ROBOT.replace(
        "strategies:",
        "    mention: { mobiles: ['13800000001'] }\nstrategies:",
    ));
    let warnings = config.warnings();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("robot `oncall` is a robot of an application, which cannot mention"),
        "{warnings:?}"
    );

    let by_strategy = load_config(
        "robots:\n  oncall:\n    app_key: k\n    app_secret: s\n    open_conversation_id: cid==\n\
         strategies:\n  - name: owners\n    robots: [oncall]\n    mention: { user_ids: [u1] }\n",
    );
    let warnings = by_strategy.warnings();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("strategy `owners` mentions people, but robot `oncall`")),
        "{warnings:?}"
    );

    let notification = fixture("firing_3.json");
    let now = notification.alerts[0].starts_at + SignedDuration::from_mins(5);
    let plan = plan::plan(&config, &notification, now);
    let message = &plan.messages[0].message;
    assert!(message.mention.is_empty());
    assert!(!message.text.contains("13800000001"), "{}", message.text);
}

/// The group-message body of `message` sent by the robot of [`APP_ROBOT`] as `msgtype`.
fn body(msgtype: MsgType, message: &Message) -> Value {
    let config = load_config(&APP_ROBOT.replace(
        "    open_conversation_id",
        &format!(
            "    msgtype: {}\n    open_conversation_id",
            msgtype_name(msgtype)
        ),
    ));
    let body = config.robots["oncall"].body(message).unwrap();
    serde_json::from_str(&body).unwrap()
}

fn msgtype_name(msgtype: MsgType) -> &'static str {
    match msgtype {
        MsgType::Markdown => "markdown",
        MsgType::Text => "text",
        MsgType::ActionCard => "actionCard",
        MsgType::Card => "card",
    }
}

fn message(buttons: usize) -> Message {
    Message {
        title: "[HertzBeat] down".to_owned(),
        text: "**HertzBeat** 1 alert".to_owned(),
        mention: Mention::default(),
        buttons: (1..=buttons)
            .map(|n| Button {
                title: format!("button {n}"),
                url: format!("http://127.0.0.1:9093/{n}"),
            })
            .collect(),
        msgtype: None,
    }
}

/// `msgParam`, parsed from its JSON string.
fn param(body: &Value) -> Value {
    serde_json::from_str(body["msgParam"].as_str().unwrap()).unwrap()
}

#[test]
fn each_message_type_becomes_its_sample_message_key() {
    let markdown = body(MsgType::Markdown, &message(0));
    assert_eq!(markdown["robotCode"], "dingappkey");
    assert_eq!(markdown["openConversationId"], "cidGroup==");
    assert_eq!(markdown["msgKey"], "sampleMarkdown");
    assert_eq!(
        param(&markdown),
        serde_json::json!({ "title": "[HertzBeat] down", "text": "**HertzBeat** 1 alert" })
    );

    let text = body(MsgType::Text, &message(0));
    assert_eq!(text["msgKey"], "sampleText");
    assert_eq!(
        param(&text),
        serde_json::json!({ "content": "**HertzBeat** 1 alert" })
    );

    let one = body(MsgType::ActionCard, &message(1));
    assert_eq!(one["msgKey"], "sampleActionCard");
    assert_eq!(param(&one)["singleTitle"], "button 1");
    assert_eq!(param(&one)["singleURL"], "http://127.0.0.1:9093/1");

    let three = body(MsgType::ActionCard, &message(3));
    assert_eq!(three["msgKey"], "sampleActionCard3");
    let three = param(&three);
    assert_eq!(three["actionTitle3"], "button 3");
    assert_eq!(three["actionURL2"], "http://127.0.0.1:9093/2");

    assert_eq!(
        body(MsgType::ActionCard, &message(2))["msgKey"],
        "sampleActionCard2"
    );
    // A card without buttons (a digest) is sent as markdown, as for webhook robots.
    assert_eq!(
        body(MsgType::ActionCard, &message(0))["msgKey"],
        "sampleMarkdown"
    );
}

#[test]
fn a_message_whose_msg_param_would_be_too_long_is_not_sent_but_shortened() {
    let config = load_config(APP_ROBOT);
    let robot = &config.robots["oncall"];
    assert_eq!(robot.message_budget(), APP_MESSAGE_BUDGET);
    const { assert!(APP_MESSAGE_BUDGET < MESSAGE_BUDGET) };

    // Within the budget, but every newline takes two bytes once escaped in msgParam.
    let mut long = message(0);
    long.text = "\n".repeat(APP_MESSAGE_BUDGET - long.title.len());
    let error = robot.body(&long).unwrap_err();
    assert!(
        matches!(error, SendError::TooLong { bytes, limit } if bytes > limit && limit == MAX_MSG_PARAM_BYTES),
        "{error:?}"
    );
    assert_eq!(error.retry(), Retry::Shorter);

    let mut fits = message(0);
    fits.text = "x".repeat(APP_MESSAGE_BUDGET - fits.title.len());
    assert!(robot.body(&fits).is_ok());
}

fn app(key: &str) -> App {
    App {
        openapi_url: Url::parse("http://127.0.0.1:9").unwrap(),
        app_key: key.to_owned(),
        app_secret: Secret::new("s"),
    }
}

/// What a token fetch returns.
type Fetch = std::pin::Pin<Box<dyn Future<Output = Result<(Secret, Duration), SendError>> + Send>>;

/// A fetch that counts its calls and gives `token-N` lasting `life`, after `delay`.
fn counting(
    fetches: &Arc<AtomicUsize>,
    life: Duration,
    delay: Duration,
) -> impl FnOnce() -> Fetch + use<> {
    let fetches = Arc::clone(fetches);
    move || {
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            let n = fetches.fetch_add(1, Ordering::SeqCst) + 1;
            Ok((Secret::new(format!("token-{n}")), life))
        })
    }
}

#[tokio::test(start_paused = true)]
async fn concurrent_sends_share_one_token_request() {
    let tokens = Arc::new(Tokens::default());
    let fetches = Arc::new(AtomicUsize::new(0));
    let life = Duration::from_secs(7200);
    let gets = (0..8).map(|_| {
        let tokens = Arc::clone(&tokens);
        let fetch = counting(&fetches, life, Duration::from_millis(300));
        tokio::spawn(async move { tokens.get(&app("k"), None, fetch).await })
    });
    for get in gets.collect::<Vec<_>>() {
        assert_eq!(get.await.unwrap().unwrap().expose(), "token-1");
    }
    assert_eq!(fetches.load(Ordering::SeqCst), 1);

    // Another application has its own token.
    let other = tokens
        .get(
            &app("other"),
            None,
            counting(&fetches, life, Duration::ZERO),
        )
        .await
        .unwrap();
    assert_eq!(other.expose(), "token-2");
}

#[tokio::test(start_paused = true)]
async fn a_token_is_fetched_again_before_it_expires() {
    let tokens = Tokens::default();
    let fetches = Arc::new(AtomicUsize::new(0));
    let life = Duration::from_secs(7200);
    let app = app("k");
    let get = || tokens.get(&app, None, counting(&fetches, life, Duration::ZERO));
    assert_eq!(get().await.unwrap().expose(), "token-1");
    // Refreshed 300 s (a tenth of its life, at most 300 s) before it expires.
    tokio::time::advance(Duration::from_secs(7200 - 301)).await;
    assert_eq!(get().await.unwrap().expose(), "token-1");
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(get().await.unwrap().expose(), "token-2");

    // A short-lived token: a tenth of its life early.
    let short = Tokens::default();
    let life = Duration::from_secs(10);
    let get = || short.get(&app, None, counting(&fetches, life, Duration::ZERO));
    assert_eq!(get().await.unwrap().expose(), "token-3");
    tokio::time::advance(Duration::from_millis(8_900)).await;
    assert_eq!(get().await.unwrap().expose(), "token-3");
    tokio::time::advance(Duration::from_millis(200)).await;
    assert_eq!(get().await.unwrap().expose(), "token-4");
}

#[tokio::test(start_paused = true)]
async fn a_rejected_token_is_replaced_once_however_many_sends_saw_it_rejected() {
    let tokens = Arc::new(Tokens::default());
    let fetches = Arc::new(AtomicUsize::new(0));
    let life = Duration::from_secs(7200);
    let first = tokens
        .get(&app("k"), None, counting(&fetches, life, Duration::ZERO))
        .await
        .unwrap();
    let refreshes = (0..5).map(|_| {
        let (tokens, first) = (Arc::clone(&tokens), first.clone());
        let fetch = counting(&fetches, life, Duration::from_millis(100));
        tokio::spawn(async move { tokens.get(&app("k"), Some(&first), fetch).await })
    });
    for refresh in refreshes.collect::<Vec<_>>() {
        assert_eq!(refresh.await.unwrap().unwrap().expose(), "token-2");
    }
    assert_eq!(fetches.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn a_failed_fetch_is_not_cached() {
    let tokens = Tokens::default();
    let refused = tokens
        .get(&app("k"), None, || async {
            Err(SendError::Network("refused".into()))
        })
        .await;
    assert!(refused.is_err());
    let fetches = Arc::new(AtomicUsize::new(0));
    let token = tokens
        .get(
            &app("k"),
            None,
            counting(&fetches, Duration::from_secs(60), Duration::ZERO),
        )
        .await
        .unwrap();
    assert_eq!(token.expose(), "token-1");
}
