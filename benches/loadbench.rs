//! The load benchmark: how many webhooks per second the bridge takes, how fast it answers,
//! and what it costs in CPU and memory, measured against a minimal hyper server on the
//! same machine in the same run.
//!
//! ```text
//! cargo bench --locked --bench loadbench              # full run, rewrites BENCHMARKS.md
//! cargo bench --locked --bench loadbench -- --smoke   # short, checks only, writes nothing
//! ```
//!
//! Every scenario is a fresh child process on loopback:
//!
//! - `baseline`: this executable again (`--serve-baseline ADDR`), a hyper 1 server that
//!   reads the whole body and answers 200. It is the yardstick: the machines this runs on
//!   are shared and noisy, so figures are compared as ratios to it within one run, never
//!   as absolute times across runs.
//! - `memory`, `durable`, `passthrough`: the release binary with one robot, in queued
//!   mode without and with `delivery.queue_dir`, and in passthrough mode.
//! - `cluster`: `durable` with `cluster:`, sharing the robot's window and duplicate
//!   claims through a real Redis (`redis-server`, started by the test kit on loopback):
//!   every webhook makes two Redis round trips (a pending claim, then queued) and every
//!   send one.
//!
//! The robots post to the test kit's fake DingTalk inside this process, counting only
//! (it keeps no request, so its memory stays flat): it checks each message as DingTalk
//! does (token, JSON, size, keyword; its rate limit is set never to trigger) and answers
//! at once. The benchmark counts the messages it accepted, the alerts they name and the
//! TCP connections opened to it (passthrough must reuse one pooled connection per robot).
//!
//! The client holds 16 keep-alive HTTP/1.1 connections in a closed loop, each sending
//! `benches/data/one_alert.json` with its `groupKey` and alert name made unique per
//! request, so that duplicate suppression stays on (as in production), every webhook is
//! one message, and its alert can be found in what DingTalk receives: when the queue
//! backs up, the bridge merges pending messages into digests, as it does in a storm.
//! After the load, queued modes get time to deliver what they accepted; that work is in
//! the CPU figure. CPU time and memory come from `/proc/PID/stat` and `/proc/PID/status`
//! of the child. A run fails (exit 1) only on wrong behaviour: an answer other than 200,
//! or an alert neither delivered nor still queued. Slowness is judged against the
//! issue's targets in the report, never asserted, so the CI smoke run cannot flake.

use std::collections::HashSet;
use std::convert::Infallible;
use std::fmt::{Display, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::client::conn::http1 as client_http1;
use hyper::header::{CONTENT_TYPE, HOST};
use hyper::server::conn::http1 as server_http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use testkit::{FakeDingTalk, FakeRobot, Redis, free_port, temp_dir};
use tokio::net::{TcpListener, TcpStream};

/// The release binary under test (cargo builds it with the bench profile).
const BRIDGE: &str = env!("CARGO_BIN_EXE_alertmanager-dingtalk");
/// The webhook every request sends: one realistic ~1.5 KB single-alert notification.
const PAYLOAD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/data/one_alert.json");
/// Where a full run writes its results, between the two markers.
const BENCHMARKS_MD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/BENCHMARKS.md");
const BEGIN: &str = "<!-- loadbench:begin -->";
const END: &str = "<!-- loadbench:end -->";
/// The command that regenerates BENCHMARKS.md, as printed there.
const COMMAND: &str = "cargo bench --locked --bench loadbench";

/// Concurrent keep-alive connections of the client.
const CONNECTIONS: usize = 16;
/// Pause between ready and the idle RSS reading, so start-up allocations settle.
const SETTLE: Duration = Duration::from_millis(300);
/// How often readiness is polled while measuring start-up.
const READY_POLL: Duration = Duration::from_millis(1);
/// Rate limit of the benchmark robot: high enough that the window never throttles, so
/// every message is sent on its own (no digests).
const RATE_LIMIT: &str = "100000/s";
/// The fake DingTalk's limit per second for the robot: ten times the bridge's own, so it
/// never answers 130101.
const DINGTALK_RATE_LIMIT: u32 = 1_000_000;
/// The robot's `access_token`.
const TOKEN: &str = "loadbench";

fn main() -> ExitCode {
    // `cargo bench` passes `--bench` to harness-less benchmarks.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match args.as_slice() {
        ["--serve-baseline", addr] => serve_baseline(addr),
        [] => run(&Settings::FULL),
        ["--smoke"] => run(&Settings::SMOKE),
        _ => Err(format!(
            "usage: {COMMAND} [-- --smoke]\n  --smoke  a few seconds per mode; checks behaviour, writes nothing"
        )),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("loadbench: {error}");
            ExitCode::FAILURE
        }
    }
}

/// How long each phase of a scenario lasts.
struct Settings {
    smoke: bool,
    /// Load before measuring: connections, caches and the allocator settle.
    warm_up: Duration,
    /// The measured window for webhooks/s and latency.
    measure: Duration,
    /// Start-ups measured per scenario; the median is reported.
    startups: usize,
    /// Longest wait, after the load, for queued messages to reach the fake DingTalk.
    /// What is still queued then is reported (slow), not failed (only lost ones fail).
    delivery_timeout: Duration,
}

