//! `dingtalk::CAUSES`, the one table of what DingTalk's answers mean: every answer it names
//! has its retry decision written down here as well, every answer is read as its own row
//! (no earlier row shadows it), and docs/troubleshooting.md shows the same table.

use alertmanager_dingtalk::dingtalk::{Answer, CAUSES, Call, Retry, SendError};

/// Every answer the table names, with the retry decision it must lead to. A new row of the
/// table needs a line here: `every_answer_of_the_table_is_expected_here` says so.
const EXPECTED: &[(Answer, Retry)] = &[
    (Answer::ErrcodeSaying(310000, "keyword"), Retry::Never),
    (Answer::ErrcodeSaying(310000, "timestamp"), Retry::Never),
    (Answer::ErrcodeSaying(310000, "sign"), Retry::Never),
    (Answer::ErrcodeSaying(310000, "ip"), Retry::Never),
    (Answer::Errcode(310000), Retry::Never),
    (Answer::Errcode(300001), Retry::Never),
    (Answer::Errcode(300005), Retry::Never),
    (Answer::Errcode(400101), Retry::Never),
    (Answer::Errcode(400102), Retry::Never),
    (Answer::Errcode(400106), Retry::Never),
    (Answer::Errcode(400013), Retry::Never),
    (Answer::Errcode(460101), Retry::Shorter),
    (Answer::Errcode(43004), Retry::Never),
    (Answer::Errcode(40035), Retry::Never),
    (Answer::Errcode(130101), Retry::AfterPause),
    (Answer::Errcode(410100), Retry::AfterPause),
    (Answer::Errcode(660026), Retry::AfterPause),
    (Answer::Errcode(-1), Retry::Later),
    (Answer::Errcode(500), Retry::Later),
    (Answer::Errcode(9001), Retry::Later),
    (Answer::OtherErrcode, Retry::Never),
    (
        Answer::Code("Forbidden.AccessDenied.QpsLimitForAppkeyAndApi"),
        Retry::AfterPause,
    ),
    (
        Answer::Code("Forbidden.AccessDenied.QpsLimitForApi"),
        Retry::AfterPause,
    ),
    (Answer::Status(429), Retry::AfterPause),
    (
        Answer::Code("Forbidden.AccessDenied.ApiCountLimitForOrg"),
        Retry::AfterPause,
    ),
    (Answer::ServerError, Retry::Later),
    (Answer::TokenCallRefused, Retry::Never),
    (Answer::Code("InvalidAuthentication"), Retry::Never),
    (Answer::CodeContaining("PermissionDenied"), Retry::Never),
    (
        Answer::Code("invalidParameter.robotCode.notExsit"),
        Retry::Never,
    ),
    (
        Answer::Code("invalidParameter.robotCode.auth"),
        Retry::Never,
    ),
    (Answer::Code("invalid.openConversationId"), Retry::Never),
    (Answer::Code("bot.stopped"), Retry::Never),
    (
        Answer::Code("invalidParameter.msgParam.invalid"),
        Retry::Never,
    ),
    (
        Answer::Code("invalidParameter.msgKey.invalid"),
        Retry::Never,
    ),
    (Answer::OtherCode, Retry::Never),
    (Answer::TooLong, Retry::Shorter),
    (Answer::Proxy, Retry::Later),
    (Answer::BareStatus(407), Retry::Later),
    (Answer::BareStatus(404), Retry::Never),
    (Answer::OtherBareStatus, Retry::Never),
    (Answer::BadAnswer, Retry::Later),
    (Answer::Network, Retry::Later),
];

