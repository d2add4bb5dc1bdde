//! `--web.config.file`: what loads and what is refused with a reason, in exporter-toolkit's
//! format, for what rustls and this bridge do not do.

use alertmanager_dingtalk::server::WebConfigFile;

/// Loads `web` (YAML) with a server certificate and key beside it: its summary, or the
/// error text.
fn load(web: &str) -> Result<String, String> {
    let dir = std::env::temp_dir().join(format!(
        "amd-web-config-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    std::fs::write(dir.join("server.crt"), cert.pem()).unwrap();
    std::fs::write(dir.join("server.key"), key.serialize_pem()).unwrap();
    std::fs::write(dir.join("ca.crt"), cert.pem()).unwrap();
    std::fs::write(dir.join("web.yml"), web).unwrap();
    let loaded = WebConfigFile::load(&dir.join("web.yml"))
        .map(|web| web.summary())
        .map_err(|e| e.to_string());
    let _ = std::fs::remove_dir_all(&dir);
    loaded
}

const TLS: &str = "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n";

fn refused(web: &str, reason: &str) {
    let error = load(web).expect_err(web);
    assert!(error.contains("web.yml: "), "{error}");
    assert!(error.contains(reason), "{reason:?} not in {error}");
}

#[test]
fn what_rustls_can_do_loads() {
    assert_eq!(
        load(TLS).unwrap(),
        "TLS (client certificates: NoClientCert), basic auth users: 0, paths without basic auth: 0, response headers: 0"
    );
    let mutual = load(&format!(
        "{TLS}  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n  min_version: TLS13\n  \
         cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305]\n  \
         curve_preferences: [X25519, CurveP256]\nhttp_server_config:\n  http2: false\n  headers:\n    \
         Strict-Transport-Security: max-age=31536000\n"
    ))
    .unwrap();
    assert_eq!(
        mutual,
        "TLS (client certificates: RequireAndVerifyClientCert), basic auth users: 0, paths without basic auth: 0, response headers: 1"
    );
    assert_eq!(
        load("basic_auth_users:\n  alice: $2y$10$mDwo.lAisC94iLAyP81MCesa29IzH37oigHC/42V2pdJlUprsJPze\nbasic_auth_excluded_paths: [/metrics]\n").unwrap(),
        "plain HTTP, basic auth users: 1, paths without basic auth: 1, response headers: 0"
    );
    load("").unwrap();
}

#[test]
fn what_it_cannot_do_is_refused_with_what_to_use() {
    refused(
        &format!("{TLS}  min_version: TLS10\n"),
        "TLS 1.2 and 1.3 only",
    );
    refused(
        &format!("{TLS}  client_auth_type: RequireAnyClientCert\n"),
        "use RequireAndVerifyClientCert",
    );
    refused(
        &format!("{TLS}  client_auth_type: RequireAndVerifyClientCert\n"),
        "needs client_ca_file",
    );
    refused(
        &format!("{TLS}  cipher_suites: [TLS_RSA_WITH_AES_128_CBC_SHA]\n"),
        "is not supported (rustls with ring has",
    );
    refused(
        &format!("{TLS}  curve_preferences: [CurveP521]\n"),
        "X25519, CurveP256, CurveP384",
    );
    refused(
        &format!("{TLS}  client_allowed_sans: [alertmanager]\n"),
        "client_allowed_sans is not supported",
    );
    refused(
        "tls_server_config:\n  cert_file: missing.crt\n  key_file: server.key\n",
        "cannot read",
    );
    refused(
        "http_server_config:\n  headers:\n    X-Powered-By: me\n",
        "X-Powered-By cannot be set",
    );
    refused(
        "http_server_config:\n  headers:\n    X-Frame-Options: allow\n",
        "must be one of deny, sameorigin",
    );
    refused(
        "basic_auth_users:\n  alice: plaintext\n",
        "not a bcrypt hash",
    );
    refused("rate_limit:\n  interval: 1s\n", "rate_limit");
}
