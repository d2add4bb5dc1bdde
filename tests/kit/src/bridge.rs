//! Runs the real `alertmanager-dingtalk` binary as a child process on loopback, with a
//! config written to a temporary directory, and talks to it over HTTP.
//!
//! The binary's path is a parameter: only the root package's tests and benches know it
//! (`env!("CARGO_BIN_EXE_alertmanager-dingtalk")`). The bridge logs JSON to a file;
//! start-up waits for its "Listening." line, which names the port it bound (`--listen
//! 127.0.0.1:0`), and then polls `/-/ready`. This module knows the bridge only by its
//! flags, its log lines and its HTTP endpoints, never by its code.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::scratch::temp_dir;

/// How long [`Bridge::wait_idle`] waits for the queue to empty.
const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// What a subcommand (`check`, `render`, `test-robot`) printed.
pub struct CommandOutput {
    /// Whether it exited 0.
    pub success: bool,
    /// Its exit code, `None` if a signal ended it.
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Runs `binary` with `args` in `dir`, with extra environment variables, and waits for it.
pub fn run_command(
    binary: impl AsRef<Path>,
    dir: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> CommandOutput {
    let output = Command::new(binary.as_ref())
        .current_dir(dir)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("run the binary");
    CommandOutput {
        success: output.status.success(),
        code: output.status.code(),
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

/// A running bridge; dropping it kills the process and removes its directory.
pub struct Bridge {
    binary: PathBuf,
    child: Option<Child>,
    dir: PathBuf,
    /// How it was started, for [`restart`](Self::restart).
    launch: Launch,
    /// `http://127.0.0.1:PORT` (or `https://`).
    pub url: String,
    client: reqwest::Client,
}

/// How a bridge process is started.
#[derive(Default)]
struct Launch {
    env: Vec<(String, String)>,
    /// Served over HTTPS with `--web.config.file web.yml`.
    https: bool,
    /// `--log-level`.
    log_level: &'static str,
}

impl Bridge {
    /// Starts the bridge `binary` with `config` (YAML) and waits until it is ready.
    pub async fn start(binary: impl AsRef<Path>, config: &str) -> Bridge {
        Bridge::start_with_env(binary, config, &[]).await
    }

    /// Like [`start`](Self::start), with extra environment variables.
    pub async fn start_with_env(
        binary: impl AsRef<Path>,
        config: &str,
        env: &[(&str, &str)],
    ) -> Bridge {
        Bridge::start_logging_at(binary, config, env, "debug").await
    }

    /// Like [`start_with_env`](Self::start_with_env), logging at `log_level` (`trace`)
    /// instead of `debug`.
    pub async fn start_logging_at(
        binary: impl AsRef<Path>,
        config: &str,
        env: &[(&str, &str)],
        log_level: &'static str,
    ) -> Bridge {
        let dir = temp_dir("bridge");
        std::fs::write(dir.join("config.yaml"), config).expect("write config");
        let env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let launch = Launch {
            env,
            https: false,
            log_level,
        };
        Bridge::spawn(binary.as_ref().to_owned(), dir, launch, http()).await
    }

    /// Like [`start`](Self::start), with `files` (a path in the bridge's directory, and
    /// its bytes) written there first: a queue file an older release wrote, say.
    pub async fn start_with_files(
        binary: impl AsRef<Path>,
        config: &str,
        files: &[(&str, &[u8])],
    ) -> Bridge {
        let dir = temp_dir("bridge");
        std::fs::write(dir.join("config.yaml"), config).expect("write config");
        write_files(&dir, files);
        let launch = Launch {
            log_level: "debug",
            ..Launch::default()
        };
        Bridge::spawn(binary.as_ref().to_owned(), dir, launch, http()).await
    }

    /// Starts the bridge with `--web.config.file web.yml` serving HTTPS, with `files`
    /// (`web.yml`, certificates, keys) written beside `config`, and talks to it with
    /// `client`, which must trust the server's certificate (for `127.0.0.1`).
    pub async fn start_https(
        binary: impl AsRef<Path>,
        config: &str,
        files: &[(&str, &[u8])],
        client: reqwest::Client,
    ) -> Bridge {
        let dir = temp_dir("bridge");
        std::fs::write(dir.join("config.yaml"), config).expect("write config");
        write_files(&dir, files);
        let launch = Launch {
            env: Vec::new(),
            https: true,
            log_level: "debug",
        };
        Bridge::spawn(binary.as_ref().to_owned(), dir, launch, client).await
    }

    /// Starts the bridge again in the same directory (same config and queue) after it
    /// exited; the previous log is kept as `bridge.log.1`.
    pub async fn restart(self) -> Bridge {
        let mut old = self;
        let mut child = old.child.take().expect("started");
        let _ = child.kill();
        let _ = child.wait();
        let binary = std::mem::take(&mut old.binary);
        let dir = std::mem::take(&mut old.dir);
        let launch = std::mem::take(&mut old.launch);
        std::fs::rename(dir.join("bridge.log"), dir.join("bridge.log.1")).expect("keep log");
        let client = old.client.clone();
        Bridge::spawn(binary, dir, launch, client).await
    }

    async fn spawn(
        binary: PathBuf,
        dir: PathBuf,
        launch: Launch,
        client: reqwest::Client,
    ) -> Bridge {
        let log = std::fs::File::create(dir.join("bridge.log")).expect("create log");
        let web: &[&str] = if launch.https {
            &["--web.config.file", "web.yml"]
        } else {
            &[]
        };
        let child = Command::new(&binary)
            .current_dir(&dir)
            .args(["--config", "config.yaml", "--listen", "127.0.0.1:0"])
            .args(["--log-format", "json", "--log-level", launch.log_level])
            .args(web)
            .envs(launch.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn the bridge");
        let mut bridge = Bridge {
            binary,
            child: Some(child),
            dir,
            launch,
            url: String::new(),
            client,
        };
        let listening = bridge
            .wait_for_log("the bridge to listen", Duration::from_secs(20), |line| {
                line["message"] == "Listening."
            })
            .await;
        let address = listening["address"].as_str().expect("address in log");
        let scheme = if bridge.launch.https { "https" } else { "http" };
        bridge.url = format!("{scheme}://{address}");
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

    /// The HTTP client the bridge is talked to with, for a request the helpers do not make.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
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

    /// POSTs a firing webhook of one alert named `name` to `/alertmanager`; returns the
    /// answer, which in passthrough mode is DingTalk's verdict.
    pub async fn post_alert(&self, name: &str) -> (u16, String) {
        let body = crate::payload("firing", &[(name, &[])]);
        self.post("/alertmanager", body, Some("application/json"))
            .await
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

    /// Polls `GET /api/v1/queue` until no robot has a message pending: everything
    /// accepted was delivered or buried as a dead letter. Call it before asserting that
    /// nothing went somewhere; panics with the queue and the log after 10 s.
    pub async fn wait_idle(&self) {
        let deadline = Instant::now() + IDLE_TIMEOUT;
        loop {
            let (status, body) = self.get("/api/v1/queue").await;
            let robots: Option<Vec<Value>> = serde_json::from_str(&body).ok();
            let idle = robots.is_some_and(|robots| robots.iter().all(|r| r["depth"] == 0));
            if status == 200 && idle {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the queue did not empty within {IDLE_TIMEOUT:?}: {status} {body}\n{}",
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

/// Writes each `(path, bytes)` of `files` under `dir`, making the directories on the way.
fn write_files(dir: &Path, files: &[(&str, &[u8])]) {
    for (name, bytes) in files {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("make a directory of the bridge");
        }
        std::fs::write(path, bytes).expect("write a file of the bridge");
    }
}
