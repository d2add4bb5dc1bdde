//! Cluster mode: three bridge processes sharing one real Redis (started on a free
//! loopback port by the test kit) and one fake DingTalk, which counts what all of them
//! send. The fake's own rate limit answers 130101 past it, so "no 130101" means the
//! replicas together stayed within the robot's window.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use testkit::{Bridge, FakeDingTalk, FakeRobot, Mode, Redis, Request, payload};

use crate::alertmanager::{Alertmanager, TestAlert};
use crate::delivery::{one_robot_config, wait_for_every_name};
use crate::{BINARY, QUIET, QUIET_WITHIN};

/// The robot's token in `one_robot_config`.
const TOKEN: &str = "ops-token";
const REPLICAS: usize = 3;

fn cluster_config(api_url: &str, redis: &Redis, rate_limit: &str) -> String {
    let cluster = format!(
        "cluster:\n  redis_url: \"{}\"\n  replicas: {REPLICAS}\n  timeout: 200ms\n",
        redis.url()
    );
    single_config(api_url, rate_limit) + &cluster
}

fn single_config(api_url: &str, rate_limit: &str) -> String {
    one_robot_config(api_url, &format!("    rate_limit: {rate_limit}"), "")
}

async fn replicas(config: &str) -> Vec<Bridge> {
    let mut bridges = Vec::new();
    for _ in 0..REPLICAS {
        bridges.push(Bridge::start(BINARY, config).await);
    }
    bridges
}

/// A Redis, a fake robot with DingTalk's own limit, and three replicas sharing it, each
/// with the whole `rate_limit: 20/min`.
async fn three_replicas_at_20_a_minute() -> (Redis, FakeDingTalk, Vec<Bridge>) {
    let redis = Redis::start();
    let dingtalk = FakeDingTalk::start(vec![FakeRobot::new(TOKEN)]).await;
    let bridges = replicas(&cluster_config(&dingtalk.api_url(), &redis, "20/min")).await;
    (redis, dingtalk, bridges)
}

/// Posts `count` groups named `{prefix}NNN`, one alert each, round-robin to `bridges`.
pub(crate) async fn storm(bridges: &[Bridge], prefix: &str, count: usize) -> Vec<String> {
    let names: Vec<String> = (0..count).map(|i| format!("{prefix}{i:03}")).collect();
    for (i, name) in names.iter().enumerate() {
        bridges[i % bridges.len()]
            .notify(&payload("firing", &[(name, &[])]))
            .await;
    }
    names
}

fn refused_as_too_fast(requests: &[Request]) -> usize {
    requests
        .iter()
        .filter(|r| r.errcode == Some(130_101))
        .count()
}

fn up_series(redis: &Redis) -> String {
    format!(
        "alertmanager_dingtalk_cluster_redis_up{{redis=\"{}\"}}",
        redis.url()
    )
}

#[tokio::test]
async fn three_replicas_share_one_rate_window() {
    // DingTalk's own limit, whole on every replica: the window is shared.
    let (redis, dingtalk, bridges) = three_replicas_at_20_a_minute().await;

    let names = storm(&bridges, "Shared", 240).await;

    let requests = wait_for_every_name(&dingtalk, &names, Duration::from_secs(120)).await;
    assert_eq!(refused_as_too_fast(&requests), 0, "{requests:#?}");
    let most = dingtalk.max_in_any_window(TOKEN, Duration::from_secs(60));
    assert!(most <= 20, "{most} messages within 60 s");
    for bridge in &bridges {
        assert_eq!(
            bridge.metric(&up_series(&redis)).await,
            1.0,
            "{}",
            bridge.log()
        );
    }
}

