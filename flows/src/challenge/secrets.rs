//! Sending a secret to an address and checking it, for every method of recovery and verification. A method
//! decides what its secret, form and message look like; this stores the secret's HMAC, the message and the flow
//! in one transaction, and uses a secret at most once.

use super::{ChallengeResult, ChallengeSettings};
use crate::codes::{hash_code, CodeCheck, CodeKind, CodePool, NewCode};
use crate::courier::{Courier, TemplateType};
use crate::engine::FlowRepo;
use crate::error::FlowError;
use crate::flow::{Flow, FlowKind, FlowState};
use crate::outbox::{Outbox, SendStep};
use crate::texts;
use crate::ui::{csrf_node, labels, Autocomplete, Group, InputType, UiContainer, UiNode};
use identity::model::VerificationStatus;
use identity::session::manager::SessionManager;
use identity::{AddressKind, Identity, IdentityManager, StoreError};
use serde_json::{json, Value};
use std::sync::Arc;
use time::Duration;
use uuid::Uuid;

/// The services both flows' methods send and check secrets with.
#[derive(Clone)]
pub struct Challenges {
    repo: FlowRepo,
    codes: Arc<dyn CodePool>,
    outbox: Arc<dyn Outbox>,
    courier: Arc<Courier>,
    identities: IdentityManager,
    sessions: SessionManager,
    settings: Arc<ChallengeSettings>,
}

impl std::fmt::Debug for Challenges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Challenges").finish_non_exhaustive()
    }
}

/// One secret on its way to an address: what a method hands to [`Challenges::deliver`].
pub struct Delivery<'a> {
    /// The method (`code`, `link`).
    pub method: &'static str,
    /// The normalised address.
    pub address: &'a str,
    /// Its owner, when the address is known.
    pub identity: Option<&'a Identity>,
    /// The secret (only its HMAC is stored).
    pub secret: &'a str,
    /// How long the secret works.
    pub lifespan: Duration,
    /// The message to a known address, or the "unknown address" message (sent only with
    /// `notify_unknown_recipients`).
    pub message: (TemplateType, Value),
    /// The flow's form after sending.
    pub ui: UiContainer,
    /// The flow is new (inserted, not updated).
    pub new_flow: bool,
}

pub(crate) fn code_kind(kind: FlowKind) -> CodeKind {
    if kind == FlowKind::Recovery {
        CodeKind::Recovery
    } else {
        CodeKind::Verification
    }
}

