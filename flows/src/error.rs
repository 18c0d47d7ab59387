//! Why a self-service request cannot proceed: the one error type of every flow, which `proxy` maps to Kratos'
//! error envelopes in one place.

use crate::flow::Flow;
use identity::StoreError;

/// Why a flow request cannot proceed.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    /// Unknown flow id (or a flow of another kind).
    #[error("flow not found")]
    NotFound,
    /// The flow expired; `replacement` is a fresh flow to use instead.
    #[error("the flow expired")]
    Expired {
        /// The expired flow.
        expired: Box<Flow>,
        /// A new flow of the same kind and type.
        replacement: Box<Flow>,
    },
    /// The flow has already been completed.
    #[error("the flow was already completed")]
    Completed,
    /// Registration is turned off.
    #[error("registration is disabled")]
    RegistrationDisabled,
    /// This flow kind (recovery, verification) or method is turned off.
    #[error("{0} is disabled")]
    Disabled(&'static str),
    /// The flow belongs to another identity than the session's.
    #[error("the flow belongs to another identity")]
    IdentityMismatch,
    /// The submit body is unusable.
    #[error("{0}")]
    BadRequest(String),
    /// Persistence failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Identity operations failed.
    #[error(transparent)]
    Identity(#[from] identity::Error),
    /// A hook could not run.
    #[error("a hook failed: {0}")]
    Hook(String),
}