#[tokio::test]
async fn the_same_notification_to_every_replica_is_sent_once() {
    // Redis runs while `_redis` lives.
    let (_redis, dingtalk, bridges) = three_replicas_at_20_a_minute().await;
    let copy = payload("firing", &[("DiskFull", &[("instance", "db-1")])]);

    tokio::join!(
        bridges[0].notify(&copy),
        bridges[1].notify(&copy),
        bridges[2].notify(&copy),
    );

    dingtalk
        .wait_until("the first copy", Duration::from_secs(10), |r| !r.is_empty())
        .await;
    let requests = dingtalk.wait_until_quiet(QUIET, QUIET_WITHIN).await;
    assert_eq!(requests.len(), 1, "{requests:#?}");
    let mut suppressed = 0.0;
    for bridge in &bridges {
        bridge.wait_idle().await;
        suppressed += bridge
            .metric("alertmanager_dingtalk_duplicates_suppressed_total")
            .await;
    }
    assert_eq!(suppressed, 2.0);
}

#[tokio::test]
async fn a_rate_limit_answer_to_one_replica_pauses_them_all() {
    // Redis runs while `_redis` lives.
    let (_redis, dingtalk, bridges) = three_replicas_at_20_a_minute().await;
    dingtalk.set_mode(Mode::Errcode(
        130_101,
        "send too fast, exceed 20 times per minute".into(),
    ));

    bridges[0]
        .notify(&payload("firing", &[("First", &[])]))
        .await;
    dingtalk
        .wait_until("the refused send", Duration::from_secs(10), |r| {
            !r.is_empty()
        })
        .await;
    bridges[0]
        .wait_for_metric("alertmanager_dingtalk_robot_paused{robot=\"ops\"}", 1.0)
        .await;
    dingtalk.set_mode(Mode::Normal);
    bridges[1]
        .notify(&payload("firing", &[("Second", &[])]))
        .await;
    bridges[2]
        .notify(&payload("firing", &[("Third", &[])]))
        .await;

    // The others learn of the pause from Redis when they go to send, and hold.
    for bridge in &bridges[1..] {
        bridge
            .wait_for_metric("alertmanager_dingtalk_robot_paused{robot=\"ops\"}", 1.0)
            .await;
    }
    let requests = dingtalk.wait_until_quiet(QUIET, QUIET_WITHIN).await;
    assert_eq!(requests.len(), 1, "sent during the pause: {requests:#?}");
}

#[tokio::test]
async fn losing_redis_mid_storm_loses_no_alert_and_keeps_the_window() {
    // DingTalk's 20/min scaled down to 6 per 10 s on both sides: each of the 3 replicas
    // falls back to 2 per window.
    let window = Duration::from_secs(10);
    let mut redis = Redis::start();
    let dingtalk = FakeDingTalk::start(vec![FakeRobot::new(TOKEN).rate(6, window)]).await;
    let bridges = replicas(&cluster_config(&dingtalk.api_url(), &redis, "6/10s")).await;
    let up = up_series(&redis);

    // One replica fills the shared window just before the loss; the others, which sent
    // nothing themselves, must not take the switch as an empty window.
    let mut names = storm(&bridges[..1], "BeforeLoss", 30).await;
    dingtalk
        .wait_until("the shared window filled", Duration::from_secs(20), |r| {
            r.iter().filter(|r| r.errcode == Some(0)).count() >= 5
        })
        .await;
    redis.stop();
    let stopped = Instant::now();
    for bridge in &bridges {
        bridge.wait_for_metric(&up, 0.0).await;
    }
    // A drip rather than a burst, so that each replica has something to send all along:
    // what holds them to their shares is the fallback window, not the digests.
    let mut drip = tokio::time::interval(Duration::from_millis(500));
    for i in 0..50 {
        drip.tick().await;
        let name = format!("DuringLoss{i:03}");
        bridges[i % REPLICAS]
            .notify(&payload("firing", &[(&name, &[])]))
            .await;
        names.push(name);
    }
    // Each replica sent on its share once the shared window's sends had aged out.
    dingtalk
        .wait_until(
            "a send on a replica's share",
            Duration::from_secs(60),
            |r| {
                r.iter()
                    .any(|r| r.at > stopped + Duration::from_secs(3) && r.errcode == Some(0))
            },
        )
        .await;
    redis.start_again();
    for bridge in &bridges {
        bridge.wait_for_metric(&up, 1.0).await;
    }
    names.extend(storm(&bridges, "AfterLoss", 30).await);

    let requests = wait_for_every_name(&dingtalk, &names, Duration::from_secs(180)).await;
    assert_eq!(refused_as_too_fast(&requests), 0, "{requests:#?}");
    let most = dingtalk.max_in_any_window(TOKEN, window);
    assert!(most <= 6, "{most} messages within {window:?}");
    assert!(
        redis.keys() > 0,
        "the replicas wrote nothing to the new Redis"
    );
}

