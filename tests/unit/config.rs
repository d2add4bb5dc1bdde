//! `config::load_with_env`: loading `config.yaml`, and every problem reported at once
//! with its position.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use alertmanager_dingtalk::config::{Config, ConfigError, load_with_env};
use alertmanager_dingtalk::dingtalk::RateLimit;
use jiff::civil::Weekday;

use crate::webhook;

/// A directory under the system temp dir, removed when dropped.
/// A fresh directory under the system temp dir, removed when dropped.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new() -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "alertmanager-dingtalk-unit-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn environment(name: &str) -> Option<String> {
    match name {
        "DINGTALK_ACCESS_TOKEN" => Some("env-token".to_owned()),
        _ => None,
    }
}

/// Loads `yaml` as `config.yaml` in a fresh directory.
fn load(yaml: &str) -> (TempDir, Result<Config, Vec<ConfigError>>) {
    let dir = TempDir::new();
    let file = dir.write("config.yaml", yaml);
    let result = load_with_env(&file, environment).map_err(|errors| errors.0);
    (dir, result)
}

pub(crate) fn check_ok(yaml: &str) -> Config {
    let (_dir, result) = load(yaml);
    result.unwrap_or_else(|errors| panic!("{errors:#?}"))
}

/// Loads `yaml`, expecting exactly the errors `(line, message part)`, in order.
pub(crate) fn check_errors(yaml: &str, expected: &[(u32, &str)]) {
    let (dir, result) = load(yaml);
    let errors = result
        .err()
        .unwrap_or_else(|| panic!("should not load:\n{yaml}"));
    let lines: Vec<u32> = errors.iter().map(|e| e.position.line).collect();
    let wanted: Vec<u32> = expected.iter().map(|(line, _)| *line).collect();
    assert_eq!(lines, wanted, "{errors:#?}");
    for (error, (_, mentions)) in errors.iter().zip(expected) {
        assert!(
            error.message.contains(mentions),
            "{:?} should mention {mentions:?}",
            error.message
        );
        assert_eq!(error.file, dir.0.join("config.yaml"));
        let shown = error.to_string();
        let prefix = format!(
            "{}:{}:{}: ",
            error.file.display(),
            error.position.line,
            error.position.column
        );
        assert_eq!(shown, format!("{prefix}{}", error.message));
        assert!(!shown.contains('\n'), "{shown:?}");
    }
}

const MINIMAL: &str = "\
robots:
  ops:
    access_token: abc
strategies:
  - name: all
    robots: [ops]
";

fn repo_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config.yaml")
}

#[test]
fn the_repository_config_loads_with_the_token_set() {
    let config = load_with_env(&repo_config(), environment).unwrap_or_else(|e| panic!("{e}"));
    let ops = &config.robots["ops"];
    assert_eq!(webhook(ops).access_token.expose(), "env-token");
    assert!(webhook(ops).secret.is_none(), "DINGTALK_SECRET is unset");
    assert_eq!(ops.keywords, vec!["HertzBeat"]);
    assert_eq!(ops.rate_limit, RateLimit::DINGTALK);
    assert_eq!(config.strategies.len(), 1);
    assert_eq!(config.strategies[0].robots, vec!["ops"]);
    assert_eq!(config.listen.port(), 8060);

    let signed = load_with_env(&repo_config(), |name| match name {
        "DINGTALK_SECRET" => Some("SECabc".to_owned()),
        other => environment(other),
    })
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        webhook(&signed.robots["ops"])
            .secret
            .as_ref()
            .map(|s| s.expose()),
        Some("SECabc")
    );
}

#[test]
fn the_repository_config_names_the_missing_token() {
    let errors = load_with_env(&repo_config(), |_| None).unwrap_err();
    let text = std::fs::read_to_string(repo_config()).unwrap();
    let line = text
        .lines()
        .position(|l| l.contains("access_token: \"${DINGTALK_ACCESS_TOKEN}\""))
        .unwrap() as u32
        + 1;
    assert_eq!(errors.0.len(), 1, "{errors}");
    assert_eq!(errors.0[0].position.line, line);
    assert!(
        errors.0[0].message.contains("DINGTALK_ACCESS_TOKEN"),
        "{errors}"
    );
    assert!(errors.to_string().contains("config.yaml"), "{errors}");
}