/// A submitted value, trimmed; `None` when missing or blank.
pub fn filled(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

/// A plausible e-mail address, normalised as addresses are stored (trimmed, lower-case).
pub fn normalise_email(raw: &str) -> Option<String> {
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

impl Challenges {
    /// Wires the services.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        repo: FlowRepo,
        codes: Arc<dyn CodePool>,
        outbox: Arc<dyn Outbox>,
        courier: Arc<Courier>,
        identities: IdentityManager,
        sessions: SessionManager,
        settings: ChallengeSettings,
    ) -> Self {
        Self {
            repo,
            codes,
            outbox,
            courier,
            identities,
            sessions,
            settings: Arc::new(settings),
        }
    }

    /// The configured settings.
    pub fn settings(&self) -> &ChallengeSettings {
        &self.settings
    }

    /// The flow store.
    pub fn repo(&self) -> &FlowRepo {
        &self.repo
    }

    /// Identities.
    pub fn identities(&self) -> &IdentityManager {
        &self.identities
    }

    /// Sessions.
    pub fn sessions(&self) -> &SessionManager {
        &self.sessions
    }

    /// The form's `action`.
    pub fn action(&self, kind: FlowKind, id: Uuid) -> String {
        format!(
            "{}self-service/{}?flow={id}",
            self.settings.public_base,
            kind.as_str()
        )
    }

    /// A link into the flow carrying a secret: `…/self-service/<kind>?flow=<id>&<param>=<secret>`.
    pub fn link_url(&self, flow: &Flow, param: &str, secret: &str) -> String {
        format!(
            "{}self-service/{}?flow={}&{param}={secret}",
            self.settings.link_base,
            flow.kind.as_str(),
            flow.id
        )
    }

    /// An empty form of the flow with its CSRF token.
    pub fn form(&self, flow: &Flow) -> UiContainer {
        let mut ui = UiContainer::new(self.action(flow.kind, flow.id));
        ui.upsert_node(csrf_node(&flow.csrf_token));
        ui
    }

    /// Adds the address input of `method` (pre-filled with `email`) and its submit button.
    pub fn address_nodes(
        &self,
        ui: &mut UiContainer,
        method: &'static str,
        group: Group,
        email: Option<&str>,
    ) {
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
    }

    /// The address form of `method`: the address (pre-filled with `email`) and a submit button.
    pub fn address_form(
        &self,
        flow: &Flow,
        method: &'static str,
        group: Group,
        email: Option<&str>,
    ) -> UiContainer {
        let mut ui = self.form(flow);
        self.address_nodes(&mut ui, method, group, email);
        ui
    }

    /// Asks for the missing `field` (HTTP 400).
    pub fn required(&self, flow: &mut Flow, field: &str) -> ChallengeResult {
        flow.ui
            .add_message_to_node(field, identity::text::validation_required(field));
        ChallengeResult::Retry
    }

    /// `raw` as a normalised address, or the address form of `method` again with a message (and `None`).
    pub fn address_or_retry(
        &self,
        flow: &mut Flow,
        method: &'static str,
        group: Group,
        raw: &str,
    ) -> Option<String> {
        let email = normalise_email(raw);
        if email.is_none() {
            let mut ui = self.address_form(flow, method, group, Some(raw));
            ui.add_message_to_node("email", identity::text::validation_invalid_format("email"));
            flow.set_form(&ui);
        }
        email
    }

    /// The identity an address of the flow's kind belongs to (a recovery address of an active identity, or any
    /// verifiable address), if any.
    pub async fn recipient(&self, flow: &Flow, email: &str) -> Result<Option<Identity>, FlowError> {
        let recovery = flow.kind == FlowKind::Recovery;
        let address_kind = if recovery {
            AddressKind::Recovery
        } else {
            AddressKind::Verifiable
        };
        let found = match self
            .identities
            .pool()
            .find_by_address(address_kind, "email", email)
            .await
        {
            Ok(i) => Some(i),
            Err(StoreError::NotFound) => None,
            Err(e) => return Err(e.into()),
        };
        Ok(found.filter(|i| !recovery || i.is_active()))
    }

    /// The template data every message carries: the address, the request, the payload, the secret's lifespan and
    /// (for a known address) the identity.
    pub fn message_data(
        &self,
        flow: &Flow,
        to: &str,
        identity: Option<&Identity>,
        lifespan: Duration,
    ) -> Value {
        let mut data = json!({
            "To": to,
            "RequestURL": flow.request_url,
            "TransientPayload": flow.transient_payload.clone().unwrap_or(json!({})),
            "ExpiresInMinutes": lifespan.whole_minutes(),
        });
        if let Some(i) = identity {
            data["Identity"] = identity::view::public_identity(i, &self.settings.public_base);
        }
        data
    }

    /// Writes the `sent_email` step: the flow with its new form, the secret, the message, the address status.
    pub async fn deliver(&self, flow: &mut Flow, d: Delivery<'_>) -> Result<(), FlowError> {
        let now = self.repo.now();
        let verification = flow.kind == FlowKind::Verification;
        let verifiable = d.identity.and_then(|i| {
            i.verifiable_addresses
                .iter()
                .find(|a| a.via == "email" && a.value == d.address)
        });
        let address_id = if verification {
            verifiable.map(|a| a.id)
        } else {
            d.identity.and_then(|i| {
                i.recovery_addresses
                    .iter()
                    .find(|a| a.via == "email" && a.value == d.address)
                    .map(|a| a.id)
            })
        };
        let code = NewCode {
            kind: code_kind(flow.kind),
            flow_id: flow.id,
            identity_id: d.identity.map(|i| i.id),
            address_id,
            address: d.address.to_owned(),
            code_hmac: hash_code(&self.settings.secret, d.secret),
            expires_at: now
                .checked_add(d.lifespan)
                .unwrap_or(time::PrimitiveDateTime::MAX.assume_utc()),
        };
        let notify = d.identity.is_some() || self.settings.of(flow.kind).notify_unknown_recipients;
        let message = notify.then(|| {
            let (tt, data) = d.message;
            self.courier
                .render_email(d.address, tt, data, d.identity.map(|i| i.id))
        });
        flow.set_form(&d.ui);
        flow.state = FlowState::SentEmail;
        flow.active = Some(d.method.to_owned());
        flow.updated_at = now;
        flow.set_context_value("address", json!(d.address));
        let address_sent = verifiable
            .filter(|a| verification && a.status == VerificationStatus::Pending && !a.verified)
            .map(|a| a.id);
        let queued = usize::from(message.is_some());
        self.outbox
            .commit(
                &SendStep {
                    flow,
                    new_flow: d.new_flow,
                    invalidate: Some(code_kind(flow.kind)),
                    code: Some(code),
                    message,
                    address_sent,
                },
                now,
            )
            .await?;
        self.courier.announce(queued);
        if let (Some(_), Some(i)) = (address_sent, d.identity) {
            self.sessions.identity_changed(i).await?;
        }
        Ok(())
    }

    /// Stores a flow an administrator created for `identity`, in `sent_email` with `method`'s secret and form
    /// `ui`, and sends nothing. The secret expires with the flow.
    pub async fn deliver_admin(
        &self,
        flow: &mut Flow,
        identity: &Identity,
        method: &'static str,
        secret: &str,
        ui: UiContainer,
    ) -> Result<(), FlowError> {
        let address = identity.recovery_addresses.first();
        flow.set_form(&ui);
        flow.state = FlowState::SentEmail;
        flow.active = Some(method.to_owned());
        flow.set_context_value("admin", json!(true));
        flow.set_context_value(
            "address",
            json!(address.map(|a| a.value.as_str()).unwrap_or_default()),
        );
        let code = NewCode {
            kind: CodeKind::Recovery,
            flow_id: flow.id,
            identity_id: Some(identity.id),
            address_id: address.map(|a| a.id),
            address: address.map(|a| a.value.clone()).unwrap_or_default(),
            code_hmac: hash_code(&self.settings.secret, secret),
            // Saturated like the flow's own expiry: no lifespan can overflow the clock.
            expires_at: flow.expires_at,
        };
        let step = SendStep {
            flow,
            new_flow: true,
            invalidate: None,
            code: Some(code),
            message: None,
            address_sent: None,
        };
        self.outbox.commit(&step, self.repo.now()).await?;
        Ok(())
    }

    /// Checks a code or link token: a right one is used up (with every other secret of the flow), proves control
    /// of the address it was sent to and verifies that address (unless an administrator handed it out), and puts
    /// the flow into `passed_challenge`. A wrong one counts against `max_submissions`.
    pub async fn check(
        &self,
        flow: &mut Flow,
        method: &'static str,
        secret: &str,
    ) -> Result<ChallengeResult, FlowError> {
        let now = self.repo.now();
        let kind = code_kind(flow.kind);
        let recovery = flow.kind == FlowKind::Recovery;
        let is_link = method == "link";
        let invalid = match (recovery, is_link) {
            (true, true) => texts::recovery_token_invalid(),
            (true, false) => texts::recovery_code_invalid(),
            (false, true) => texts::verification_token_invalid(),
            (false, false) => texts::verification_code_invalid(),
        };
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
        let (record, identity_id) = match checked {
            CodeCheck::Used(r) => match r.identity_id {
                Some(i) => (r, i),
                None => {
                    flow.ui.add_message(invalid);
                    return Ok(ChallengeResult::Invalid);
                }
            },
            CodeCheck::Wrong => {
                flow.ui.add_message(invalid);
                return Ok(ChallengeResult::Invalid);
            }
            CodeCheck::Exhausted => {
                flow.ui.add_message(texts::too_many_attempts());
                return Ok(ChallengeResult::Invalid);
            }
        };
        self.codes.invalidate_codes(kind, flow.id, now).await?;
        let address = if record.address.is_empty() {
            flow.context_value("address")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        } else {
            record.address.clone()
        };
        // Proving control of an address verifies it; a code or link an administrator handed out proves nothing
        // about the address (as in Kratos).
        let verified = if super::ChallengeFlows::is_admin_flow(flow) {
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
                flow.ui.add_message(if recovery {
                    texts::recovery_code_invalid()
                } else {
                    texts::verification_code_invalid()
                });
                return Ok(ChallengeResult::Invalid);
            }
            Err(e) => return Err(e),
        };
        flow.state = FlowState::PassedChallenge;
        flow.active = Some(method.to_owned());
        Ok(ChallengeResult::Proved(Box::new(identity)))
    }

    /// Marks `address` of the identity verified (proving control of an address verifies it, in recovery too).
    async fn mark_verified(&self, identity_id: Uuid, address: &str) -> Result<Identity, FlowError> {
        let mut identity = self
            .identities
            .pool()
            .get_identity(identity_id, true)
            .await?;
        let now = self.repo.now();
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
}
