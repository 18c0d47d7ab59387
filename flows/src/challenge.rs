//! Recovery and verification: flows in which a person proves control of an address by a one-time code (`code`
//! method, the default) or by following a link (`link` method).
//!
//! Both flows never tell whether an address is known: an unknown address gets the same answer, and the same
//! database work (a code row is written either way), and a message only with `notify_unknown_recipients`. A code
//! works once, for its flow only, until it expires; after `max_submissions` wrong codes the flow's codes stop
//! working and a new one must be requested. Every step that sends a message writes the flow, the code and the
//! message in one transaction ([`crate::outbox`]).

use crate::codes::{hash_code, new_code, CodeCheck, CodeKind, CodePool, NewCode};
use crate::courier::{Courier, TemplateType};
use crate::error::FlowError;
use crate::flow::{Flow, FlowKind, FlowType};
use crate::hooks::{HookRequest, HookRunner, NoHooks};
use crate::outbox::{Outbox, SendStep};
use crate::settings::{SettingsFlows, SettingsInit};
use crate::store::FlowPool;
use crate::texts;
use crate::ui::{csrf_node, labels, Autocomplete, Group, InputType, UiContainer, UiNode};
use identity::model::VerificationStatus;
use identity::session::manager::{DeviceInfo, IssuedSession, SessionManager};
use identity::session::{Aal, AuthenticationMethod};
use identity::{AddressKind, Identity, IdentityManager, SharedClock, StoreError};
use rand::distributions::{Alphanumeric, DistString};
use serde_json::{json, Value};
use std::sync::Arc;
use time::Duration;
use uuid::Uuid;

/// How one of the two flows is set up.
#[derive(Debug, Clone)]
pub struct ChallengeKindSettings {
    /// `selfservice.flows.<flow>.enabled`.
    pub enabled: bool,
    /// `use: link` instead of `code`.
    pub use_link: bool,
    /// `selfservice.flows.<flow>.lifespan`.
    pub lifespan: Duration,
    /// Send "unknown address" messages.
    pub notify_unknown_recipients: bool,
    /// The page that renders the flow (for links in `continue_with` and admin answers).
    pub ui_url: String,
}

/// Settings of both flows.
#[derive(Debug, Clone)]
pub struct ChallengeSettings {
    /// Public base URL with a trailing slash (for `ui.action`).
    pub public_base: String,
    /// Base URL of links in messages, with a trailing slash (`selfservice.methods.link.config.base_url`).
    pub link_base: String,
    /// Recovery.
    pub recovery: ChallengeKindSettings,
    /// Verification.
    pub verification: ChallengeKindSettings,
    /// `selfservice.methods.code.enabled`.
    pub code_enabled: bool,
    /// `selfservice.methods.code.config.lifespan`.
    pub code_lifespan: Duration,
    /// `selfservice.methods.code.config.max_submissions`.
    pub max_submissions: u32,
    /// `selfservice.methods.link.enabled`.
    pub link_enabled: bool,
    /// `selfservice.methods.link.config.lifespan`.
    pub link_lifespan: Duration,
    /// How long after recovery the password may be changed without signing in again.
    pub privileged_session_max_age: Duration,
    /// Where a verified browser goes without `return_to`.
    pub verification_return_url: String,
    /// The key codes are stored under (HMAC).
    pub secret: Vec<u8>,
}

/// What starts a flow.
#[derive(Debug, Clone)]
pub struct ChallengeInit {
    /// Recovery or verification.
    pub kind: FlowKind,
    /// Browser or API.
    pub flow_type: FlowType,
    /// The init request's full URL.
    pub request_url: String,
    /// A validated `return_to`.
    pub return_to: Option<String>,
    /// The masked CSRF token (browser flows).
    pub csrf_token: String,
}

/// A submit (form, JSON, or a link's query).
#[derive(Debug, Clone, Default)]
pub struct ChallengeSubmit {
    /// `code` or `link` (empty: the flow's method).
    pub method: String,
    /// The address to send to.
    pub email: Option<String>,
    /// A code.
    pub code: Option<String>,
    /// A link token.
    pub token: Option<String>,
    /// The browser's masked CSRF token, for the settings flow that recovery opens.
    pub csrf_token: String,
    /// For the recovery session's device entry.
    pub device: DeviceInfo,
    /// For web hooks.
    pub request: HookRequest,
}

