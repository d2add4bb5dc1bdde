//! `tls_server_config` as a rustls server configuration (ring's cryptography, the
//! provider the DingTalk client uses too): the certificate and key, client certificates
//! verified against `client_ca_file`, TLS versions, TLS 1.2 cipher suites and key
//! exchange groups by their Go names, as exporter-toolkit takes them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::ring::{self as provider, kx_group};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, SupportedCipherSuite, SupportedProtocolVersion};
use serde::Deserialize;

/// `tls_server_config:` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawTls {
    cert: Option<String>,
    key: Option<String>,
    client_ca: Option<String>,
    cert_file: Option<String>,
    key_file: Option<String>,
    client_auth_type: Option<String>,
    client_ca_file: Option<String>,
    client_allowed_sans: Vec<String>,
    min_version: Option<String>,
    max_version: Option<String>,
    cipher_suites: Vec<String>,
    prefer_server_cipher_suites: Option<bool>,
    curve_preferences: Vec<String>,
}

impl RawTls {
    /// `client_auth_type` as written, or its default.
    pub(super) fn client_auth_type(&self) -> &str {
        self.client_auth_type.as_deref().unwrap_or("NoClientCert")
    }
}

/// PEM text given inline (`key`) or in a file (`key_file`, relative to the web config's
/// directory); the file is added to `read`.
fn pem(
    name: &str,
    inline: Option<String>,
    file: Option<String>,
    dir: &Path,
    read: &mut Vec<PathBuf>,
) -> Result<Option<Vec<u8>>, String> {
    match (inline, file.filter(|f| !f.is_empty())) {
        (Some(_), Some(_)) => Err(format!(
            "tls_server_config: give {name} or {name}_file, not both"
        )),
        (Some(text), None) => Ok(Some(text.into_bytes())),
        (None, Some(file)) => {
            let path = dir.join(&file);
            let bytes = std::fs::read(&path).map_err(|e| {
                format!(
                    "tls_server_config.{name}_file: cannot read {}: {e}",
                    path.display()
                )
            })?;
            read.push(path);
            Ok(Some(bytes))
        }
        (None, None) => Ok(None),
    }
}

fn version(text: &str) -> Result<&'static SupportedProtocolVersion, String> {
    match text {
        "TLS13" => Ok(&rustls::version::TLS13),
        "TLS12" => Ok(&rustls::version::TLS12),
        "TLS10" | "TLS11" => Err(format!(
            "{text}: rustls speaks TLS 1.2 and 1.3 only (TLS12, TLS13)"
        )),
        _ => Err(format!("{text:?} is not a TLS version (TLS12, TLS13)")),
    }
}

/// A TLS 1.2 suite by its Go name (`TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256`; Go also
/// names the ChaCha20 ones without their `_SHA256`).
fn cipher_suite(name: &str) -> Result<SupportedCipherSuite, String> {
    let wanted = if name.ends_with("_POLY1305") {
        format!("{name}_SHA256")
    } else {
        name.to_owned()
    };
    let tls12 = || {
        provider::ALL_CIPHER_SUITES
            .iter()
            .filter(|s| s.version() == &rustls::version::TLS12)
    };
    tls12()
        .find(|s| format!("{:?}", s.suite()) == wanted)
        .copied()
        .ok_or_else(|| {
            let names: Vec<String> = tls12().map(|s| format!("{:?}", s.suite())).collect();
            format!(
                "cipher suite {name} is not supported (rustls with ring has {})",
                names.join(", ")
            )
        })
}

fn curve(name: &str) -> Result<&'static dyn rustls::crypto::SupportedKxGroup, String> {
    match name {
        "X25519" => Ok(kx_group::X25519),
        "CurveP256" => Ok(kx_group::SECP256R1),
        "CurveP384" => Ok(kx_group::SECP384R1),
        _ => Err(format!(
            "curve {name} is not supported (X25519, CurveP256, CurveP384)"
        )),
    }
}

