//! DingTalk through a corporate proxy: a real `tinyproxy` with basic credentials in front
//! of an HTTPS fake DingTalk (a certificate from a CA made at test time, trusted through
//! `SSL_CERT_FILE`). A custom robot, a robot of an application and the Stream connection
//! all go through it, with the credentials from a file or in `HTTPS_PROXY`; wrong
//! credentials are a clear error, retried, and nothing is lost once they are right;
//! `no_proxy` hosts are reached directly; no output shows the password.

use std::path::PathBuf;
use std::time::Duration;

use testkit::{
    Bridge, FakeApp, FakeDingTalk, FakeRobot, FakeTls, PROXY_PASSWORD, Tinyproxy, free_port,
    payload, run_command, temp_dir,
};

use crate::BINARY;
use crate::web_config::{ca, signed};

const KEY: &str = "dingproxyapp";
const SECRET: &str = "proxy-app-secret";
const GROUP: &str = "cidProxy==";
/// The host the fake's URLs name (its certificate's), for `no_proxy`.
const HOST: &str = "localhost";
const WAIT: Duration = Duration::from_secs(30);

/// An HTTPS fake DingTalk with webhook robot `ops-token` and an application whose robot
/// is in [`GROUP`], and the file of the CA that signed its certificate.
struct Https {
    dingtalk: FakeDingTalk,
    dir: PathBuf,
}

impl Https {
    async fn start() -> Https {
        let issuer = ca("proxy test CA");
        let (cert_pem, key_pem) = signed(&issuer, &[HOST], "fake DingTalk");
        let tls = FakeTls {
            host: HOST.to_owned(),
            cert_pem,
            key_pem,
        };
        let dingtalk = FakeDingTalk::start_https(vec![FakeRobot::new("ops-token")], tls).await;
        dingtalk.add_app(FakeApp::new(KEY, SECRET).robot(KEY, &[GROUP]));
        let dir = temp_dir("proxy-ca");
        std::fs::write(dir.join("ca.pem"), issuer.pem()).unwrap();
        Https { dingtalk, dir }
    }

    /// `SSL_CERT_FILE`: the bridge trusts the test's CA.
    fn ca_file(&self) -> String {
        self.dir.join("ca.pem").display().to_string()
    }

    /// The port of the fake's HTTP(S) API, and of its Stream WebSocket.
    fn ports(&self) -> (u16, u16) {
        let port = |url: &str| url.rsplit(':').next().unwrap().parse().unwrap();
        (
            port(&self.dingtalk.openapi_url()),
            port(&self.dingtalk.stream_origin()),
        )
    }

    /// The bridge's config: both robots, commands over Stream, and `proxy` (YAML keys
    /// under `dingtalk:`).
    fn config(&self, proxy: &str) -> String {
        format!(
            r#"
dingtalk:
  api_url: "{}"
  openapi_url: "{}"
  timeout: 2s
{proxy}
# Nothing listens there: commands are not used, the Stream connection is.
alertmanager: {{ urls: ["http://127.0.0.1:9"] }}
robots:
  ops: {{ access_token: ops-token }}
  app: {{ app_key: {KEY}, app_secret: {SECRET}, open_conversation_id: "{GROUP}", commands: true }}
strategies:
  - name: all
    robots: [ops, app]
"#,
            self.dingtalk.api_url(),
            self.dingtalk.openapi_url(),
        )
    }

    /// Waits until a message about `name` reached both robots, and the Stream connection
    /// is open.
    async fn delivered(&self, bridge: &Bridge, name: &str) {
        self.dingtalk
            .wait_until(&format!("{name} to both robots"), WAIT, |r| {
                let about = |r: &&testkit::Request| r.delivered() && r.text().contains(name);
                r.iter().filter(about).any(|r| r.token == "ops-token")
                    && self
                        .dingtalk
                        .delivered_to_group(GROUP)
                        .iter()
                        .any(|r| r.text().contains(name))
            })
            .await;
        assert!(
            self.dingtalk.wait_for_stream_connections(1, WAIT).await,
            "no Stream connection\n{}",
            bridge.log()
        );
    }
}

fn alert(name: &str) -> String {
    payload("firing", &[(name, &[])])
}

#[tokio::test]
async fn both_kinds_of_robot_and_the_stream_connection_go_through_the_proxy() {
    let https = Https::start().await;
    let proxy = Tinyproxy::start();
    let dir = temp_dir("proxy-url-file");
    std::fs::write(dir.join("proxy-url"), format!("{}\n", proxy.url())).unwrap();
    let file = dir.join("proxy-url").display().to_string();
    let config = https.config(&format!("  proxy_url_file: {file}"));
    let ca_file = https.ca_file();
    let bridge = Bridge::start_with_env(BINARY, &config, &[("SSL_CERT_FILE", &ca_file)]).await;

    bridge.notify(&alert("ThroughTheProxy")).await;
    https.delivered(&bridge, "ThroughTheProxy").await;

    let (api, stream) = https.ports();
    assert!(proxy.tunnels_to(HOST, api) >= 1, "{}", proxy.log());
    assert!(proxy.tunnels_to(HOST, stream) >= 1, "{}", proxy.log());
    let (_, page) = bridge.get("/").await;
    for output in [bridge.log(), page] {
        assert!(!output.contains(PROXY_PASSWORD), "{output}");
    }
}