/// A successful recovery.
#[derive(Debug)]
pub struct Recovered {
    /// The recovery flow (`passed_challenge`).
    pub flow: Flow,
    /// The new session.
    pub session: IssuedSession,
    /// Who.
    pub identity: Identity,
    /// The settings flow to change the password in.
    pub settings_flow: Flow,
}

/// What a submit led to.
#[derive(Debug)]
pub enum ChallengeOutcome {
    /// A message went out (or would have, for an unknown address): HTTP 200 with the flow.
    Sent(Flow),
    /// The form needs another try: HTTP 400 with the flow.
    Retry(Flow),
    /// A wrong, used or expired code or link: HTTP 200 with the flow and an error message, as Kratos answers.
    Invalid(Flow),
    /// Recovery succeeded.
    Recovered(Box<Recovered>),
    /// Verification succeeded.
    Verified(Flow),
}

/// Recovery and verification.
#[derive(Clone)]
pub struct ChallengeFlows {
    flows: Arc<dyn FlowPool>,
    codes: Arc<dyn CodePool>,
    outbox: Arc<dyn Outbox>,
    courier: Arc<Courier>,
    identities: IdentityManager,
    sessions: SessionManager,
    settings_flows: SettingsFlows,
    clock: SharedClock,
    settings: ChallengeSettings,
    hooks: Arc<dyn HookRunner>,
}

impl std::fmt::Debug for ChallengeFlows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChallengeFlows").finish_non_exhaustive()
    }
}

fn code_kind(kind: FlowKind) -> CodeKind {
    if kind == FlowKind::Recovery {
        CodeKind::Recovery
    } else {
        CodeKind::Verification
    }
}

/// A link token: 32 alphanumerics from the OS RNG.
fn new_token() -> String {
    Alphanumeric.sample_string(&mut rand::rngs::OsRng, 32)
}

/// A plausible e-mail address, normalised as addresses are stored (trimmed, lower-case).
fn normalise_email(raw: &str) -> Option<String> {
    let v = raw.trim().to_lowercase();
    let (local, domain) = v.split_once('@')?;
    let ok = !local.is_empty()
        && !domain.is_empty()
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && v.len() <= 320
        && !v.chars().any(|c| c.is_whitespace() || c.is_control());
    ok.then_some(v)
}

