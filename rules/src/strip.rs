//! The identity headers no client may send: every header name that any rule's mutators or authorizer, or any
//! header preset, can set, plus the well-known identity families (`X-User-*`, `X-Auth-Request-*`, `Remote-*`,
//! `X-Forwarded-User/Email/Groups`).
//!
//! One [`StripSet`] is built per rule-set version, next to the [`crate::RuleSet`], and swapped with it on
//! reload, so a header that a newly added rule injects is stripped from the next request on, whatever rule that
//! request matches. Names are compared the way CGI, WSGI, PHP and Rack see them: case-insensitively and with `_`
//! read as `-` (`X_User_Id` is `X-User-Id` to those apps).
//!
//! Standard request fields that apps need for their own purposes ([`NEVER_GLOBAL`]: `Authorization`, `Cookie`,
//! `Host`, …) are not stripped on every request even when a rule sets one (the `id_token` mutator sets
//! `Authorization`): stripping `Authorization` everywhere would break bearer authentication to every other app.
//! The rule that sets such a field still replaces the client's value (see [`StripSet::with_rule`]); on other rules
//! a client-sent `Authorization` is only ever the client's own credential, which the app must verify anyway (an
//! `id_token` carries our signature, which a client cannot forge).

use crate::pipeline::mutate::preset_header_names;
use crate::pipeline::{ALWAYS_STRIPPED, ALWAYS_STRIPPED_PREFIXES};

/// Standard request fields that are stripped only on the rule that sets them, never on every request.
pub const NEVER_GLOBAL: &[&str] = &[
    "accept",
    "accept-encoding",
    "accept-language",
    "authorization",
    "cache-control",
    "content-encoding",
    "content-length",
    "content-type",
    "cookie",
    "host",
    "origin",
    "proxy-authorization",
    "referer",
    "transfer-encoding",
    "user-agent",
];

/// A precomputed set of header names to remove from client requests (dashed, lower-case, sorted), plus the
/// identity prefixes. Checking a name allocates nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StripSet {
    names: Box<[Box<str>]>,
}

impl StripSet {
    /// The set for a rule-set version: the presets' names, [`ALWAYS_STRIPPED`], and `rule_headers` (the names
    /// every rule's mutators and authorizer set, e.g. [`crate::pipeline::Pipeline::stripped_headers`]), minus
    /// [`NEVER_GLOBAL`].
    pub fn build<'a>(rule_headers: impl IntoIterator<Item = &'a str>) -> Self {
        let fixed = preset_header_names().chain(ALWAYS_STRIPPED.iter().copied());
        let names = fixed
            .map(canonical)
            .chain(rule_headers.into_iter().map(canonical))
            .filter(|n| !n.is_empty() && !NEVER_GLOBAL.contains(&n.as_str()));
        Self::from_canonical(names.collect())
    }

    /// This set plus the names one rule sets itself, [`NEVER_GLOBAL`] ones included (the rule replaces them).
    /// Returns `None` when every name is already in the set, so callers can share the global set.
    pub fn with_rule<'a>(&self, rule_headers: impl IntoIterator<Item = &'a str>) -> Option<Self> {
        let extra: Vec<String> = rule_headers
            .into_iter()
            .filter(|n| !self.contains(n))
            .map(canonical)
            .filter(|n| !n.is_empty())
            .collect();
        if extra.is_empty() {
            return None;
        }
        let mut names: Vec<String> = self.names.iter().map(|n| n.to_string()).collect();
        names.extend(extra);
        Some(Self::from_canonical(names))
    }

    fn from_canonical(mut names: Vec<String>) -> Self {
        names.sort();
        names.dedup();
        Self {
            names: names.into_iter().map(String::into_boxed_str).collect(),
        }
    }

    /// Whether a client header of this name must go: it is in the set or starts with an identity prefix, once
    /// `_` is read as `-` and case is ignored. Allocation-free.
    pub fn contains(&self, name: &str) -> bool {
        let name = name.as_bytes();
        ALWAYS_STRIPPED_PREFIXES
            .iter()
            .any(|p| name.len() >= p.len() && same_name(&name[..p.len()], p.as_bytes()))
            || self
                .names
                .binary_search_by(|probe| probe.bytes().cmp(name.iter().map(|b| fold(*b))))
                .is_ok()
    }

    /// The names in the set (dashed, lower-case, sorted), without the prefixes.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.names.iter().map(|n| &**n)
    }
}

/// Lower-case, `_` as `-`.
fn fold(b: u8) -> u8 {
    match b {
        b'_' => b'-',
        b => b.to_ascii_lowercase(),
    }
}

fn same_name(a: &[u8], canonical: &[u8]) -> bool {
    a.len() == canonical.len() && a.iter().zip(canonical).all(|(x, y)| fold(*x) == *y)
}

fn canonical(name: &str) -> String {
    name.trim().bytes().map(|b| char::from(fold(b))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_and_fixed_names_are_always_in() {
        let set = StripSet::build([]);
        for name in [
            "X-Forwarded-User",
            "x_forwarded_email",
            "X-Auth-Request-User",
            "Remote-User",
            "remote_email",
            "Remote-Name",
            "X-User-Id",
            "X_User_Email",
            "x-forwarded-groups",
        ] {
            assert!(set.contains(name), "{name}");
        }
        for name in [
            "x-request-id",
            "accept",
            "authorization",
            "x-forwarded-for",
            "x-email",
        ] {
            assert!(!set.contains(name), "{name}");
        }
        // Derived from the preset tables (one name from each), not a copy of them.
        let presets: Vec<&str> = preset_header_names().collect();
        for name in ["X-Forwarded-Email", "Remote-Email", "X-User-Email"] {
            assert!(presets.contains(&name), "{name} in {presets:?}");
        }
        for name in presets {
            assert!(set.contains(name), "{name}");
        }
    }

    #[test]
    fn rule_names_count_in_every_spelling_but_standard_fields_do_not() {
        let set = StripSet::build(["X-Email", "x-tenant", "Authorization", "Cookie", "HOST"]);
        for name in ["x-email", "X_EMAIL", "X_Email", "x-tenant", "X_Tenant"] {
            assert!(set.contains(name), "{name}");
        }
        for name in [
            "authorization",
            "cookie",
            "host",
            "x-emails",
            "x-emai",
            "x-email-",
        ] {
            assert!(!set.contains(name), "{name}");
        }
        assert!(set.names().any(|n| n == "x-email"));
        assert!(set
            .names()
            .all(|n| !n.contains('_') && n == n.to_lowercase()));
    }

    #[test]
    fn a_rule_that_sets_a_standard_field_gets_its_own_set() {
        let global = StripSet::build(["x-email"]);
        assert_eq!(global.with_rule(["X-Email", "x-user-id"]), None);
        let own = global.with_rule(["Authorization"]).unwrap();
        assert!(own.contains("Authorization") && own.contains("x_email"));
        assert!(!global.contains("authorization"));
    }

    #[test]
    fn identity_headers_are_recognised() {
        let set = StripSet::build([]);
        for h in [
            "X-User-Id",
            "x-auth-request-email",
            "Remote-User",
            "X-Forwarded-User",
        ] {
            assert!(set.contains(h), "{h}");
        }
        assert!(!set.contains("X-Request-Id"));
    }

    #[test]
    fn prefixes_need_the_whole_prefix() {
        let set = StripSet::build([]);
        assert!(set.contains("x-user-anything"));
        assert!(set.contains("X_USER_anything"));
        assert!(!set.contains("x-user"));
        assert!(!set.contains("x-users"));
        assert!(!set.contains("remote"));
    }
}
