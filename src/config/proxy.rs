//! Validation of `dingtalk.proxy_url` (inline or from `proxy_url_file`, as it may hold
//! credentials) and `dingtalk.no_proxy`.

use super::Path;
use super::checker::Checker;
use super::values::http_url;
use crate::dingtalk::Proxy;

impl Checker {
    /// The proxy of `dingtalk` (at `at`): `proxy_url` or `proxy_url_file` given as
    /// `url`, `no_proxy` only with one of them; the environment's without.
    pub(super) fn proxy(
        &mut self,
        at: &Path,
        url: (Option<String>, Option<String>),
        no_proxy: Option<Vec<String>>,
    ) -> Option<Proxy> {
        let url = (url.0.filter(|u| !u.is_empty()), url.1);
        let Some((key, text)) = self.inline_or_file(at, "dingtalk", "proxy_url", url) else {
            if no_proxy.is_some() {
                self.error(
                    &at.key("no_proxy"),
                    "dingtalk.no_proxy applies to dingtalk.proxy_url, which is not set (the environment's proxy takes NO_PROXY)",
                );
                return None;
            }
            return Some(Proxy::from_env());
        };
        // Not in the message: the URL may hold a password.
        let url = self.check(&key, http_url(&text))?;
        let no_proxy = no_proxy.unwrap_or_default();
        if let Some(index) = no_proxy.iter().position(|host| host.trim().is_empty()) {
            self.error(&at.key("no_proxy").index(index), "an empty host");
            return None;
        }
        Some(Proxy::to(url, no_proxy))
    }
}
