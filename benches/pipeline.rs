//! The webhook's pure middle, for notifications of 1, 10, 100 and 1000 alerts: `parse`
//! the body, `route` the alerts through 50 strategies, `render` them all into one message
//! with the default template (100 and 1000 alerts are truncated to 20000 bytes), and
//! `plan`, route and render of every message, as the handler runs them. Throughput is
//! counted in alerts, so the report gives the cost per alert and shows whether it stays
//! flat as notifications grow.
//!
//! Targets (issue 5): rendering a 1000-alert group, truncation included, in at most 2 ms;
//! routing 1000 alerts through 50 strategies in at most 1 ms.

mod common;

use std::hint::black_box;

use alertmanager_dingtalk::accept::plan;
use alertmanager_dingtalk::config::Config;
use alertmanager_dingtalk::dingtalk::{MAX_TEXT_BYTES, Message};
use alertmanager_dingtalk::ingest::{self, Notification};
use alertmanager_dingtalk::render::{DEFAULT_TEMPLATE, Extras};
use alertmanager_dingtalk::route;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

use common::{SIZES, config, notification, now, webhook_body};

fn parse(c: &mut Criterion) {
    by_size(c, "parse", webhook_body, |body| ingest::parse(body));
}

fn route(c: &mut Criterion) {
    let (config, now) = (config(), now());
    by_size(c, "route/50_strategies", notification, |notification| {
        route::route(&config.strategies, &notification.alerts, now)
    });
}

fn render(c: &mut Criterion) {
    let config = config();
    let message = render_all(&config, &notification(1000));
    assert!(
        message.text.contains("more alerts") && message.text.len() <= MAX_TEXT_BYTES,
        "1000 alerts should be truncated to fit, with the \"…and N more alerts\" note"
    );
    by_size(c, "render/default", notification, |notification| {
        render_all(&config, notification)
    });
}

fn plan(c: &mut Criterion) {
    let (config, now) = (config(), now());
    by_size(c, "plan/50_strategies", notification, |notification| {
        plan::plan(&config, notification, now)
    });
}

/// Every alert of `notification` in one message to the `ops` robot, default template.
fn render_all(config: &Config, notification: &Notification) -> Message {
    let all: Vec<usize> = (0..notification.alerts.len()).collect();
    let robot = &config.robots["ops"];
    config.renderer.render(
        DEFAULT_TEMPLATE,
        notification,
        &all,
        robot,
        &Extras::default(),
        now(),
    )
}

/// Benchmarks `routine` on the input `setup` builds for each of [`SIZES`] alerts, as the
/// group `name`, with the alerts as throughput.
fn by_size<T, R>(
    c: &mut Criterion,
    name: &str,
    setup: impl Fn(usize) -> T,
    routine: impl Fn(&T) -> R,
) {
    let mut group = c.benchmark_group(name);
    for n in SIZES {
        let input = setup(n);
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &input, |b, input| {
            b.iter(|| routine(black_box(input)))
        });
    }
    group.finish();
}

criterion_group!(benches, parse, route, render, plan);
criterion_main!(benches);
