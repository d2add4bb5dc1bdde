//! Runs the real `alertmanager-dingtalk` binary as a child process on loopback, with a
//! config written to a temporary directory, and talks to it over HTTP.
//!
//! The bridge logs JSON to a file; start-up waits for its "Listening." line, which names
//! the port it bound (`--listen 127.0.0.1:0`), and then polls `/-/ready`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The binary under test.
pub const BINARY: &str = env!("CARGO_BIN_EXE_alertmanager-dingtalk");

static NEXT_DIR: AtomicU32 = AtomicU32::new(0);

/// A fresh, empty temporary directory (removed by its owner).
pub fn temp_dir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "amdt-{what}-{}-{}",
        std::process::id(),
        NEXT_DIR.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

/// What an offline subcommand (`check`, `render`) printed.
pub struct CommandOutput {
    /// Whether it exited 0.
    pub success: bool,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Runs the binary with `args` in `dir`, with extra environment variables.
pub fn run_command(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> CommandOutput {
    let output = Command::new(BINARY)
        .current_dir(dir)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run the binary");
    CommandOutput {
        success: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A plain HTTP client for loopback (reqwest is built without a default TLS provider).
pub fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("build client")
}

/// A running bridge.
pub struct Bridge {
    child: Option<Child>,
    dir: PathBuf,
    env: Vec<(String, String)>,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    client: reqwest::Client,
}

impl Bridge {
    /// Starts the bridge with `config` (YAML) and waits until it is ready.
    pub async fn start(config: &str) -> Bridge {
        Bridge::start_with_env(config, &[]).await
    }

    /// Like [`start`](Self::start), with extra environment variables.
    pub async fn start_with_env(config: &str, env: &[(&str, &str)]) -> Bridge {
        let dir = temp_dir("bridge");
        std::fs::write(dir.join("config.yaml"), config).expect("write config");
        let env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Bridge::spawn(dir, env).await
    }

    /// Starts the bridge again in the same directory (same config and queue) after it
    /// exited; the previous log is kept as `bridge.log.1`.
    pub async fn restart(self) -> Bridge {
        let mut old = self;
        let mut child = old.child.take().expect("started");
        let _ = child.kill();
        let _ = child.wait();
        let dir = std::mem::take(&mut old.dir);
        let env = std::mem::take(&mut old.env);
        std::fs::rename(dir.join("bridge.log"), dir.join("bridge.log.1")).expect("keep log");
        Bridge::spawn(dir, env).await
    }

    async fn spawn(dir: PathBuf, env: Vec<(String, String)>) -> Bridge {
        let log = std::fs::File::create(dir.join("bridge.log")).expect("create log");
        let child = Command::new(BINARY)
            .current_dir(&dir)
            .args(["--config", "config.yaml", "--listen", "127.0.0.1:0"])
            .args(["--log-format", "json", "--log-level", "debug"])
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn the bridge");
        let mut bridge = Bridge {
            child: Some(child),
            dir,
            env,
            url: String::new(),
            client: http(),
        };
        let listening = bridge
            .wait_for_log("the bridge to listen", Duration::from_secs(20), |line| {
                line["message"] == "Listening."
            })
            .await;
        let address = listening["address"].as_str().expect("address in log");
        bridge.url = format!("http://{address}");
        let deadline = Instant::now() + Duration::from_secs(10);
        while bridge.get("/-/ready").await.0 != 200 {
            assert!(
                Instant::now() < deadline,
                "bridge never ready:\n{}",
                bridge.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        bridge
    }

    /// The working directory holding `config.yaml`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Everything the bridge logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("bridge.log")).unwrap_or_default()
    }

    /// Log lines parsed as JSON.
    pub fn log_lines(&self) -> Vec<Value> {
        self.log()
            .lines()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }

    /// Polls the log until a line satisfies `matches`, and returns it.
    pub async fn wait_for_log(
        &mut self,
        what: &str,
        timeout: Duration,
        matches: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = self.log_lines().into_iter().find(|l| matches(l)) {
                return line;
            }
            if let Some(status) = self.try_exit_status() {
                panic!("bridge exited ({status}) before {what}:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// POSTs `body` to `path` with an optional Content-Type; returns status and body.
    pub async fn post(
        &self,
        path: &str,
        body: impl Into<String>,
        content_type: Option<&str>,
    ) -> (u16, String) {
        let mut request = self
            .client
            .post(format!("{}{path}", self.url))
            .body(body.into());
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let response = request.send().await.expect("POST to the bridge");
        let status = response.status().as_u16();
        (status, response.text().await.unwrap_or_default())
    }

    /// POSTs a webhook payload as JSON to `/alertmanager`; asserts it was accepted.
    pub async fn notify(&self, payload: &str) {
        let (status, body) = self
            .post("/alertmanager", payload, Some("application/json"))
            .await;
        assert_eq!(status, 200, "webhook not accepted: {body}");
    }

    /// GETs `path`; returns status and body.
    pub async fn get(&self, path: &str) -> (u16, String) {
        let response = self
            .client
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .expect("GET from the bridge");
        let status = response.status().as_u16();
        (status, response.text().await.unwrap_or_default())
    }

    /// The value of the sample `series` (name with labels, as in the text format), or 0
    /// when absent.
    pub async fn metric(&self, series: &str) -> f64 {
        let (_, text) = self.get("/metrics").await;
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
            .map_or(0.0, |value| value.trim().parse().expect("metric value"))
    }

    /// Polls until the sample `series` has `expected` as its value. Counters that follow
    /// DingTalk's answer move just after the fake DingTalk has recorded it.
    pub async fn wait_for_metric(&self, series: &str, expected: f64) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let value = self.metric(series).await;
            if value == expected {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{series} is {value}, expected {expected}:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Sends a signal (`TERM`, `HUP`, `KILL`) to the bridge.
    pub fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("running").id().to_string();
        let status = Command::new("kill")
            .args([format!("-{signal}"), pid])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Waits up to `timeout` for the bridge to exit and returns its status.
    pub async fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_exit_status() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "bridge did not exit:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn try_exit_status(&mut self) -> Option<ExitStatus> {
        self.child.as_mut()?.try_wait().ok().flatten()
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if !self.dir.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// A minimal valid webhook payload: one alert per name in `alertnames`, all in one group.
pub fn payload(status: &str, alerts: &[(&str, &[(&str, &str)])]) -> String {
    let alerts: Vec<Value> = alerts
        .iter()
        .map(|(name, labels)| {
            let mut label_map = serde_json::Map::new();
            label_map.insert("alertname".into(), (*name).into());
            for (k, v) in *labels {
                label_map.insert((*k).into(), (*v).into());
            }
            serde_json::json!({
                "status": status,
                "labels": label_map,
                "annotations": { "summary": format!("{name} needs attention") },
                "startsAt": "2024-05-01T00:00:00Z",
                "endsAt": if status == "resolved" { "2024-05-01T01:00:00Z" } else { "0001-01-01T00:00:00Z" },
                "generatorURL": "http://prometheus.example/graph",
                "fingerprint": format!("fp-{name}"),
            })
        })
        .collect();
    serde_json::json!({
        "version": "4",
        "groupKey": "{}:{alertname=\"x\"}",
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "dingtalk",
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example:9093",
        "alerts": alerts,
    })
    .to_string()
}
