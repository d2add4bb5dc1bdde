//! A real server program the end-to-end tests start (Alertmanager, Prometheus): found
//! where its Debian package installs it, spawned on a free loopback port in a temporary
//! directory of its own with its output in a log file there, and killed, its directory
//! removed, when dropped, also when a test panics.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::scratch::{free_port, temp_dir};

/// How many times to retry start-up when the picked port was taken in the meantime.
const START_ATTEMPTS: u32 = 3;

/// A running server process.
pub struct Daemon {
    child: Child,
    dir: PathBuf,
    log: PathBuf,
    /// The loopback port it listens on.
    pub port: u16,
}

impl Daemon {
    /// Starts `bin` and waits until `ready(port)` says so: in a fresh directory named
    /// after `name` holding the `config` file (name, contents), with the arguments
    /// `args(dir, port)` gives for a free port. Retries on another port if that one was
    /// taken meanwhile; panics with the log if it never gets ready.
    pub async fn start<F: Future<Output = Result<(), String>>>(
        bin: &Path,
        name: &str,
        config: (&str, &str),
        args: impl Fn(&Path, u16) -> Vec<String>,
        ready: impl Fn(u16) -> F,
        timeout: Duration,
    ) -> Daemon {
        let mut attempt = 1;
        loop {
            let mut daemon = Daemon::spawn(bin, name, config, &args);
            match daemon.wait_ready(&ready, timeout).await {
                Ok(()) => return daemon,
                Err(_)
                    if attempt < START_ATTEMPTS
                        && daemon.log().contains("address already in use") =>
                {
                    attempt += 1;
                }
                Err(err) => panic!(
                    "{name} ({}) did not become ready: {err}\n--- {name} log ---\n{}",
                    bin.display(),
                    daemon.log()
                ),
            }
        }
    }

    /// Its working directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Everything it wrote to stdout and stderr so far, for assertion messages.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log)
            .unwrap_or_else(|err| format!("<cannot read {}: {err}>", self.log.display()))
    }

    fn spawn(
        bin: &Path,
        name: &str,
        (config_name, config): (&str, &str),
        args: &impl Fn(&Path, u16) -> Vec<String>,
    ) -> Daemon {
        let dir = temp_dir(name);
        let port = free_port();
        let config_file = dir.join(config_name);
        fs::write(&config_file, config)
            .unwrap_or_else(|err| panic!("cannot write {}: {err}", config_file.display()));
        let log = dir.join(format!("{name}.log"));
        let stderr = File::create(&log)
            .unwrap_or_else(|err| panic!("cannot create {}: {err}", log.display()));
        let stdout = stderr
            .try_clone()
            .unwrap_or_else(|err| panic!("cannot clone log file handle: {err}"));
        let spawned = Command::new(bin)
            .current_dir(&dir)
            .args(args(&dir, port))
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn();
        match spawned {
            Ok(child) => Daemon {
                child,
                dir,
                log,
                port,
            },
            Err(err) => {
                let _ = fs::remove_dir_all(&dir);
                panic!("cannot spawn {}: {err}", bin.display());
            }
        }
    }

    /// Polls `ready` until it succeeds, the child exits, or `timeout` passes.
    async fn wait_ready<F: Future<Output = Result<(), String>>>(
        &mut self,
        ready: &impl Fn(u16) -> F,
        timeout: Duration,
    ) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return Err(format!("process exited early with {status}")),
                Ok(None) => {}
                Err(err) => return Err(format!("cannot query child status: {err}")),
            }
            let last = match ready(self.port).await {
                Ok(()) => return Ok(()),
                Err(last) => last,
            };
            if Instant::now() >= deadline {
                return Err(format!("timed out after {timeout:?}; last: {last}"));
            }
            // Poll interval, not synchronisation: readiness is decided by `ready` above.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// The program at `$env_var`, or at `default` where Debian's `package` installs it; panics
/// naming the package if it is not there.
pub fn installed(env_var: &str, default: &str, package: &str) -> PathBuf {
    let bin = std::env::var_os(env_var).map_or_else(|| PathBuf::from(default), PathBuf::from);
    assert!(
        bin.is_file(),
        "{package} is not installed: run `apt-get install {package}` (or .ci/run) (looked for {})",
        bin.display()
    );
    bin
}

/// Polls `ready` every 20 ms until it holds or `timeout` passes; whether it held. For the
/// servers started without [`Daemon`] (Redis, its Sentinels, the proxy), from a test's
/// own thread.
pub(crate) fn poll_until(timeout: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if ready() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
