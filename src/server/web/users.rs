//! `basic_auth_users`: user names with bcrypt hashes of their passwords. A bcrypt check
//! takes tens of milliseconds by design (cost 10; each step of cost doubles it), so it
//! runs off the async workers, and its outcome is remembered by a SHA-256 of the
//! credentials, as exporter-toolkit caches it, so Alertmanager's every webhook does not
//! pay it again.

use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};

use hyper::header::HeaderValue;
use sha2::{Digest, Sha256};

use crate::server::auth::basic_credentials;

/// Outcomes remembered at most; past it the memory starts again.
const REMEMBERED: usize = 1024;

/// The users of `basic_auth_users`.
#[derive(Debug, Default)]
pub(in crate::server) struct Users {
    hashes: BTreeMap<String, String>,
    checked: Arc<Mutex<HashMap<[u8; 32], bool>>>,
}

impl Users {
    /// The users, each hash checked to be bcrypt's.
    pub(super) fn new(hashes: BTreeMap<String, String>) -> Result<Self, String> {
        for (user, hash) in &hashes {
            bcrypt::HashParts::from_str(hash).map_err(|e| {
                format!("basic_auth_users.{user}: not a bcrypt hash ($2y$10$...): {e}")
            })?;
        }
        Ok(Users {
            hashes,
            checked: Arc::default(),
        })
    }

    /// Whether there are users, so that basic auth is required.
    pub(in crate::server) fn is_empty(&self) -> bool {
        self.hashes.is_empty()
    }

    /// How many users there are.
    pub(super) fn len(&self) -> usize {
        self.hashes.len()
    }

    /// Whether `authorization` is `Basic` with a user of these and their password.
    pub(in crate::server) async fn admit(&self, authorization: Option<&HeaderValue>) -> bool {
        let Some((user, password)) = authorization.and_then(basic_credentials) else {
            return false;
        };
        let Ok(user) = String::from_utf8(user) else {
            return false;
        };
        let Some(hash) = self.hashes.get(&user).cloned() else {
            return false;
        };
        let key: [u8; 32] = Sha256::new()
            .chain_update(user.as_bytes())
            .chain_update([0])
            .chain_update(&password)
            .chain_update([0])
            .chain_update(hash.as_bytes())
            .finalize()
            .into();
        let remembered = self
            .checked
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
            .copied();
        if let Some(ok) = remembered {
            return ok;
        }
        let ok =
            tokio::task::spawn_blocking(move || bcrypt::verify(&password, &hash).unwrap_or(false))
                .await
                .unwrap_or(false);
        let mut checked = self.checked.lock().unwrap_or_else(PoisonError::into_inner);
        if checked.len() >= REMEMBERED {
            checked.clear();
        }
        checked.insert(key, ok);
        ok
    }
}
