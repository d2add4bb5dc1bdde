//! A real HTTP proxy (Debian's `tinyproxy`) on a free loopback port that wants basic
//! credentials, and logs every tunnel (CONNECT) it is asked for.

use std::fs;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::daemon::{installed, poll_until};
use crate::scratch::{free_port, temp_dir};

/// The user name the proxy takes.
pub const PROXY_USER: &str = "bridge";
/// The password the proxy takes.
pub const PROXY_PASSWORD: &str = "proxy-s3cret";

/// A running proxy; killed, its directory removed, when dropped.
pub struct Tinyproxy {
    child: Child,
    dir: PathBuf,
    /// The loopback port it listens on.
    pub port: u16,
}

impl Tinyproxy {
    /// Starts `tinyproxy` (or `$TINYPROXY`) taking [`PROXY_USER`] and [`PROXY_PASSWORD`]
    /// from 127.0.0.1 only, and waits until it accepts connections.
    pub fn start() -> Tinyproxy {
        let bin = installed("TINYPROXY", "/usr/bin/tinyproxy", "tinyproxy");
        let dir = temp_dir("tinyproxy");
        let port = free_port();
        // No ConnectPort line: tunnels to any port (the fake's are ephemeral).
        let config = format!(
            "Port {port}\nListen 127.0.0.1\nTimeout 30\nMaxClients 100\nAllow 127.0.0.1\n\
             LogLevel Connect\nBasicAuth {PROXY_USER} {PROXY_PASSWORD}\n"
        );
        fs::write(dir.join("tinyproxy.conf"), config).expect("write tinyproxy.conf");
        let log = fs::File::create(dir.join("tinyproxy.log")).expect("tinyproxy log file");
        let child = Command::new(bin)
            .current_dir(&dir)
            .args(["-d", "-c", "tinyproxy.conf"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("tinyproxy log file"))
            .stderr(log)
            .spawn()
            .expect("spawn tinyproxy");
        let proxy = Tinyproxy { child, dir, port };
        let listening = || TcpStream::connect(("127.0.0.1", port)).is_ok();
        assert!(
            poll_until(Duration::from_secs(10), listening),
            "tinyproxy did not listen on {port}:\n{}",
            proxy.log()
        );
        proxy
    }

    /// `http://USER:PASSWORD@127.0.0.1:PORT`.
    pub fn url_with(&self, user: &str, password: &str) -> String {
        format!("http://{user}:{password}@127.0.0.1:{}", self.port)
    }

    /// The URL with the credentials it takes.
    pub fn url(&self) -> String {
        self.url_with(PROXY_USER, PROXY_PASSWORD)
    }

    /// What it logged.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("tinyproxy.log")).unwrap_or_default()
    }

    /// How many tunnels to `host:port` it was asked for (with any credentials).
    pub fn tunnels_to(&self, host: &str, port: u16) -> usize {
        let request = format!("CONNECT {host}:{port} ");
        self.log()
            .lines()
            .filter(|line| line.contains(&request))
            .count()
    }
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}
