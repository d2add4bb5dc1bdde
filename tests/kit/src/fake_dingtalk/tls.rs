//! HTTPS for the fake: its HTTP port and its Stream port behind TLS with a certificate the
//! test made (for a proxy test, say, where the bridge must tunnel to it as to DingTalk).

use std::sync::Arc;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

/// The server identity of an HTTPS fake.
#[derive(Clone, Debug)]
pub struct FakeTls {
    /// The host name its URLs use, one its certificate names.
    pub host: String,
    /// The certificate chain, PEM.
    pub cert_pem: String,
    /// The private key, PEM.
    pub key_pem: String,
}

/// A connection the fake serves: the TCP connection, or TLS over it.
pub(super) type Conn = Box<dyn Io>;

/// What a served connection is.
pub(super) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// How the fake's connections are served: plain, or behind TLS.
pub(super) enum Transport {
    Plain,
    Tls(TlsAcceptor),
}

impl Transport {
    pub(super) fn new(tls: Option<&FakeTls>) -> Self {
        let Some(tls) = tls else {
            return Transport::Plain;
        };
        let _ = rustls::crypto::ring::default_provider().install_default();
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(tls.cert_pem.as_bytes())
                .collect::<Result<_, _>>()
                .expect("the fake's certificate PEM");
        let key =
            PrivateKeyDer::from_pem_slice(tls.key_pem.as_bytes()).expect("the fake's key PEM");
        let config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("the fake's certificate and key");
        Transport::Tls(TlsAcceptor::from(Arc::new(config)))
    }

    /// `http` or `https`.
    pub(super) fn scheme(&self) -> &'static str {
        match self {
            Transport::Plain => "http",
            Transport::Tls(_) => "https",
        }
    }

    /// `ws` or `wss`.
    pub(super) fn websocket_scheme(&self) -> &'static str {
        match self {
            Transport::Plain => "ws",
            Transport::Tls(_) => "wss",
        }
    }

    /// `tcp` as served: `None` when the TLS handshake failed.
    pub(super) async fn accept(&self, tcp: TcpStream) -> Option<Conn> {
        match self {
            Transport::Plain => Some(Box::new(tcp)),
            Transport::Tls(acceptor) => match acceptor.accept(tcp).await {
                Ok(tls) => Some(Box::new(tls)),
                Err(err) => {
                    eprintln!("fake DingTalk: TLS handshake failed: {err}");
                    None
                }
            },
        }
    }
}
