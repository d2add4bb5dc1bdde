//! `--web.config.file` in exporter-toolkit's format: HTTPS with certificates made at test
//! time (rcgen), client certificates required and verified, a certificate rotated without
//! a restart, basic auth with bcrypt hashes, response headers, and a real Alertmanager
//! delivering through TLS, mTLS and basic auth.

use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use testkit::{Bridge, FakeDingTalk, FakeRobot, payload};

use crate::BINARY;
use crate::alertmanager::{Alertmanager, TestAlert};

/// A CA, and certificates it signed: PEM text.
struct Pki {
    ca: String,
    server_cert: String,
    server_key: String,
    client_cert: String,
    client_key: String,
}

/// A CA named `name`.
pub(crate) fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

/// A certificate for `names` that `issuer` signed, and its key: PEM.
pub(crate) fn signed(
    issuer: &CertifiedIssuer<'static, KeyPair>,
    names: &[&str],
    cn: &str,
) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let mut params = CertificateParams::new(names).unwrap();
    params.distinguished_name.push(DnType::CommonName, cn);
    let cert = params.signed_by(&key, issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn make_pki(name: &str) -> Pki {
    let issuer = ca(name);
    let (server_cert, server_key) = signed(&issuer, &["127.0.0.1", "localhost"], "bridge");
    let (client_cert, client_key) = signed(&issuer, &["alertmanager"], "alertmanager");
    Pki {
        ca: issuer.pem(),
        server_cert,
        server_key,
        client_cert,
        client_key,
    }
}

fn client(ca: &str, identity: Option<(&str, &str)>) -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::Client::builder()
        .no_proxy()
        .tls_certs_only([reqwest::Certificate::from_pem(ca.as_bytes()).unwrap()]);
    if let Some((cert, key)) = identity {
        builder = builder
            .identity(reqwest::Identity::from_pem(format!("{cert}{key}").as_bytes()).unwrap());
    }
    builder.build().unwrap()
}

fn config(api_url: &str) -> String {
    format!(
        r#"
dingtalk: {{ api_url: "{api_url}", timeout: 1s }}
robots:
  ops: {{ access_token: ops-token }}
strategies:
  - name: default
    robots: [ops]
"#
    )
}

/// The hash of `alice123` for alice in exporter-toolkit's own tests
/// (web/testdata/web_config_users_noTLS.good.yml, web/users_test.go).
const ALICE_HASH: &str = "$2y$12$1DpfPeqF9HzHJt.EWswy1exHluGfbhnn3yXhR7Xes6m3WJqFg0Wby";

async fn start(web: &str, pki: &Pki, client: reqwest::Client) -> (FakeDingTalk, Bridge) {
    let dingtalk = FakeDingTalk::start(vec![FakeRobot::new("ops-token")]).await;
    let files: [(&str, &[u8]); 4] = [
        ("web.yml", web.as_bytes()),
        ("ca.crt", pki.ca.as_bytes()),
        ("server.crt", pki.server_cert.as_bytes()),
        ("server.key", pki.server_key.as_bytes()),
    ];
    let bridge = Bridge::start_https(BINARY, &config(&dingtalk.api_url()), &files, client).await;
    (dingtalk, bridge)
}

const TLS: &str = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n";

#[tokio::test]
async fn https_with_a_certificate_made_at_test_time_delivers_and_plain_http_is_refused() {
    let pki = make_pki("test CA");
    let (dingtalk, bridge) = start(TLS, &pki, client(&pki.ca, None)).await;
    bridge
        .notify(&payload("firing", &[("DiskFull", &[])]))
        .await;
    dingtalk
        .wait_until("the message", Duration::from_secs(10), |r| {
            r.iter().any(|r| r.errcode == Some(0))
        })
        .await;
    // The same port does not speak plain HTTP.
    let plain = bridge.url.replace("https://", "http://");
    let answer = testkit::http()
        .get(format!("{plain}/-/healthy"))
        .send()
        .await;
    assert!(answer.map(|a| a.status() != 200).unwrap_or(true));
    // A client that does not trust the CA refuses the server.
    let other = make_pki("another CA");
    let untrusted = client(&other.ca, None)
        .get(format!("{}/-/healthy", bridge.url))
        .send()
        .await;
    assert!(untrusted.is_err(), "{untrusted:?}");
}

