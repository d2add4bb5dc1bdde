//! DingTalk's monthly OpenAPI quota: a standard organisation may make 5000 calls a month
//! ("调用频次与限流",
//! open.dingtalk.com/document/development/how-to-process-api-throttling-on-the-dingtalk-server;
//! access-token calls are not counted). Every OpenAPI call is counted in
//! `openapi_calls_total{api}`; with `dingtalk.monthly_call_quota`, the calls of the
//! current month (UTC) are counted too, by all replicas together through Redis with
//! `cluster:` (this replica's alone while Redis cannot be reached), and at 80 % of the
//! quota `openapi_quota_warning` turns 1 and a warning is logged once a month.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use jiff::Timestamp;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

use super::{ApiLabels, Metrics};
use crate::cluster::Cluster;
use crate::dingtalk::Call;

/// The share of the quota at which the warning starts.
const WARN_AT: f64 = 0.8;

/// This replica's calls of the month, and whether the month's warning was logged: kept
/// across reloads.
#[derive(Debug, Default)]
pub struct Month {
    /// `year * 12 + month` of the month counted.
    month: AtomicU64,
    calls: AtomicU64,
    warned: AtomicBool,
}

/// Counts OpenAPI calls, as one configuration says (its quota and its cluster).
#[derive(Clone)]
pub struct Calls {
    month: Arc<Month>,
    quota: Option<u64>,
    cluster: Option<Arc<Cluster>>,
    calls: Family<ApiLabels, Counter>,
    month_calls: Gauge,
    warning: Gauge,
}

impl Calls {
    /// Counting into `metrics` against `quota`, shared through `cluster`, continuing
    /// `month`.
    pub fn new(
        metrics: &Metrics,
        month: Arc<Month>,
        quota: Option<u64>,
        cluster: Option<Arc<Cluster>>,
    ) -> Self {
        Calls {
            month,
            quota,
            cluster,
            calls: metrics.openapi_calls.clone(),
            month_calls: metrics.openapi_month_calls.clone(),
            warning: metrics.openapi_quota_warning.clone(),
        }
    }

    /// The month so far, for the next configuration.
    pub fn month(&self) -> Arc<Month> {
        self.month.clone()
    }

    /// Counts one `call`; with a quota, the shared count is asked of Redis on a task of
    /// its own, so the call never waits for it.
    pub fn count(&self, call: Call) {
        self.calls
            .get_or_create(&ApiLabels {
                api: call.to_string(),
            })
            .inc();
        let Some(quota) = self.quota.filter(|_| call != Call::AccessToken) else {
            return;
        };
        let counting = self.clone();
        tokio::spawn(async move {
            let now = Timestamp::now()
                .to_zoned_datetime(jiff::tz::TimeZone::UTC)
                .date();
            let (year, month) = (now.year(), now.month());
            let this_month = u64::try_from(i32::from(year) * 12 + i32::from(month)).unwrap_or(0);
            let state = &counting.month;
            if state.month.swap(this_month, Ordering::Relaxed) != this_month {
                state.calls.store(0, Ordering::Relaxed);
                state.warned.store(false, Ordering::Relaxed);
            }
            let mine = state.calls.fetch_add(1, Ordering::Relaxed) + 1;
            let shared = match &counting.cluster {
                Some(cluster) => cluster.count_call(&format!("{year:04}-{month:02}")).await,
                None => None,
            };
            let used = shared.unwrap_or(mine);
            let over = used as f64 >= quota as f64 * WARN_AT;
            counting
                .month_calls
                .set(i64::try_from(used).unwrap_or(i64::MAX));
            counting.warning.set(i64::from(over));
            if over && !state.warned.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    message =
                        "This month's OpenAPI calls reached 80% of dingtalk.monthly_call_quota.",
                    calls = used,
                    quota,
                );
            }
        });
    }
}