/// The rustls configuration of `raw`; files are read relative to `dir` and added to
/// `read`.
pub(super) fn server_config(
    raw: RawTls,
    dir: &Path,
    read: &mut Vec<PathBuf>,
) -> Result<ServerConfig, String> {
    let auth_type = raw.client_auth_type().to_owned();
    if !raw.client_allowed_sans.is_empty() {
        return Err("tls_server_config.client_allowed_sans is not supported; use a client CA that issues only the allowed clients' certificates".to_owned());
    }
    let cert = pem("cert", raw.cert, raw.cert_file, dir, read)?
        .ok_or("tls_server_config needs cert_file (or cert)")?;
    let key = pem("key", raw.key, raw.key_file, dir, read)?
        .ok_or("tls_server_config needs key_file (or key)")?;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("tls_server_config: the certificate is not PEM: {e}"))?;
    if certs.is_empty() {
        return Err("tls_server_config: no certificate in cert_file".to_owned());
    }
    let key = PrivateKeyDer::from_pem_slice(&key)
        .map_err(|e| format!("tls_server_config: no private key in key_file: {e}"))?;

    let mut crypto = provider::default_provider();
    if !raw.cipher_suites.is_empty() {
        let mut suites: Vec<SupportedCipherSuite> = provider::ALL_CIPHER_SUITES
            .iter()
            .filter(|s| s.version() == &rustls::version::TLS13)
            .copied()
            .collect();
        for name in &raw.cipher_suites {
            suites.push(cipher_suite(name)?);
        }
        crypto.cipher_suites = suites;
    }
    if !raw.curve_preferences.is_empty() {
        crypto.kx_groups = raw
            .curve_preferences
            .iter()
            .map(|name| curve(name))
            .collect::<Result<_, _>>()?;
    }
    let crypto = Arc::new(crypto);

    let min = version(raw.min_version.as_deref().unwrap_or("TLS12"))?;
    let max = version(raw.max_version.as_deref().unwrap_or("TLS13"))?;
    let versions: Vec<&'static SupportedProtocolVersion> =
        [&rustls::version::TLS12, &rustls::version::TLS13]
            .into_iter()
            .filter(|v| rank(v) >= rank(min) && rank(v) <= rank(max))
            .collect();
    if versions.is_empty() {
        return Err("tls_server_config: min_version is above max_version".to_owned());
    }
    let builder = ServerConfig::builder_with_provider(crypto.clone())
        .with_protocol_versions(&versions)
        .map_err(|e| format!("tls_server_config: {e}"))?;

    let client_ca = pem("client_ca", raw.client_ca, raw.client_ca_file, dir, read)?;
    let builder = match auth_type.as_str() {
        "NoClientCert" => builder.with_no_client_auth(),
        "VerifyClientCertIfGiven" | "RequireAndVerifyClientCert" => {
            let ca = client_ca.ok_or_else(|| {
                format!("tls_server_config: client_auth_type {auth_type} needs client_ca_file")
            })?;
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(&ca) {
                let cert =
                    cert.map_err(|e| format!("tls_server_config: client_ca_file is not PEM: {e}"))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("tls_server_config: client_ca_file: {e}"))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), crypto);
            let verifier = if auth_type == "VerifyClientCertIfGiven" {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            let verifier = verifier
                .build()
                .map_err(|e| format!("tls_server_config: client_ca_file: {e}"))?;
            builder.with_client_cert_verifier(verifier)
        }
        "RequestClientCert" | "RequireAnyClientCert" => {
            return Err(format!(
                "tls_server_config: client_auth_type {auth_type} accepts certificates nobody verified, which exporter-toolkit calls insecure and this bridge does not do; use RequireAndVerifyClientCert (or VerifyClientCertIfGiven) with client_ca_file"
            ));
        }
        other => {
            return Err(format!(
                "tls_server_config: client_auth_type {other:?} is not one of NoClientCert, VerifyClientCertIfGiven, RequireAndVerifyClientCert"
            ));
        }
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| format!("tls_server_config: the key does not fit the certificate: {e}"))?;
    config.ignore_client_order = raw.prefer_server_cipher_suites.unwrap_or(true);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

fn rank(version: &SupportedProtocolVersion) -> u8 {
    if version == &rustls::version::TLS13 {
        13
    } else {
        12
    }
}
