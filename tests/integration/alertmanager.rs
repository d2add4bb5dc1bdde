//! Harness that runs a real Prometheus Alertmanager (`/usr/bin/prometheus-alertmanager`,
//! overridable with `ALERTMANAGER_BIN`) as a child process on loopback, for end-to-end
//! tests of the webhook bridge. Each instance gets free ports, clustering disabled, and a
//! unique temp directory holding its config, storage and log (stderr). The child is killed
//! and the directory removed on drop, including when a test panics. HTTP to Alertmanager
//! is spoken over a plain `tokio::net::TcpStream` so the harness needs no TLS crypto
//! provider and cannot mask a missing one in the code under test; it uses only tokio's `net`
//! feature (`readable`/`try_read`), not `io-util`, which Cargo.toml does not request.

// Not every test uses every helper.
#![allow(dead_code)]

use std::io;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use testkit::{Daemon, installed};
use tokio::net::TcpStream;

/// Where Debian's `prometheus-alertmanager` package installs the binary.
const DEFAULT_BIN: &str = "/usr/bin/prometheus-alertmanager";
/// How long to wait for `/-/ready` before giving up.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// Upper bound for a single HTTP exchange with Alertmanager.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A running Alertmanager; dropping it kills the process and removes its temp dir.
pub struct Alertmanager {
    daemon: Daemon,
}

/// One alert to post to Alertmanager's `/api/v2/alerts`.
#[derive(Debug, Clone)]
pub struct TestAlert {
    /// Identifying labels (`alertname`, `severity`, ...).
    pub labels: Vec<(String, String)>,
    /// Annotations (`summary`, `description`, ...).
    pub annotations: Vec<(String, String)>,
    /// Whether to post the alert as resolved (`endsAt` in the past).
    pub resolved: bool,
    /// `startsAt`, as Prometheus sets it; without it Alertmanager takes the time it got
    /// the alert.
    pub starts_at: Option<SystemTime>,
}

impl TestAlert {
    /// A firing alert with the given labels and no annotations.
    pub fn firing(labels: &[(&str, &str)]) -> Self {
        TestAlert {
            labels: to_owned_pairs(labels),
            annotations: Vec::new(),
            resolved: false,
            starts_at: None,
        }
    }

    /// A resolved alert with the given labels and no annotations.
    pub fn resolved(labels: &[(&str, &str)]) -> Self {
        TestAlert {
            resolved: true,
            ..TestAlert::firing(labels)
        }
    }

    /// Firing since `at`, as Prometheus says in every copy it sends to each Alertmanager.
    pub fn since(mut self, at: SystemTime) -> Self {
        self.starts_at = Some(at);
        self
    }

    /// Adds annotation `k=v`.
    pub fn annotate(mut self, k: &str, v: &str) -> Self {
        self.annotations.push((k.to_owned(), v.to_owned()));
        self
    }

    /// The alert as Alertmanager API v2 JSON (`postableAlert`).
    fn to_json(&self) -> serde_json::Value {
        let mut alert = serde_json::json!({
            "labels": pairs_to_map(&self.labels),
            "annotations": pairs_to_map(&self.annotations),
        });
        if self.resolved {
            let ends_at = SystemTime::now() - Duration::from_secs(1);
            alert["endsAt"] = serde_json::Value::String(rfc3339(ends_at));
        }
        if let Some(starts_at) = self.starts_at {
            alert["startsAt"] = serde_json::Value::String(rfc3339(starts_at));
        }
        alert
    }
}

impl Alertmanager {
    /// Starts Alertmanager with a route that sends every alert to `webhook_url`, group_by ['alertname'], group_wait 1s, group_interval 1s, repeat_interval 4h, send_resolved true.
    pub async fn start(webhook_url: &str) -> Alertmanager {
        Alertmanager::start_with_http_config(webhook_url, "").await
    }

