//! Oathkeeper-compatible access rules: the rule model, rule repositories, request URL canonicalisation
//! and the compiled, indexed rule set that finds the one rule for a request.
//!
//! ```text
//! load_repositories(["file:///etc/portcullis/rules.yaml"]) -> Vec<Rule>
//! RuleSet::compile(rules, Strategy::Regexp)                 -> Arc<RuleSet>, swapped on reload
//! rule_set.find("GET", "https", "api.example.com", "/users/1") -> Matched { rule, captures } | MatchError
//! ```
//!
//! This crate takes and returns plain values: it knows nothing of the HTTP server, and the pipeline
//! handlers named by a rule are resolved elsewhere.
//!
//! # Where matching differs from Oathkeeper
//!
//! Oathkeeper matches `scheme://host/path` where the path is Go's fully decoded `URL.Path` put through
//! `path.Clean`. Here the path is the canonical *encoded* path of [`normalize_path`]:
//!
//! - `%2F` (and `%5C`) stay encoded, so they never split segments; a `.`/`..` hidden behind them is
//!   rejected (400) instead of being resolved.
//! - Other reserved or non-ASCII characters stay percent-encoded: `<[^/]+>` captures `john%20doe` where
//!   Oathkeeper captures `john doe`. Literal text in a rule's path is canonicalised the same way, so a
//!   rule may write `/café` or `/caf%C3%A9`.
//! - A trailing slash is kept: `/users/` does not match `https://x/users` (Oathkeeper's `path.Clean`
//!   drops it, so there it does).
//! - The host is lower-cased and loses a trailing dot and the default port, in requests and in the
//!   literal host of rules.
//! - Regexp sections use Rust's `regex` (RE2-like) where Oathkeeper uses `regexp2`: look-around and
//!   back-references are refused when the rule set is compiled. Capture groups are numbered by
//!   position, named ones included.
//! - Rules that fail validation are rejected when loading, not kept to fail requests with 500, and two
//!   rules that would both match the same literal URL and method are rejected when compiling instead of
//!   answering that URL with 500.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod cidr;
pub mod matcher;
pub mod normalize;
mod pattern;
pub mod pipeline;
pub mod repository;
pub mod rule;
pub mod strip;
pub mod template;

pub use matcher::{CompiledRule, MatchError, Matched, RuleSet, Strategy};
pub use normalize::{normalize_path, normalize_path_into, PathError};
pub use repository::{
    fingerprint, load_repositories, load_repository, parse_rules, repository_file, Fingerprint,
    Format,
};
pub use rule::{Handler, Invalid, Match, Rule, Upstream};
pub use strip::StripSet;

/// Everything that can go wrong loading and compiling rules. Each variant names the repository, the
/// rule (index in its file and id, when known) and the key it can.
#[derive(Debug, thiserror::Error)]
pub enum RuleError {
    /// Not `file://`, a plain path or `inline://`.
    #[error(
        "repository {repository}: unsupported repository URL (use file:///path or inline://base64)"
    )]
    UnsupportedRepository {
        /// The repository URL.
        repository: String,
    },
    /// The file could not be read.
    #[error("repository {repository}: {source}")]
    Read {
        /// The repository URL.
        repository: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// `inline://` is not followed by standard base64.
    #[error("repository {repository}: inline rules are not valid base64: {source}")]
    InlineBase64 {
        /// The repository URL, shortened.
        repository: String,
        /// The decoding error.
        #[source]
        source: base64::DecodeError,
    },
    /// The document is not valid JSON or YAML.
    #[error("repository {repository}: not valid {format}: {message}")]
    Syntax {
        /// The repository URL.
        repository: String,
        /// The format the document was read as.
        format: Format,
        /// The parser's message, with line and column.
        message: String,
    },
    /// The document is valid but not an array of rules.
    #[error("repository {repository}: expected an array of rules, found {found}")]
    NotAnArray {
        /// The repository URL.
        repository: String,
        /// What was found instead (`an object`, `a string`...).
        found: &'static str,
    },
    /// One rule is malformed: unknown or missing key, wrong type, or a failed [`Rule::validate`].
    #[error("{}rule #{index}{}: {}{message}", in_repository(.repository), with_id(.id), at_key(.key))]
    InvalidRule {
        /// The repository URL; `None` for rules handed to [`RuleSet::compile`] directly.
        repository: Option<String>,
        /// Position of the rule in its file (or in the list given to `compile`), from 0.
        index: usize,
        /// The rule's id, when it has one.
        id: Option<String>,
        /// Dotted path of the offending key (`match.methods[1]`); empty when it is the rule itself.
        key: String,
        /// What is wrong.
        message: String,
    },
    /// Two rules share an id.
    #[error("duplicate rule id {id:?}: {first} and {second}")]
    DuplicateId {
        /// The id.
        id: String,
        /// Where the first one is (`repository X, rule #3`).
        first: String,
        /// Where the second one is.
        second: String,
    },
    /// `match.url` is not a valid pattern for the matching strategy.
    #[error("rule {id:?}: match.url {url:?}: {message}")]
    InvalidPattern {
        /// The rule's id.
        id: String,
        /// The pattern.
        url: String,
        /// What is wrong with it.
        message: String,
    },
    /// Two rules match the same URL with a common method, so every such request would fail with 500.
    #[error(
        "rules {first:?} and {second:?} both match {method} {url}; every such request would fail with 500"
    )]
    Overlap {
        /// One rule's id.
        first: String,
        /// The other rule's id.
        second: String,
        /// A URL both match.
        url: String,
        /// A method both match.
        method: String,
    },
}

fn in_repository(repository: &Option<String>) -> String {
    repository
        .as_ref()
        .map(|r| format!("repository {r}: "))
        .unwrap_or_default()
}

fn with_id(id: &Option<String>) -> String {
    id.as_ref()
        .map(|id| format!(" ({id:?})"))
        .unwrap_or_default()
}

fn at_key(key: &str) -> String {
    if key.is_empty() {
        String::new()
    } else {
        format!("{key}: ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_rule_messages_name_repository_rule_and_key() {
        let err = RuleError::InvalidRule {
            repository: Some("file:///etc/rules.json".into()),
            index: 2,
            id: Some("users".into()),
            key: "match".into(),
            message: "unknown field `methdos`".into(),
        };
        assert_eq!(
            err.to_string(),
            "repository file:///etc/rules.json: rule #2 (\"users\"): match: unknown field `methdos`"
        );
        let err = RuleError::InvalidRule {
            repository: None,
            index: 0,
            id: None,
            key: String::new(),
            message: "missing field `id`".into(),
        };
        assert_eq!(err.to_string(), "rule #0: missing field `id`");
    }

    #[test]
    fn the_rule_set_can_be_shared_across_threads() {
        fn shared<T: Send + Sync + 'static>() {}
        shared::<RuleSet>();
        shared::<std::sync::Arc<CompiledRule>>();
        shared::<RuleError>();
        shared::<MatchError>();
    }
}
