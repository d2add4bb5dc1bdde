//! `external_url`, `alertmanager:` and `actions:` in `config.yaml`: what acting on alerts
//! needs, checked offline with every error at its line.

use std::time::Duration;

use alertmanager_dingtalk::config::Authorization;

use crate::config::{check_errors, check_ok};

const ROBOTS: &str =
    "robots:\n  ops: { access_token: t }\nstrategies:\n  - name: all\n    robots: [ops]\n";
const KEY: &str = "0123456789abcdef0123456789abcdef";

#[test]
fn without_actions_nothing_changes() {
    let config = check_ok(ROBOTS);
    assert!(config.actions.is_none());
}

#[test]
fn actions_with_their_defaults() {
    let config = check_ok(&format!(
        "external_url: https://bridge.example.com/\n\
         alertmanager:\n  urls: [http://am-0:9093, http://am-1:9093]\n\
         actions:\n  key: {KEY}\n{ROBOTS}"
    ));
    let actions = config.actions.expect("actions");
    assert_eq!(actions.external_url.as_str(), "https://bridge.example.com/");
    assert_eq!(actions.key.expose(), KEY);
    assert_eq!(actions.link_ttl, Duration::from_secs(7 * 86_400));
    assert_eq!(
        actions.silence_durations,
        [3600, 4 * 3600, 86_400].map(Duration::from_secs)
    );
    let alertmanager = actions.alertmanager;
    assert_eq!(alertmanager.urls.len(), 2);
    assert_eq!(alertmanager.authorization, None);
    assert_eq!(alertmanager.timeout, Duration::from_secs(10));
}

#[test]
fn alertmanager_auth_as_in_its_http_config() {
    let config = check_ok(&format!(
        "external_url: https://bridge.example.com\n\
         alertmanager:\n  urls: [https://am:9093]\n  basic_auth: {{ username: bridge, password: pw }}\n\
         actions:\n  key: {KEY}\n  link_ttl: 30s\n  silence_durations: [2h, 30m]\n{ROBOTS}"
    ));
    let actions = config.actions.expect("actions");
    assert_eq!(actions.link_ttl, Duration::from_secs(30));
    assert_eq!(
        actions.silence_durations,
        [1800, 7200].map(Duration::from_secs),
        "shortest first"
    );
    match actions.alertmanager.authorization {
        Some(Authorization::Basic { username, password }) => {
            assert_eq!((username.as_str(), password.expose()), ("bridge", "pw"));
        }
        other => panic!("{other:?}"),
    }

    let config = check_ok(&format!(
        "external_url: https://bridge.example.com\n\
         alertmanager:\n  urls: [https://am:9093]\n  authorization: {{ credentials: tok }}\n\
         actions:\n  key: {KEY}\n{ROBOTS}"
    ));
    match config.actions.expect("actions").alertmanager.authorization {
        Some(Authorization::Scheme {
            scheme,
            credentials,
        }) => assert_eq!((scheme.as_str(), credentials.expose()), ("Bearer", "tok")),
        other => panic!("{other:?}"),
    }
}

#[test]
fn actions_need_an_address_a_key_and_an_alertmanager() {
    check_errors(
        &format!("actions:\n  link_ttl: 1h\n{ROBOTS}"),
        &[
            (1, "need `external_url`"),
            (1, "need `alertmanager.urls`"),
            (1, "need `key` or `key_file`"),
        ],
    );
    check_errors(
        &format!(
            "external_url: ftp://bridge\n\
             alertmanager:\n  urls: []\n\
             actions:\n  key: short\n  link_ttl: 0s\n  silence_durations: [30s, 1h, 1h, soon]\n{ROBOTS}"
        ),
        &[
            (1, "URL scheme must be http or https"),
            (2, "at least one URL"),
            (5, "at least 32"),
            (6, "longer than 0"),
            (7, "at least a minute"),
            (7, "offered twice"),
            (7, "is not a duration"),
        ],
    );
    check_errors(
        &format!(
            "external_url: https://bridge\n\
             alertmanager:\n  urls: [http://am:9093]\n  basic_auth: {{ password: pw }}\n  authorization: {{ credentials: x }}\n  tls_config: {{ cert_file: c.pem }}\n\
             actions:\n  key: {KEY}\n{ROBOTS}"
        ),
        &[
            (2, "both `basic_auth` and `authorization`"),
            (6, "both `cert_file` and `key_file`"),
        ],
    );
}
