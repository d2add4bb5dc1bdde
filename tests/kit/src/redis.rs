//! A real Redis (Debian's `redis-server`) on a free loopback port, in a directory of its
//! own, without persistence: stopping and starting it again on the same port gives a
//! Redis that restarted empty.

use std::fs::{self, File};
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::daemon::{installed, poll_until};
use crate::scratch::{free_port, temp_dir};

/// A Redis server the test controls; killed, its directory removed, when dropped.
pub struct Redis {
    bin: PathBuf,
    dir: PathBuf,
    child: Option<Child>,
    /// More `redis-server` arguments.
    extra_args: Vec<String>,
    /// The loopback port it listens on (plain TCP), the same across restarts.
    pub port: u16,
}

impl Redis {
    /// Starts `redis-server` (or `$REDIS_SERVER`) on a free port and waits for PING.
    pub fn start() -> Redis {
        Redis::start_with(|_| Vec::new())
    }

    /// Starts a replica of the Redis on loopback port `master`.
    pub fn start_replica_of(master: u16) -> Redis {
        Redis::start_with(|_| {
            vec![
                "--replicaof".to_owned(),
                "127.0.0.1".to_owned(),
                master.to_string(),
            ]
        })
    }

    /// Like [`start`](Self::start), with the extra arguments `args` gives for the
    /// server's directory (where it may write certificates first): a TLS port, ACL
    /// users. The plain port stays open to the default user, for the kit's own checks.
    pub fn start_with(args: impl FnOnce(&Path) -> Vec<String>) -> Redis {
        let bin = installed("REDIS_SERVER", "/usr/bin/redis-server", "redis-server");
        let dir = temp_dir("redis");
        let extra_args = args(&dir);
        let mut redis = Redis {
            bin,
            dir,
            child: None,
            extra_args,
            port: free_port(),
        };
        redis.start_again();
        redis
    }

    /// Its working directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `redis://127.0.0.1:PORT/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Kills the server: clients get connection errors until [`start_again`].
    ///
    /// [`start_again`]: Self::start_again
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again, empty, on the same port; waits for PING.
    pub fn start_again(&mut self) {
        self.stop();
        let log = self.dir.join("redis.log");
        let stdout = File::options()
            .create(true)
            .append(true)
            .open(&log)
            .expect("redis log file");
        let port = self.port.to_string();
        let child = Command::new(&self.bin)
            .current_dir(&self.dir)
            .args([
                "--port",
                &port,
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(["--daemonize", "no", "--protected-mode", "yes"])
            // For `freeze`: DEBUG SLEEP.
            .args(["--enable-debug-command", "local"])
            .args(&self.extra_args)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        self.child = Some(child);
        assert!(
            poll_until(Duration::from_secs(10), || self.answers_ping()),
            "redis-server did not answer PING on port {}:\n{}",
            self.port,
            self.log()
        );
    }

    /// Makes the server answer nothing for `duration` (`DEBUG SLEEP`), as a Redis stuck
    /// on a slow disk or a long command would; returns at once.
    pub fn freeze(&self, duration: Duration) {
        let port = self.port;
        let seconds = format!("{:.3}", duration.as_secs_f64());
        std::thread::spawn(move || {
            let command = format!(
                "*3\r\n$5\r\nDEBUG\r\n$5\r\nSLEEP\r\n${}\r\n{seconds}\r\n",
                seconds.len()
            );
            if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) {
                let _ = stream.write_all(command.as_bytes());
                let _ = stream.read(&mut [0u8; 64]);
            }
        });
    }

    /// Waits until this replica has synchronised with its master (`master_link_status:up`).
    pub fn wait_in_sync(&self) {
        let info = "*2\r\n$4\r\nINFO\r\n$11\r\nreplication\r\n";
        let in_sync = || {
            self.command(info)
                .is_some_and(|answer| answer.contains("master_link_status:up"))
        };
        assert!(
            poll_until(Duration::from_secs(10), in_sync),
            "the replica on {} did not synchronise:\n{}",
            self.port,
            self.log()
        );
    }

    /// How many keys Redis holds (`DBSIZE`), 0 when it cannot be asked.
    pub fn keys(&self) -> u64 {
        self.command("*1\r\n$6\r\nDBSIZE\r\n")
            .and_then(|answer| answer.trim().strip_prefix(':')?.parse().ok())
            .unwrap_or(0)
    }

    /// What the server logged, for assertion messages.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default()
    }

    fn answers_ping(&self) -> bool {
        self.command("*1\r\n$4\r\nPING\r\n")
            .is_some_and(|answer| answer.starts_with("+PONG"))
    }

    fn command(&self, resp: &str) -> Option<String> {
        command(self.port, resp)
    }
}

/// Sends one command in RESP to the server on loopback `port` and reads the first answer.
pub(crate) fn command(port: u16, resp: &str) -> Option<String> {
    command_as(port, None, resp)
}

/// Like [`command`], after `AUTH` with `password` when one is given.
pub(crate) fn command_as(port: u16, password: Option<&str>, resp: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    let mut answer = [0u8; 256];
    if let Some(password) = password {
        let auth = format!("*2\r\n$4\r\nAUTH\r\n${}\r\n{password}\r\n", password.len());
        stream.write_all(auth.as_bytes()).ok()?;
        let read = stream.read(&mut answer).ok()?;
        if !answer[..read].starts_with(b"+OK") {
            return None;
        }
    }
    stream.write_all(resp.as_bytes()).ok()?;
    let read = stream.read(&mut answer).ok()?;
    Some(String::from_utf8_lossy(&answer[..read]).into_owned())
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
        let _ = fs::remove_dir_all(&self.dir);
    }
}