    /// Like [`start`](Self::start), with `http_config` (YAML, unindented) for the webhook:
    /// `tls_config`, `basic_auth`, ...
    pub async fn start_with_http_config(webhook_url: &str, http_config: &str) -> Alertmanager {
        let bin = installed("ALERTMANAGER_BIN", DEFAULT_BIN, "prometheus-alertmanager");
        let config = render_config(webhook_url, http_config);
        let args = |dir: &Path, port: u16| {
            vec![
                format!("--config.file={}", dir.join("alertmanager.yml").display()),
                format!("--storage.path={}", dir.join("data").display()),
                format!("--web.listen-address=127.0.0.1:{port}"),
                format!("--web.external-url=http://127.0.0.1:{port}"),
                "--cluster.listen-address=".to_owned(),
                "--log.level=debug".to_owned(),
            ]
        };
        let ready = |port: u16| async move {
            match http(port, "GET", "/-/ready", "").await {
                Ok((200, _)) => Ok(()),
                Ok((status, body)) => Err(format!("GET /-/ready returned {status}: {body}")),
                Err(err) => Err(format!("GET /-/ready failed: {err}")),
            }
        };
        let config = ("alertmanager.yml", config.as_str());
        let daemon = Daemon::start(&bin, "alertmanager", config, args, ready, READY_TIMEOUT).await;
        Alertmanager { daemon }
    }

    /// Sends to `webhook_url` from now on: the config rewritten and reloaded
    /// (`POST /-/reload`), the alerts kept.
    pub async fn notify_to(&self, webhook_url: &str) {
        let config = render_config(webhook_url, "");
        std::fs::write(self.daemon.dir().join("alertmanager.yml"), config).unwrap();
        match http(self.daemon.port, "POST", "/-/reload", "").await {
            Ok((200, _)) => {}
            other => panic!("reloading Alertmanager: {other:?}\n{}", self.log()),
        }
    }

    /// Base URL of the Alertmanager API, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.daemon.port)
    }

    /// POSTs alerts to /api/v2/alerts. Each alert: labels map, annotations map; `resolved: true` sets endsAt to now (minus 1s) so Alertmanager sees it resolved; otherwise endsAt is omitted (or in the future).
    pub async fn post_alerts(&self, alerts: &[TestAlert]) {
        let body = serde_json::Value::Array(alerts.iter().map(TestAlert::to_json).collect());
        let body = body.to_string();
        match http(self.daemon.port, "POST", "/api/v2/alerts", &body).await {
            Ok((200..=299, _)) => {}
            Ok((status, response)) => panic!(
                "POST /api/v2/alerts returned {status}: {response}\nrequest: {body}\n--- alertmanager log ---\n{}",
                self.log()
            ),
            Err(err) => panic!(
                "POST /api/v2/alerts failed: {err}\n--- alertmanager log ---\n{}",
                self.log()
            ),
        }
    }

    /// Every silence Alertmanager knows (API v2), as JSON.
    pub async fn silences(&self) -> Vec<serde_json::Value> {
        match http(self.daemon.port, "GET", "/api/v2/silences", "").await {
            Ok((200, body)) => serde_json::from_str(&body).expect("silences JSON"),
            Ok((status, body)) => panic!("GET /api/v2/silences returned {status}: {body}"),
            Err(err) => panic!("GET /api/v2/silences failed: {err}"),
        }
    }

    /// The silences that are active now.
    pub async fn active_silences(&self) -> Vec<serde_json::Value> {
        self.silences()
            .await
            .into_iter()
            .filter(|s| s["status"]["state"] == "active")
            .collect()
    }

    /// The Alertmanager's own log so far, for assertion messages.
    pub fn log(&self) -> String {
        self.daemon.log()
    }
}

/// The alertmanager.yml routing everything to a single webhook receiver at `webhook_url`,
/// with `http_config` if not empty.
fn render_config(webhook_url: &str, http_config: &str) -> String {
    // A JSON string is a valid YAML double-quoted scalar, so this escapes the URL safely.
    let url = serde_json::Value::String(webhook_url.to_owned());
    let http_config = if http_config.is_empty() {
        String::new()
    } else {
        let indented: Vec<String> = http_config
            .lines()
            .map(|l| format!("          {l}"))
            .collect();
        format!("        http_config:\n{}\n", indented.join("\n"))
    };
    format!(
        "route:
  receiver: bridge
  group_by: ['alertname']
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 4h
receivers:
  - name: bridge
    webhook_configs:
      - url: {url}
        send_resolved: true
        max_alerts: 0
{http_config}"
    )
}