impl Settings {
    const FULL: Settings = Settings {
        smoke: false,
        warm_up: Duration::from_secs(1),
        measure: Duration::from_secs(10),
        startups: 5,
        delivery_timeout: Duration::from_secs(60),
    };
    const SMOKE: Settings = Settings {
        smoke: true,
        warm_up: Duration::from_millis(100),
        measure: Duration::from_millis(500),
        startups: 1,
        delivery_timeout: Duration::from_secs(20),
    };
}

/// Attaches what was being done to an error.
trait Context<T> {
    fn context(self, what: &str) -> Result<T, String>;
}

impl<T, E: Display> Context<T> for Result<T, E> {
    fn context(self, what: &str) -> Result<T, String> {
        self.map_err(|error| format!("{what}: {error}"))
    }
}

// ---------------------------------------------------------------------------------------
// The run: every scenario, then the report.

/// What is being measured.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Baseline,
    Memory,
    Durable,
    Cluster,
    Passthrough,
}

impl Mode {
    const ALL: [Mode; 5] = [
        Mode::Baseline,
        Mode::Memory,
        Mode::Durable,
        Mode::Cluster,
        Mode::Passthrough,
    ];

    fn name(self) -> &'static str {
        match self {
            Mode::Baseline => "baseline",
            Mode::Memory => "memory",
            Mode::Durable => "durable",
            Mode::Cluster => "cluster",
            Mode::Passthrough => "passthrough",
        }
    }

    fn executable(self) -> Result<PathBuf, String> {
        match self {
            Mode::Baseline => std::env::current_exe().context("path of loadbench"),
            _ => Ok(PathBuf::from(BRIDGE)),
        }
    }

    /// The bridge's config for this mode, or `None` for the baseline; `redis` is the
    /// URL of the cluster's Redis.
    fn config(self, dingtalk_url: &str, redis: Option<&str>) -> Option<String> {
        let delivery = match self {
            Mode::Baseline => return None,
            Mode::Memory => "mode: queued",
            Mode::Durable | Mode::Cluster => "mode: queued\n  queue_dir: ./queue",
            Mode::Passthrough => "mode: passthrough",
        };
        let cluster = match redis {
            Some(url) => format!("cluster:\n  redis_url: \"{url}\"\n"),
            None => String::new(),
        };
        Some(format!(
            "dingtalk:\n  api_url: \"{dingtalk_url}\"\n\
             delivery:\n  {delivery}\n{cluster}\
             robots:\n  ops:\n    access_token: {TOKEN}\n    rate_limit: {RATE_LIMIT}\n\
             strategies:\n  - name: default\n    robots: [ops]\n"
        ))
    }
}

fn run(settings: &Settings) -> Result<(), String> {
    let payload = Arc::new(Payload::load(Path::new(PAYLOAD))?);
    let runtime = tokio::runtime::Runtime::new().context("tokio runtime")?;
    let mut results = Vec::new();
    for mode in Mode::ALL {
        eprintln!("loadbench: {} ...", mode.name());
        let figures = runtime.block_on(scenario(mode, settings, &payload))?;
        eprintln!("loadbench: {} done: {}", mode.name(), figures.one_line());
        results.push(figures);
    }
    let report = report(settings, &payload, &results);
    println!("{report}");
    if !settings.smoke {
        write_benchmarks_md(&report)?;
        eprintln!("loadbench: wrote {BENCHMARKS_MD}");
    }
    let problems: Vec<String> = results.iter().flat_map(Figures::problems).collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "wrong behaviour under load:\n  {}",
            problems.join("\n  ")
        ))
    }
}

/// Everything measured for one mode.
struct Figures {
    mode: Mode,
    /// Binary size in bytes.
    binary_bytes: u64,
    /// Median time from spawn to the first 200 on `/-/ready`.
    startup: Duration,
    idle_rss_kib: u64,
    /// The process's high-water mark after the load and delivery.
    peak_rss_kib: u64,
    load: Load,
    /// CPU seconds of the child from the start of the load until every message was
    /// delivered, per 10 000 webhooks accepted in that time.
    cpu_per_10k: f64,
    /// Distinct webhooks' alerts the fake DingTalk received (a digest carries many), the
    /// messages that carried them, and TCP connections opened to it.
    delivered: u64,
    messages: u64,
    dingtalk_connections: u64,
    /// Requests the fake DingTalk did not answer errcode 0.
    dingtalk_refused: u64,
    /// From the end of the load until the last message reached the fake DingTalk; `None`
    /// if some had not within the timeout.
    delivery_lag: Option<Duration>,
    /// Messages still in the bridge's queue when the wait for delivery timed out.
    still_queued: u64,
}

impl Figures {
    fn one_line(&self) -> String {
        format!(
            "{:.0} webhooks/s, p99 {}, {} accepted, {} delivered",
            self.load.per_second(),
            ms(self.load.percentile(99.0)),
            self.load.accepted,
            self.delivered,
        )
    }

