//! The bridge's self-monitoring artefacts: the alerting rules in `deploy/prometheus/`
//! (checked and unit-tested by promtool, copied into the Prometheus Operator overlay), the
//! example `deploy/alertmanager/alertmanager.yml` (checked by amtool), and, end to end, a
//! real Prometheus that scrapes the bridge and raises `AlertmanagerDingtalkMessagesFailing`
//! while the fake DingTalk answers HTTP 500.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use testkit::{Bridge, FakeDingTalk, FakeRobot, Mode, payload};

use crate::BINARY;
use crate::prometheus::{JOB, Prometheus};

const RULES: &str = "deploy/prometheus/rules.yaml";
const RULES_TEST: &str = "deploy/prometheus/rules.test.yaml";
const PROMETHEUS_RULE: &str =
    "deploy/kubernetes/components/prometheus-operator/prometheusrule.yaml";
const ALERTMANAGER_CONFIG: &str = "deploy/alertmanager/alertmanager.yml";
/// The runbook, in the repository.
const RUNBOOK: &str = "docs/runbook.md";
/// Every `runbook_url` is this plus `#runbook-<alert name in lower case>`, the anchor of a
/// heading `Runbook: <alert name>` in docs/runbook.md.
const RUNBOOK_URL: &str =
    "https://github.com/alertmanager-dingtalk/alertmanager-dingtalk/blob/main/docs/runbook.md";
/// Generous bound for what a 1 s scrape and evaluation interval make happen in seconds.
const WAIT: Duration = Duration::from_secs(60);

