//! `config::expand_env`: `${VAR}` expansion in the config text before YAML parsing.

use alertmanager_dingtalk::config::{EnvError, expand_env};

/// The environment every case sees.
fn lookup(name: &str) -> Option<String> {
    match name {
        "A" => Some("1".to_owned()),
        "TOKEN" => Some("4a8e0d1c7b2f".to_owned()),
        "EMPTY" => Some(String::new()),
        "MULTILINE" => Some("line one\nline two".to_owned()),
        "DOLLARS" => Some("p$${A}".to_owned()),
        _ => None,
    }
}

/// Expands `text`, expecting `expected`.
fn check(text: &str, expected: &str) {
    match expand_env(text, lookup) {
        Ok(actual) => assert_eq!(actual, expected, "{text:?}"),
        Err(errors) => panic!("{text:?}: {errors:?}"),
    }
}

/// Expands `text`, expecting errors at `(line, column)` whose messages contain the given
/// text, in that order.
fn check_errors(text: &str, expected: &[(u32, u32, &str)]) {
    let errors: Vec<EnvError> = expand_env(text, lookup).expect_err(text);
    let actual: Vec<(u32, u32)> = errors.iter().map(|e| (e.line, e.column)).collect();
    let wanted: Vec<(u32, u32)> = expected.iter().map(|(l, c, _)| (*l, *c)).collect();
    assert_eq!(actual, wanted, "{text:?}: {errors:?}");
    for (error, (_, _, mentions)) in errors.iter().zip(expected) {
        assert!(
            error.message.contains(mentions),
            "{:?} should mention {mentions:?}",
            error.message
        );
        assert!(!error.message.contains('\n'));
    }
}

#[test]
fn variables_are_replaced() {
    check("a: ${A}", "a: 1");
    check("a: \"${A}\"", "a: \"1\"");
    check("a: x${A}y${A}z", "a: x1y1z");
    check(
        "robots:\n  ops:\n    access_token: ${TOKEN}\n",
        "robots:\n  ops:\n    access_token: 4a8e0d1c7b2f\n",
    );
    check("a: ${EMPTY}", "a: ");
}

#[test]
fn text_without_variables_is_unchanged() {
    check("", "");
    check("a: 1\nb: [x, y]\n", "a: 1\nb: [x, y]\n");
    check("a: 5$\nb: $A\nc: {A}", "a: 5$\nb: $A\nc: {A}");
    check("名前: 値 # コメント", "名前: 値 # コメント");
}

#[test]
fn values_are_inserted_verbatim() {
    // A value is not expanded again.
    check("a: ${DOLLARS}", "a: p$${A}");
}

#[test]
fn defaults_apply_when_unset_or_empty() {
    check("a: ${NOPE:-x}", "a: x");
    check("a: ${EMPTY:-x}", "a: x");
    check("a: ${A:-x}", "a: 1");
    check("a: ${NOPE:-}", "a: ");
    check("a: ${NOPE:-http://proxy:3128}", "a: http://proxy:3128");
}

#[test]
fn double_dollar_is_a_literal_dollar() {
    check("a: $$", "a: $");
    check("price: $$5", "price: $5");
    check("a: $${A}", "a: ${A}");
    check("a: $$$${A}", "a: $${A}");
    check("a: $$${A}", "a: $1");
}

#[test]
fn comments_are_left_alone() {
    check("key: v # uses ${NOPE}", "key: v # uses ${NOPE}");
    check(
        "# set ${NOPE} first\nkey: ${A}",
        "# set ${NOPE} first\nkey: 1",
    );
    check("  # ${NOPE}\n", "  # ${NOPE}\n");
    check("key: ${A} # not ${NOPE}", "key: 1 # not ${NOPE}");
    check("- ${A} # ${NOPE}", "- 1 # ${NOPE}");
}

#[test]
fn a_hash_inside_a_value_is_not_a_comment() {
    check(r#"k: "a # ${A}""#, r#"k: "a # 1""#);
    check("k: 'a # ${A}'", "k: 'a # 1'");
    check(r#"k: "say \"hi\" # ${A}""#, r#"k: "say \"hi\" # 1""#);
    // An escaped backslash does not escape the closing quote.
    check(r#"k: "C:\\" # ${NOPE}"#, r#"k: "C:\\" # ${NOPE}"#);
    check("k: [\"# ${A}\", '# ${A}']", "k: [\"# 1\", '# 1']");
    // YAML starts a comment only after whitespace.
    check("k: a#${A}", "k: a#1");
    check("url: http://h/#${A}", "url: http://h/#1");
    // An apostrophe inside a plain value does not open a quote.
    check("msg: don't ${A}", "msg: don't 1");
    check("msg: don't # ${NOPE}", "msg: don't # ${NOPE}");
    // A quote ends at its line, so the next line starts fresh.
    check("a: \"x\"\nb: ${A} # ${NOPE}", "a: \"x\"\nb: 1 # ${NOPE}");
}

#[test]
fn a_doubled_single_quote_stays_inside_the_quote() {
    // In a single-quoted YAML scalar `''` is an escaped `'`, not the end of the quote.
    check("k: 'it''s # ${A}'", "k: 'it''s # 1'");
    check("k: 'a '' # ${A}'", "k: 'a '' # 1'");
}

#[test]
fn a_hash_inside_a_block_scalar_is_text() {
    // Lines of a `|` or `>` block are the value, `#` included: a Markdown heading or a
    // minijinja comment in a template is not a YAML comment.
    check(
        "text: |\n  ### Alerts in ${A}\n  {# note #} ${A}\nnext: ${A}\n",
        "text: |\n  ### Alerts in 1\n  {# note #} 1\nnext: 1\n",
    );
    // After the block, comments are comments again.
    check(
        "text: >\n  # ${A}\nnext: x # ${NOPE}\n",
        "text: >\n  # 1\nnext: x # ${NOPE}\n",
    );
}

#[test]
fn a_missing_variable_is_named_with_its_position() {
    check_errors(
        "a: ${NOPE}",
        &[(1, 4, "environment variable NOPE is not set")],
    );
    check_errors("a: 1\nbb: x ${NOPE}\n", &[(2, 7, "NOPE")]);
    // Columns count characters, not bytes.
    check_errors("名字: ${NOPE}", &[(1, 5, "NOPE")]);
}

#[test]
fn a_value_with_a_newline_is_refused() {
    check_errors("a: ${MULTILINE}", &[(1, 4, "MULTILINE contains a newline")]);
}

#[test]
fn malformed_references_are_errors() {
    check_errors("a: ${A", &[(1, 4, "not closed")]);
    check_errors("a: ${1A}", &[(1, 4, "not a valid")]);
    check_errors("a: ${}", &[(1, 4, "not a valid")]);
    check_errors("a: ${A B}", &[(1, 4, "not a valid")]);
}

#[test]
fn every_error_is_reported() {
    check_errors(
        "a: ${X}\nb: ${A}\nc: ${Y} ${MULTILINE}\nd: ${Z:-ok} ${W}",
        &[
            (1, 4, "X is not set"),
            (3, 4, "Y is not set"),
            (3, 9, "MULTILINE contains a newline"),
            (4, 13, "W is not set"),
        ],
    );
}