    /// Wrong behaviour (not slowness): what makes the run fail.
    fn problems(&self) -> Vec<String> {
        let name = self.mode.name();
        let mut problems = Vec::new();
        if self.load.failures > 0 {
            problems.push(format!(
                "{name}: {} webhooks not answered 200; first: {}",
                self.load.failures,
                self.load.first_failure.as_deref().unwrap_or("?")
            ));
        }
        if self.load.measured == 0 {
            problems.push(format!(
                "{name}: no webhook completed in the measured window"
            ));
        }
        if self.mode != Mode::Baseline {
            // Slow delivery is a figure; a message neither delivered nor queued is lost.
            if self.delivered + self.still_queued < self.load.accepted {
                problems.push(format!(
                    "{name}: {} webhooks accepted, but only {} messages reached DingTalk and {} are queued",
                    self.load.accepted, self.delivered, self.still_queued
                ));
            }
            if self.dingtalk_refused > 0 {
                problems.push(format!(
                    "{name}: DingTalk refused {} requests",
                    self.dingtalk_refused
                ));
            }
        }
        problems
    }
}

/// One scenario: start the server (several times, for the start-up median), let it idle,
/// load it, wait for delivery, read its stats.
async fn scenario(
    mode: Mode,
    settings: &Settings,
    payload: &Arc<Payload>,
) -> Result<Figures, String> {
    let dingtalk = DingTalk::start().await;
    let redis = (mode == Mode::Cluster).then(Redis::start);
    let redis_url = redis.as_ref().map(Redis::url);
    let mut startups = Vec::new();
    let mut server = None;
    for _ in 0..settings.startups {
        drop(server.take());
        let started = Server::start(mode, &dingtalk.fake.api_url(), redis_url.as_deref()).await?;
        startups.push(started.startup);
        server = Some(started);
    }
    let mut server = server.ok_or("no start-up measured")?;
    startups.sort();
    let startup = startups[startups.len() / 2];

    tokio::time::sleep(SETTLE).await;
    let idle = server.stats()?;
    let load = drive_load(server.addr, payload, settings).await?;
    let loaded = Instant::now();
    let delivery_lag = if mode == Mode::Baseline {
        Some(Duration::ZERO)
    } else {
        dingtalk
            .wait_for_alerts(load.accepted, settings.delivery_timeout)
            .await
            .then(|| loaded.elapsed())
    };
    let still_queued = match delivery_lag {
        Some(_) => 0,
        None => queue_depth(server.addr).await?,
    };
    let after = server.stats()?;
    server.check_alive()?;

    let cpu = (after.cpu_ticks - idle.cpu_ticks) as f64 / clock_ticks_per_second();
    let counts = dingtalk.fake.counts();
    Ok(Figures {
        mode,
        binary_bytes: std::fs::metadata(mode.executable()?)
            .context("binary size")?
            .len(),
        startup,
        idle_rss_kib: idle.rss_kib,
        peak_rss_kib: after.hwm_kib,
        cpu_per_10k: cpu / load.accepted.max(1) as f64 * 10_000.0,
        delivered: dingtalk.alerts.count(),
        messages: counts.delivered,
        dingtalk_connections: dingtalk.fake.connections() as u64,
        dingtalk_refused: counts.answered - counts.delivered,
        delivery_lag,
        still_queued,
        load,
    })
}

// ---------------------------------------------------------------------------------------
// The server under test: spawn, readiness, /proc stats.

/// A running child process, killed and its directory removed when dropped.
struct Server {
    child: Child,
    dir: PathBuf,
    addr: SocketAddr,
    /// From spawn to the first 200 on `/-/ready`.
    startup: Duration,
}