/// Failures that are `answer`, as the client makes them.
fn samples(answer: Answer) -> Vec<SendError> {
    let rejected = |errcode: i64, errmsg: &str| SendError::Rejected {
        errcode,
        errmsg: errmsg.to_owned(),
    };
    let refused = |call: Call, status: u16, code: &str| SendError::OpenApi {
        call,
        status,
        code: code.to_owned(),
        message: "message".to_owned(),
        request_id: "request".to_owned(),
    };
    match answer {
        Answer::Errcode(errcode) => vec![rejected(errcode, "error"), rejected(errcode, "")],
        Answer::ErrcodeSaying(errcode, word) => vec![
            rejected(errcode, &format!("the {word} is wrong")),
            rejected(errcode, &format!("{} WRONG", word.to_uppercase())),
        ],
        Answer::OtherErrcode => vec![rejected(123_456, "new"), rejected(1, "")],
        Answer::Code(code) => vec![
            refused(Call::GroupMessage, 400, code),
            refused(Call::GroupMessage, 403, code),
        ],
        Answer::CodeContaining(part) => vec![refused(
            Call::GroupMessage,
            403,
            &format!("Forbidden.{part}.robot"),
        )],
        Answer::TokenCallRefused => vec![
            refused(Call::AccessToken, 400, "invalidClientId"),
            refused(Call::AccessToken, 401, ""),
        ],
        Answer::OtherCode => vec![
            refused(Call::GroupMessage, 400, "something.new"),
            refused(Call::GroupMessage, 404, ""),
        ],
        Answer::Status(status) => vec![
            SendError::Http(status),
            refused(Call::GroupMessage, status, ""),
            refused(Call::AccessToken, status, "Throttled"),
        ],
        Answer::ServerError => vec![
            SendError::Http(500),
            SendError::Http(503),
            refused(Call::GroupMessage, 502, "ServiceUnavailable"),
            refused(Call::AccessToken, 500, ""),
        ],
        Answer::BareStatus(status) => vec![SendError::Http(status)],
        Answer::OtherBareStatus => vec![
            SendError::Http(400),
            SendError::Http(302),
            SendError::Http(200),
        ],
        Answer::BadAnswer => vec![SendError::BadAnswer("<html>".to_owned())],
        Answer::Network => vec![SendError::Network("connection refused".to_owned())],
        Answer::Proxy => vec![SendError::Proxy("the proxy refused".to_owned())],
        Answer::TooLong => vec![SendError::TooLong {
            bytes: 16_000,
            limit: 15_000,
        }],
    }
}

#[test]
fn every_answer_of_the_table_is_expected_here() {
    let named: Vec<(Answer, Retry)> = CAUSES
        .iter()
        .flat_map(|cause| cause.answers.iter().map(|answer| (*answer, cause.retry)))
        .collect();
    for (answer, retry) in &named {
        assert!(
            EXPECTED.contains(&(*answer, *retry)),
            "the table says {answer:?} is {retry:?}; EXPECTED does not"
        );
    }
    assert_eq!(named.len(), EXPECTED.len(), "EXPECTED names more answers");
}

#[test]
fn every_answer_is_read_as_its_own_row_and_decides_the_retry() {
    for (index, cause) in CAUSES.iter().enumerate() {
        for answer in cause.answers {
            let expected = EXPECTED
                .iter()
                .find(|(a, _)| a == answer)
                .map(|(_, retry)| *retry);
            for error in samples(*answer) {
                assert!(
                    *error.cause() == CAUSES[index],
                    "{error:?} should be row {index} ({answer:?}), is {:?}",
                    error.cause().answers
                );
                assert_eq!(Some(error.retry()), expected, "{error:?}");
                assert_eq!(error.meaning(), cause.meaning, "{error:?}");
            }
        }
    }
}

/// The fix of issue 20: HTTP 429 pauses the robot, and says so.
#[test]
fn http_429_is_throttling_in_what_it_means_too() {
    let error = SendError::Http(429);
    assert_eq!(error.retry(), Retry::AfterPause);
    assert!(error.meaning().contains("faster"), "{}", error.meaning());
    let hint = error.hint(&crate::robot(&["HertzBeat"], &[]));
    assert!(hint.contains("pauses"), "{hint}");
}