#[test]
fn a_minimal_config_gets_the_defaults() {
    let config = check_ok(MINIMAL);
    let ops = &config.robots["ops"];
    assert_eq!(
        webhook(ops).send_url(0).as_str(),
        "https://oapi.dingtalk.com/robot/send?access_token=abc"
    );
    assert_eq!(ops.keywords, vec!["HertzBeat"]);
    assert_eq!(config.timeout, Duration::from_secs(5));
    assert_eq!(config.timezone.iana_name(), Some("Asia/Shanghai"));
    assert!(config.strategies[0].send_resolved);
    assert_eq!(config.strategies[0].template, "default");
    assert_eq!(
        config.http,
        alertmanager_dingtalk::config::HttpLimits {
            max_connections: 512,
            read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_header_bytes: 16384,
        }
    );
}

#[test]
fn every_problem_is_reported_with_its_line() {
    check_errors(
        "\
robots:
  ops:
    access_token: abc
    rate_limt: 20/min
strategies:
  - name: db
    matchers:
      - 'team=~\"(db\"'
    robots: [ops, dba]
",
        &[
            (4, "unknown key `rate_limt`"),
            (8, "invalid regex: unclosed group"),
            (9, "robot `dba`, which is not defined"),
        ],
    );
}

#[test]
fn all_errors_display_one_per_line() {
    let dir = TempDir::new();
    let file = dir.write(
        "config.yaml",
        "robots:\n  ops:\n    access_token: abc\n    rate_limt: 20/min\n    msgtyp: text\n",
    );
    let errors = load_with_env(&file, environment).unwrap_err();
    let shown = errors.to_string();
    let lines: Vec<&str> = shown.lines().collect();
    assert_eq!(lines.len(), 2, "{shown}");
    assert!(lines[0].ends_with("config.yaml:4:5: unknown key `rate_limt` in robots.ops"));
    assert!(lines[1].ends_with("config.yaml:5:5: unknown key `msgtyp` in robots.ops"));
}

#[test]
fn errors_point_at_the_key_line_and_column() {
    let (_dir, result) = load("robots:\n  ops:\n    access_token: abc\n    rate_limt: 20/min\n");
    let errors = result.unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!((errors[0].position.line, errors[0].position.column), (4, 5));
    assert!(
        errors[0]
            .to_string()
            .ends_with("config.yaml:4:5: unknown key `rate_limt` in robots.ops"),
        "{}",
        errors[0]
    );
}

#[test]
fn unknown_keys_anywhere() {
    check_errors(
        "\
listn: 0.0.0.0:8060
dingtalk:
  timeot: 5s
robots:
  ops:
    access_token: abc
    mention:
      mobile: ['13800000000']
strategies:
  - name: all
    robots: [ops]
    contine: true
    active_time:
      day: [mon]
",
        &[
            (1, "unknown key `listn` at the top level"),
            (3, "unknown key `timeot` in dingtalk"),
            (8, "unknown key `mobile` in robots.ops.mention"),
            (12, "unknown key `contine` in strategies[0]"),
            (14, "unknown key `day` in strategies[0].active_time"),
        ],
    );
}

#[test]
fn unknown_keys_of_names_with_dots_are_found() {
    check_errors(
        "\
robots:
  team.db:
    access_token: abc
    rate_limt: 20/min
",
        &[(4, "unknown key `rate_limt` in robots.team.db")],
    );
}

#[test]
fn a_robot_gives_exactly_one_source_of_token() {
    check_errors(
        "\
robots:
  ops:
    webhook: https://oapi.dingtalk.com/robot/send?access_token=abc
    access_token: abc
",
        &[(
            2,
            "needs exactly one of `webhook`, `access_token` or `access_token_file`",
        )],
    );
    check_errors(
        "\
robots:
  ops:
    secret: SECabc
",
        &[(2, "needs exactly one of")],
    );
}

#[test]
fn a_webhook_needs_its_access_token() {
    check_errors(
        "\
robots:
  ops:
    webhook: https://oapi.dingtalk.com/robot/send
",
        &[(3, "webhook has no access_token")],
    );
    check_errors(
        "\
robots:
  ops:
    webhook: https://oapi.dingtalk.com/robot/send?access_token=
",
        &[(3, "webhook has no access_token")],
    );
    check_errors(
        "\
robots:
  ops:
    webhook: ftp://oapi.dingtalk.com/robot/send?access_token=abc
",
        &[(3, "http or https")],
    );
}