impl Server {
    async fn start(mode: Mode, dingtalk_url: &str, redis: Option<&str>) -> Result<Server, String> {
        let dir = temp_dir(&format!("loadbench-{}", mode.name()));
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let mut command = Command::new(mode.executable()?);
        match mode.config(dingtalk_url, redis) {
            None => {
                command.arg("--serve-baseline").arg(addr.to_string());
            }
            Some(config) => {
                std::fs::write(dir.join("config.yaml"), config).context("write config")?;
                command
                    .args(["--config", "config.yaml", "--listen"])
                    .arg(addr.to_string());
            }
        }
        let log = std::fs::File::create(dir.join("server.log")).context("create log")?;
        // Nothing may leave loopback, whatever the environment says about proxies.
        for proxy in ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"] {
            command.env_remove(proxy).env_remove(proxy.to_lowercase());
        }
        command
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        let spawned = Instant::now();
        let child = command.spawn().context("spawn the server")?;
        let mut server = Server {
            child,
            dir,
            addr,
            startup: Duration::ZERO,
        };
        server.startup = server.wait_ready(spawned).await?;
        Ok(server)
    }

    /// Polls `/-/ready` every millisecond until it answers 200.
    async fn wait_ready(&mut self, spawned: Instant) -> Result<Duration, String> {
        let deadline = spawned + Duration::from_secs(10);
        loop {
            if get(self.addr, "/-/ready")
                .await
                .is_some_and(|(status, _)| status == StatusCode::OK)
            {
                return Ok(spawned.elapsed());
            }
            self.check_alive()?;
            if Instant::now() > deadline {
                return Err(format!("server never ready:\n{}", self.log_tail()));
            }
            tokio::time::sleep(READY_POLL).await;
        }
    }

    fn check_alive(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(format!("server exited ({status}):\n{}", self.log_tail())),
            Err(error) => Err(format!("server status: {error}")),
        }
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    fn stats(&self) -> Result<ProcessStats, String> {
        ProcessStats::read(self.child.id())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Status and body of one GET on a fresh connection, or `None` if there was no answer.
async fn get(addr: SocketAddr, path: &str) -> Option<(StatusCode, Bytes)> {
    let stream = TcpStream::connect(addr).await.ok()?;
    let (mut sender, connection) = client_http1::handshake(TokioIo::new(stream)).await.ok()?;
    tokio::spawn(connection);
    let request = Request::get(path)
        .header(HOST, "127.0.0.1")
        .body(Full::new(Bytes::new()))
        .ok()?;
    let response = sender.send_request(request).await.ok()?;
    let status = response.status();
    Some((
        status,
        response.into_body().collect().await.ok()?.to_bytes(),
    ))
}

/// Messages pending in the bridge, from `GET /api/v1/queue`.
async fn queue_depth(addr: SocketAddr) -> Result<u64, String> {
    let (status, body) = get(addr, "/api/v1/queue")
        .await
        .ok_or("no answer from /api/v1/queue")?;
    if status != StatusCode::OK {
        return Err(format!("/api/v1/queue answered {status}"));
    }
    let robots: Vec<serde_json::Value> = serde_json::from_slice(&body).context("/api/v1/queue")?;
    Ok(robots
        .iter()
        .filter_map(|robot| robot["depth"].as_u64())
        .sum())
}

/// CPU time and memory of a process, from `/proc`.
struct ProcessStats {
    /// User plus system time of all its threads, in clock ticks.
    cpu_ticks: u64,
    /// Resident set now (`VmRSS`) and its high-water mark (`VmHWM`).
    rss_kib: u64,
    hwm_kib: u64,
}

impl ProcessStats {
    fn read(pid: u32) -> Result<ProcessStats, String> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).context("read stat")?;
        // The command name in parentheses may hold spaces; fields are counted after it.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .ok_or("unreadable /proc/PID/stat")?
            .1
            .split_whitespace()
            .collect();
        let tick = |n: usize| -> Result<u64, String> {
            fields
                .get(n)
                .ok_or("short /proc/PID/stat")?
                .parse()
                .context("stat field")
        };
        // Fields 14 and 15 of stat(5): utime and stime; the slice starts at field 3.
        let cpu_ticks = tick(11)? + tick(12)?;
        let status =
            std::fs::read_to_string(format!("/proc/{pid}/status")).context("read status")?;
        let kib = |key: &str| -> Result<u64, String> {
            status
                .lines()
                .find_map(|line| line.strip_prefix(key))
                .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
                .ok_or(format!("no {key} in /proc/PID/status"))
        };
        Ok(ProcessStats {
            cpu_ticks,
            rss_kib: kib("VmRSS:")?,
            hwm_kib: kib("VmHWM:")?,
        })
    }
}

/// Clock ticks per second of `/proc/PID/stat` (`getconf CLK_TCK`; 100 on Linux).
fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok()?.trim().parse().ok())
        .unwrap_or(100.0)
}

// ---------------------------------------------------------------------------------------
// The baseline server (run as a child: `loadbench --serve-baseline ADDR`).

/// Serves on `addr` until killed: reads each request's whole body, answers 200. Built like
/// the bridge's front door (hyper 1 HTTP/1.1 on a default multi-threaded tokio runtime),
/// minus everything the bridge does with the body.
fn serve_baseline(addr: &str) -> Result<(), String> {
    let addr: SocketAddr = addr.parse().context("--serve-baseline address")?;
    let runtime = tokio::runtime::Runtime::new().context("tokio runtime")?;
    runtime.block_on(async {
        let listener = TcpListener::bind(addr).await.context("bind")?;
        loop {
            let (stream, _) = listener.accept().await.context("accept")?;
            let service = service_fn(|request: Request<Incoming>| async move {
                let _ = request.into_body().collect().await;
                Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
            });
            tokio::spawn(
                server_http1::Builder::new().serve_connection(TokioIo::new(stream), service),
            );
        }
    })
}

// ---------------------------------------------------------------------------------------
// The fake DingTalk: the test kit's, counting only.

/// The fake DingTalk of the test kit, keeping no request, and the webhooks whose alert
/// the messages it accepted named.
struct DingTalk {
    fake: FakeDingTalk,
    alerts: Arc<AlertsSeen>,
}

impl DingTalk {
    async fn start() -> DingTalk {
        let alerts = Arc::new(AlertsSeen::default());
        let robot = FakeRobot::new(TOKEN).rate(DINGTALK_RATE_LIMIT, Duration::from_secs(1));
        let on_delivered = {
            let alerts = Arc::clone(&alerts);
            move |request: &testkit::Request| alerts.record(request.text())
        };
        let fake = FakeDingTalk::start_counting(vec![robot], on_delivered).await;
        DingTalk { fake, alerts }
    }

    /// Waits until the alerts of `expected` webhooks arrived; false on timeout.
    async fn wait_for_alerts(&self, expected: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.alerts.count() < expected {
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        true
    }
}

/// The sequence numbers of the webhooks whose alert a delivered message named.
#[derive(Default)]
struct AlertsSeen(Mutex<HashSet<u64>>);

impl AlertsSeen {
    fn count(&self) -> u64 {
        self.0.lock().map_or(0, |alerts| alerts.len() as u64)
    }