impl ChallengeFlows {
    /// Wires the flows.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        flows: Arc<dyn FlowPool>,
        codes: Arc<dyn CodePool>,
        outbox: Arc<dyn Outbox>,
        courier: Arc<Courier>,
        identities: IdentityManager,
        sessions: SessionManager,
        settings_flows: SettingsFlows,
        clock: SharedClock,
        settings: ChallengeSettings,
    ) -> Self {
        Self {
            flows,
            codes,
            outbox,
            courier,
            identities,
            sessions,
            settings_flows,
            clock,
            settings,
            hooks: Arc::new(NoHooks),
        }
    }

    /// Runs these hooks after recoveries and verifications.
    pub fn with_hooks(mut self, hooks: Arc<dyn HookRunner>) -> Self {
        self.hooks = hooks;
        self
    }

    /// The configured settings.
    pub fn settings(&self) -> &ChallengeSettings {
        &self.settings
    }

    fn kind_settings(&self, kind: FlowKind) -> &ChallengeKindSettings {
        if kind == FlowKind::Recovery {
            &self.settings.recovery
        } else {
            &self.settings.verification
        }
    }

    /// Whether the flow kind is on.
    pub fn enabled(&self, kind: FlowKind) -> bool {
        self.kind_settings(kind).enabled
    }

    /// The method new flows of `kind` use.
    pub fn method_of(&self, kind: FlowKind) -> &'static str {
        if self.kind_settings(kind).use_link {
            "link"
        } else {
            "code"
        }
    }

    fn method_enabled(&self, method: &str) -> bool {
        match method {
            "code" => self.settings.code_enabled,
            "link" => self.settings.link_enabled,
            _ => false,
        }
    }

    fn action(&self, kind: FlowKind, id: Uuid) -> String {
        format!(
            "{}self-service/{}?flow={id}",
            self.settings.public_base,
            kind.as_str()
        )
    }

    /// The address form.
    fn choose_form(&self, flow: &Flow, method: &str, email: Option<&str>) -> UiContainer {
        let group = if method == "link" {
            Group::Link
        } else {
            Group::Code
        };
        let mut ui = UiContainer::new(self.action(flow.kind, flow.id));
        ui.upsert_node(csrf_node(&flow.csrf_token));
        ui.upsert_node(
            UiNode::input("email", email.map(|e| json!(e)), group, InputType::Email)
                .required()
                .with_autocomplete(Autocomplete::Email)
                .with_label(labels::node_email()),
        );
        ui.upsert_node(
            UiNode::input("method", Some(json!(method)), group, InputType::Submit)
                .with_label(labels::node_submit()),
        );
        ui
    }

    /// The code form, with a resend button carrying the address.
    fn code_form(&self, flow: &Flow, email: &str) -> UiContainer {
        let mut ui = UiContainer::new(self.action(flow.kind, flow.id));
        ui.upsert_node(csrf_node(&flow.csrf_token));
        let mut code = UiNode::input("code", None, Group::Code, InputType::Text)
            .with_autocomplete(Autocomplete::OneTimeCode)
            .with_label(texts::code_label(flow.kind == FlowKind::Recovery));
        if let Some(a) = code.input_attributes_mut() {
            a.pattern = Some("[0-9]+".into());
            a.maxlength = Some(6);
        }
        ui.upsert_node(code);
        ui.upsert_node(
            UiNode::input(
                "method",
                Some(json!("code")),
                Group::Code,
                InputType::Submit,
            )
            .with_label(labels::node_submit()),
        );
        if !email.is_empty() {
            ui.upsert_node(
                UiNode::input("email", Some(json!(email)), Group::Code, InputType::Submit)
                    .with_label(texts::resend_code()),
            );
        }
        ui
    }

    /// The confirmation form of a link from a message: the token in a hidden input and a "Continue" button, so
    /// that the token is used by a POST that carries the CSRF token, never by the GET that opened the link.
    fn confirm_form(&self, flow: &Flow, token: &str) -> UiContainer {
        let mut ui = UiContainer::new(self.action(flow.kind, flow.id));
        ui.upsert_node(csrf_node(&flow.csrf_token));
        ui.upsert_node(UiNode::input(
            "token",
            Some(json!(token)),
            Group::Link,
            InputType::Hidden,
        ));
        ui.upsert_node(
            UiNode::input(
                "method",
                Some(json!("link")),
                Group::Link,
                InputType::Submit,
            )
            .with_label(labels::node_continue()),
        );
        ui.add_message(texts::confirm_link(flow.kind == FlowKind::Recovery));
        ui
    }

    /// Opens a flow from the link in a message (`?code=` or `?token=`) without using the code or token: a code is
    /// put into the form's `code` input, a link token into a confirmation form ([`Self::confirm_form`]). Only a
    /// later POST with the flow's CSRF token uses them, so a mail scanner that follows the link uses up nothing,
    /// and a link opened in someone else's browser signs nobody in (Kratos pre-fills codes the same way). Values
    /// that cannot be a code or token are not stored; a flow that is not waiting for a code is left as it is.
    pub async fn prefill(
        &self,
        kind: FlowKind,
        id: Uuid,
        code: Option<&str>,
        token: Option<&str>,
    ) -> Result<Flow, FlowError> {
        let flow = self.get_open(kind, id).await?;
        if flow.state != crate::flow::FlowState::SentEmail {
            return Ok(flow);
        }
        let plausible = |s: &&str| {
            !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric())
        };
        let token = token.map(str::trim).filter(plausible);
        let code = code.map(str::trim).filter(plausible);
        let ui = if let Some(t) = token {
            self.confirm_form(&flow, t)
        } else if let Some(c) = code {
            let mut ui = flow.form();
            if !ui.set_value("code", json!(c)) {
                return Ok(flow);
            }
            ui
        } else {
            return Ok(flow);
        };
        self.save(flow, ui).await
    }

    fn new_flow(&self, req: &ChallengeInit, lifespan: Duration) -> Flow {
        let mut flow = Flow::new(
            req.kind,
            req.flow_type,
            req.request_url.clone(),
            self.clock.now(),
            lifespan,
        );
        flow.return_to = req.return_to.clone();
        flow.csrf_token = req.csrf_token.clone();
        flow
    }

    /// Starts a flow (`choose_method`).
    pub async fn init(&self, req: ChallengeInit) -> Result<Flow, FlowError> {
        if !self.enabled(req.kind) {
            return Err(FlowError::Disabled(if req.kind == FlowKind::Recovery {
                "recovery"
            } else {
                "verification"
            }));
        }
        let mut flow = self.new_flow(&req, self.kind_settings(req.kind).lifespan);
        let method = self.method_of(req.kind);
        let ui = self.choose_form(&flow, method, None);
        flow.set_form(&ui);
        self.flows.create_flow(&flow).await?;
        Ok(flow)
    }

    /// Loads a flow, expired or not.
    pub async fn load(&self, kind: FlowKind, id: Uuid) -> Result<Flow, FlowError> {
        match self.flows.get_flow(kind, id).await {
            Ok(f) => Ok(f),
            Err(StoreError::NotFound) => Err(FlowError::NotFound),
            Err(e) => Err(e.into()),
        }
    }

    /// Whether an administrator created the flow (its link carries no CSRF cookie).
    pub fn is_admin_flow(flow: &Flow) -> bool {
        flow.context_value("admin").and_then(Value::as_bool) == Some(true)
    }

    async fn get_open(&self, kind: FlowKind, id: Uuid) -> Result<Flow, FlowError> {
        let flow = self.load(kind, id).await?;
        if flow.is_expired(self.clock.now()) {
            let replacement = self
                .init(ChallengeInit {
                    kind,
                    flow_type: flow.flow_type,
                    request_url: flow.request_url.clone(),
                    return_to: flow.return_to.clone(),
                    csrf_token: flow.csrf_token.clone(),
                })
                .await?;
            return Err(FlowError::Expired {
                expired: Box::new(flow),
                replacement: Box::new(replacement),
            });
        }
        Ok(flow)
    }

    async fn save(&self, mut flow: Flow, ui: UiContainer) -> Result<Flow, FlowError> {
        flow.set_form(&ui);
        flow.updated_at = self.clock.now();
        self.flows.update_flow(&flow).await?;
        Ok(flow)
    }

    /// Handles a submit: send (or resend) to an address, or check a code or link token.
    pub async fn submit(
        &self,
        kind: FlowKind,
        flow_id: Uuid,
        s: ChallengeSubmit,
    ) -> Result<ChallengeOutcome, FlowError> {
        let flow = self.get_open(kind, flow_id).await?;
        let flow_method = flow
            .active
            .clone()
            .unwrap_or_else(|| self.method_of(kind).to_owned());
        let method = if s.method.is_empty() {
            flow_method.clone()
        } else {
            s.method.clone()
        };
        if !self.method_enabled(&method) {
            // Unknown or disabled: the flow comes back with Kratos' "no strategy" message.
            let mut ui = flow.form();
            ui.add_message(crate::engine::no_strategy_message(kind));
            return Ok(ChallengeOutcome::Retry(self.save(flow, ui).await?));
        }
        if flow.state == crate::flow::FlowState::PassedChallenge {
            let mut ui = flow.form();
            ui.add_message(texts::already_completed(kind == FlowKind::Recovery));
            return Ok(ChallengeOutcome::Retry(self.save(flow, ui).await?));
        }
        let code = s.code.as_deref().map(str::trim).filter(|c| !c.is_empty());
        let token = s.token.as_deref().map(str::trim).filter(|c| !c.is_empty());
        if let Some(secret) = token.or(code) {
            let secret = secret.to_owned();
            return self.check(flow, &secret, token.is_some(), &s).await;
        }
        match s.email.as_deref() {
            Some(e) if !e.trim().is_empty() => self.send(flow, &method, e).await,
            _ => {
                let mut ui = flow.form();
                if flow.state == crate::flow::FlowState::SentEmail && method == "code" {
                    ui.add_message_to_node("code", identity::text::validation_required("code"));
                } else {
                    ui.add_message_to_node("email", identity::text::validation_required("email"));
                }
                Ok(ChallengeOutcome::Retry(self.save(flow, ui).await?))
            }
        }
    }

    /// Message data and template for a code or link to a known or unknown address.
    fn message_for(
        &self,
        flow: &Flow,
        method: &str,
        to: &str,
        secret: Option<&str>,
        identity: Option<&Identity>,
    ) -> (TemplateType, Value) {
        let recovery = flow.kind == FlowKind::Recovery;
        let link_url = |secret: &str, param: &str| {
            format!(
                "{}self-service/{}?flow={}&{param}={secret}",
                self.settings.link_base,
                flow.kind.as_str(),
                flow.id
            )
        };
        let minutes = if method == "link" {
            self.settings.link_lifespan.whole_minutes()
        } else {
            self.settings.code_lifespan.whole_minutes()
        };
        let mut data = json!({
            "To": to,
            "RequestURL": flow.request_url,
            "TransientPayload": flow.transient_payload.clone().unwrap_or(json!({})),
            "ExpiresInMinutes": minutes,
        });
        if let Some(i) = identity {
            data["Identity"] = identity::view::public_identity(i, &self.settings.public_base);
        }
        let tt = match (recovery, method, secret) {
            (true, "link", Some(t)) => {
                data["RecoveryURL"] = json!(link_url(t, "token"));
                TemplateType::RecoveryValid
            }
            (true, "link", None) => TemplateType::RecoveryInvalid,
            (true, _, Some(c)) => {
                data["RecoveryCode"] = json!(c);
                TemplateType::RecoveryCodeValid
            }
            (true, _, None) => TemplateType::RecoveryCodeInvalid,
            (false, "link", Some(t)) => {
                data["VerificationURL"] = json!(link_url(t, "token"));
                TemplateType::VerificationValid
            }
            (false, "link", None) => TemplateType::VerificationInvalid,
            (false, _, Some(c)) => {
                data["VerificationCode"] = json!(c);
                data["VerificationURL"] = json!(link_url(c, "code"));
                TemplateType::VerificationCodeValid
            }
            (false, _, None) => TemplateType::VerificationCodeInvalid,
        };
        (tt, data)
    }

    /// Sends a code or link to `raw_email` (or, for an unknown address, does the same work without a message).
    async fn send(
        &self,
        flow: Flow,
        method: &str,
        raw_email: &str,
    ) -> Result<ChallengeOutcome, FlowError> {
        let Some(email) = normalise_email(raw_email) else {
            let mut ui = self.choose_form(&flow, method, Some(raw_email));
            ui.add_message_to_node("email", identity::text::validation_invalid_format("email"));
            return Ok(ChallengeOutcome::Retry(self.save(flow, ui).await?));
        };
        let address_kind = if flow.kind == FlowKind::Recovery {
            AddressKind::Recovery
        } else {
            AddressKind::Verifiable
        };
        let found = match self
            .identities
            .pool()
            .find_by_address(address_kind, "email", &email)
            .await
        {
            Ok(i) => Some(i),
            Err(StoreError::NotFound) => None,
            Err(e) => return Err(e.into()),
        };
        let found = found.filter(|i| flow.kind == FlowKind::Verification || i.is_active());
        self.send_to(flow, method, &email, found.as_ref(), false)
            .await
            .map(ChallengeOutcome::Sent)
    }

    /// Writes the `sent_email` step: the flow, a fresh code or token, the message, the address status.
    async fn send_to(
        &self,
        mut flow: Flow,
        method: &str,
        email: &str,
        identity: Option<&Identity>,
        new_flow: bool,
    ) -> Result<Flow, FlowError> {
        let now = self.clock.now();
        let secret = if method == "link" {
            new_token()
        } else {
            new_code()
        };
        let lifespan = if method == "link" {
            self.settings.link_lifespan
        } else {
            self.settings.code_lifespan
        };
        let verifiable = identity.and_then(|i| {
            i.verifiable_addresses
                .iter()
                .find(|a| a.via == "email" && a.value == email)
        });
        let address_id = if flow.kind == FlowKind::Verification {
            verifiable.map(|a| a.id)
        } else {
            identity.and_then(|i| {
                i.recovery_addresses
                    .iter()
                    .find(|a| a.via == "email" && a.value == email)
                    .map(|a| a.id)
            })
        };
        let code = NewCode {
            kind: code_kind(flow.kind),
            flow_id: flow.id,
            identity_id: identity.map(|i| i.id),
            address_id,
            address: email.to_owned(),
            code_hmac: hash_code(&self.settings.secret, &secret),
            expires_at: now
                .checked_add(lifespan)
                .unwrap_or(time::PrimitiveDateTime::MAX.assume_utc()),
        };
        let notify = identity.is_some() || self.kind_settings(flow.kind).notify_unknown_recipients;
        let message = notify.then(|| {
            let (tt, data) = self.message_for(
                &flow,
                method,
                email,
                identity.map(|_| secret.as_str()),
                identity,
            );
            self.courier
                .render_email(email, tt, data, identity.map(|i| i.id))
        });
        let recovery = flow.kind == FlowKind::Recovery;
        let mut ui = if method == "link" {
            self.choose_form(&flow, method, Some(email))
        } else {
            self.code_form(&flow, email)
        };
        ui.add_message(match (recovery, method) {
            (true, "link") => texts::recovery_link_sent(),
            (true, _) => texts::recovery_code_sent(),
            (false, "link") => texts::verification_link_sent(),
            (false, _) => texts::verification_code_sent(),
        });
        flow.set_form(&ui);
        flow.state = crate::flow::FlowState::SentEmail;
        flow.active = Some(method.to_owned());
        flow.updated_at = now;
        flow.set_context_value("address", json!(email));
        let address_sent = verifiable
            .filter(|a| a.status == VerificationStatus::Pending && !a.verified)
            .map(|a| a.id);
        let queued = usize::from(message.is_some());
        self.outbox
            .commit(
                &SendStep {
                    flow: &flow,
                    new_flow,
                    invalidate: Some(code_kind(flow.kind)),
                    code: Some(code),
                    message,
                    address_sent: address_sent.filter(|_| flow.kind == FlowKind::Verification),
                },
                now,
            )
            .await?;
        self.courier.announce(queued);
        if address_sent.is_some() && flow.kind == FlowKind::Verification {
            if let Some(i) = identity {
                self.sessions.identity_changed(i).await?;
            }
        }
        Ok(flow)
    }

    /// Checks a code or link token.
    async fn check(
        &self,
        mut flow: Flow,
        secret: &str,
        is_link: bool,
        s: &ChallengeSubmit,
    ) -> Result<ChallengeOutcome, FlowError> {
        let now = self.clock.now();
        let kind = code_kind(flow.kind);
        let recovery = flow.kind == FlowKind::Recovery;
        let email = flow
            .context_value("address")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let mut ui = flow.form();
        // A link's confirmation form has done its job: what follows shows the outcome or asks for a new link.
        let confirmed_link = ui.node("token").is_some();
        ui.remove_node("token");
        if confirmed_link {
            ui = self.choose_form(&flow, "link", Some(&email));
            flow.set_form(&ui);
        }
        let checked = self
            .codes
            .use_code(
                kind,
                flow.id,
                &hash_code(&self.settings.secret, secret),
                now,
                self.settings.max_submissions,
            )
            .await?;
        let record = match checked {
            CodeCheck::Used(r) => r.identity_id.map(|i| (r, i)),
            CodeCheck::Wrong => None,
            CodeCheck::Exhausted => {
                ui.add_message(texts::too_many_attempts());
                return Ok(ChallengeOutcome::Invalid(self.save(flow, ui).await?));
            }
        };
        let Some((record, identity_id)) = record else {
            ui.add_message(match (recovery, is_link) {
                (true, true) => texts::recovery_token_invalid(),
                (true, false) => texts::recovery_code_invalid(),
                (false, true) => texts::verification_token_invalid(),
                (false, false) => texts::verification_code_invalid(),
            });
            return Ok(ChallengeOutcome::Invalid(self.save(flow, ui).await?));
        };
        self.codes.invalidate_codes(kind, flow.id, now).await?;
        let method = if is_link { "link" } else { "code" };
        let address = if record.address.is_empty() {
            email
        } else {
            record.address.clone()
        };
        // Proving control of an address verifies it; a code or link an administrator handed out proves nothing
        // about the address (as in Kratos).
        let verified = if Self::is_admin_flow(&flow) {
            self.identities
                .pool()
                .get_identity(identity_id, true)
                .await
                .map_err(FlowError::from)
        } else {
            self.mark_verified(identity_id, &address).await
        };
        let identity = match verified {
            Ok(i) => i,
            Err(FlowError::Store(StoreError::NotFound)) => {
                ui.add_message(if recovery {
                    texts::recovery_code_invalid()
                } else {
                    texts::verification_code_invalid()
                });
                return Ok(ChallengeOutcome::Invalid(self.save(flow, ui).await?));
            }
            Err(e) => return Err(e),
        };
        flow.state = crate::flow::FlowState::PassedChallenge;
        flow.active = Some(method.to_owned());
        if recovery {
            self.finish_recovery(flow, identity, method, s).await
        } else {
            self.finish_verification(flow, identity, s).await
        }
    }

    /// Marks `address` of the identity verified (proving control of an address verifies it, in recovery too).
    async fn mark_verified(&self, identity_id: Uuid, address: &str) -> Result<Identity, FlowError> {
        let mut identity = self
            .identities
            .pool()
            .get_identity(identity_id, true)
            .await?;
        let now = self.clock.now();
        let mut changed = false;
        for a in identity
            .verifiable_addresses
            .iter_mut()
            .filter(|a| a.value == address && !a.verified)
        {
            a.verified = true;
            a.verified_at = Some(now);
            a.status = VerificationStatus::Completed;
            a.updated_at = now;
            changed = true;
        }
        if changed {
            identity.updated_at = now;
            self.identities.pool().update_identity(&identity).await?;
            self.sessions.identity_changed(&identity).await?;
        }
        Ok(identity)
    }

    async fn finish_recovery(
        &self,
        mut flow: Flow,
        identity: Identity,
        method: &str,
        s: &ChallengeSubmit,
    ) -> Result<ChallengeOutcome, FlowError> {
        let now = self.clock.now();
        if !identity.is_active() {
            let mut ui = flow.form();
            ui.add_message(identity::text::validation_generic(
                "The account is disabled, so it cannot be recovered.",
            ));
            return Ok(ChallengeOutcome::Invalid(self.save(flow, ui).await?));
        }
        let session = self
            .sessions
            .issue(
                &identity,
                vec![AuthenticationMethod {
                    method: format!("{method}_recovery"),
                    aal: Aal::Aal1,
                    completed_at: now,
                    provider: None,
                    organization: None,
                }],
                s.device.clone(),
            )
            .await?;
        if self.hooks.revoke_active_sessions(FlowKind::Recovery) {
            self.sessions
                .revoke_others(identity.id, Some(session.session.id))
                .await?;
        }
        let settings_flow = self
            .settings_flows
            .init_after_recovery(
                SettingsInit {
                    flow_type: flow.flow_type,
                    request_url: flow.request_url.clone(),
                    return_to: flow.return_to.clone(),
                    csrf_token: if flow.flow_type == FlowType::Browser {
                        s.csrf_token.clone()
                    } else {
                        String::new()
                    },
                    identity_id: identity.id,
                    session_id: session.session.id,
                },
                now + self.settings.privileged_session_max_age,
            )
            .await?;
        let mut ui = flow.form();
        ui.add_message(texts::recovery_successful(
            now + self.settings.privileged_session_max_age,
        ));
        flow.set_context_value(
            "continue_with",
            json!([{
                "action": "show_settings_ui",
                "flow": {
                    "id": settings_flow.id,
                    "url": format!("{}?flow={}", self.settings_ui(), settings_flow.id),
                },
            }]),
        );
        let flow = self.save(flow, ui).await?;
        let identity_json = identity::view::admin_identity(
            &identity,
            &self.settings.public_base,
            identity::view::CredentialsView::Omit,
        );
        let session_json = self
            .sessions
            .render(&session.session, Some(&identity), false);
        self.hooks
            .after_persist(
                FlowKind::Recovery,
                &flow,
                &identity_json,
                Some(&session_json),
                &s.request,
            )
            .await;
        Ok(ChallengeOutcome::Recovered(Box::new(Recovered {
            flow,
            session,
            identity,
            settings_flow,
        })))
    }

    fn settings_ui(&self) -> String {
        self.settings_flows.settings().settings_ui.clone()
    }

    async fn finish_verification(
        &self,
        flow: Flow,
        identity: Identity,
        s: &ChallengeSubmit,
    ) -> Result<ChallengeOutcome, FlowError> {
        let href = flow
            .return_to
            .clone()
            .unwrap_or_else(|| self.settings.verification_return_url.clone());
        let mut ui = UiContainer::new(self.action(flow.kind, flow.id));
        ui.upsert_node(csrf_node(&flow.csrf_token));
        ui.upsert_node(UiNode::anchor(
            "continue",
            href,
            labels::node_continue(),
            Group::Code,
        ));
        ui.add_message(texts::verification_successful());
        let flow = self.save(flow, ui).await?;
        let identity_json = identity::view::admin_identity(
            &identity,
            &self.settings.public_base,
            identity::view::CredentialsView::Omit,
        );
        self.hooks
            .after_persist(
                FlowKind::Verification,
                &flow,
                &identity_json,
                None,
                &s.request,
            )
            .await;
        Ok(ChallengeOutcome::Verified(flow))
    }

    /// A verification flow that has already sent a message to `address` of `identity` (after registration, a
    /// profile change, or a login refused for an unverified address).
    pub async fn send_verification(
        &self,
        identity: &Identity,
        address: &str,
        init: ChallengeInit,
    ) -> Result<Flow, FlowError> {
        let flow = self.new_flow(&init, self.settings.verification.lifespan);
        let method = self.method_of(FlowKind::Verification);
        self.send_to(flow, method, address, Some(identity), true)
            .await
    }

    /// Admin `POST /admin/recovery/code`: a recovery flow in `sent_email` and its code, valid for `expires_in`.
    pub async fn admin_code(
        &self,
        identity_id: Uuid,
        expires_in: Duration,
        flow_type: FlowType,
        request_url: String,
    ) -> Result<(Flow, String), FlowError> {
        if !self.settings.code_enabled || !self.settings.recovery.enabled {
            return Err(FlowError::Disabled("the code method"));
        }
        let identity = self
            .identities
            .pool()
            .get_identity(identity_id, false)
            .await?;
        let code = new_code();
        let flow = self
            .admin_flow(&identity, flow_type, request_url, expires_in, "code", &code)
            .await?;
        Ok((flow, code))
    }

    /// Admin `POST /admin/recovery/link`: a browser recovery flow and its link token, valid for `expires_in`.
    pub async fn admin_link(
        &self,
        identity_id: Uuid,
        expires_in: Duration,
        return_to: Option<String>,
        request_url: String,
    ) -> Result<(Flow, String), FlowError> {
        if !self.settings.link_enabled || !self.settings.recovery.enabled {
            return Err(FlowError::Disabled("the link method"));
        }
        let identity = self
            .identities
            .pool()
            .get_identity(identity_id, false)
            .await?;
        let token = new_token();
        let mut flow = self
            .admin_flow(
                &identity,
                FlowType::Browser,
                request_url,
                expires_in,
                "link",
                &token,
            )
            .await?;
        if return_to.is_some() {
            flow.return_to = return_to;
            self.flows.update_flow(&flow).await?;
        }
        Ok((flow, token))
    }

    async fn admin_flow(
        &self,
        identity: &Identity,
        flow_type: FlowType,
        request_url: String,
        expires_in: Duration,
        method: &str,
        secret: &str,
    ) -> Result<Flow, FlowError> {
        let now = self.clock.now();
        let mut flow = Flow::new(FlowKind::Recovery, flow_type, request_url, now, expires_in);
        let address = identity
            .recovery_addresses
            .first()
            .map(|a| a.value.clone())
            .unwrap_or_default();
        let ui = if method == "link" {
            self.choose_form(&flow, method, None)
        } else {
            self.code_form(&flow, "")
        };
        flow.set_form(&ui);
        flow.state = crate::flow::FlowState::SentEmail;
        flow.active = Some(method.to_owned());
        flow.set_context_value("admin", json!(true));
        flow.set_context_value("address", json!(address));
        let code = NewCode {
            kind: CodeKind::Recovery,
            flow_id: flow.id,
            identity_id: Some(identity.id),
            address_id: identity.recovery_addresses.first().map(|a| a.id),
            address,
            code_hmac: hash_code(&self.settings.secret, secret),
            // Saturated like the flow's own expiry: no lifespan can overflow the clock.
            expires_at: flow.expires_at,
        };
        self.outbox
            .commit(
                &SendStep {
                    flow: &flow,
                    new_flow: true,
                    invalidate: None,
                    code: Some(code),
                    message: None,
                    address_sent: None,
                },
                now,
            )
            .await?;
        Ok(flow)
    }

    /// The page of a flow kind.
    pub fn ui_url(&self, kind: FlowKind) -> &str {
        &self.kind_settings(kind).ui_url
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            normalise_email("  Ann@Example.COM ").as_deref(),
            Some("ann@example.com")
        );
        for bad in [
            "",
            "ann",
            "@example.com",
            "ann@",
            "ann@.com",
            "a b@c.d",
            "ann@x.",
        ] {
            assert_eq!(normalise_email(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn tokens_are_long_and_random() {
        let a = new_token();
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, new_token());
    }
}
