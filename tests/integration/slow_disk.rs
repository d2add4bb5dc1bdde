//! A slow disk holds up only what must wait for it (issue 20): with every fsync and
//! fdatasync of the bridge taking 1 s (`tests/data/slow_fsync.c`, preloaded with
//! `LD_PRELOAD`, built here with the system's `cc`), health, readiness, `/metrics` and the
//! queue API answer from memory within 200 ms while webhooks for four robots wait for
//! their commits, and every alert that got a 200 is still delivered.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use testkit::{Bridge, FakeDingTalk, FakeRobot, payload};

use crate::BINARY;

const ROBOTS: [&str; 4] = ["a", "b", "c", "d"];
/// What the probes, the scrape and the API must answer within.
const PROMPT: Duration = Duration::from_millis(200);
/// How long webhooks keep coming.
const LOAD: Duration = Duration::from_secs(6);

/// The shim, compiled into `dir`.
fn build_shim(dir: &Path) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/slow_fsync.c");
    let library = dir.join("libslowfsync.so");
    let built = std::process::Command::new("cc")
        .args(["-shared", "-fPIC", "-O2", "-o"])
        .arg(&library)
        .arg(&source)
        .arg("-ldl")
        .status()
        .expect("run cc");
    assert!(built.success(), "cc failed to build {}", source.display());
    library
}

fn config(api_url: &str) -> String {
    let robots: String = ROBOTS
        .iter()
        .map(|r| format!("  {r}:\n    access_token: {r}-token\n    rate_limit: 1000/s\n"))
        .collect();
    format!(
        r#"
dingtalk:
  api_url: "{api_url}"
delivery:
  queue_dir: data/queue
robots:
{robots}
strategies:
  - name: everyone
    robots: [a, b, c, d]
"#
    )
}

#[tokio::test]
async fn a_slow_disk_holds_up_no_probe_scrape_or_api_call_and_loses_nothing() {
    let dingtalk = FakeDingTalk::start(
        ROBOTS
            .iter()
            .map(|r| FakeRobot::new(&format!("{r}-token")).rate(1000, Duration::from_secs(1)))
            .collect(),
    )
    .await;
    let shim_dir = testkit::temp_dir("slow-fsync");
    let shim = build_shim(&shim_dir);
    let shim = shim.to_str().expect("a UTF-8 path");
    let bridge = Arc::new(
        Bridge::start_with_env(
            BINARY,
            &config(&dingtalk.api_url()),
            &[("LD_PRELOAD", shim), ("SLOW_FSYNC_MS", "1000")],
        )
        .await,
    );

    // Eight clients post webhooks one after another for LOAD, each alert named once.
    let started = Instant::now();
    let mut posters = tokio::task::JoinSet::new();
    for client in 0..8 {
        let bridge = bridge.clone();
        posters.spawn(async move {
            let mut accepted = Vec::new();
            let mut slowest = Duration::ZERO;
            let mut n = 0;
            while started.elapsed() < LOAD {
                let name = format!("Slow{client}x{n}");
                n += 1;
                let sent = Instant::now();
                let body = payload("firing", &[(name.as_str(), &[])]);
                let (status, _) = bridge.post("/alertmanager", body, None).await;
                slowest = slowest.max(sent.elapsed());
                if status == 200 {
                    accepted.push(name);
                }
            }
            (accepted, slowest)
        });
    }

    let mut slowest_answers: Vec<(&str, Duration)> = Vec::new();
    while started.elapsed() < LOAD {
        for path in ["/-/healthy", "/-/ready", "/metrics", "/api/v1/queue"] {
            let asked = Instant::now();
            let (status, _) = bridge.get(path).await;
            let took = asked.elapsed();
            assert_eq!(status, 200, "{path}");
            match slowest_answers.iter_mut().find(|(p, _)| *p == path) {
                Some((_, slowest)) => *slowest = (*slowest).max(took),
                None => slowest_answers.push((path, took)),
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let mut accepted = Vec::new();
    let mut slowest_webhook = Duration::ZERO;
    while let Some(poster) = posters.join_next().await {
        let (names, slowest) = poster.expect("a poster");
        accepted.extend(names);
        slowest_webhook = slowest_webhook.max(slowest);
    }
    // The shim works: a webhook's 200 waits for its commit's fsync.
    assert!(
        slowest_webhook >= Duration::from_millis(900),
        "no webhook waited for a slow fsync ({slowest_webhook:?}); is the shim preloaded?"
    );
    assert!(accepted.len() >= 8, "accepted: {accepted:?}");
    for (path, slowest) in &slowest_answers {
        assert!(
            *slowest < PROMPT,
            "{path} took {slowest:?} while the disk was slow:\n{}",
            bridge.log()
        );
    }

    // Every accepted alert reaches every robot (alone or in a digest).
    dingtalk
        .wait_until(
            "every accepted alert delivered to every robot",
            Duration::from_secs(120),
            |requests| {
                ROBOTS.iter().all(|robot| {
                    let token = format!("{robot}-token");
                    accepted.iter().all(|name| {
                        requests.iter().any(|r| {
                            r.delivered() && r.token == token && r.text().contains(name.as_str())
                        })
                    })
                })
            },
        )
        .await;
    let _ = std::fs::remove_dir_all(&shim_dir);
}
