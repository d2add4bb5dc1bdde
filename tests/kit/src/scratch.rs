//! What a test or benchmark claims from the machine for itself: a fresh temporary
//! directory and a free port on 127.0.0.1. Nothing here cleans up: the owner of a
//! directory removes it (a [`Bridge`](crate::Bridge) or [`Daemon`](crate::Daemon) does
//! when dropped).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

static NEXT_DIR: AtomicU32 = AtomicU32::new(0);

/// A fresh, empty directory under the system's temporary directory, named after `what`
/// and unique within this process and among processes (removed by its owner).
pub fn temp_dir(what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "amdt-{what}-{}-{}",
        std::process::id(),
        NEXT_DIR.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|err| panic!("cannot create {}: {err}", dir.display()));
    dir
}

/// A free TCP port on 127.0.0.1 (bound, read, released; another process could grab it
/// meanwhile, which [`Daemon::start`](crate::Daemon::start) retries).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap_or_else(|err| panic!("cannot bind 127.0.0.1:0: {err}"));
    listener
        .local_addr()
        .unwrap_or_else(|err| panic!("cannot read local address: {err}"))
        .port()
}