#[tokio::test]
async fn two_unclustered_alertmanagers_on_two_replicas_give_one_message_per_group() {
    let redis = Redis::start();
    let dingtalk = FakeDingTalk::start(vec![FakeRobot::new(TOKEN)]).await;
    let config = cluster_config(&dingtalk.api_url(), &redis, "20/min");
    let bridges = [
        Bridge::start(BINARY, &config).await,
        Bridge::start(BINARY, &config).await,
    ];
    // What a partition looks like: two Alertmanagers that do not gossip, each sending
    // every notification, each to its own replica.
    let mut alertmanagers = Vec::new();
    for bridge in &bridges {
        alertmanagers.push(Alertmanager::start(&format!("{}/alertmanager", bridge.url)).await);
    }
    // Prometheus sends each alert to both, with the same startsAt.
    let since = std::time::SystemTime::now() - Duration::from_secs(60);
    let alerts = [
        TestAlert::firing(&[("alertname", "PartitionDiskFull"), ("instance", "db-1")]).since(since),
        TestAlert::firing(&[("alertname", "PartitionHighLoad"), ("instance", "web-1")])
            .since(since),
    ];
    for alertmanager in &alertmanagers {
        alertmanager.post_alerts(&alerts).await;
    }

    let groups = ["PartitionDiskFull", "PartitionHighLoad"];
    let carrying = |requests: &[Request], group: &str| {
        requests
            .iter()
            .filter(|r| r.errcode == Some(0) && r.text().contains(group))
            .count()
    };
    dingtalk
        .wait_until("a message per group", Duration::from_secs(30), |r| {
            groups.iter().all(|group| carrying(r, group) > 0)
        })
        .await;
    let requests = dingtalk.wait_until_quiet(QUIET, QUIET_WITHIN).await;
    for group in groups {
        assert_eq!(carrying(&requests, group), 1, "{requests:#?}");
    }
    let mut suppressed = 0.0;
    for bridge in &bridges {
        suppressed += bridge
            .metric("alertmanager_dingtalk_duplicates_suppressed_total")
            .await;
    }
    assert_eq!(suppressed, 2.0, "one copy of each group suppressed");
}

#[tokio::test]
async fn a_storm_on_one_replica_does_not_starve_another() {
    // 6 per 10 s on both sides, as above.
    let window = Duration::from_secs(10);
    let redis = Redis::start();
    let dingtalk = FakeDingTalk::start(vec![FakeRobot::new(TOKEN).rate(6, window)]).await;
    let bridges = replicas(&cluster_config(&dingtalk.api_url(), &redis, "6/10s")).await;

    storm(&bridges[..1], "Storm", 150).await;
    let posted = Instant::now();
    bridges[1]
        .notify(&payload("firing", &[("Lonely", &[])]))
        .await;

    let requests = dingtalk
        .wait_until("the other replica's alert", 3 * window, |r| {
            r.iter()
                .any(|r| r.errcode == Some(0) && r.text().contains("Lonely"))
        })
        .await;
    let delivered = requests
        .iter()
        .find(|r| r.text().contains("Lonely"))
        .map(|r| r.at)
        .unwrap();
    assert!(
        delivered.duration_since(posted) < 3 * window,
        "waited {:?} behind the storm",
        delivered.duration_since(posted)
    );
}

