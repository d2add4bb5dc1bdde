//! What a send costs before the network: the 加签 `sign`ature and the signed URL built
//! for every request, `encode` of the DingTalk JSON body for messages rendered from 1 to
//! 1000 alerts (from 100 alerts on, a full 20000-byte text), and `coalesce` of a storm's
//! pending messages into digests: 100, and 1000, the most a worker takes at once.

mod common;

use std::hint::black_box;

use alertmanager_dingtalk::accept::plan;
use alertmanager_dingtalk::config::Config;
use alertmanager_dingtalk::deliver::digest;
use alertmanager_dingtalk::dingtalk::{self, Endpoint, MESSAGE_BUDGET, MsgType, sign};
use alertmanager_dingtalk::queue::Envelope;
use alertmanager_dingtalk::render::Handling;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};

use common::{SIZES, config, notification, now};

/// The robot the messages go to: signed, and with people to mention.
const ROBOT: &str = "oncall";

fn sign(c: &mut Criterion) {
    let config = config();
    let Endpoint::Webhook(robot) = &config.robots[ROBOT].endpoint else {
        panic!("{ROBOT} is a webhook robot");
    };
    let secret = robot.secret.as_ref().expect("a signed robot").expose();
    let now_ms = now().as_millisecond();
    let mut group = c.benchmark_group("sign");
    group.bench_function("signature", |b| {
        b.iter(|| sign::signature(black_box(secret), black_box(now_ms)))
    });
    group.bench_function("send_url", |b| b.iter(|| robot.send_url(black_box(now_ms))));
    group.finish();
}

fn encode(c: &mut Criterion) {
    let config = config();
    let mut group = c.benchmark_group("encode/markdown");
    for n in SIZES {
        let message = pending(&config, &[n]).remove(0).message;
        group.throughput(Throughput::Bytes(message.text.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &message, |b, message| {
            b.iter(|| dingtalk::encode(MsgType::Markdown, black_box(message)))
        });
    }
    group.finish();
}

fn coalesce(c: &mut Criterion) {
    let config = config();
    let keyword = config.robots[ROBOT].primary_keyword();
    let mut group = c.benchmark_group("coalesce");
    for messages in [100, 1000] {
        // Alert groups of 1 to 10 alerts, as a storm leaves them queued.
        let sizes: Vec<usize> = (0..messages).map(|i| 1 + i % 10).collect();
        let pending = pending(&config, &sizes);
        group.throughput(Throughput::Elements(messages as u64));
        group.bench_with_input(
            BenchmarkId::from_parameter(messages),
            &pending,
            |b, pending| b.iter(|| digest::digests(black_box(pending), keyword, MESSAGE_BUDGET)),
        );
    }
    group.finish();
}

/// Queued messages for [`ROBOT`], one per entry of `sizes`, each rendered from a
/// notification of that many alerts by the webhook's own path.
fn pending(config: &Config, sizes: &[usize]) -> Vec<Envelope> {
    sizes
        .iter()
        .enumerate()
        .map(|(id, &n)| {
            let planned = plan::plan_direct(
                config,
                &notification(n),
                ROBOT,
                Handling::default(),
                jiff::Timestamp::UNIX_EPOCH,
            )
            .expect("a configured robot");
            Envelope {
                id: id as u64,
                robot: planned.robot,
                strategy: planned.strategy,
                message: planned.message,
                summary: planned.summary,
                accepted_at: now(),
            }
        })
        .collect()
}

criterion_group!(benches, sign, encode, coalesce);
criterion_main!(benches);