    /// Records every alert a message text names (`ALERT_NAME` followed by its webhook's
    /// sequence number), whether the message is one webhook's or a digest of many.
    fn record(&self, text: &str) {
        let Ok(mut alerts) = self.0.lock() else {
            return;
        };
        let mut rest = text;
        while let Some(at) = rest.find(ALERT_NAME) {
            rest = &rest[at + ALERT_NAME.len()..];
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if let Ok(sequence) = rest[..digits].parse() {
                alerts.insert(sequence);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// The client: 16 keep-alive connections in a closed loop.

/// Prefix of each webhook's alert name, which ends in the webhook's sequence number: the
/// fake DingTalk finds every alert a message names by it, digests included.
const ALERT_NAME: &str = "LoadbenchAlert";

/// The fixture, split around the places where each request's sequence number goes.
struct Payload {
    parts: Vec<String>,
}

impl Payload {
    /// Reads the fixture and makes its `groupKey` and its alert's name end in the
    /// request's sequence number (`ALERT_NAME<n>`), so that no two requests are
    /// duplicates of each other, each one yields a message, and each alert can be found
    /// in what reaches DingTalk.
    fn load(path: &Path) -> Result<Payload, String> {
        const MARK: &str = "\u{1}LOADBENCH\u{1}";
        let text = std::fs::read_to_string(path).context(&path.display().to_string())?;
        let mut json: serde_json::Value = serde_json::from_str(&text).context("payload JSON")?;
        let group_key = json
            .get("groupKey")
            .and_then(|key| key.as_str())
            .ok_or("the payload has no groupKey")?;
        json["groupKey"] = format!("{group_key}#{MARK}").into();
        let alert_name = serde_json::Value::from(format!("{ALERT_NAME}{MARK}"));
        json["groupLabels"]["alertname"] = alert_name.clone();
        json["commonLabels"]["alertname"] = alert_name.clone();
        for alert in json["alerts"]
            .as_array_mut()
            .ok_or("the payload has no alerts")?
        {
            alert["labels"]["alertname"] = alert_name.clone();
        }
        let marked = serde_json::to_string_pretty(&json).context("payload JSON")?;
        let escaped = serde_json::to_string(MARK).context("payload JSON")?;
        let parts: Vec<String> = marked
            .split(escaped.trim_matches('"'))
            .map(str::to_owned)
            .collect();
        Ok(Payload { parts })
    }

    fn body(&self, sequence: u64) -> Bytes {
        let mut body =
            String::with_capacity(self.parts.iter().map(String::len).sum::<usize>() + 80);
        for (i, part) in self.parts.iter().enumerate() {
            if i > 0 {
                let _ = write!(body, "{sequence}");
            }
            body.push_str(part);
        }
        Bytes::from(body)
    }

    fn len(&self) -> usize {
        self.body(0).len()
    }
}

/// Phases of the load, shared by the connections.
const WARMING_UP: u8 = 0;
const MEASURING: u8 = 1;
const STOPPED: u8 = 2;

/// What the client saw.
#[derive(Default)]
struct Load {
    /// Webhooks answered 200 in the whole run (warm-up included): each must be delivered.
    accepted: u64,
    failures: u64,
    first_failure: Option<String>,
    /// Requests completed in the measured window, and their latencies in microseconds.
    measured: u64,
    latencies_us: Vec<u32>,
    /// Completions per whole second of the measured window.
    per_second: Vec<u64>,
    window: Duration,
}

impl Load {
    fn merge(&mut self, other: Load) {
        self.accepted += other.accepted;
        self.failures += other.failures;
        self.first_failure = self.first_failure.take().or(other.first_failure);
        self.measured += other.measured;
        self.latencies_us.extend(other.latencies_us);
        if self.per_second.len() < other.per_second.len() {
            self.per_second.resize(other.per_second.len(), 0);
        }
        for (total, count) in self.per_second.iter_mut().zip(other.per_second) {
            *total += count;
        }
    }

    fn per_second(&self) -> f64 {
        self.measured as f64 / self.window.as_secs_f64().max(1e-9)
    }

    /// The latency below which `p` percent of the measured requests completed.
    fn percentile(&self, p: f64) -> Duration {
        if self.latencies_us.is_empty() {
            return Duration::ZERO;
        }
        let rank = (p / 100.0 * self.latencies_us.len() as f64).ceil() as usize;
        let index = rank.clamp(1, self.latencies_us.len()) - 1;
        Duration::from_micros(u64::from(self.latencies_us[index]))
    }

    /// Webhooks/s in the first and the last whole second of the window.
    fn first_and_last_second(&self) -> Option<(u64, u64)> {
        let whole = self.window.as_secs() as usize;
        if whole < 2 {
            return None;
        }
        Some((*self.per_second.first()?, *self.per_second.get(whole - 1)?))
    }
}

/// Warms up, measures for the window, stops; returns what the connections saw.
async fn drive_load(
    addr: SocketAddr,
    payload: &Arc<Payload>,
    settings: &Settings,
) -> Result<Load, String> {
    let phase = Arc::new(AtomicU8::new(WARMING_UP));
    let sequence = Arc::new(AtomicU64::new(0));
    let window_start = Arc::new(std::sync::OnceLock::new());
    let mut connections = Vec::new();
    for _ in 0..CONNECTIONS {
        let connection = Connection {
            addr,
            payload: payload.clone(),
            phase: phase.clone(),
            sequence: sequence.clone(),
            window_start: window_start.clone(),
        };
        connections.push(tokio::spawn(connection.run()));
    }
    tokio::time::sleep(settings.warm_up).await;
    let started = Instant::now();
    let _ = window_start.set(started);
    phase.store(MEASURING, Ordering::SeqCst);
    tokio::time::sleep(settings.measure).await;
    phase.store(STOPPED, Ordering::SeqCst);
    let mut load = Load {
        window: started.elapsed(),
        ..Load::default()
    };
    for connection in connections {
        load.merge(connection.await.context("client task")??);
    }
    load.latencies_us.sort_unstable();
    Ok(load)
}

/// One keep-alive client connection.
struct Connection {
    addr: SocketAddr,
    payload: Arc<Payload>,
    phase: Arc<AtomicU8>,
    sequence: Arc<AtomicU64>,
    window_start: Arc<std::sync::OnceLock<Instant>>,
}

impl Connection {
    /// Sends webhooks one after another until the load stops.
    async fn run(self) -> Result<Load, String> {
        let stream = TcpStream::connect(self.addr).await.context("connect")?;
        // The client must not delay its own requests (Nagle); the server keeps its
        // defaults, as the bridge does.
        stream.set_nodelay(true).context("nodelay")?;
        let (mut sender, connection) = client_http1::handshake(TokioIo::new(stream))
            .await
            .context("handshake")?;
        tokio::spawn(connection);
        let mut load = Load::default();
        loop {
            let request = Request::post("/alertmanager")
                .header(HOST, "127.0.0.1")
                .header(CONTENT_TYPE, "application/json")
                .body(Full::new(
                    self.payload
                        .body(self.sequence.fetch_add(1, Ordering::Relaxed)),
                ))
                .context("request")?;
            sender.ready().await.context("connection closed")?;
            let sent = Instant::now();
            let response = sender.send_request(request).await.context("send")?;
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .context("answer")?
                .to_bytes();
            let done = Instant::now();
            if status == StatusCode::OK {
                load.accepted += 1;
            } else {
                load.failures += 1;
                load.first_failure.get_or_insert_with(|| {
                    format!("{status} {}", String::from_utf8_lossy(&body).trim())
                });
            }
            match self.phase.load(Ordering::SeqCst) {
                STOPPED => return Ok(load),
                MEASURING => {
                    load.measured += 1;
                    let micros = (done - sent).as_micros().min(u128::from(u32::MAX)) as u32;
                    load.latencies_us.push(micros);
                    if let Some(start) = self.window_start.get() {
                        let second = done.saturating_duration_since(*start).as_secs() as usize;
                        if load.per_second.len() <= second {
                            load.per_second.resize(second + 1, 0);
                        }
                        load.per_second[second] += 1;
                    }
                }
                _ => {}
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// The report.

/// A figure in a cell: the value, its ratio to the baseline and, if it has a target,
/// whether it is met.
fn cell(value: String, ratio: Option<f64>, met: Option<bool>) -> String {
    let mut cell = value;
    if let Some(ratio) = ratio.filter(|r| r.is_finite()) {
        let _ = write!(cell, " ({ratio:.2}×)");
    }
    match met {
        Some(true) => cell.push_str(" ✅"),
        Some(false) => cell.push_str(" ❌"),
        None => {}
    }
    cell
}

fn ms(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1000.0)
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// One row of the table: a figure for each mode, a ratio to the baseline, a target.
struct Row<'a> {
    label: &'a str,
    target: &'a str,
    /// The number compared with the baseline, or `None` for no ratio.
    number: &'a dyn Fn(&Figures) -> Option<f64>,
    show: &'a dyn Fn(&Figures) -> String,
    /// Whether this mode meets the row's target, if it has one for this mode.
    met: &'a dyn Fn(&Figures, f64) -> Option<bool>,
}

impl Row<'_> {
    fn render(&self, results: &[Figures], out: &mut String) {
        let baseline = results.iter().find(|f| f.mode == Mode::Baseline);
        let base = baseline.and_then(|b| (self.number)(b));
        let _ = write!(out, "| {} |", self.label);
        for figures in results {
            let value = (self.number)(figures);
            let ratio = match (value, base) {
                (Some(v), Some(b)) if figures.mode != Mode::Baseline && b != 0.0 => Some(v / b),
                _ => None,
            };
            let met = (self.met)(figures, ratio.unwrap_or(f64::NAN));
            let _ = write!(out, " {} |", cell((self.show)(figures), ratio, met));
        }
        let _ = writeln!(out, " {} |", self.target);
    }
}

fn is_bridge(figures: &Figures) -> bool {
    figures.mode != Mode::Baseline
}

fn report(settings: &Settings, payload: &Payload, results: &[Figures]) -> String {
    let no_target = |_: &Figures, _: f64| None;
    let rows = [
        Row {
            label: "webhooks/s",
            target: "memory ≥ 0.60×, durable ≥ 0.25× of baseline",
            number: &|f| Some(f.load.per_second()),
            show: &|f| format!("{:.0}", f.load.per_second()),
            met: &|f, ratio| match f.mode {
                Mode::Memory => Some(ratio >= 0.60),
                Mode::Durable => Some(ratio >= 0.25),
                _ => None,
            },
        },
        Row {
            label: "webhooks/s, first → last second",
            target: "flat",
            number: &|_| None,
            show: &|f| match f.load.first_and_last_second() {
                Some((first, last)) => format!("{first} → {last}"),
                None => "—".to_owned(),
            },
            met: &no_target,
        },
        Row {
            label: "latency p50",
            target: "",
            number: &|f| Some(f.load.percentile(50.0).as_secs_f64()),
            show: &|f| ms(f.load.percentile(50.0)),
            met: &no_target,
        },
        Row {
            label: "latency p99",
            target: "memory ≤ 2 ms, durable and cluster ≤ 10 ms",
            number: &|f| Some(f.load.percentile(99.0).as_secs_f64()),
            show: &|f| ms(f.load.percentile(99.0)),
            met: &|f, _| match f.mode {
                Mode::Memory => Some(f.load.percentile(99.0) <= Duration::from_millis(2)),
                Mode::Durable | Mode::Cluster => {
                    Some(f.load.percentile(99.0) <= Duration::from_millis(10))
                }
                _ => None,
            },
        },
        Row {
            label: "latency p99.9",
            target: "",
            number: &|f| Some(f.load.percentile(99.9).as_secs_f64()),
            show: &|f| ms(f.load.percentile(99.9)),
            met: &no_target,
        },
        Row {
            label: "CPU s per 10k webhooks",
            target: "",
            number: &|f| Some(f.cpu_per_10k),
            // Not everything delivered yet: the delivery work still to come is missing.
            show: &|f| {
                let bound = if f.still_queued > 0 { "≥ " } else { "" };
                format!("{bound}{:.2}", f.cpu_per_10k)
            },
            met: &no_target,
        },
        Row {
            label: "idle RSS",
            target: "≤ 6 MiB",
            number: &|f| Some(f.idle_rss_kib as f64),
            show: &|f| mib(f.idle_rss_kib),
            met: &|f, _| is_bridge(f).then_some(f.idle_rss_kib <= 6 * 1024),
        },
        Row {
            label: "peak RSS",
            target: "≤ 20 MiB",
            number: &|f| Some(f.peak_rss_kib as f64),
            show: &|f| mib(f.peak_rss_kib),
            met: &|f, _| is_bridge(f).then_some(f.peak_rss_kib <= 20 * 1024),
        },
        Row {
            label: "start-up to ready",
            target: "≤ 50 ms",
            number: &|f| Some(f.startup.as_secs_f64()),
            show: &|f| ms(f.startup),
            met: &|f, _| is_bridge(f).then_some(f.startup <= Duration::from_millis(50)),
        },
        // `cargo bench` builds the bridge with the features its dev-dependencies turn on
        // (proptest's regex-syntax with every Unicode table, tokio's test-util), so this
        // binary is larger than the shipped one; the target is the shipped binary's
        // (`cargo build --release`), reported by hand under "Targets".
        Row {
            label: "binary size, as cargo bench builds it",
            target: "shipped ≤ 9 MiB: see Targets",
            number: &|f| Some(f.binary_bytes as f64),
            show: &|f| mib(f.binary_bytes / 1024),
            met: &|_, _| None,
        },
        Row {
            label: "webhooks accepted / not 200",
            target: "all 200",
            number: &|_| None,
            show: &|f| format!("{} / {}", f.load.accepted, f.load.failures),
            met: &|f, _| Some(f.load.failures == 0),
        },
        Row {
            label: "webhooks' alerts delivered / DingTalk messages",
            target: "every alert",
            number: &|_| None,
            show: &|f| {
                if is_bridge(f) {
                    format!("{} / {}", f.delivered, f.messages)
                } else {
                    "—".to_owned()
                }
            },
            met: &|f, _| is_bridge(f).then_some(f.delivered >= f.load.accepted),
        },
        Row {
            label: "delivered, after the load ended",
            target: "",
            number: &|_| None,
            show: &|f| match (is_bridge(f), f.delivery_lag) {
                (false, _) => "—".to_owned(),
                (true, Some(lag)) => format!("{:.2} s", lag.as_secs_f64()),
                (true, None) => format!(
                    "{} still queued after {} s",
                    f.still_queued,
                    settings.delivery_timeout.as_secs()
                ),
            },
            met: &no_target,
        },
        Row {
            label: "DingTalk connections opened",
            target: "passthrough: 1 (one robot)",
            number: &|_| None,
            show: &|f| {
                if is_bridge(f) {
                    f.dingtalk_connections.to_string()
                } else {
                    "—".to_owned()
                }
            },
            met: &|f, _| (f.mode == Mode::Passthrough).then_some(f.dingtalk_connections == 1),
        },
    ];

    let mut out = String::new();
    let _ = writeln!(
        out,
        "Command: `{COMMAND}`{}",
        if settings.smoke {
            " -- --smoke (smoke run)"
        } else {
            ""
        }
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "- Date: {}",
        jiff::Timestamp::now().strftime("%Y-%m-%d %H:%M UTC")
    );
    let _ = writeln!(
        out,
        "- Machine: {}; {}",
        command_output("uname", &["-srm"]),
        cpu_model()
    );
    let _ = writeln!(out, "- Rust: {}", command_output("rustc", &["--version"]));
    let _ = writeln!(
        out,
        "- Load average when the report was written: {} (other work on the machine skews timings)",
        load_average()
    );
    let _ = writeln!(
        out,
        "- Load: {CONNECTIONS} keep-alive HTTP/1.1 connections on loopback, closed loop, \
         {:.1} s warm-up then {:.1} s measured; `POST /alertmanager` with \
         `benches/data/one_alert.json` ({} bytes, one alert, `groupKey` and alert name unique per request)",
        settings.warm_up.as_secs_f64(),
        settings.measure.as_secs_f64(),
        payload.len(),
    );
    let _ = writeln!(
        out,
        "- Bridge: one robot, `rate_limit: {RATE_LIMIT}`, default `dedup_window` (60s), \
         log level `info` to a file; the test kit's fake DingTalk in the benchmark process checks \
         each message and answers errcode 0"
    );
    let _ = writeln!(out);
    let names: Vec<&str> = results.iter().map(|f| f.mode.name()).collect();
    let _ = writeln!(out, "| figure | {} | target |", names.join(" | "));
    let _ = writeln!(out, "|{}", " --- |".repeat(names.len() + 2));
    for row in &rows {
        row.render(results, &mut out);
    }
    let _ = writeln!(out);
    let figure = |mode: Mode| results.iter().find(|f| f.mode == mode);
    if let (Some(cluster), Some(durable)) = (figure(Mode::Cluster), figure(Mode::Durable)) {
        let ratio = cluster.load.per_second() / durable.load.per_second();
        let _ = writeln!(
            out,
            "Cluster against durable in the same run: {ratio:.2}× the webhooks/s {} \
             (target ≥ 0.5×), p99 {} against {}.",
            if ratio >= 0.5 { "✅" } else { "❌" },
            ms(cluster.load.percentile(99.0)),
            ms(durable.load.percentile(99.0)),
        );
        let _ = writeln!(out);
    }
    let _ = writeln!(
        out,
        "Ratios are to the baseline, a minimal hyper 1 server (this benchmark re-executed with \
         `--serve-baseline`) that reads the body and answers 200, measured in the same run. \
         CPU is the child's user + system time from the start of the load until every message \
         reached the fake DingTalk, per 10 000 webhooks. Idle RSS is `VmRSS` {} ms after ready; \
         peak RSS is `VmHWM` after delivery. Start-up is spawn → first 200 on `/-/ready` \
         (polled every 1 ms), the median of {}. The baseline's binary is the benchmark itself, \
         load generator included. Targets are for 2 cores; on a busy machine timings are noisy, \
         and they are reported, never asserted.",
        SETTLE.as_millis(),
        settings.startups,
    );
    out
}

fn command_output(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map(|text| text.trim().to_owned())
        .filter(|text| !text.is_empty())
        .unwrap_or_else(|| format!("({program} unavailable)"))
}

/// The 1-, 5- and 15-minute load averages from /proc/loadavg.
fn load_average() -> String {
    let loadavg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    loadavg
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// "<model> × <logical CPUs>" from /proc/cpuinfo.
fn cpu_model() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name")?.split_once(':'))
        .map_or("unknown CPU", |(_, model)| model.trim());
    let count = cpuinfo
        .lines()
        .filter(|line| line.starts_with("processor"))
        .count();
    format!("{model} × {count}")
}

/// Puts `report` between the markers of BENCHMARKS.md, keeping everything else; creates
/// the file, or appends a section with the markers, when missing.
fn write_benchmarks_md(report: &str) -> Result<(), String> {
    let block = format!("{BEGIN}\n{report}{END}");
    let existing = match std::fs::read_to_string(BENCHMARKS_MD) {
        Ok(text) => Some(text),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => None,
        Err(error) => return Err(format!("read {BENCHMARKS_MD}: {error}")),
    };
    let updated = match existing {
        Some(text) => match (text.find(BEGIN), text.find(END)) {
            (Some(begin), Some(end)) if begin < end => {
                format!("{}{block}{}", &text[..begin], &text[end + END.len()..])
            }
            _ => format!("{}\n\n{}", text.trim_end(), load_section(&block)),
        },
        None => format!(
            "# Benchmarks\n\n\
             Each section is regenerated by the command it names. The machines these run on \
             are shared and noisy: compare the ratios within one run, not absolute figures \
             across runs.\n\n{}",
            load_section(&block)
        ),
    };
    std::fs::write(BENCHMARKS_MD, updated).context("write BENCHMARKS.md")
}

fn load_section(block: &str) -> String {
    format!(
        "## Load benchmark\n\n\
         The bridge as a release binary under webhook load, in each delivery mode, against a \
         minimal hyper server (`benches/loadbench.rs`). Regenerate with `{COMMAND}`.\n\n\
         {block}\n"
    )
}
