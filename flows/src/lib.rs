//! Self-service flows for Portcullis, independent of any HTTP server: flow state, its persistence, the UI node
//! model, password policy, CSRF tokens and `return_to` validation. The proxy crate adapts these to HTTP.

pub mod challenge;
pub mod codes;
pub mod continuity;
pub mod courier;
pub mod flow;
pub mod hooks;
pub mod outbox;
pub mod password;
pub mod password_policy;
pub mod security;
pub mod settings;
pub mod store;
pub mod texts;
pub mod ui;

pub use flow::{flow_json, Flow, FlowKind, FlowType};
pub use store::{ErrorPool, FlowPool, SqlFlowPool, StoredError};
