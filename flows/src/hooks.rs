//! Hooks that run around a flow's completion (`selfservice.flows.<flow>.after[.<method>].hooks`). The flow engine
//! decides *when* they run; the proxy supplies *what* runs (web hooks need an HTTP client).

use crate::flow::{Flow, FlowKind};
use crate::ui::UiContainer;
use async_trait::async_trait;
use identity::text::UiText;
use serde_json::Value;

/// The request a flow was submitted with, as web hooks see it (`ctx.request_*`).
#[derive(Debug, Clone, Default)]
pub struct HookRequest {
    /// Allow-listed request headers.
    pub headers: serde_json::Map<String, Value>,
    /// `POST`, `GET`.
    pub method: String,
    /// The full request URL.
    pub url: String,
    /// Request cookies.
    pub cookies: serde_json::Map<String, Value>,
}

/// Why hooks stopped a flow.
#[derive(Debug, Clone, PartialEq)]
pub enum HookFailure {
    /// A hook refused with messages for the form: `(JSON pointer like "#/traits/email" or "" for the form, text)`.
    Interrupted(Vec<(String, UiText)>),
    /// A hook could not run (e.g. the web hook's server failed).
    Failed(String),
}

/// What runs at the hook points.
#[async_trait]
pub trait HookRunner: Send + Sync {
    /// Before the identity is stored (registration) or the session is issued (login). Hooks that may interrupt run
    /// here; a returned patch (`{"traits"?, "metadata_public"?, "metadata_admin"?}`) changes the identity.
    async fn before_persist(
        &self,
        kind: FlowKind,
        flow: &Flow,
        identity: &Value,
        request: &HookRequest,
    ) -> Result<Option<Value>, HookFailure>;

    /// After the identity and the session exist. These hooks cannot change the outcome any more.
    async fn after_persist(
        &self,
        kind: FlowKind,
        flow: &Flow,
        identity: &Value,
        session: Option<&Value>,
        request: &HookRequest,
    );

    /// Whether the `revoke_active_sessions` hook is configured for this flow.
    fn revoke_active_sessions(&self, kind: FlowKind) -> bool;
}

/// No hooks.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoHooks;

#[async_trait]
impl HookRunner for NoHooks {
    async fn before_persist(
        &self,
        _: FlowKind,
        _: &Flow,
        _: &Value,
        _: &HookRequest,
    ) -> Result<Option<Value>, HookFailure> {
        Ok(None)
    }

    async fn after_persist(
        &self,
        _: FlowKind,
        _: &Flow,
        _: &Value,
        _: Option<&Value>,
        _: &HookRequest,
    ) {
    }

    fn revoke_active_sessions(&self, _: FlowKind) -> bool {
        false
    }
}

/// Puts hook messages on the nodes their JSON pointers name (`#/traits/email` → `traits.email`), or on the form.
pub fn add_hook_messages(ui: &mut UiContainer, messages: Vec<(String, UiText)>) {
    for (pointer, message) in messages {
        let name = pointer
            .trim_start_matches('#')
            .trim_start_matches('/')
            .replace('/', ".");
        if name.is_empty() || ui.node(&name).is_none() {
            ui.add_message(message);
        } else {
            ui.add_message_to_node(&name, message);
        }
    }
}