#[tokio::test]
async fn reload_turns_cluster_mode_on_and_off() {
    let redis = Redis::start();
    let dingtalk = FakeDingTalk::start(vec![FakeRobot::new(TOKEN)]).await;
    let clustered = cluster_config(&dingtalk.api_url(), &redis, "20/min");
    let alone = single_config(&dingtalk.api_url(), "20/min");
    let bridge = Bridge::start(BINARY, &alone).await;
    let config_file = bridge.dir().join("config.yaml");
    let series = up_series(&redis);
    assert!(!bridge.get("/metrics").await.1.contains("cluster_redis_up"));

    std::fs::write(&config_file, &clustered).unwrap();
    let (status, body) = bridge.post("/-/reload", "", None).await;
    assert_eq!(status, 200, "{body}");
    let shared = format!("shared by {REPLICAS} replicas through {}", redis.url());
    assert!(body.contains(&shared), "{body}");
    bridge.wait_for_metric(&series, 1.0).await;
    bridge
        .notify(&payload("firing", &[("AfterReload", &[])]))
        .await;
    dingtalk
        .wait_until("the message", Duration::from_secs(10), |r| !r.is_empty())
        .await;
    assert!(redis.keys() > 0, "nothing shared through Redis");

    std::fs::write(&config_file, &alone).unwrap();
    let (status, body) = bridge.post("/-/reload", "", None).await;
    assert_eq!(status, 200, "{body}");
    assert!(!bridge.get("/metrics").await.1.contains("cluster_redis_up"));
}

#[tokio::test]
async fn a_redis_that_stops_answering_holds_no_webhook() {
    let redis = Redis::start();
    let dingtalk = FakeDingTalk::start(vec![FakeRobot::new(TOKEN)]).await;
    let bridge = Bridge::start(
        BINARY,
        &cluster_config(&dingtalk.api_url(), &redis, "20/min"),
    )
    .await;
    let up = up_series(&redis);
    bridge.wait_for_metric(&up, 1.0).await;

    redis.freeze(Duration::from_secs(4));
    // Answered within the 200 ms Redis timeout and the local work, not after the freeze.
    let started = Instant::now();
    bridge
        .notify(&payload("firing", &[("DuringFreeze", &[])]))
        .await;
    let answered = started.elapsed();
    assert!(
        answered < Duration::from_secs(2),
        "answered after {answered:?}"
    );
    bridge.wait_for_metric(&up, 0.0).await;

    // Redis answers again: the message goes out through the shared window.
    bridge.wait_for_metric(&up, 1.0).await;
    dingtalk
        .wait_until("the message", Duration::from_secs(20), |r| {
            r.iter().any(|r| r.text().contains("DuringFreeze"))
        })
        .await;
}

/// A CA and a certificate for 127.0.0.1 signed by it, made with `openssl` in `dir`:
/// `ca.crt`, `server.crt`, `server.key`.
fn make_certificates(dir: &Path) {
    let openssl = |args: &[&str]| {
        let output = Command::new("openssl")
            .current_dir(dir)
            .args(args)
            .output()
            .expect("run openssl");
        assert!(output.status.success(), "openssl {args:?}: {output:?}");
    };
    let days = ["-days", "2"];
    openssl(
        &[
            &[
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key",
            ][..],
            &[
                "-out",
                "ca.crt",
                "-subj",
                "/CN=alertmanager-dingtalk test CA",
            ],
            &days,
        ]
        .concat(),
    );
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        &[
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
            ][..],
            &[
                "-CAcreateserial",
                "-out",
                "server.crt",
                "-extfile",
                "server.ext",
            ],
            &days,
        ]
        .concat(),
    );
}