/// The one table, as docs/troubleshooting.md shows it.
fn docs_tables() -> String {
    let mut out = String::new();
    type Belongs = fn(&Answer) -> bool;
    let groups: [(&str, Belongs); 3] = [
        ("Custom (webhook) robots: `errcode`", |a| {
            matches!(
                a,
                Answer::Errcode(_) | Answer::ErrcodeSaying(..) | Answer::OtherErrcode
            )
        }),
        ("Robots of applications: `code`", |a| {
            matches!(
                a,
                Answer::Code(_)
                    | Answer::CodeContaining(_)
                    | Answer::TokenCallRefused
                    | Answer::OtherCode
                    | Answer::TooLong
            )
        }),
        ("Either kind: HTTP and the network", |_| true),
    ];
    let mut listed = vec![false; CAUSES.len()];
    for (heading, belongs) in groups {
        out.push_str(&format!(
            "### {heading}\n\n| answer (its label in `dingtalk_errors_total`) | meaning | the bridge | what to check |\n| --- | --- | --- | --- |\n"
        ));
        for (index, cause) in CAUSES.iter().enumerate() {
            if listed[index] || !cause.answers.iter().all(belongs) {
                continue;
            }
            listed[index] = true;
            let answers: Vec<String> = cause.answers.iter().map(label).collect();
            let mut hint = placeholders(cause.hint);
            if let Some(app_hint) = cause.app_hint {
                hint.push_str(&format!(
                    "; for a robot of an application: {}",
                    placeholders(app_hint)
                ));
            }
            out.push_str(&format!(
                "| {} | {} | {} | {} |\n",
                answers.join(", "),
                cell(cause.meaning),
                does(cause.retry),
                cell(&hint)
            ));
        }
        out.push('\n');
    }
    out
}

fn label(answer: &Answer) -> String {
    match answer {
        Answer::Errcode(errcode) => format!("`{errcode}`"),
        Answer::ErrcodeSaying(errcode, word) => format!("`{errcode}`, errmsg mentions “{word}”"),
        Answer::OtherErrcode => "any other errcode".to_owned(),
        Answer::Code(code) => format!("`{code}`"),
        Answer::CodeContaining(part) => format!("a code containing `{part}`"),
        Answer::TokenCallRefused => "any other code of the `access-token` call".to_owned(),
        Answer::OtherCode => "any other code".to_owned(),
        Answer::Status(status) => format!("`http_{status}`"),
        Answer::ServerError => "`http_5xx` (for example `http_502`)".to_owned(),
        Answer::BareStatus(status) => format!("`http_{status}` without a DingTalk answer"),
        Answer::OtherBareStatus => "any other `http_<status>`".to_owned(),
        Answer::BadAnswer => "`bad_answer`".to_owned(),
        Answer::Network => "`network`".to_owned(),
        Answer::Proxy => "`proxy`".to_owned(),
        Answer::TooLong => "`too_long`".to_owned(),
    }
}

fn does(retry: Retry) -> &'static str {
    match retry {
        Retry::Later => "retries after a backoff",
        Retry::AfterPause => "pauses the robot, then retries",
        Retry::Shorter => "sends the alerts again in shorter messages",
        Retry::Never => "gives up (dead letter)",
    }
}

fn placeholders(hint: &str) -> String {
    cell(
        &hint
            .replace("{keyword}", "`<keyword>`")
            .replace("{rate_limit}", "`<rate_limit>`"),
    )
}

fn cell(text: &str) -> String {
    text.replace('|', "\\|")
}

#[test]
fn the_docs_show_the_table() {
    const START: &str = "<!-- generated from dingtalk::CAUSES by tests/unit/causes.rs; \
                         UPDATE_DOCS=1 cargo test --test unit causes rewrites it -->\n";
    const END: &str = "<!-- end of the generated table -->";
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/troubleshooting.md");
    let page = std::fs::read_to_string(&path).unwrap();
    let (before, rest) = page.split_once(START).expect("the start marker");
    let (shown, after) = rest.split_once(END).expect("the end marker");
    let expected = docs_tables();
    if shown != expected && std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(&path, format!("{before}{START}{expected}{END}{after}")).unwrap();
        return;
    }
    assert!(
        shown == expected,
        "docs/troubleshooting.md's tables differ from dingtalk::CAUSES; \
         run UPDATE_DOCS=1 cargo test --test unit causes. Expected:\n{expected}"
    );
}
