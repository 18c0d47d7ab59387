//! The hooks configured under `selfservice.flows.<flow>.after[.<method>].hooks`, run by the flow engine through
//! [`flows::hooks::HookRunner`].
//!
//! Supported: `session` (registration; read by the flow settings), `revoke_active_sessions` (login, settings,
//! recovery), `require_verified_address` (login), `show_verification_ui` (registration, login), `verification`
//! (added automatically when verification is on) and `web_hook` (every flow). Hooks that may interrupt
//! (`response.parse`) run before the identity is stored or the session issued; the others run afterwards. Other
//! Kratos hooks are accepted and skipped with a warning at startup.

use crate::config::{AfterHooks, Config, Hook};
use crate::webhook::{WebHook, WebHookOutcome};
use async_trait::async_trait;
use flows::hooks::{HookFailure, HookRequest, HookRunner};
use flows::{flow_json, Flow, FlowKind};
use identity::text::{UiText, UiTextType};
use serde_json::{json, Value};

/// One flow's hooks.
#[derive(Debug, Default)]
struct FlowHooks {
    web_hooks: Vec<WebHook>,
    revoke_active_sessions: bool,
    require_verified_address: bool,
    show_verification_ui: bool,
}

/// The configured hooks.
#[derive(Debug)]
pub struct ConfiguredHooks {
    login: FlowHooks,
    registration: FlowHooks,
    settings: FlowHooks,
    recovery: FlowHooks,
    verification: FlowHooks,
    client: reqwest::Client,
}

fn hooks_of(after: &AfterHooks) -> impl Iterator<Item = &Hook> {
    let methods = [&after.password, &after.profile, &after.code, &after.link];
    after
        .hooks
        .iter()
        .chain(methods.into_iter().flatten().flat_map(|m| m.hooks.iter()))
}

fn flow_hooks(kind: &str, after: &AfterHooks) -> anyhow::Result<FlowHooks> {
    let mut out = FlowHooks::default();
    for hook in hooks_of(after) {
        match hook.hook.as_str() {
            "web_hook" => {
                let config = hook.config.clone().unwrap_or(Value::Null);
                let w = WebHook::from_config(&config)
                    .map_err(|e| anyhow::anyhow!("selfservice.flows.{kind}.after: {e}"))?;
                out.web_hooks.push(w);
            }
            "revoke_active_sessions" if matches!(kind, "login" | "settings" | "recovery") => {
                out.revoke_active_sessions = true
            }
            "require_verified_address" if kind == "login" => out.require_verified_address = true,
            "show_verification_ui" if matches!(kind, "login" | "registration") => {
                out.show_verification_ui = true
            }
            "session" if kind == "registration" => {}
            "verification" if matches!(kind, "login" | "registration" | "settings") => {}
            other => tracing::warn!(
                flow = kind,
                hook = other,
                "this hook is not supported on this flow yet and is skipped"
            ),
        }
    }
    Ok(out)
}

impl ConfiguredHooks {
    /// Reads the hooks; a malformed `web_hook` config is an error.
    pub fn from_config(config: &Config) -> anyhow::Result<Self> {
        let flows = &config.selfservice.flows;
        Ok(Self {
            login: flow_hooks("login", &flows.login.after)?,
            registration: flow_hooks("registration", &flows.registration.after)?,
            settings: flow_hooks("settings", &flows.settings.after)?,
            recovery: flow_hooks("recovery", &flows.recovery.after)?,
            verification: flow_hooks("verification", &flows.verification.after)?,
            client: reqwest::Client::builder()
                .user_agent(concat!("portcullis/", env!("CARGO_PKG_VERSION")))
                .build()
                .unwrap_or_default(),
        })
    }

    fn of(&self, kind: FlowKind) -> Option<&FlowHooks> {
        Some(match kind {
            FlowKind::Login => &self.login,
            FlowKind::Registration => &self.registration,
            FlowKind::Settings => &self.settings,
            FlowKind::Recovery => &self.recovery,
            FlowKind::Verification => &self.verification,
        })
    }

    /// Whether logins need a verified address (`require_verified_address`).
    pub fn require_verified_address(&self) -> bool {
        self.login.require_verified_address
    }

    /// Whether browsers are sent to the verification page after a flow of `kind` (`show_verification_ui`).
    pub fn show_verification_ui(&self, kind: FlowKind) -> bool {
        self.of(kind).is_some_and(|h| h.show_verification_ui)
    }
}

fn context(flow: &Flow, identity: &Value, session: Option<&Value>, request: &HookRequest) -> Value {
    json!({
        "flow": flow_json(flow),
        "identity": identity,
        "session": session,
        "request_headers": request.headers,
        "request_method": request.method,
        "request_url": request.url,
        "request_cookies": request.cookies,
    })
}

fn ui_text(m: crate::webhook::HookMessage) -> (String, UiText) {
    let kind = match m.kind.as_str() {
        "info" => UiTextType::Info,
        "success" => UiTextType::Success,
        _ => UiTextType::Error,
    };
    (
        m.instance_ptr,
        UiText {
            id: u64::try_from(m.id).unwrap_or(4_000_001),
            text: m.text,
            kind,
            context: m.context,
        },
    )
}

#[async_trait]
impl HookRunner for ConfiguredHooks {
    async fn before_persist(
        &self,
        kind: FlowKind,
        flow: &Flow,
        identity: &Value,
        request: &HookRequest,
    ) -> Result<Option<Value>, HookFailure> {
        let Some(hooks) = self.of(kind) else {
            return Ok(None);
        };
        let mut patch: Option<Value> = None;
        let mut identity = identity.clone();
        for w in hooks.web_hooks.iter().filter(|w| w.can_interrupt()) {
            let ctx = context(flow, &identity, None, request);
            match w.call(&self.client, &ctx).await {
                Ok(WebHookOutcome::Continue {
                    identity_patch: Some(p),
                }) => {
                    if let (Some(obj), Some(target)) = (p.as_object(), identity.as_object_mut()) {
                        for (k, v) in obj {
                            target.insert(k.clone(), v.clone());
                        }
                    }
                    let merged = patch.get_or_insert_with(|| json!({}));
                    if let (Some(obj), Some(m)) = (p.as_object(), merged.as_object_mut()) {
                        for (k, v) in obj {
                            m.insert(k.clone(), v.clone());
                        }
                    }
                }
                Ok(WebHookOutcome::Continue {
                    identity_patch: None,
                }) => {}
                Ok(WebHookOutcome::Interrupted(messages)) => {
                    return Err(HookFailure::Interrupted(
                        messages.into_iter().map(ui_text).collect(),
                    ))
                }
                Err(e) => return Err(HookFailure::Failed(e.to_string())),
            }
        }
        Ok(patch)
    }

    async fn after_persist(
        &self,
        kind: FlowKind,
        flow: &Flow,
        identity: &Value,
        session: Option<&Value>,
        request: &HookRequest,
    ) {
        let Some(hooks) = self.of(kind) else { return };
        for w in hooks.web_hooks.iter().filter(|w| !w.can_interrupt()) {
            let ctx = context(flow, identity, session, request);
            if let Err(e) = w.call(&self.client, &ctx).await {
                // The flow already succeeded; Kratos does not undo it either.
                tracing::warn!(error = %e, flow = kind.as_str(), "a web hook failed after the flow completed");
            }
        }
    }

    fn revoke_active_sessions(&self, kind: FlowKind) -> bool {
        self.of(kind).is_some_and(|h| h.revoke_active_sessions)
    }
}