#[tokio::test]
async fn the_proxy_of_the_environment_is_used_without_proxy_url() {
    let https = Https::start().await;
    let proxy = Tinyproxy::start();
    let ca_file = https.ca_file();
    let env = [
        ("SSL_CERT_FILE", ca_file.as_str()),
        ("HTTPS_PROXY", &proxy.url()),
    ];
    let bridge = Bridge::start_with_env(BINARY, &https.config(""), &env).await;

    bridge.notify(&alert("ThroughTheEnvironment")).await;
    https.delivered(&bridge, "ThroughTheEnvironment").await;

    let (api, stream) = https.ports();
    assert!(proxy.tunnels_to(HOST, api) >= 1, "{}", proxy.log());
    assert!(proxy.tunnels_to(HOST, stream) >= 1, "{}", proxy.log());
    assert!(!bridge.log().contains(PROXY_PASSWORD));
}

#[tokio::test]
async fn wrong_proxy_credentials_are_a_clear_error_retried_until_they_are_right() {
    let https = Https::start().await;
    let proxy = Tinyproxy::start();
    let wrong = proxy.url_with("bridge", "not-the-password");
    let config = https.config(&format!("  proxy_url: \"{wrong}\""));
    let ca_file = https.ca_file();
    let env = [("SSL_CERT_FILE", ca_file.as_str())];
    let mut bridge = Bridge::start_with_env(BINARY, &config, &env).await;

    bridge.notify(&alert("HeldByTheProxy")).await;
    let refused = bridge
        .wait_for_log("the proxy's refusal", WAIT, |line| {
            line["robot"] == "ops"
                && line["error"]
                    .as_str()
                    .is_some_and(|e| e.contains("the proxy refused"))
        })
        .await;
    assert!(
        refused["hint"]
            .as_str()
            .is_some_and(|h| h.contains("dingtalk.proxy_url")),
        "{refused}"
    );
    bridge
        .wait_for_metric(
            "alertmanager_dingtalk_dingtalk_errors_total{robot=\"ops\",errcode=\"proxy\"}",
            1.0,
        )
        .await;

    // test-robot says why, too.
    let dir = bridge.dir().to_owned();
    let output = tokio::task::spawn_blocking(move || {
        run_command(
            BINARY,
            &dir,
            &["test-robot", "ops"],
            &[("SSL_CERT_FILE", &ca_file)],
        )
    })
    .await
    .unwrap();
    assert!(!output.success);
    let said = format!("{}{}", output.stdout, output.stderr);
    assert!(said.contains("the proxy refused"), "{said}");
    assert!(said.contains("dingtalk.proxy_url"), "{said}");

    // Right credentials, by a reload: the held message goes, once.
    let right = https.config(&format!("  proxy_url: \"{}\"", proxy.url()));
    std::fs::write(bridge.dir().join("config.yaml"), right).unwrap();
    let (status, answer) = bridge.post("/-/reload", "", None).await;
    assert_eq!(status, 200, "{answer}");
    https.delivered(&bridge, "HeldByTheProxy").await;
    let requests = https
        .dingtalk
        .wait_until_quiet(crate::QUIET, crate::QUIET_WITHIN)
        .await;
    let to_ops = requests
        .iter()
        .filter(|r| r.delivered() && r.token == "ops-token" && r.text().contains("HeldByTheProxy"))
        .count();
    assert_eq!(to_ops, 1);
    for output in [bridge.log(), said] {
        assert!(!output.contains("not-the-password"), "{output}");
        assert!(!output.contains(PROXY_PASSWORD), "{output}");
    }
}

#[tokio::test]
async fn hosts_of_no_proxy_are_reached_directly() {
    let https = Https::start().await;
    // Nothing listens there: only a direct connection delivers.
    let closed = format!("http://bridge:{PROXY_PASSWORD}@127.0.0.1:{}", free_port());
    let config = https.config(&format!(
        "  proxy_url: \"{closed}\"\n  no_proxy: [\"{HOST}\"]"
    ));
    let ca_file = https.ca_file();
    let env = [("SSL_CERT_FILE", ca_file.as_str())];
    let bridge = Bridge::start_with_env(BINARY, &config, &env).await;

    bridge.notify(&alert("Direct")).await;
    https.delivered(&bridge, "Direct").await;
}
