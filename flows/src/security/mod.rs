//! Browser-flow security helpers: CSRF double-submit tokens (nosurf-compatible) and
//! `return_to` allow-list validation (Kratos `SecureRedirectTo`).

mod csrf;
mod return_to;

pub use csrf::{
    csrf_cookie_name, verify_tokens, CsrfToken, CSRF_COOKIE_MAX_AGE_SECS, CSRF_FORM_FIELD,
    CSRF_HEADER, CSRF_TOKEN_LENGTH,
};
pub use return_to::{ReturnToError, ReturnToPolicy, RETURN_TO_FORBIDDEN_ID};
