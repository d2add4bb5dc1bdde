//! Ingest: a webhook's body turned into a [`Notification`], the one model of an alert
//! group that everything after this stage reads.
//!
//! The model is Alertmanager's webhook payload (version 4, [`alertmanager`]); a source of
//! another shape maps onto it here, so routing, rendering and delivery never learn where
//! an alert came from. Parsing only: no HTTP (the server reads the body), no routing.

pub mod alertmanager;

pub use alertmanager::{Alert, LabelSet, Notification, PayloadError, Status, parse};