#[tokio::test]
async fn a_client_without_a_certificate_is_refused_when_one_is_required() {
    let pki = make_pki("test CA");
    let web =
        format!("{TLS}  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n");
    let with_cert = client(&pki.ca, Some((&pki.client_cert, &pki.client_key)));
    let (_dingtalk, bridge) = start(&web, &pki, with_cert.clone()).await;
    let healthy = format!("{}/-/healthy", bridge.url);
    assert_eq!(with_cert.get(&healthy).send().await.unwrap().status(), 200);
    let without = client(&pki.ca, None).get(&healthy).send().await;
    assert!(without.is_err(), "no client certificate: {without:?}");
    // A certificate from another CA is refused too.
    let other = make_pki("another CA");
    let foreign = client(&pki.ca, Some((&other.client_cert, &other.client_key)))
        .get(&healthy)
        .send()
        .await;
    assert!(
        foreign.is_err(),
        "a foreign client certificate: {foreign:?}"
    );
}

#[tokio::test]
async fn a_rotated_certificate_is_served_without_a_restart() {
    let first = make_pki("first CA");
    let (_dingtalk, mut bridge) = start(TLS, &first, client(&first.ca, None)).await;
    let healthy = format!("{}/-/healthy", bridge.url);
    let second = make_pki("second CA");
    std::fs::write(bridge.dir().join("server.crt"), &second.server_cert).unwrap();
    std::fs::write(bridge.dir().join("server.key"), &second.server_key).unwrap();
    // Looked at again at most once a second: poll until the new certificate is served.
    let trusting_second = client(&second.ca, None);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        // A new client each time: no connection kept from before the rotation.
        if let Ok(answer) = trusting_second.get(&healthy).send().await {
            assert_eq!(answer.status(), 200);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the new certificate was never served:\n{}",
            bridge.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let old = client(&first.ca, None).get(&healthy).send().await;
    assert!(old.is_err(), "the old certificate is still served");
    bridge
        .wait_for_log("the reload logged", Duration::from_secs(5), |line| {
            line["message"] == "Web configuration reloaded."
        })
        .await;
}

#[tokio::test]
async fn basic_auth_takes_exporter_toolkit_hashes_and_a_broken_file_keeps_the_last_good_one() {
    let pki = make_pki("test CA");
    let web = format!(
        "{TLS}http_server_config:\n  headers:\n    X-Frame-Options: deny\n    X-Content-Type-Options: nosniff\n\
         basic_auth_users:\n  alice: \"{ALICE_HASH}\"\nbasic_auth_excluded_paths: [/-/healthy, /-/ready]\n"
    );
    let https = client(&pki.ca, None);
    let (_dingtalk, bridge) = start(&web, &pki, https.clone()).await;
    let base = bridge.url.clone();
    let url = |path: &str| format!("{base}{path}");
    let get = |path: &str, auth: Option<(&str, &str)>| {
        let mut request = https.get(url(path));
        if let Some((user, password)) = auth {
            request = request.basic_auth(user, Some(password));
        }
        request.send()
    };
    let ok = get("/metrics", Some(("alice", "alice123"))).await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.headers()["x-frame-options"], "deny");
    assert_eq!(ok.headers()["x-content-type-options"], "nosniff");
    for wrong in [
        None,
        Some(("alice", "alice1234")),
        Some(("bob", "alice123")),
    ] {
        let refused = get("/metrics", wrong).await.unwrap();
        assert_eq!(refused.status(), 401, "{wrong:?}");
        assert!(
            refused.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Basic")
        );
    }
    assert_eq!(
        get("/-/healthy", None).await.unwrap().status(),
        200,
        "an excluded path"
    );
    assert_eq!(
        get("/-/ready", None).await.unwrap().status(),
        200,
        "an excluded path"
    );
    // The action pages need no bearer token, but they are behind basic auth (this bridge
    // has no actions: configured, hence 404 once in).
    assert_eq!(get("/act/a.b", None).await.unwrap().status(), 401);
    let action_page = get("/act/a.b", Some(("alice", "alice123"))).await.unwrap();
    assert_eq!(action_page.status(), 404);
    // A webhook with basic auth is accepted: it stands for the bearer token.
    let webhook = https
        .post(url("/alertmanager"))
        .basic_auth("alice", Some("alice123"))
        .header("content-type", "application/json")
        .body(payload("firing", &[("DiskFull", &[])]))
        .send()
        .await
        .unwrap();
    assert_eq!(webhook.status(), 200);

    std::fs::write(
        bridge.dir().join("web.yml"),
        "basic_auth_users: [not, a, map]\n",
    )
    .unwrap();
    // The file is looked at as requests arrive, at most once a second.
    let failed = "Web configuration reload failed; the last good one stays in force.";
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !bridge.log().contains(failed) {
        let kept = get("/metrics", Some(("alice", "alice123"))).await.unwrap();
        assert_eq!(
            kept.status(),
            200,
            "the last good web config stays in force"
        );
        assert!(
            tokio::time::Instant::now() < deadline,
            "no failed reload logged:\n{}",
            bridge.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        get("/metrics", Some(("alice", "alice123")))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(get("/metrics", None).await.unwrap().status(), 401);
}

/// The alertmanager.yml `http_config` for a bridge over TLS with the CA in `dir`.
fn tls_http_config(dir: &std::path::Path, client_certificate: bool, basic_auth: bool) -> String {
    let mut config = format!("tls_config:\n  ca_file: {}\n", dir.join("ca.crt").display());
    if client_certificate {
        config.push_str(&format!(
            "  cert_file: {}\n  key_file: {}\n",
            dir.join("client.crt").display(),
            dir.join("client.key").display()
        ));
    }
    if basic_auth {
        config.push_str("basic_auth:\n  username: alice\n  password: alice123\n");
    }
    config
}

#[tokio::test]
async fn a_real_alertmanager_delivers_over_tls_and_over_mtls_with_basic_auth() {
    for mutual in [false, true] {
        let pki = make_pki("test CA");
        let mut web = TLS.to_owned();
        if mutual {
            web.push_str(
                "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n",
            );
            web.push_str(&format!("basic_auth_users:\n  alice: \"{ALICE_HASH}\"\nbasic_auth_excluded_paths: [/-/ready]\n"));
        }
        let https = client(&pki.ca, Some((&pki.client_cert, &pki.client_key)));
        let (dingtalk, bridge) = start(&web, &pki, https).await;
        std::fs::write(bridge.dir().join("client.crt"), &pki.client_cert).unwrap();
        std::fs::write(bridge.dir().join("client.key"), &pki.client_key).unwrap();
        let alertmanager = Alertmanager::start_with_http_config(
            &format!("{}/alertmanager", bridge.url),
            &tls_http_config(bridge.dir(), mutual, mutual),
        )
        .await;
        let name = if mutual { "OverMutualTls" } else { "OverTls" };
        alertmanager
            .post_alerts(&[TestAlert::firing(&[
                ("alertname", name),
                ("severity", "critical"),
            ])])
            .await;
        dingtalk
            .wait_until(&format!("{name} delivered"), Duration::from_secs(30), |r| {
                r.iter()
                    .any(|r| r.errcode == Some(0) && r.text().contains(name))
            })
            .await;
    }
}
