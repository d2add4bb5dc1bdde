//! Redis Sentinel (Debian's `redis-sentinel`) on loopback: a few Sentinels watching one
//! master, which promote a replica within seconds when the master dies.

use std::fs::{self, File};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::daemon::{installed, poll_until};
use crate::redis::command_as;
use crate::scratch::{free_port, temp_dir};

/// The name the Sentinels know the master by.
pub const MASTER_NAME: &str = "mymaster";

/// Sentinels the test controls; killed, their directories removed, when dropped.
pub struct Sentinels {
    sentinels: Vec<(Child, PathBuf, u16)>,
    /// What they require of clients and of each other, if anything.
    password: Option<String>,
}

impl Sentinels {
    /// Starts `count` Sentinels (`redis-sentinel`, or `$REDIS_SENTINEL`) watching the
    /// master on loopback port `master` as [`MASTER_NAME`], with a quorum of a majority;
    /// they take a master that answered nothing for a second as down, and require
    /// `password` (`requirepass`) if one is given. Waits until each names the master.
    pub fn start(master: u16, count: usize, password: Option<&str>) -> Sentinels {
        let bin = installed(
            "REDIS_SENTINEL",
            "/usr/bin/redis-sentinel",
            "redis-sentinel",
        );
        let quorum = count / 2 + 1;
        let sentinels = (0..count)
            .map(|_| {
                let dir = temp_dir("sentinel");
                let port = free_port();
                // Sentinel rewrites its config file: it must be its own and writable.
                let mut config = format!(
                    "port {port}\nbind 127.0.0.1\ndir {dir}\n\
                     sentinel monitor {MASTER_NAME} 127.0.0.1 {master} {quorum}\n\
                     sentinel down-after-milliseconds {MASTER_NAME} 1000\n\
                     sentinel failover-timeout {MASTER_NAME} 5000\n\
                     sentinel parallel-syncs {MASTER_NAME} 1\n",
                    dir = dir.display()
                );
                if let Some(password) = password {
                    config.push_str(&format!("requirepass {password}\n"));
                }
                fs::write(dir.join("sentinel.conf"), config).expect("write sentinel.conf");
                let log = File::create(dir.join("sentinel.log")).expect("sentinel log file");
                let child = Command::new(&bin)
                    .current_dir(&dir)
                    .arg("sentinel.conf")
                    .stdin(Stdio::null())
                    .stdout(log)
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("spawn redis-sentinel");
                (child, dir, port)
            })
            .collect();
        let sentinels = Sentinels {
            sentinels,
            password: password.map(str::to_owned),
        };
        sentinels.wait_for_master(master, Duration::from_secs(10));
        sentinels
    }

    /// `127.0.0.1:PORT` of each.
    pub fn addresses(&self) -> Vec<String> {
        self.sentinels
            .iter()
            .map(|(_, _, port)| format!("127.0.0.1:{port}"))
            .collect()
    }

    /// The master's port, as Sentinel `index` names it now.
    pub fn master_port(&self, index: usize) -> Option<u16> {
        let resp = format!(
            "*3\r\n$8\r\nSENTINEL\r\n$23\r\nget-master-addr-by-name\r\n${}\r\n{MASTER_NAME}\r\n",
            MASTER_NAME.len()
        );
        let answer = command_as(self.sentinels[index].2, self.password.as_deref(), &resp)?;
        // *2 $9 127.0.0.1 $N PORT
        answer.lines().nth(4)?.trim().parse().ok()
    }

    /// Waits until every Sentinel names the master on `port`; panics with their logs
    /// after `timeout`.
    pub fn wait_for_master(&self, port: u16, timeout: Duration) {
        let named = || (0..self.sentinels.len()).all(|i| self.master_port(i) == Some(port));
        assert!(
            poll_until(timeout, named),
            "the Sentinels do not name the master on {port}:\n{}",
            self.log()
        );
    }

    /// What they logged, for assertion messages.
    pub fn log(&self) -> String {
        self.sentinels
            .iter()
            .map(|(_, dir, port)| {
                let log = fs::read_to_string(dir.join("sentinel.log")).unwrap_or_default();
                format!("--- sentinel {port} ---\n{log}")
            })
            .collect()
    }
}

impl Drop for Sentinels {
    fn drop(&mut self) {
        for (child, dir, _) in &mut self.sentinels {
            let _ = child.kill();
            let _ = child.wait();
            let _ = fs::remove_dir_all(dir);
        }
    }
}