/// `path` (relative to the repository root) as an absolute path.
fn repo_path(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Parses the YAML file at `path` (relative to the repository root).
fn read_yaml(path: &str) -> Value {
    let text = std::fs::read_to_string(repo_path(path))
        .unwrap_or_else(|err| panic!("cannot read {path}: {err}"));
    serde_saphyr::from_str(&text).unwrap_or_else(|err| panic!("{path} is not valid YAML: {err}"))
}

/// Runs `tool` (or `$env_var`) with `args` from the repository root; asserts it exits 0
/// and returns its standard output.
fn run_tool(env_var: &str, tool: &str, args: &[&str]) -> String {
    let tool = std::env::var(env_var).unwrap_or_else(|_| tool.to_owned());
    let output = Command::new(&tool)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .output()
        .unwrap_or_else(|err| {
            panic!("cannot run {tool} (install it with .ci/run, or set {env_var}): {err}")
        });
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "`{tool} {}` failed ({}):\n{stdout}{}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// The alerting rules of rules.yaml, in order.
fn alert_rules() -> Vec<Value> {
    let rules = read_yaml(RULES);
    let groups = rules["groups"].as_array().expect("groups in rules.yaml");
    groups
        .iter()
        .flat_map(|group| group["rules"].as_array().cloned().unwrap_or_default())
        .collect()
}

#[test]
fn rules_pass_promtool_check_and_unit_tests() {
    let checked = run_tool("PROMTOOL_BIN", "promtool", &["check", "rules", RULES]);
    let count = alert_rules().len();
    assert!(
        checked.contains(&format!("SUCCESS: {count} rules found")),
        "{checked}"
    );
    let tested = run_tool("PROMTOOL_BIN", "promtool", &["test", "rules", RULES_TEST]);
    assert!(tested.contains("SUCCESS"), "{tested}");
}

#[test]
fn every_alert_has_severity_annotations_runbook_and_tests_both_ways() {
    let tests = read_yaml(RULES_TEST);
    let cases: Vec<&Value> = tests["tests"]
        .as_array()
        .expect("tests in rules.test.yaml")
        .iter()
        .flat_map(|test| test["alert_rule_test"].as_array().into_iter().flatten())
        .collect();
    let rules = alert_rules();
    assert!(rules.len() >= 7, "{rules:#?}");
    let runbook_page = std::fs::read_to_string(repo_path(RUNBOOK)).expect(RUNBOOK);
    for rule in &rules {
        let name = rule["alert"].as_str().expect("only alerting rules");
        let severity = &rule["labels"]["severity"];
        assert!(
            severity == "critical" || severity == "warning",
            "{name}: severity {severity}"
        );
        let annotations = rule["annotations"].as_object().expect("annotations");
        let mut keys: Vec<&str> = annotations.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["description", "runbook_url", "summary"], "{name}");
        let runbook = format!("{RUNBOOK_URL}#runbook-{}", name.to_lowercase());
        assert_eq!(annotations["runbook_url"], runbook.as_str(), "{name}");
        // GitHub's anchor for this heading is the one in runbook_url.
        assert!(
            runbook_page.contains(&format!("\n### Runbook: {name}\n")),
            "{RUNBOOK} has no `### Runbook: {name}` section"
        );

        let of_this_alert = || cases.iter().filter(|case| case["alertname"] == name);
        let fires = |case: &&&Value| {
            case["exp_alerts"]
                .as_array()
                .is_some_and(|alerts| !alerts.is_empty())
        };
        assert!(
            of_this_alert().any(|case| fires(&case)),
            "{name}: no promtool test shows it firing"
        );
        assert!(
            of_this_alert().any(|case| !fires(&case)),
            "{name}: no promtool test shows it silent"
        );
    }
}

#[test]
fn prometheus_rule_holds_the_same_groups_as_rules_yaml() {
    let rules = read_yaml(RULES);
    let resource = read_yaml(PROMETHEUS_RULE);
    assert_eq!(resource["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(resource["kind"], "PrometheusRule");
    assert_eq!(
        resource["metadata"]["labels"]["app.kubernetes.io/name"],
        "alertmanager-dingtalk"
    );
    assert!(rules["groups"].as_array().is_some_and(|g| !g.is_empty()));
    assert_eq!(
        resource["spec"]["groups"], rules["groups"],
        "{PROMETHEUS_RULE} must hold a copy of the groups of {RULES}"
    );
}

#[test]
fn alertmanager_example_config_passes_amtool_and_routes_by_severity_and_team() {
    let config = ["--config.file", ALERTMANAGER_CONFIG];
    run_tool(
        "AMTOOL_BIN",
        "/usr/bin/amtool",
        &["check-config", ALERTMANAGER_CONFIG],
    );
    for (labels, receivers) in [
        (
            &["alertname=AlertmanagerDingtalkDown", "severity=critical"][..],
            "oncall-email,dingtalk",
        ),
        (
            &["alertname=PostgresDown", "team=db", "severity=critical"],
            "dingtalk-dba",
        ),
        (
            &["alertname=FrontendSlow", "team=web", "severity=critical"],
            "dingtalk",
        ),
        (&["alertname=DiskFilling", "severity=warning"], "dingtalk"),
    ] {
        let args = [&["config", "routes", "test"][..], &config, labels].concat();
        let routed = run_tool("AMTOOL_BIN", "/usr/bin/amtool", &args);
        assert_eq!(routed.trim(), receivers, "{labels:?}");
    }

    let alertmanager = read_yaml(ALERTMANAGER_CONFIG);
    let webhooks: Vec<&Value> = alertmanager["receivers"]
        .as_array()
        .expect("receivers")
        .iter()
        .flat_map(|r| r["webhook_configs"].as_array().into_iter().flatten())
        .collect();
    assert!(webhooks.len() >= 2, "{webhooks:#?}");
    for webhook in webhooks {
        let url = webhook["url"].as_str().expect("url");
        // The production overlay serves HTTPS (its web.yml) and wants a bearer token.
        assert!(
            url.starts_with("https://alertmanager-dingtalk.monitoring.svc:8060/"),
            "{url}"
        );
        assert_eq!(webhook["send_resolved"], true, "{url}");
        let authorization = &webhook["http_config"]["authorization"];
        assert_eq!(authorization["type"], "Bearer", "{url}");
        assert!(authorization["credentials_file"].is_string(), "{url}");
        assert!(
            webhook["http_config"]["tls_config"]["ca_file"].is_string(),
            "{url}"
        );
    }
}

#[tokio::test]
async fn real_prometheus_scrapes_the_bridge_and_raises_messages_failing() {
    let dingtalk = FakeDingTalk::start(vec![FakeRobot::new("ops-token")]).await;
    let config = format!(
        r#"
dingtalk: {{ api_url: "{}" }}
robots:
  ops: {{ access_token: ops-token }}
strategies:
  - name: default
    robots: [ops]
"#,
        dingtalk.api_url()
    );
    let bridge = Bridge::start(BINARY, &config).await;
    let target = bridge.url.trim_start_matches("http://");
    let prometheus = Prometheus::start(target, &[&repo_path(RULES)]).await;

    // Healthy: the message is delivered, and Prometheus sees it and the target.
    bridge
        .notify(&payload("firing", &[("SelfMonitoringProbe", &[])]))
        .await;
    dingtalk
        .wait_until("the first message is delivered", WAIT, |requests| {
            requests.iter().any(|r| r.errcode == Some(0))
        })
        .await;
    let sent = format!(
        r#"alertmanager_dingtalk_messages_total{{job="{JOB}",robot="ops",outcome="sent"}}"#
    );
    prometheus
        .wait_for_query(
            "Prometheus to scrape the sent message",
            &sent,
            WAIT,
            |result| result.iter().any(|sample| sample_value(sample) >= 1.0),
        )
        .await;
    let up = prometheus
        .query(&format!(r#"up{{job="{JOB}"}}"#))
        .await
        .unwrap_or_else(|err| panic!("{err}\n--- prometheus log ---\n{}", prometheus.log()));
    assert_eq!(up.len(), 1, "{up:?}");
    assert_eq!(sample_value(&up[0]), 1.0, "{up:?}");
    assert_eq!(up[0]["metric"]["instance"], target, "{up:?}");
    // Before the first scrape `absent(up)` holds, so AlertmanagerDingtalkAbsent may be
    // pending at first; once the bridge is scraped, a healthy bridge raises nothing.
    let groups = prometheus
        .wait_for_rules(
            "every rule of rules.yaml evaluated without error, and inactive",
            WAIT,
            |groups| {
                groups.iter().any(|group| {
                    group["name"] == "alertmanager-dingtalk"
                        && group["rules"].as_array().is_some_and(|rules| {
                            rules
                                .iter()
                                .all(|rule| rule["health"] == "ok" && rule["state"] == "inactive")
                        })
                })
            },
        )
        .await;
    assert_eq!(groups.len(), 1, "{groups:#?}");
    let evaluated = groups[0]["rules"].as_array().map_or(0, Vec::len);
    assert_eq!(evaluated, alert_rules().len(), "{groups:#?}");

    // DingTalk fails: the bridge retries, and the rule turns pending (it fires after 5m).
    dingtalk.set_mode(Mode::Http500);
    bridge
        .notify(&payload("firing", &[("SelfMonitoringProbeTwo", &[])]))
        .await;
    dingtalk
        .wait_until("a send answered with HTTP 500", WAIT, |requests| {
            requests.iter().any(|r| r.http_status == 500)
        })
        .await;
    let alert = prometheus
        .wait_for_alert(
            "AlertmanagerDingtalkMessagesFailing for ops",
            WAIT,
            |alert| {
                alert["labels"]["alertname"] == "AlertmanagerDingtalkMessagesFailing"
                    && alert["labels"]["robot"] == "ops"
            },
        )
        .await;
    assert!(
        alert["state"] == "pending" || alert["state"] == "firing",
        "{alert:#}"
    );
    assert_eq!(alert["labels"]["job"], JOB, "{alert:#}");
    assert_eq!(alert["labels"]["instance"], target, "{alert:#}");
    assert_eq!(alert["labels"]["severity"], "critical", "{alert:#}");
    assert_eq!(
        alert["annotations"]["summary"], "DingTalk is refusing or failing messages for robot ops.",
        "{alert:#}"
    );
    let description = alert["annotations"]["description"]
        .as_str()
        .unwrap_or_default();
    assert!(
        description.contains(&format!("robot ops on {target} failed")),
        "{alert:#}"
    );
}

/// The value of one instant-vector sample from the query API.
fn sample_value(sample: &Value) -> f64 {
    sample["value"][1]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("not a sample: {sample}"))
}
