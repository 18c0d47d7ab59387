//! Self-service flows for Portcullis, independent of any HTTP server: flow state, its persistence, the UI node
//! model, password policy, CSRF tokens and `return_to` validation. The proxy crate adapts these to HTTP.

pub mod challenge;
pub mod codes;
pub mod continuity;
pub mod courier;
pub mod engine;
pub mod error;
pub mod flow;
pub mod hooks;
pub mod login;
pub mod logout;
pub mod outbox;
pub mod password_policy;
pub mod recovery;
pub mod registration;
pub mod security;
pub mod settings;
pub mod store;
pub mod strategy;
pub mod texts;
pub mod ui;
pub mod verification;

pub use engine::{FlowOutcome, SubmitContext};
pub use error::FlowError;
pub use flow::{flow_json, Flow, FlowKind, FlowState, FlowType};
pub use store::{ErrorPool, FlowPool, SqlFlowPool, StoredError};
