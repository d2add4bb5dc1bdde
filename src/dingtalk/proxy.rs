//! The HTTP proxy every call to DingTalk goes through: `dingtalk.proxy_url` (basic
//! credentials in its user and password) except for the hosts of `dingtalk.no_proxy`, or,
//! without it, the environment's `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY`
//! (as curl reads them). Requests (webhooks, the OpenAPI) go through it as reqwest sends
//! them: HTTPS in a CONNECT tunnel. The Stream connection's WebSocket, which the bridge
//! opens itself, is tunnelled the same way by hyper-util's `Tunnel`, the one reqwest
//! uses, with the same rules (hyper-util's `Matcher`, which reqwest's are).

use std::fmt;

use hyper::Uri;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::proxy::matcher::Matcher;
use tokio::net::TcpStream;
use tower_service::Service as _;
use url::Url;

/// Where DingTalk's requests go: see the module documentation. Its URL may hold a
/// password: shown (`Display`, `Debug`) with `***` instead.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Proxy {
    /// `None`: the environment's.
    url: Option<Url>,
    /// The hosts reached directly, as `NO_PROXY` lists them.
    no_proxy: Vec<String>,
}

impl Proxy {
    /// `url` for every host but those of `no_proxy` (domains, with their subdomains; IP
    /// addresses or ranges, `10.0.0.0/8`; `*`).
    pub fn to(url: Url, no_proxy: Vec<String>) -> Self {
        Proxy {
            url: Some(url),
            no_proxy,
        }
    }

    /// The environment's proxy, read at each connection.
    pub fn from_env() -> Self {
        Proxy::default()
    }

    /// The rules of reqwest's client: `None` keeps its own reading of the environment.
    pub(super) fn for_requests(&self) -> Result<Option<reqwest::Proxy>, reqwest::Error> {
        let Some(url) = &self.url else {
            return Ok(None);
        };
        let no_proxy = reqwest::NoProxy::from_string(&self.no_proxy.join(","));
        Ok(Some(reqwest::Proxy::all(url.as_str())?.no_proxy(no_proxy)))
    }

    fn matcher(&self) -> Matcher {
        match &self.url {
            Some(url) => Matcher::builder()
                .all(url.to_string())
                .no(self.no_proxy.join(","))
                .build(),
            None => Matcher::from_env(),
        }
    }

    /// A TCP connection to `host:port`, or through the proxy a tunnel to it; `secure` says
    /// whether TLS will run over it (which proxy rules apply: HTTPS' or HTTP's).
    pub(super) async fn connect(
        &self,
        host: &str,
        port: u16,
        secure: bool,
    ) -> Result<TcpStream, String> {
        let scheme = if secure { "https" } else { "http" };
        let destination: Uri = format!("{scheme}://{host}:{port}")
            .parse()
            .map_err(|e| format!("{e}"))?;
        let Some(proxy) = self.matcher().intercept(&destination) else {
            return TcpStream::connect((host, port))
                .await
                .map_err(|e| e.to_string());
        };
        let mut tunnel = Tunnel::new(proxy.uri().clone(), HttpConnector::new());
        if let Some(credentials) = proxy.basic_auth() {
            tunnel = tunnel.with_auth(credentials.clone());
        }
        match tunnel.call(destination).await {
            Ok(io) => Ok(io.into_inner()),
            Err(error) => Err(refusal(&error)
                .map_or_else(|| format!("through the proxy: {error}"), str::to_owned)),
        }
    }
}

/// What a refusal of the proxy in `error`'s chain (hyper-util's tunnel errors, which are
/// not public, named by their text) means, for logs and `test-robot`.
pub(super) fn refusal(error: &(dyn std::error::Error + 'static)) -> Option<&'static str> {
    let mut cause = Some(error);
    while let Some(error) = cause {
        let text = error.to_string();
        match text.strip_prefix("tunnel error: ").unwrap_or_default() {
            "proxy authorization required" => {
                return Some(
                    "the proxy refused: it wants credentials, or refused the ones given \
                     (407 Proxy Authentication Required)",
                );
            }
            "unsuccessful" => {
                return Some(
                    "the proxy refused to open a tunnel (CONNECT) to DingTalk: its answer was \
                     not 200 (tinyproxy, for one, answers 401 to wrong credentials)",
                );
            }
            _ => cause = error.source(),
        }
    }
    None
}

impl fmt::Display for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(url) = &self.url else {
            return f.write_str("from the environment");
        };
        let mut shown = url.clone();
        if shown.password().is_some() {
            // Cannot fail: the URL has a host, since it has a password.
            let _ = shown.set_password(Some("***"));
        }
        f.write_str(shown.as_str())?;
        if !self.no_proxy.is_empty() {
            write!(f, " (not for {})", self.no_proxy.join(", "))?;
        }
        Ok(())
    }
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Proxy({self})")
    }
}
