//! The operator's instruments, shared by the command line ([`crate::cli`]) and the status
//! page: [`preview`] shows what a notification would send without sending it, [`probe`]
//! sends one test message to a robot and explains DingTalk's answer, and [`migrate`]
//! turns a prometheus-webhook-dingtalk config into ours. None of them is on the path of a
//! webhook.

pub mod migrate;
pub mod preview;
pub mod probe;