/// One HTTP/1.1 exchange with `127.0.0.1:port` (`Connection: close`); returns status and raw body.
async fn http(port: u16, method: &str, path: &str, body: &str) -> io::Result<(u16, String)> {
    let exchange = async {
        let stream = TcpStream::connect(("127.0.0.1", port)).await?;
        let request = format!(
            "{method} {path} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\nconnection: close\r\n\
             content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        write_all(&stream, request.as_bytes()).await?;
        let mut response = Vec::new();
        let mut chunk = [0u8; 8192];
        loop {
            match read_some(&stream, &mut chunk).await? {
                0 => break,
                n => response.extend_from_slice(&chunk[..n]),
            }
        }
        io::Result::Ok(response)
    };
    let response = tokio::time::timeout(REQUEST_TIMEOUT, exchange)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "HTTP request timed out"))??;
    let text = String::from_utf8_lossy(&response);
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| io::Error::other(format!("malformed HTTP response: {text:?}")))?;
    let body = text.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    Ok((status, body.to_owned()))
}

/// Reads at least one byte (0 at end of stream) using only tokio's `net` feature.
async fn read_some(stream: &TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        stream.readable().await?;
        match stream.try_read(buf) {
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => continue,
            result => return result,
        }
    }
}

/// Writes all of `data` using only tokio's `net` feature.
async fn write_all(stream: &TcpStream, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        stream.writable().await?;
        match stream.try_write(data) {
            Ok(n) => data = &data[n..],
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => continue,
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

/// Converts borrowed label pairs into owned ones.
fn to_owned_pairs(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Converts label/annotation pairs into a JSON object.
fn pairs_to_map(pairs: &[(String, String)]) -> serde_json::Map<String, serde_json::Value> {
    pairs
        .iter()
        .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
        .collect()
}

/// Formats `t` as an RFC 3339 UTC timestamp with millisecond precision.
fn rfc3339(t: SystemTime) -> String {
    let since_epoch = t
        .duration_since(UNIX_EPOCH)
        .expect("system clock is before 1970");
    let secs = since_epoch.as_secs();
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // civil_from_days, from Howard Hinnant's date algorithms.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60,
        since_epoch.subsec_millis()
    )
}

mod tests {
    use super::*;

    use serde_json::{Value, json};
    use tokio::net::TcpListener;
    use tokio::sync::mpsc;

    /// Deadline for each expected webhook notification.
    const NOTIFY_TIMEOUT: Duration = Duration::from_secs(20);

    /// Starts a minimal HTTP receiver on 127.0.0.1:0; returns its URL and the stream of JSON bodies.
    async fn spawn_receiver() -> (String, mpsc::UnboundedReceiver<Value>) {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver");
        let url = format!("http://{}/webhook", listener.local_addr().expect("addr"));
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve_connection(stream, tx.clone()));
            }
        });
        (url, rx)
    }

    /// Serves keep-alive HTTP/1.1 requests on one connection, forwarding each JSON body.
    async fn serve_connection(stream: TcpStream, tx: mpsc::UnboundedSender<Value>) {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 8192];
        loop {
            // Read until the header block is complete.
            let header_end = loop {
                if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    break pos + 4;
                }
                match read_some(&stream, &mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            };
            let headers = String::from_utf8_lossy(&buf[..header_end]).into_owned();
            let content_length = headers
                .lines()
                .filter_map(|line| line.split_once(':'))
                .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
                .and_then(|(_, value)| value.trim().parse::<usize>().ok())
                .unwrap_or(0);
            while buf.len() < header_end + content_length {
                match read_some(&stream, &mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let body: Vec<u8> = buf
                .drain(..header_end + content_length)
                .skip(header_end)
                .collect();
            let payload = serde_json::from_slice(&body).unwrap_or_else(|err| {
                json!({ "unparseable": err.to_string(), "raw": String::from_utf8_lossy(&body) })
            });
            let _ = tx.send(payload);
            let response = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
            if write_all(&stream, response).await.is_err() {
                return;
            }
        }
    }

    /// Awaits the next webhook payload, panicking with the Alertmanager log on timeout.
    async fn next_payload(rx: &mut mpsc::UnboundedReceiver<Value>, am: &Alertmanager) -> Value {
        match tokio::time::timeout(NOTIFY_TIMEOUT, rx.recv()).await {
            Ok(Some(payload)) => payload,
            Ok(None) => panic!(
                "webhook receiver stopped\n--- alertmanager log ---\n{}",
                am.log()
            ),
            Err(_) => panic!(
                "no webhook notification within {NOTIFY_TIMEOUT:?}\n--- alertmanager log ---\n{}",
                am.log()
            ),
        }
    }

    /// Asserts `payload` is a version 4 webhook with one alert in `status` carrying `labels`.
    fn assert_payload(payload: &Value, status: &str, labels: &Value, am: &Alertmanager) {
        let context = || {
            format!(
                "payload: {payload:#}\n--- alertmanager log ---\n{}",
                am.log()
            )
        };
        assert_eq!(payload["version"], "4", "{}", context());
        assert_eq!(payload["status"], status, "{}", context());
        assert_eq!(payload["receiver"], "bridge", "{}", context());
        assert_eq!(
            payload["groupLabels"],
            json!({ "alertname": "E2eProbe" }),
            "{}",
            context()
        );
        assert_eq!(payload["externalURL"], am.url(), "{}", context());
        let alerts = payload["alerts"]
            .as_array()
            .unwrap_or_else(|| panic!("{}", context()));
        assert_eq!(alerts.len(), 1, "{}", context());
        assert_eq!(alerts[0]["status"], status, "{}", context());
        assert_eq!(&alerts[0]["labels"], labels, "{}", context());
        assert_eq!(
            alerts[0]["annotations"],
            json!({ "summary": "end-to-end probe" }),
            "{}",
            context()
        );
    }

    #[tokio::test]
    async fn real_alertmanager_delivers_firing_then_resolved_webhooks() {
        let (webhook_url, mut rx) = spawn_receiver().await;
        let am = Alertmanager::start(&webhook_url).await;

        let config = am.daemon.dir().join("alertmanager.yml");
        let amtool = std::env::var_os("AMTOOL_BIN").unwrap_or_else(|| "/usr/bin/amtool".into());
        let check = Command::new(&amtool)
            .arg("check-config")
            .arg(&config)
            .output()
            .unwrap_or_else(|err| panic!("cannot run {}: {err}", Path::new(&amtool).display()));
        assert!(
            check.status.success(),
            "amtool check-config rejected the generated config:\n{}{}\n--- config ---\n{}",
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr),
            std::fs::read_to_string(&config).unwrap_or_default()
        );

        let labels = [("alertname", "E2eProbe"), ("severity", "critical")];
        let expected_labels = json!({ "alertname": "E2eProbe", "severity": "critical" });

        let posted = Instant::now();
        am.post_alerts(&[TestAlert::firing(&labels).annotate("summary", "end-to-end probe")])
            .await;
        let firing = next_payload(&mut rx, &am).await;
        eprintln!("firing notification after {:?}", posted.elapsed());
        assert_payload(&firing, "firing", &expected_labels, &am);

        let posted = Instant::now();
        am.post_alerts(&[TestAlert::resolved(&labels).annotate("summary", "end-to-end probe")])
            .await;
        let resolved = next_payload(&mut rx, &am).await;
        eprintln!("resolved notification after {:?}", posted.elapsed());
        assert_payload(&resolved, "resolved", &expected_labels, &am);
    }

    #[test]
    fn rfc3339_formats_utc() {
        let at = |secs| UNIX_EPOCH + Duration::from_secs(secs);
        assert_eq!(rfc3339(at(0)), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(at(951_782_400)), "2000-02-29T00:00:00.000Z");
        assert_eq!(
            rfc3339(at(1_700_000_000) + Duration::from_millis(42)),
            "2023-11-14T22:13:20.042Z"
        );
    }
}