#[test]
fn a_webhook_is_split_into_api_url_and_token() {
    let config = check_ok(
        "\
robots:
  ops:
    webhook: https://oapi.dingtalk.com/robot/send?access_token=4a8e0d1c
strategies:
  - name: all
    robots: [ops]
",
    );
    let ops = &config.robots["ops"];
    assert_eq!(webhook(ops).access_token.expose(), "4a8e0d1c");
    assert_eq!(
        webhook(ops).api_url.as_str(),
        "https://oapi.dingtalk.com/robot/send"
    );
    assert!(!ops.redacted_url().contains("4a8e0d1c"));
}

#[test]
fn credential_files_are_read_relative_to_the_config_file() {
    let dir = TempDir::new();
    std::fs::create_dir_all(dir.0.join("secrets")).unwrap();
    dir.write("secrets/token", "file-token\n");
    dir.write("secrets/secret", "  SECfromfile\n");
    dir.write("secrets/webhook", "webhook-token\n");
    let file = dir.write(
        "config.yaml",
        "\
auth:
  bearer_token_file: secrets/webhook
robots:
  ops:
    access_token_file: secrets/token
    secret_file: secrets/secret
strategies:
  - name: all
    robots: [ops]
",
    );
    let config = load_with_env(&file, environment).unwrap_or_else(|e| panic!("{e}"));
    let ops = &config.robots["ops"];
    assert_eq!(webhook(ops).access_token.expose(), "file-token");
    assert_eq!(
        webhook(ops).secret.as_ref().map(|s| s.expose()),
        Some("SECfromfile")
    );
    let webhook_token = config.bearer_token.expect("auth.bearer_token_file");
    let header = hyper::header::HeaderValue::from_static("Bearer webhook-token");
    assert!(alertmanager_dingtalk::server::auth::admits(
        &webhook_token,
        Some(&header)
    ));
}

#[test]
fn inbound_auth_needs_one_non_empty_token() {
    assert!(check_ok(MINIMAL).bearer_token.is_none());
    check_errors(
        &format!("auth:\n  bearer_token: abc\n  bearer_token_file: token\n{MINIMAL}"),
        &[(1, "keep one")],
    );
    check_errors(
        &format!("auth:\n  bearer_token: \"${{UNSET_TOKEN:-}}\"\n{MINIMAL}"),
        &[(2, "bearer token is empty")],
    );
    check_errors(
        &format!("auth:\n  bearer_token_file: no/such/file\n{MINIMAL}"),
        &[(2, "cannot read")],
    );
    check_errors(
        &format!("auth:\n  token: abc\n{MINIMAL}"),
        &[(2, "unknown key `token` in auth")],
    );
}

#[test]
fn a_missing_credential_file_is_an_error_at_its_key() {
    check_errors(
        "\
robots:
  ops:
    access_token_file: no/such/file
",
        &[(3, "cannot read")],
    );
}

#[test]
fn bad_values() {
    check_errors(
        &format!("dingtalk:\n  timeout: 5 parsecs\n{MINIMAL}"),
        &[(2, "\"5 parsecs\" is not a duration")],
    );
    check_errors(
        &format!("delivery:\n  shutdown_timeout: soon\n{MINIMAL}"),
        &[(2, "\"soon\" is not a duration")],
    );
    check_errors(
        "robots:\n  ops:\n    access_token: abc\n    rate_limit: fast\n",
        &[(4, "rate limit \"fast\"")],
    );
    check_errors(
        "robots:\n  ops:\n    access_token: abc\n    rate_limit: 0/min\n",
        &[(4, "allows no messages")],
    );
    check_errors(
        &format!("timezone: Mars/Olympus_Mons\n{MINIMAL}"),
        &[(1, "unknown time zone \"Mars/Olympus_Mons\"")],
    );
    check_errors(
        &format!("listen: nowhere\n{MINIMAL}"),
        &[(1, "is not host:port")],
    );
    check_errors(
        &format!("dingtalk:\n  api_url: not a url\n{MINIMAL}"),
        &[(2, "invalid URL")],
    );
    check_errors(
        &format!("dingtalk:\n  api_url: https://钉钉.example/robot/send\n{MINIMAL}"),
        &[(2, "write it in its ASCII (punycode, xn--...) form")],
    );
    check_errors(
        &format!("keywords: ['']\n{MINIMAL}"),
        &[(1, "keywords must not be empty")],
    );
    check_errors(
        &format!(
            "http:\n  max_connections: 0\n  read_timeout: 0s\n  idle_timeout: later\n  max_header_bytes: 100\n{MINIMAL}"
        ),
        &[
            (2, "http.max_connections must be at least 1"),
            (3, "http.read_timeout must be longer than 0s"),
            (4, "\"later\" is not a duration"),
            (5, "http.max_header_bytes must be at least 1024"),
        ],
    );
}

