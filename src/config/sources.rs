//! `sources:`: what the Grafana and HertzBeat endpoints need to read their webhooks.

use jiff::tz::TimeZone;

use super::Path;
use super::checker::Checker;
use super::raw::RawSources;
use super::values::time_zone;
use crate::dingtalk::Secret;

/// The default header Grafana puts its HMAC signature in (grafana/alerting,
/// `http/hmac.go`).
pub const GRAFANA_SIGNATURE_HEADER: &str = "X-Grafana-Alert-Signature";

/// How the webhooks of sources other than Alertmanager are read.
#[derive(Debug)]
pub struct Sources {
    /// With `sources.grafana.hmac_secret`: the signature `POST /grafana` must carry.
    pub grafana_hmac: Option<GrafanaHmac>,
    /// The zone HertzBeat's times are written in (its server's): `sources.hertzbeat.
    /// timezone`, else `timezone`.
    pub hertzbeat_timezone: TimeZone,
}

/// The HMAC signature Grafana's webhook contact point is configured to send.
#[derive(Debug)]
pub struct GrafanaHmac {
    /// The shared secret.
    pub secret: Secret,
    /// The header carrying the signature.
    pub header: String,
    /// The header carrying the signed timestamp, when the contact point sends one.
    pub timestamp_header: Option<String>,
}

impl Checker {
    /// `sources:`, with `timezone` (the config's) for HertzBeat unless it names its own.
    pub(super) fn sources(
        &mut self,
        at: &Path,
        raw: RawSources,
        timezone: &TimeZone,
    ) -> Option<Sources> {
        let grafana = at.key("grafana");
        let given = (raw.grafana.hmac_secret, raw.grafana.hmac_secret_file);
        let secret = self.inline_or_file(&grafana, "sources.grafana", "hmac_secret", given);
        let grafana_hmac = match secret {
            Some((key, secret)) if secret.is_empty() => {
                self.error(
                    &key,
                    "the HMAC secret is empty; leave `hmac_secret` out to accept unsigned webhooks",
                );
                return None;
            }
            Some((_, secret)) => Some(GrafanaHmac {
                secret: Secret::new(secret),
                header: raw
                    .grafana
                    .signature_header
                    .unwrap_or_else(|| GRAFANA_SIGNATURE_HEADER.to_owned()),
                timestamp_header: raw.grafana.timestamp_header.filter(|h| !h.is_empty()),
            }),
            None => {
                let headers = [
                    ("signature_header", raw.grafana.signature_header.is_some()),
                    ("timestamp_header", raw.grafana.timestamp_header.is_some()),
                ];
                for (key, _) in headers.iter().filter(|(_, given)| *given) {
                    self.error(
                        &grafana.key(key),
                        format!(
                            "`{key}` without `hmac_secret` (or `hmac_secret_file`) checks nothing"
                        ),
                    );
                }
                None
            }
        };
        let hertzbeat_timezone = match raw.hertzbeat.timezone.as_deref() {
            Some(name) => self.check(&at.key("hertzbeat").key("timezone"), time_zone(name))?,
            None => timezone.clone(),
        };
        Some(Sources {
            grafana_hmac,
            hertzbeat_timezone,
        })
    }
}
