//! Redis that fails over: a real master, a replica and three Redis Sentinels on loopback
//! (Debian's `redis-sentinel`) that require a password, two bridges sharing a robot
//! through the master the Sentinels name. The master is killed in the middle of a storm and the replica promoted:
//! every alert is still delivered once, DingTalk never answers 130101 and the robot never
//! goes over its window, and the bridges say they follow the new master.

use std::time::Duration;

use testkit::{Bridge, FakeDingTalk, FakeRobot, MASTER_NAME, Redis, Sentinels};

use crate::BINARY;
use crate::cluster::storm;
use crate::delivery::{one_robot_config, wait_for_every_name};

const TOKEN: &str = "ops-token";
/// What the Sentinels require (their `requirepass`).
const SENTINEL_PASSWORD: &str = "sentinel-s3cret";
/// DingTalk's 20 a minute, scaled to 20 in 10 s on both sides; the logic is the same.
const WINDOW: Duration = Duration::from_secs(10);

fn config(api_url: &str, sentinels: &Sentinels) -> String {
    let addresses: Vec<String> = sentinels
        .addresses()
        .iter()
        .map(|a| format!("\"{a}\""))
        .collect();
    let cluster = format!(
        "cluster:\n  redis_url: \"redis://{MASTER_NAME}/0\"\n  replicas: 2\n  timeout: 200ms\n  \
         sentinel:\n    master_name: {MASTER_NAME}\n    addresses: [{}]\n    \
         password: {SENTINEL_PASSWORD}\n",
        addresses.join(", ")
    );
    one_robot_config(api_url, "    rate_limit: 20/10s", &cluster)
}

#[tokio::test]
async fn a_failover_mid_storm_loses_nothing_doubles_nothing_and_keeps_the_window() {
    let mut master = Redis::start();
    let replica = Redis::start_replica_of(master.port);
    replica.wait_in_sync();
    let sentinels = Sentinels::start(master.port, 3, Some(SENTINEL_PASSWORD));
    let dingtalk = FakeDingTalk::start(vec![FakeRobot::new(TOKEN).rate(20, WINDOW)]).await;
    let config = config(&dingtalk.api_url(), &sentinels);
    let bridges = [
        Bridge::start(BINARY, &config).await,
        Bridge::start(BINARY, &config).await,
    ];

    let mut names = storm(&bridges, "Before", 40).await;
    master.stop();
    sentinels.wait_for_master(replica.port, Duration::from_secs(30));
    names.extend(storm(&bridges, "After", 40).await);

    let requests = wait_for_every_name(&dingtalk, &names, Duration::from_secs(120)).await;
    let refused = requests
        .iter()
        .filter(|r| r.errcode == Some(130_101))
        .count();
    assert_eq!(refused, 0, "{requests:#?}");
    let most = dingtalk.max_in_any_window(TOKEN, WINDOW);
    assert!(most <= 20, "{most} messages within {WINDOW:?}");
    let switched = bridges.iter().any(|bridge| {
        bridge.log_lines().iter().any(|line| {
            line["message"] == "Redis Sentinel names another master: following it."
                && line["master"] == format!("127.0.0.1:{}", replica.port)
        })
    });
    assert!(
        switched,
        "no bridge said it follows the new master:\n{}",
        bridges[0].log()
    );
    for bridge in &bridges {
        assert!(!bridge.log().contains(SENTINEL_PASSWORD));
    }
    let up = format!("alertmanager_dingtalk_cluster_redis_up{{redis=\"redis://{MASTER_NAME}/0\"}}");
    for bridge in &bridges {
        assert_eq!(bridge.metric(&up).await, 1.0, "{}", bridge.log());
    }
}
