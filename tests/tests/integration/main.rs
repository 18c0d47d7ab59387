//! The one integration-test binary. Each module drives the real product over HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod account_enumeration;
mod admin_identities;
mod browser_flows;
mod cli;
mod courier;
mod decisions;
mod email_verified;
mod errors;
mod flow_engine;
mod forward_auth;
mod gateway;
mod hooks;
mod listeners;
mod native_flows;
mod nginx;
mod path_parity;
mod public;
mod recovery;
mod sessions;
mod settings;
mod spoofing;
mod throttling;
mod verification;
mod workspace;
