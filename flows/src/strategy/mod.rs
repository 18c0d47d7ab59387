//! The self-service methods and their one registry. A method is one file here that implements the strategy traits
//! of the flows it serves ([`LoginStrategy`], [`RegistrationStrategy`], …) and [`Strategy`], plus one line in
//! [`Registry::build`]. The registry is built once from config, and lists the enabled strategies in Kratos' order.

pub mod code;
pub mod link;
pub mod password;
pub mod profile;

use crate::challenge::Challenges;
use crate::login::LoginStrategy;
use crate::password_policy::{BreachRange, PolicyConfig};
use crate::recovery::RecoveryStrategy;
use crate::registration::RegistrationStrategy;
use crate::settings::SettingsStrategy;
use crate::verification::VerificationStrategy;
use identity::throttle::Throttle;
use identity::{IdentityManager, SharedClock};
use std::sync::Arc;

/// The flows a strategy serves: each method returns the strategy as that flow's trait object, or `None`.
pub trait Strategy: Send + Sync + 'static {
    /// As a login method.
    fn login(self: Arc<Self>) -> Option<Arc<dyn LoginStrategy>> {
        None
    }

    /// As a registration method.
    fn registration(self: Arc<Self>) -> Option<Arc<dyn RegistrationStrategy>> {
        None
    }

    /// As a settings method.
    fn settings(self: Arc<Self>) -> Option<Arc<dyn SettingsStrategy>> {
        None
    }

    /// As a recovery method.
    fn recovery(self: Arc<Self>) -> Option<Arc<dyn RecoveryStrategy>> {
        None
    }

    /// As a verification method.
    fn verification(self: Arc<Self>) -> Option<Arc<dyn VerificationStrategy>> {
        None
    }
}

/// What strategies are built from: shared services and each method's settings (`None`: the method is off).
#[derive(Clone)]
pub struct StrategyDeps {
    /// Identities, schemas and the hasher.
    pub identities: IdentityManager,
    /// The time.
    pub clock: SharedClock,
    /// Failed-login throttling.
    pub throttle: Throttle,
    /// The breached-password range service, when on.
    pub breaches: Option<Arc<dyn BreachRange>>,
    /// `selfservice.methods.password`: its policy when enabled.
    pub password: Option<PolicyConfig>,
    /// `selfservice.methods.profile.enabled`.
    pub profile: bool,
    /// Sending and checking secrets, for the recovery and verification methods (`None`: neither flow runs).
    pub challenges: Option<Challenges>,
}

/// The enabled strategies of each flow, in the order their nodes and dispatch go.
#[derive(Default, Clone)]
pub struct Registry {
    /// Login methods.
    pub login: Vec<Arc<dyn LoginStrategy>>,
    /// Registration methods.
    pub registration: Vec<Arc<dyn RegistrationStrategy>>,
    /// Settings methods.
    pub settings: Vec<Arc<dyn SettingsStrategy>>,
    /// Recovery methods.
    pub recovery: Vec<Arc<dyn RecoveryStrategy>>,
    /// Verification methods.
    pub verification: Vec<Arc<dyn VerificationStrategy>>,
}

impl Registry {
    /// Every enabled method, in Kratos' order (`profile`, `oidc`, `saml`, `webauthn`, `passkey`, `code`,
    /// `password`, `totp`, `lookup_secret`).
    pub fn build(deps: &StrategyDeps) -> Self {
        let mut r = Self::default();
        r.add(profile::ProfileStrategy::build(deps));
        r.add(code::CodeStrategy::build(deps));
        r.add(link::LinkStrategy::build(deps));
        r.add(password::PasswordStrategy::build(deps));
        r
    }

    /// Adds a strategy (when built) to the flows it serves.
    pub fn add<S: Strategy>(&mut self, strategy: Option<Arc<S>>) {
        let Some(s) = strategy else { return };
        if let Some(l) = s.clone().login() {
            self.login.push(l);
        }
        if let Some(r) = s.clone().registration() {
            self.registration.push(r);
        }
        if let Some(st) = s.clone().settings() {
            self.settings.push(st);
        }
        if let Some(rc) = s.clone().recovery() {
            self.recovery.push(rc);
        }
        if let Some(v) = s.verification() {
            self.verification.push(v);
        }
    }
}

#[cfg(test)]
mod test_echo;
#[cfg(test)]
mod tests;
