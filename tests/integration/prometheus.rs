//! Harness that runs a real Prometheus (`/usr/bin/prometheus`, overridable with
//! `PROMETHEUS_BIN`) as a child process on loopback, scraping the bridge every second
//! and evaluating rule files every second. Each instance gets a free port and a unique
//! temp directory holding its config, TSDB and log (stderr); the child is killed and the
//! directory removed on drop, including when a test panics. The HTTP API is read with
//! the same reqwest client the bridge tests use.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::bridge::{http, temp_dir};

/// Where Debian's `prometheus` package installs the binary.
const DEFAULT_BIN: &str = "/usr/bin/prometheus";
/// How long to wait for `/-/ready` before giving up.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How many times to retry start-up when the picked port was taken in the meantime.
const START_ATTEMPTS: u32 = 3;
/// The scrape job, as a ServiceMonitor on the Service `alertmanager-dingtalk` names it.
pub const JOB: &str = "alertmanager-dingtalk";

/// A running Prometheus child process; dropping it kills the process and removes its temp dir.
pub struct Prometheus {
    child: Child,
    dir: PathBuf,
    port: u16,
    client: reqwest::Client,
}

impl Prometheus {
    /// Starts Prometheus scraping `target` (`host:port`) as job [`JOB`] and evaluating
    /// `rule_files`, both every second, and waits until it is ready.
    pub async fn start(target: &str, rule_files: &[&Path]) -> Prometheus {
        let bin = prometheus_bin();
        let mut attempt = 1;
        loop {
            let mut prometheus = Prometheus::spawn(&bin, target, rule_files);
            match prometheus.wait_ready().await {
                Ok(()) => return prometheus,
                Err(_)
                    if attempt < START_ATTEMPTS
                        && prometheus.log().contains("address already in use") =>
                {
                    attempt += 1;
                }
                Err(err) => panic!(
                    "Prometheus ({}) did not become ready: {err}\n--- prometheus log ---\n{}",
                    bin.display(),
                    prometheus.log()
                ),
            }
        }
    }

    /// Base URL of the Prometheus API, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Prometheus' own log so far (stderr), for assertion messages.
    pub fn log(&self) -> String {
        let path = self.dir.join("prometheus.log");
        fs::read_to_string(&path)
            .unwrap_or_else(|err| format!("<cannot read {}: {err}>", path.display()))
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

    /// Writes the config into a fresh temp dir and spawns the binary; does not wait for readiness.
    fn spawn(bin: &Path, target: &str, rule_files: &[&Path]) -> Prometheus {
        let dir = temp_dir("prometheus");
        let port = free_port();
        let config = dir.join("prometheus.yml");
        fs::write(&config, render_config(target, rule_files))
            .unwrap_or_else(|err| panic!("cannot write {}: {err}", config.display()));
        let log_path = dir.join("prometheus.log");
        let log = File::create(&log_path)
            .unwrap_or_else(|err| panic!("cannot create {}: {err}", log_path.display()));
        let log_for_stdout = log
            .try_clone()
            .unwrap_or_else(|err| panic!("cannot clone log file handle: {err}"));
        let spawned = Command::new(bin)
            .current_dir(&dir)
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(log_for_stdout)
            .stderr(log)
            .spawn();
        match spawned {
            Ok(child) => Prometheus {
                child,
                dir,
                port,
                client: http(),
            },
            Err(err) => {
                let _ = fs::remove_dir_all(&dir);
                panic!("cannot spawn {}: {err}", bin.display());
            }
        }
    }

    /// Polls `GET /-/ready` until it answers 200, the child exits, or [`READY_TIMEOUT`] passes.
    async fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let url = format!("{}/-/ready", self.url());
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return Err(format!("process exited early with {status}")),
                Ok(None) => {}
                Err(err) => return Err(format!("cannot query child status: {err}")),
            }
            let last = match self.client.get(&url).send().await {
                Ok(response) if response.status() == 200 => return Ok(()),
                Ok(response) => format!("GET /-/ready returned {}", response.status()),
                Err(err) => format!("GET /-/ready failed: {err}"),
            };
            if Instant::now() >= deadline {
                return Err(format!("timed out after {READY_TIMEOUT:?}; last: {last}"));
            }
            // Poll interval, not synchronisation: readiness is decided by the response above.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// The Prometheus binary: `$PROMETHEUS_BIN` or [`DEFAULT_BIN`]; panics if it does not exist.
fn prometheus_bin() -> PathBuf {
    let bin = std::env::var_os("PROMETHEUS_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_BIN));
    if !bin.is_file() {
        panic!(
            "prometheus is not installed: run `apt-get install prometheus` (or .ci/run) (looked for {})",
            bin.display()
        );
    }
    bin
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

/// A free TCP port on 127.0.0.1 (bound, read, released; another process could grab it meanwhile).
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap_or_else(|err| panic!("cannot bind 127.0.0.1:0: {err}"));
    listener
        .local_addr()
        .unwrap_or_else(|err| panic!("cannot read local address: {err}"))
        .port()
}
