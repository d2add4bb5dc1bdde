//! Harness that runs a real Prometheus (`/usr/bin/prometheus`, overridable with
//! `PROMETHEUS_BIN`) as a child process on loopback, scraping the bridge every second
//! and evaluating rule files every second. Each instance gets a free port and a unique
//! temp directory holding its config, TSDB and log (stderr); the child is killed and the
//! directory removed on drop, including when a test panics. The HTTP API is read with
//! the same reqwest client the bridge tests use.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use testkit::{Daemon, http, installed};

/// Where Debian's `prometheus` package installs the binary.
const DEFAULT_BIN: &str = "/usr/bin/prometheus";
/// How long to wait for `/-/ready` before giving up.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// The scrape job, as a ServiceMonitor on the Service `alertmanager-dingtalk` names it.
pub const JOB: &str = "alertmanager-dingtalk";

/// A running Prometheus child process; dropping it kills the process and removes its temp dir.
pub struct Prometheus {
    daemon: Daemon,
    client: reqwest::Client,
}

impl Prometheus {
    /// Starts Prometheus scraping `target` (`host:port`) as job [`JOB`] and evaluating
    /// `rule_files`, both every second, and waits until it is ready.
    pub async fn start(target: &str, rule_files: &[&Path]) -> Prometheus {
        let bin = installed("PROMETHEUS_BIN", DEFAULT_BIN, "prometheus");
        let config = render_config(target, rule_files);
        let args = |dir: &Path, port: u16| {
            vec![
                format!("--config.file={}", dir.join("prometheus.yml").display()),
                format!("--storage.tsdb.path={}", dir.join("data").display()),
                format!("--web.listen-address=127.0.0.1:{port}"),
            ]
        };
        let client = http();
        let ready = |port: u16| {
            let request = client
                .get(format!("http://127.0.0.1:{port}/-/ready"))
                .send();
            async move {
                match request.await {
                    Ok(response) if response.status() == 200 => Ok(()),
                    Ok(response) => Err(format!("GET /-/ready returned {}", response.status())),
                    Err(err) => Err(format!("GET /-/ready failed: {err}")),
                }
            }
        };
        let config = ("prometheus.yml", config.as_str());
        let daemon = Daemon::start(&bin, "prometheus", config, args, ready, READY_TIMEOUT).await;
        Prometheus { daemon, client }
    }

    /// Base URL of the Prometheus API, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.daemon.port)
    }

    /// Prometheus' own log so far, for assertion messages.
    pub fn log(&self) -> String {
        self.daemon.log()
    }

    /// The instant vector of `promql` now: `[{ "metric": {...}, "value": [t, "v"] }, ...]`.
    pub async fn query(&self, promql: &str) -> Result<Vec<Value>, String> {
        let url = url::Url::parse_with_params(
            &format!("{}/api/v1/query", self.url()),
            [("query", promql)],
        )
        .map_err(|err| err.to_string())?;
        let data = self.api(url.as_str()).await?;
        if data["resultType"] != "vector" {
            return Err(format!("{promql}: not an instant vector: {data}"));
        }
        Ok(data["result"].as_array().cloned().unwrap_or_default())
    }

    /// The alerts of every rule, pending and firing: `[{ "labels", "annotations", "state", ... }]`.
    pub async fn alerts(&self) -> Result<Vec<Value>, String> {
        let data = self.api(&format!("{}/api/v1/alerts", self.url())).await?;
        Ok(data["alerts"].as_array().cloned().unwrap_or_default())
    }

    /// The rule groups: `[{ "name", "file", "rules": [{ "name", "health", "lastError", ... }] }]`.
    pub async fn rules(&self) -> Result<Vec<Value>, String> {
        let data = self.api(&format!("{}/api/v1/rules", self.url())).await?;
        Ok(data["groups"].as_array().cloned().unwrap_or_default())
    }

    /// Polls `/api/v1/rules` until `accept` holds for the groups, and returns them;
    /// panics after `timeout` with the groups last seen and Prometheus' log.
    pub async fn wait_for_rules(
        &self,
        what: &str,
        timeout: Duration,
        accept: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let last = match self.rules().await {
                Ok(groups) if accept(&groups) => return groups,
                Ok(groups) => format!("{groups:#?}"),
                Err(err) => err,
            };
            self.retry_or_panic(deadline, what, &format!("rules: {last}"))
                .await;
        }
    }

    /// Polls `query` until `accept` holds for its result, and returns that result;
    /// panics after `timeout` with the last result and Prometheus' log.
    pub async fn wait_for_query(
        &self,
        what: &str,
        promql: &str,
        timeout: Duration,
        accept: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let last = match self.query(promql).await {
                Ok(result) if accept(&result) => return result,
                Ok(result) => format!("{result:?}"),
                Err(err) => err,
            };
            self.retry_or_panic(deadline, what, &format!("{promql} = {last}"))
                .await;
        }
    }

    /// Polls `/api/v1/alerts` until `accept` holds for one of them, and returns it;
    /// panics after `timeout` with the alerts last seen and Prometheus' log.
    pub async fn wait_for_alert(
        &self,
        what: &str,
        timeout: Duration,
        accept: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let last = match self.alerts().await {
                Ok(alerts) => match alerts.iter().find(|alert| accept(alert)) {
                    Some(alert) => return alert.clone(),
                    None => format!("{alerts:#?}"),
                },
                Err(err) => err,
            };
            self.retry_or_panic(deadline, what, &format!("alerts: {last}"))
                .await;
        }
    }

    /// Panics once `deadline` has passed; otherwise waits one poll interval.
    async fn retry_or_panic(&self, deadline: Instant, what: &str, last: &str) {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; last {last}\n--- prometheus log ---\n{}",
            self.log()
        );
        // Poll interval, not synchronisation: the caller decides on what it fetched.
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    /// GETs an API URL and returns its `data`, or why there is none.
    async fn api(&self, url: &str) -> Result<Value, String> {
        let response = self
            .client
            .get(url)
            .send()
            .await
            .map_err(|err| format!("GET {url}: {err}"))?;
        let status = response.status();
        let body: Value = response
            .json()
            .await
            .map_err(|err| format!("GET {url}: {status}, not JSON: {err}"))?;
        if body["status"] != "success" {
            return Err(format!("GET {url}: {status}: {body}"));
        }
        Ok(body["data"].clone())
    }
}

/// prometheus.yml: 1 s scrape and evaluation intervals, one static target as job [`JOB`].
fn render_config(target: &str, rule_files: &[&Path]) -> String {
    // JSON strings are valid YAML double-quoted scalars, so this escapes paths safely.
    let quote = |s: &str| Value::String(s.to_owned()).to_string();
    let rule_files: Vec<String> = rule_files
        .iter()
        .map(|path| format!("  - {}\n", quote(&path.display().to_string())))
        .collect();
    format!(
        "global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files:
{rule_files}scrape_configs:
  - job_name: {job}
    static_configs:
      - targets: [{target}]
",
        rule_files = rule_files.concat(),
        job = quote(JOB),
        target = quote(target),
    )
}
