//! `Matcher::parse` and `Matcher::matches`: Alertmanager's matcher syntax and semantics.

use alertmanager_dingtalk::ingest::LabelSet;
use alertmanager_dingtalk::route::matcher::{Matcher, MatcherError, Op};

fn labels(pairs: &[(&str, &str)]) -> LabelSet {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Parses `matcher` and checks whether it matches `pairs`.
fn check(matcher: &str, pairs: &[(&str, &str)], expected: bool) {
    let parsed = Matcher::parse(matcher).unwrap_or_else(|e| panic!("{matcher}: {e}"));
    assert_eq!(
        parsed.matches(&labels(pairs)),
        expected,
        "{matcher} against {pairs:?}"
    );
}

/// Parses `matcher`, expecting an error of the shape `expected` whose message contains
/// `mentions`.
fn check_error(matcher: &str, expected: fn(&MatcherError) -> bool, mentions: &str) {
    let error = Matcher::parse(matcher).expect_err(matcher);
    assert!(expected(&error), "{matcher}: unexpected error {error:?}");
    let message = error.to_string();
    assert!(
        message.contains(mentions),
        "{matcher}: {message:?} should mention {mentions:?}"
    );
    assert!(
        !message.contains('\n'),
        "{matcher}: {message:?} is one line"
    );
}

#[test]
fn equal() {
    check(r#"team="db""#, &[("team", "db")], true);
    check(r#"team="db""#, &[("team", "dbx")], false);
    check(r#"team="db""#, &[("team", "DB")], false);
    check(r#"team="db""#, &[("owner", "db")], false);
}

#[test]
fn not_equal() {
    check(r#"team!="db""#, &[("team", "db")], false);
    check(r#"team!="db""#, &[("team", "web")], true);
    check(r#"team!="db""#, &[], true);
}

#[test]
fn regex_is_anchored() {
    check(r#"team=~"db""#, &[("team", "db")], true);
    check(r#"team=~"db""#, &[("team", "dbx")], false);
    check(r#"team=~"db""#, &[("team", "xdb")], false);
    check(r#"team=~"db.*""#, &[("team", "dbx")], true);
    // The alternation is anchored as a whole, not only its first and last branch.
    check(
        r#"severity=~"critical|page""#,
        &[("severity", "critical")],
        true,
    );
    check(
        r#"severity=~"critical|page""#,
        &[("severity", "page")],
        true,
    );
    check(
        r#"severity=~"critical|page""#,
        &[("severity", "critical-ish")],
        false,
    );
    check(
        r#"severity=~"critical|page""#,
        &[("severity", "no-page")],
        false,
    );
}

#[test]
fn not_regex() {
    check(r#"team!~"db|web""#, &[("team", "db")], false);
    check(r#"team!~"db|web""#, &[("team", "web")], false);
    check(r#"team!~"db|web""#, &[("team", "dbx")], true);
    check(r#"team!~"db|web""#, &[], true);
}

#[test]
fn unquoted_values() {
    check("team=db", &[("team", "db")], true);
    check("team=db", &[("team", "dbx")], false);
    check("team!=db", &[("team", "web")], true);
    check("team=~db|web", &[("team", "web")], true);
    check("team=~db|web", &[("team", "webx")], false);
    check("team!~db", &[("team", "db")], false);
}

#[test]
fn escapes_in_quoted_values() {
    check(
        r#"summary="say \"hi\"""#,
        &[("summary", r#"say "hi""#)],
        true,
    );
    check(r#"path="C:\\data""#, &[("path", r"C:\data")], true);
    check(r#"msg="two\nlines""#, &[("msg", "two\nlines")], true);
    // Regex escapes reach the regex engine unchanged.
    check(
        r#"instance=~"db\.example""#,
        &[("instance", "db.example")],
        true,
    );
    check(
        r#"instance=~"db\.example""#,
        &[("instance", "dbxexample")],
        false,
    );
    check(r#"port=~"\d+""#, &[("port", "9100")], true);
    check(r#"port=~"\d+""#, &[("port", "http")], false);
}

#[test]
fn missing_label_matches_as_empty_string() {
    check(r#"foo="""#, &[], true);
    check(r#"foo!="""#, &[], false);
    check(r#"foo=~".*""#, &[], true);
    check(r#"foo=~".+""#, &[], false);
    check(r#"foo!~".+""#, &[], true);
    check(r#"foo="""#, &[("foo", "bar")], false);
    check(r#"foo!="""#, &[("foo", "bar")], true);
}

#[test]
fn whitespace_around_the_operator() {
    check(r#"team = "db""#, &[("team", "db")], true);
    check(r#"  team="db"  "#, &[("team", "db")], true);
    check(r#"team =~ "d.""#, &[("team", "db")], true);
    check(r#"team !~ "d.""#, &[("team", "db")], false);
    check("team != db", &[("team", "db")], false);
    check("team = db ", &[("team", "db")], true);
}

#[test]
fn display_shows_the_matcher_as_written() {
    for (input, shown) in [
        ("team = db", r#"team="db""#),
        (r#"team!="db""#, r#"team!="db""#),
        (r#"team=~"db|web""#, r#"team=~"db|web""#),
        ("team!~db", r#"team!~"db""#),
    ] {
        let matcher = Matcher::parse(input).unwrap();
        assert_eq!(matcher.to_string(), shown, "{input}");
    }
}

#[test]
fn no_operator() {
    let no_operator = |e: &MatcherError| matches!(e, MatcherError::NoOperator(_));
    check_error("team", no_operator, "no operator");
    check_error("team db", no_operator, "no operator");
    check_error(r#"team~"db""#, no_operator, "no operator");
    check_error(r#"team=="db""#, |_| true, "team");
}

#[test]
fn bad_label_name() {
    let bad_name = |e: &MatcherError| matches!(e, MatcherError::BadName(_));
    check_error(r#"1team="db""#, bad_name, "invalid label name");
    check_error(r#"team-name="db""#, bad_name, "invalid label name");
    check_error(r#"="db""#, bad_name, "invalid label name");
    check_error(r#"tëam="db""#, bad_name, "invalid label name");
}

#[test]
fn bad_quoting() {
    let bad_quoting = |e: &MatcherError| matches!(e, MatcherError::BadQuoting(_));
    check_error(r#"team="db"#, bad_quoting, "badly quoted");
    check_error(r#"team="db\""#, bad_quoting, "badly quoted");
    check_error(r#"team="d"b""#, bad_quoting, "badly quoted");
    check_error(r#"team=d"b"#, bad_quoting, "badly quoted");
}

#[test]
fn bad_regex_says_what_is_wrong() {
    let bad_regex = |e: &MatcherError| matches!(e, MatcherError::BadRegex { .. });
    check_error(r#"team=~"(db""#, bad_regex, "unclosed group");
    check_error(r#"team!~"db["#, |_| true, "badly quoted");
    check_error(r#"team!~"[db""#, bad_regex, "unclosed character class");
    check_error(
        r#"team=~"*db""#,
        bad_regex,
        "repetition operator missing expression",
    );
    check_error(r#"team=~"(db""#, bad_regex, r#"team=~\"(db\""#);
}

#[test]
fn a_matcher_from_its_parts_matches_as_its_written_form_does() {
    let odd = r#"x"y\"#;
    let from_parts = Matcher::new("job", Op::Equal, odd).unwrap();
    assert!(from_parts.matches(&labels(&[("job", odd)])));
    assert!(!from_parts.matches(&labels(&[("job", "x")])));
    let regex = Matcher::new("instance", Op::NotRegex, "db-.*").unwrap();
    assert!(!regex.matches(&labels(&[("instance", "db-1")])));
    assert!(regex.matches(&labels(&[("instance", "web-1")])));
    assert_eq!(
        regex.to_string(),
        Matcher::parse(r#"instance!~"db-.*""#).unwrap().to_string()
    );
    assert!(matches!(
        Matcher::new("bad-name", Op::Equal, "x"),
        Err(MatcherError::BadName(_))
    ));
    assert!(matches!(
        Matcher::new("a", Op::Regex, "("),
        Err(MatcherError::BadRegex { .. })
    ));
}
