//! Hostile clients against the `http:` limits: connections that trickle their headers or
//! their body one byte at a time, more of them than `max_connections`, idle keep-alive
//! connections and oversized headers. A real webhook is still answered, and every slow
//! client is closed by its deadline.

use std::time::Duration;

use testkit::{Bridge, FakeDingTalk, FakeRobot, payload};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::BINARY;

fn config(api_url: &str, limits: &str) -> String {
    format!(
        r#"
dingtalk: {{ api_url: "{api_url}", timeout: 1s }}
http: {{ {limits} }}
robots:
  ops: {{ access_token: ops-token }}
strategies:
  - name: default
    robots: [ops]
"#
    )
}

/// What a slow client sends before it trickles: a request head that is not finished, or
/// a finished head announcing a body that then comes one byte at a time.
#[derive(Clone, Copy)]
enum Slow {
    Headers,
    Body,
}

/// A client that starts a request and then sends one byte every 200 ms, until the bridge
/// closes the connection; completes with how long it was open.
async fn trickle(address: String, how: Slow) -> Duration {
    let started = Instant::now();
    let Ok(mut stream) = TcpStream::connect(&address).await else {
        return started.elapsed();
    };
    let head = match how {
        Slow::Headers => "POST /alertmanager HTTP/1.1\r\nHost: bridge\r\n".to_owned(),
        Slow::Body => "POST /alertmanager HTTP/1.1\r\nHost: bridge\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{".to_owned(),
    };
    if stream.write_all(head.as_bytes()).await.is_err() {
        return started.elapsed();
    }
    let mut answer = [0u8; 512];
    loop {
        tokio::select! {
            read = stream.read(&mut answer) => match read {
                // Closed, or answered (408) and then closed.
                Ok(0) | Err(_) => return started.elapsed(),
                Ok(_) => {}
            },
            () = tokio::time::sleep(Duration::from_millis(200)) => {
                if stream.write_all(b" ").await.is_err() {
                    return started.elapsed();
                }
            }
        }
    }
}

async fn start(limits: &str) -> (FakeDingTalk, Bridge) {
    let dingtalk = FakeDingTalk::start(vec![FakeRobot::new("ops-token")]).await;
    let bridge = Bridge::start(BINARY, &config(&dingtalk.api_url(), limits)).await;
    (dingtalk, bridge)
}

/// Starts `count` slow clients, half of each kind, and waits until the bridge has them
/// all open.
async fn slow_clients(bridge: &Bridge, count: usize) -> Vec<tokio::task::JoinHandle<Duration>> {
    let address = bridge.url.trim_start_matches("http://").to_owned();
    let clients = (0..count)
        .map(|i| {
            let how = if i % 2 == 0 {
                Slow::Headers
            } else {
                Slow::Body
            };
            tokio::spawn(trickle(address.clone(), how))
        })
        .collect();
    // Let them connect and send their first bytes.
    tokio::time::sleep(Duration::from_millis(300)).await;
    clients
}

#[tokio::test]
async fn slow_clients_do_not_hold_up_a_webhook_and_are_closed_at_their_deadline() {
    let (dingtalk, bridge) = start("read_timeout: 3s").await;
    let clients = slow_clients(&bridge, 300).await;

    let sent = Instant::now();
    bridge
        .notify(&payload("firing", &[("DiskFull", &[])]))
        .await;
    let answered = sent.elapsed();
    // The slow clients were all still open: the webhook did not wait for any of them.
    assert!(
        clients.iter().all(|c| !c.is_finished()),
        "a slow client ended early"
    );
    assert!(
        answered < Duration::from_secs(3),
        "answered after {answered:?}"
    );
    dingtalk
        .wait_until("the webhook's message", Duration::from_secs(10), |r| {
            r.iter().any(|r| r.errcode == Some(0))
        })
        .await;

    for client in clients {
        let open = tokio::time::timeout(Duration::from_secs(20), client)
            .await
            .expect("a slow client is still open after 20 s")
            .unwrap();
        // Cut at 3 s from their first byte (plus the time to connect and scheduling).
        assert!(
            (Duration::from_millis(2500)..Duration::from_secs(8)).contains(&open),
            "a slow client was open {open:?}"
        );
    }
}

#[tokio::test]
async fn beyond_max_connections_a_webhook_waits_for_a_slot_instead_of_being_refused() {
    let (_dingtalk, mut bridge) = start("max_connections: 20, read_timeout: 2s").await;
    let clients = slow_clients(&bridge, 40).await;
    // Every slot is taken by a slow client; the webhook waits in the backlog until the
    // first of them is cut off, and is then answered.
    let sent = Instant::now();
    bridge
        .notify(&payload("firing", &[("DiskFull", &[])]))
        .await;
    let waited = sent.elapsed();
    assert!(waited < Duration::from_secs(10), "waited {waited:?}");
    for client in clients {
        tokio::time::timeout(Duration::from_secs(20), client)
            .await
            .expect("a slow client is still open after 20 s")
            .unwrap();
    }
    bridge
        .wait_for_log("the limit logged", Duration::from_secs(5), |line| {
            line["message"] == "Connection limit reached; new connections wait until one closes."
        })
        .await;
}

#[tokio::test]
async fn a_keep_alive_connection_stays_open_for_idle_timeout_then_is_closed() {
    let (_dingtalk, bridge) = start("read_timeout: 1s, idle_timeout: 3s").await;
    let address = bridge.url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).await.unwrap();
    let request = b"GET /-/healthy HTTP/1.1\r\nHost: bridge\r\n\r\n";
    let mut answer = vec![0u8; 1024];
    for _ in 0..2 {
        stream.write_all(request).await.unwrap();
        let read = stream.read(&mut answer).await.unwrap();
        assert!(
            answer[..read].starts_with(b"HTTP/1.1 200"),
            "{:?}",
            String::from_utf8_lossy(&answer[..read])
        );
        // Longer than read_timeout, shorter than idle_timeout: still open.
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
    let idle = Instant::now();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut answer))
        .await
        .expect("closed by idle_timeout");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    // 3 s after the last answer, of which 1.5 s had passed.
    assert!(
        idle.elapsed() >= Duration::from_millis(1000),
        "closed after {:?}",
        idle.elapsed()
    );
}

#[tokio::test]
async fn headers_larger_than_max_header_bytes_get_431() {
    let (_dingtalk, bridge) = start("max_header_bytes: 2048").await;
    let client = testkit::http();
    let answer = client
        .get(format!("{}/-/healthy", bridge.url))
        .header("x-padding", "a".repeat(4096))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 431);
    let answer = client
        .get(format!("{}/-/healthy", bridge.url))
        .header("x-padding", "a".repeat(1024))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
}