#[tokio::test]
async fn a_redis_behind_tls_and_an_acl_password_is_shared_and_the_password_is_never_shown() {
    let tls_port = testkit::free_port();
    let redis = Redis::start_with(|dir| {
        make_certificates(dir);
        let file = |name: &str| dir.join(name).display().to_string();
        [
            "--tls-port".into(),
            tls_port.to_string(),
            "--tls-cert-file".into(),
            file("server.crt"),
            "--tls-key-file".into(),
            file("server.key"),
            "--tls-ca-cert-file".into(),
            file("ca.crt"),
            "--tls-auth-clients".into(),
            "no".into(),
        ]
        .into_iter()
        .chain(
            [
                "--user",
                "bridge",
                "on",
                ">s3cret-pass",
                "~*",
                "&*",
                "+@all",
            ]
            .map(String::from),
        )
        .collect()
    });
    let dingtalk = FakeDingTalk::start(vec![FakeRobot::new(TOKEN)]).await;
    let url = |password: &str| format!("rediss://bridge:{password}@127.0.0.1:{tls_port}/0");
    let config = |password: &str| {
        let cluster = format!(
            "cluster:\n  redis_url: \"{}\"\n  timeout: 2s\n",
            url(password)
        );
        single_config(&dingtalk.api_url(), "20/min") + &cluster
    };
    // rustls trusts the system's CA certificates, and SSL_CERT_FILE instead when set.
    let ca = redis.dir().join("ca.crt").display().to_string();
    let env = [("SSL_CERT_FILE", ca.as_str())];
    let up = format!(
        "alertmanager_dingtalk_cluster_redis_up{{redis=\"rediss://bridge:***@127.0.0.1:{tls_port}/0\"}}"
    );

    let bridge = Bridge::start_with_env(BINARY, &config("s3cret-pass"), &env).await;
    bridge.notify(&payload("firing", &[("OverTls", &[])])).await;
    dingtalk
        .wait_until("the message", Duration::from_secs(10), |r| !r.is_empty())
        .await;
    bridge.wait_for_metric(&up, 1.0).await;
    assert!(redis.keys() > 0, "nothing shared through Redis");

    // A wrong password: refused by Redis, so the replica falls back, and says why.
    let mut refused = Bridge::start_with_env(BINARY, &config("wrong-pass"), &env).await;
    refused
        .notify(&payload("firing", &[("WrongPassword", &[])]))
        .await;
    refused.wait_for_metric(&up, 0.0).await;
    let fallback = refused
        .wait_for_log("the fallback", Duration::from_secs(10), |line| {
            line["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("Redis cannot be reached"))
        })
        .await;
    let error = fallback["error"].as_str().unwrap_or_default();
    assert!(error.contains("authentication failed"), "{fallback}");

    for bridge in [&bridge, &refused] {
        let (_, metrics) = bridge.get("/metrics").await;
        for secret in ["s3cret-pass", "wrong-pass"] {
            assert!(!metrics.contains(secret), "{secret} in /metrics");
            assert!(!bridge.log().contains(secret), "{secret} in the log");
        }
    }
}

#[tokio::test]
async fn in_passthrough_a_copy_delivered_by_another_replica_is_a_duplicate() {
    let redis = Redis::start();
    let dingtalk = FakeDingTalk::start(vec![FakeRobot::new(TOKEN)]).await;
    let config =
        cluster_config(&dingtalk.api_url(), &redis, "20/min") + "delivery:\n  mode: passthrough\n";
    let bridges = [
        Bridge::start(BINARY, &config).await,
        Bridge::start(BINARY, &config).await,
    ];
    let copy = payload("firing", &[("PassedOnce", &[])]);

    // The first answer comes after DingTalk's; the copy comes after it, elsewhere.
    bridges[0].notify(&copy).await;
    bridges[1].notify(&copy).await;

    let requests = dingtalk.wait_until_quiet(QUIET, QUIET_WITHIN).await;
    assert_eq!(requests.len(), 1, "{requests:#?}");
    assert_eq!(
        bridges[1]
            .metric("alertmanager_dingtalk_duplicates_suppressed_total")
            .await,
        1.0
    );
}