#[test]
fn a_robots_own_keywords_must_not_be_empty() {
    // A robot's `keywords:` replaces the top-level list, so the same rule applies: an
    // empty keyword is "contained" in every text, so no message would carry a real one.
    check_errors(
        "robots:\n  ops:\n    access_token: abc\n    keywords: ['']\n",
        &[(4, "keywords must not be empty")],
    );
}

#[test]
fn strategy_names_are_unique() {
    check_errors(
        "\
robots:
  ops:
    access_token: abc
strategies:
  - name: all
    robots: [ops]
  - name: other
    robots: [ops]
  - name: all
    robots: [ops]
",
        &[(9, "strategy name `all` is used twice")],
    );
}

#[test]
fn a_strategy_needs_a_name_and_robots() {
    check_errors(
        "\
robots:
  ops:
    access_token: abc
strategies:
  - robots: [ops]
  - name: nobody
",
        &[(5, "needs a `name`"), (6, "names no robots")],
    );
}

#[test]
fn templates_must_be_defined() {
    check_errors(
        "\
robots:
  ops:
    access_token: abc
strategies:
  - name: all
    robots: [ops]
    template: fancy
",
        &[(7, "template `fancy` is not defined")],
    );
}

#[test]
fn template_syntax_errors_have_a_position() {
    check_errors(
        "\
robots:
  ops:
    access_token: abc
templates:
  short:
    title: '{{ alertname }}'
    text: |
      {% for a in alerts %}
      - {{ a.name }
      {% endfor %}
strategies:
  - name: all
    robots: [ops]
    template: short
",
        &[(
            7,
            "template `short` (template line 2 `- {{ a.name }`): unexpected",
        )],
    );
}

#[test]
fn a_template_reading_a_variable_templates_are_not_given_is_an_error_at_its_line() {
    let config = |text: &str| {
        format!(
            "robots:\n  ops:\n    access_token: abc\ntemplates:\n  short:\n    title: '{{{{ alertname }}}}'\n    text: |\n{}\nstrategies:\n  - name: all\n    robots: [ops]\n    template: short\n",
            text.lines()
                .map(|l| format!("      {l}"))
                .collect::<Vec<_>>()
                .join("\n")
        )
    };
    check_errors(
        &config(
            "{% for a in alerts %}\n- {{ a.labels.instance }}\n- {{ a.lables.instance }}\n{% endfor %}",
        ),
        &[(
            7,
            "template `short` (template line 3 `- {{ a.lables.instance }}`): reads a variable templates are not given",
        )],
    );
    // Only on resolved alerts: found on the sample's resolved alert.
    check_errors(
        &config("{% if status == 'resolved' %}{{ alerts[0].ended_at }}{% endif %}"),
        &[(7, "template line 1")],
    );
    check_errors(&config("{{ firing_cnt }}"), &[(7, "template line 1")]);
    // Labels and annotations an alert may or may not have, and the data model's own names,
    // are no error.
    check_ok(&config(
        "{{ status }} {{ firing_count }} {{ common_labels.team }} {{ keyword }}\n\
         {% for a in alerts %}{{ a.annotations.runbook_url }} {{ a.labels.nope }} {{ a.duration }} {{ a.silence_url }}\n\
         {% for k, v in a.key_labels|items %}{{ k }}={{ v }}{% endfor %}{% if a.ends_at %}{{ a.ends_at }}{% endif %}{% endfor %}",
    ));
}

#[test]
fn the_built_in_templates_read_only_variables_templates_are_given() {
    let config = check_ok(MINIMAL);
    for template in ["default", "default-zh"] {
        let unknown = config.renderer.unknown_variables(template, &[]);
        assert!(unknown.is_empty(), "{template}: {unknown:#?}");
    }
}

#[test]
fn templates_can_be_defined_inline_or_in_a_file() {
    let dir = TempDir::new();
    dir.write(
        "short.j2",
        "{% for a in alerts %}- {{ a.name }}\n{% endfor %}",
    );
    let file = dir.write(
        "config.yaml",
        "\
robots:
  ops:
    access_token: abc
templates:
  inline:
    title: '[{{ status }}] {{ alertname }}'
    text: '{{ alerts|length }} alerts'
  from_file:
    text_file: short.j2
strategies:
  - name: a
    robots: [ops]
    template: inline
    continue: true
  - name: b
    robots: [ops]
    template: from_file
",
    );
    let config = load_with_env(&file, environment).unwrap_or_else(|e| panic!("{e}"));
    assert!(config.renderer.has_template("inline"));
    assert!(config.renderer.has_template("from_file"));
    assert!(config.strategies[0].continue_matching);
    assert!(!config.strategies[1].continue_matching);
}

#[test]
fn a_template_needs_exactly_one_text() {
    check_errors(
        "\
templates:
  neither:
    title: x
  both:
    text: x
    text_file: x.j2
",
        &[
            (2, "template `neither` needs `text` or `text_file`"),
            (4, "template `both` has both `text` and `text_file`"),
        ],
    );
}

#[test]
fn active_time_is_parsed() {
    let config = check_ok(
        "\
robots:
  ops:
    access_token: abc
strategies:
  - name: weekend-nights
    robots: [ops]
    send_resolved: false
    active_time:
      days: [fri, sat-sun]
      start: '22:00'
      end: '06:00'
      timezone: Europe/Berlin
",
    );
    let strategy = &config.strategies[0];
    assert!(!strategy.send_resolved);
    let window = strategy.active_time.as_ref().unwrap();
    assert_eq!(
        window.days,
        vec![Weekday::Friday, Weekday::Saturday, Weekday::Sunday]
    );
    assert_eq!(window.timezone.iana_name(), Some("Europe/Berlin"));
    // Saturday 2024-05-04 01:00 in Berlin is Friday 23:00 UTC.
    assert!(window.contains("2024-05-03T23:00:00Z".parse().unwrap()));
    assert!(!window.contains("2024-05-03T12:00:00Z".parse().unwrap()));
}

#[test]
fn bad_active_time() {
    check_errors(
        "\
robots:
  ops:
    access_token: abc
strategies:
  - name: bad
    robots: [ops]
    active_time:
      days: [funday]
      start: '25:00'
      end: '18:00'
      timezone: Nowhere/Town
",
        &[
            (8, "\"funday\" is not a weekday"),
            (9, "\"25:00\" is not a time of day"),
            (11, "unknown time zone"),
        ],
    );
    check_errors(
        "\
robots:
  ops:
    access_token: abc
strategies:
  - name: empty
    robots: [ops]
    active_time:
      start: '09:00'
      end: '09:00'
",
        &[(7, "start and end are equal")],
    );
}

#[test]
fn invalid_yaml_has_a_position() {
    check_errors("robots:\n  ops: [\n", &[(2, "")]);
    check_errors("robots: 5\n", &[(1, "")]);
}

#[test]
fn a_missing_file_is_one_error() {
    let dir = TempDir::new();
    let errors = load_with_env(&dir.0.join("nope.yaml"), environment).unwrap_err();
    assert_eq!(errors.0.len(), 1);
    assert!(errors.0[0].message.contains("cannot read the config file"));
}

#[test]
fn secrets_never_appear_in_errors() {
    for yaml in [
        // Validation errors next to credentials.
        "\
robots:
  ops:
    webhook: https://oapi.dingtalk.com/robot/send?access_token=SUPERSECRET
    secret: SECSUPERSECRET
    rate_limit: sometimes
  other:
    access_token: SUPERSECRET
    webhook: https://oapi.dingtalk.com/robot/send?access_token=SUPERSECRET
",
        // A YAML error right at a credential.
        "\
robots:
  ops:
    access_token: [SUPERSECRET
",
        "\
robots:
  ops:
    access_token: SUPERSECRET: x
",
    ] {
        let (_dir, result) = load(yaml);
        let errors = result.unwrap_err();
        assert!(!errors.is_empty());
        for error in &errors {
            assert!(!error.to_string().contains("SUPERSECRET"), "{error}");
        }
    }
}

#[test]
fn a_cluster_section_is_read_with_its_defaults_and_the_password_hidden() {
    let config = check_ok(&format!(
        "{MINIMAL}cluster:\n  redis_url: \"redis://bridge:s3cret@redis:6379/0\"\n  replicas: 2\n"
    ));
    let cluster = config.cluster.expect("cluster");
    assert_eq!(cluster.replicas, 2);
    assert_eq!(cluster.key_prefix, "alertmanager-dingtalk");
    assert_eq!(cluster.timeout, Duration::from_millis(500));
    assert_eq!(
        cluster.redis_url.expose(),
        "redis://bridge:s3cret@redis:6379/0"
    );
    assert_eq!(
        cluster.redis_url.to_string(),
        "redis://bridge:***@redis:6379/0"
    );
    assert!(!format!("{:?}", cluster.redis_url).contains("s3cret"));
    assert!(check_ok(MINIMAL).cluster.is_none());
}

#[test]
fn the_redis_url_can_come_from_a_file() {
    let dir = TempDir::new();
    dir.write("redis-url", "rediss://redis.example:6380/1\n");
    let file = dir.write(
        "config.yaml",
        &format!("{MINIMAL}cluster:\n  redis_url_file: redis-url\n"),
    );
    let config = load_with_env(&file, environment).unwrap();
    let url = config.cluster.unwrap().redis_url;
    assert_eq!(url.expose(), "rediss://redis.example:6380/1");
}

#[test]
fn cluster_mistakes_are_reported_with_their_lines() {
    check_errors(
        &format!(
            "{MINIMAL}cluster:\n  redis_url: \"http://redis:6379\"\n  key_prefix: \"a{{b}}\"\n  timeout: soon\n"
        ),
        &[
            (8, "scheme must be redis or rediss"),
            (9, "must not contain { or }"),
            (10, "is not a duration"),
        ],
    );
    check_errors(
        "\
robots:
  ops:
    access_token: abc
    rate_limit: 2/min
strategies:
  - name: all
    robots: [ops]
cluster:
  redis_url: redis://redis:6379/0
  replicas: 3
",
        &[(
            4,
            "less than one send per window for each of cluster.replicas (3)",
        )],
    );
    check_errors(
        &format!("{MINIMAL}cluster:\n  replicas: 0\n"),
        &[
            (7, "needs `redis_url` or `redis_url_file`"),
            (8, "at least 1"),
        ],
    );
}

/// Issue 23 reads the config from the parsed document: a plain scalar is still typed by
/// the field that takes it, and a number kept as written where text is wanted.
#[test]
fn plain_scalars_are_text_as_written_where_text_is_wanted() {
    let config = check_ok(
        "\
keywords: [告警, 1.50]
robots:
  ops:
    access_token: 0123
    mention: { mobiles: [13800000001, 0123], user_ids: [true] }
    rate_limit: 30/min
strategies:
  - name: 42
    robots: [ops]
    send_resolved: false
",
    );
    let ops = &config.robots["ops"];
    assert_eq!(ops.keywords, ["告警", "1.50"]);
    assert_eq!(ops.mention.mobiles, ["13800000001", "0123"]);
    assert_eq!(ops.mention.user_ids, ["true"]);
    assert!(ops.redacted_url().contains("access_token=***"));
    assert_eq!(config.strategies[0].name, "42");
    assert!(!config.strategies[0].send_resolved);
}

#[test]
fn a_value_of_the_wrong_type_is_reported_at_its_line() {
    check_errors(
        "robots:\n  ops:\n    access_token: abc\n    commands: maybe\nstrategies:\n  - name: all\n    robots: [ops]\n",
        &[(4, "invalid type: string \"maybe\", expected a boolean")],
    );
}

#[test]
fn the_proxy_comes_inline_or_from_a_file_and_shows_no_password() {
    let config = check_ok(&format!(
        "dingtalk:\n  proxy_url: \"http://bridge:s3cret@proxy.internal:3128\"\n  no_proxy: [\".svc\", 10.0.0.0/8]\n{MINIMAL}"
    ));
    assert_eq!(
        config.proxy.to_string(),
        "http://bridge:***@proxy.internal:3128/ (not for .svc, 10.0.0.0/8)"
    );
    assert!(!format!("{:?}", config.proxy).contains("s3cret"));
    assert_eq!(check_ok(MINIMAL).proxy.to_string(), "from the environment");

    let dir = TempDir::new();
    dir.write("proxy-url", "http://bridge:s3cret@proxy.internal:3128\n");
    let file = dir.write(
        "config.yaml",
        &format!("dingtalk:\n  proxy_url_file: proxy-url\n{MINIMAL}"),
    );
    let config = load_with_env(&file, environment).unwrap();
    assert_eq!(
        config.proxy.to_string(),
        "http://bridge:***@proxy.internal:3128/"
    );
}

#[test]
fn proxy_mistakes_are_reported_with_their_lines() {
    check_errors(
        &format!("dingtalk:\n  no_proxy: [localhost]\n{MINIMAL}"),
        &[(2, "dingtalk.no_proxy applies to dingtalk.proxy_url")],
    );
    check_errors(
        &format!(
            "dingtalk:\n  proxy_url: \"socks5://proxy:1080\"\n  proxy_url_file: proxy-url\n{MINIMAL}"
        ),
        &[(1, "has both `proxy_url` and `proxy_url_file`")],
    );
    check_errors(
        &format!("dingtalk:\n  proxy_url: \"socks5://proxy:1080\"\n{MINIMAL}"),
        &[(2, "URL scheme must be http or https")],
    );
}

#[test]
fn sentinels_name_the_master_and_mistakes_are_reported_with_their_lines() {
    let config = check_ok(&format!(
        "{MINIMAL}cluster:\n  redis_url: \"redis://:s3cret@mymaster/0\"\n  sentinel:\n    master_name: mymaster\n    addresses: [\"sentinel-0:26379\", \"10.0.0.7:26379\"]\n"
    ));
    let sentinel = config.cluster.unwrap().sentinel.unwrap();
    assert_eq!(sentinel.master_name, "mymaster");
    assert_eq!(sentinel.addresses, ["sentinel-0:26379", "10.0.0.7:26379"]);
    assert!(sentinel.password.is_none());

    let dir = TempDir::new();
    dir.write("sentinel-password", "sentinel-s3cret\n");
    let file = dir.write(
        "config.yaml",
        &format!(
            "{MINIMAL}cluster:\n  redis_url: \"redis://mymaster/0\"\n  sentinel:\n    master_name: mymaster\n    addresses: [\"sentinel-0:26379\"]\n    password_file: sentinel-password\n"
        ),
    );
    let config = load_with_env(&file, environment).unwrap();
    let sentinel = config.cluster.unwrap().sentinel.unwrap();
    assert_eq!(
        sentinel.password.as_ref().unwrap().expose(),
        "sentinel-s3cret"
    );
    assert!(!format!("{sentinel:?}").contains("s3cret"));

    check_errors(
        &format!(
            "{MINIMAL}cluster:\n  redis_url: \"redis://mymaster/0\"\n  sentinel:\n    addresses: [\"sentinel-0\", \":26379\"]\n"
        ),
        &[
            (9, "cluster.sentinel needs `master_name`"),
            (10, "\"sentinel-0\" is not host:port"),
            (10, "\":26379\" is not host:port"),
        ],
    );
    check_errors(
        &format!(
            "{MINIMAL}cluster:\n  redis_url: \"redis://mymaster/0\"\n  sentinel:\n    master_name: mymaster\n"
        ),
        &[(9, "needs `addresses`")],
    );
    check_errors(
        &format!(
            "{MINIMAL}cluster:\n  redis_url: \"redis://mymaster/0\"\n  sentinel:\n    master_name: mymaster\n    addresses: [\"s:26379\"]\n    passwd: x\n"
        ),
        &[(12, "passwd")],
    );
}
