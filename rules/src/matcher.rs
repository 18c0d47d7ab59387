//! The compiled rule set and the search for the one rule that handles a request.
//!
//! Oathkeeper tries every rule in turn under a mutex. Here a [`RuleSet`] is immutable (swap an
//! `Arc<RuleSet>` to reload) and indexes rules by the literal text of `match.url` before its first
//! `<...>` section (scheme, host and path prefix) in a radix tree. A lookup walks the tree along the
//! request URL once and only tests the rules whose literal prefix the URL starts with. Rules whose
//! pattern starts with a section (`<https?>://...`) sit at the root and those with a section for the
//! host (`https://<[^/]+>/...`) at `https://`; a node holding more than one rule tests them all in one
//! pass with a `RegexSet`. The cost of a lookup therefore depends on the length of the URL and on how
//! many rules share its deepest literal prefixes, not on the size of the set.
//!
//! As in Oathkeeper, the rule must be unique: no match is [`MatchError::NoMatch`] (404) and more than one
//! is [`MatchError::Multiple`] (500); rule order carries no priority.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use regex::{Regex, RegexSet};
use serde::{Deserialize, Serialize};

use crate::normalize::{normalize_path_into, push_host, push_scheme, PathError};
use crate::pattern;
use crate::rule::Rule;
use crate::RuleError;

/// `access_rules.matching_strategy`: how the `<...>` sections of `match.url` are read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    /// Sections are regular expressions and become capture groups (the default).
    #[default]
    Regexp,
    /// Sections are globs (`*`, `**`, `?`, `[...]`, `{a,b}`; separators `.` and `/`); no captures.
    Glob,
}

impl FromStr for Strategy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "" | "regexp" => Ok(Strategy::Regexp),
            "glob" => Ok(Strategy::Glob),
            other => Err(format!(
                "unknown matching strategy {other:?} (use regexp or glob)"
            )),
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Strategy::Regexp => "regexp",
            Strategy::Glob => "glob",
        })
    }
}

/// Why [`RuleSet::find`] found no single rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MatchError {
    /// No rule matches: Oathkeeper answers 404.
    #[error("requested url does not match any rules")]
    NoMatch,
    /// Several rules match (their ids, in rule order): Oathkeeper answers 500.
    #[error("expected exactly one rule but found multiple rules: {}", .0.join(", "))]
    Multiple(Vec<String>),
    /// The path cannot be normalised: answer 400.
    #[error("invalid request path: {0}")]
    InvalidPath(#[from] PathError),
    /// The scheme is not a URI scheme: answer 400.
    #[error("invalid request scheme")]
    InvalidScheme,
    /// The host holds characters a host cannot hold: answer 400.
    #[error("invalid request host")]
    InvalidHost,
}

/// A rule with its compiled `match`.
#[derive(Debug)]
pub struct CompiledRule {
    rule: Rule,
    index: usize,
    methods: Methods,
    matcher: UrlMatcher,
    regex_source: String,
}

#[derive(Debug)]
enum UrlMatcher {
    /// A pattern without sections matches one URL.
    Exact(Box<str>),
    /// `groups` is the number of capture groups.
    Regex { regex: Regex, groups: usize },
}

impl UrlMatcher {
    fn is_match(&self, url: &str) -> bool {
        match self {
            UrlMatcher::Exact(exact) => **exact == *url,
            UrlMatcher::Regex { regex, .. } => regex.is_match(url),
        }
    }
}

impl CompiledRule {
    /// The rule as loaded.
    pub fn rule(&self) -> &Rule {
        &self.rule
    }

    /// The rule's id.
    pub fn id(&self) -> &str {
        &self.rule.id
    }

    /// Position in the set, as given to [`RuleSet::compile`] and as [`RuleSet::iter`] yields it: lets the
    /// caller keep per-rule data (a built pipeline) in a `Vec` beside the set.
    pub fn index(&self) -> usize {
        self.index
    }
}

/// The rule that handles a request, with what its pattern captured.
#[derive(Debug)]
pub struct Matched<'a> {
    /// The rule. Clone the `Arc` to keep it past a reload.
    pub rule: &'a Arc<CompiledRule>,
    /// Oathkeeper's `RegexpCaptureGroups`: every capture group of the regexp pattern in order (the
    /// `<...>` sections and groups inside them), `""` for a group that took no part. Always empty with
    /// the glob strategy.
    pub captures: Vec<String>,
    url: String,
    path_at: usize,
}

impl Matched<'_> {
    /// The canonical URL the rule was matched against: `scheme://host[:port]/path`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The canonical path: forward this one, so the upstream serves what was authorised.
    pub fn path(&self) -> &str {
        &self.url[self.path_at..]
    }
}

/// An immutable, indexed set of compiled rules. Cheap to share: wrap it in an `Arc` and swap the `Arc`
/// to reload.
#[derive(Debug, Default)]
pub struct RuleSet {
    strategy: Strategy,
    rules: Vec<Arc<CompiledRule>>,
    ids: HashMap<String, usize>,
    root: Node,
}

/// Nodes holding more rules than this test them with one `RegexSet`: one pass of its lazy DFA costs
/// about what one `Regex::is_match` does, so even two rules are cheaper that way.
const SET_THRESHOLD: usize = 1;

impl RuleSet {
    /// Validates and compiles `rules` for `strategy` and builds the index.
    ///
    /// Fails on the first invalid rule, duplicate id or malformed pattern, and when two rules match the
    /// same literal URL (a `match.url` without sections) with a common method, since every such request
    /// would fail with 500.
    pub fn compile(rules: Vec<Rule>, strategy: Strategy) -> Result<Self, RuleError> {
        let mut set = RuleSet {
            strategy,
            rules: Vec::with_capacity(rules.len()),
            ids: HashMap::with_capacity(rules.len()),
            root: Node::default(),
        };
        for (index, rule) in rules.into_iter().enumerate() {
            rule.validate().map_err(|invalid| RuleError::InvalidRule {
                repository: None,
                index,
                id: Some(rule.id.clone()),
                key: invalid.key,
                message: invalid.message,
            })?;
            if let Some(first) = set.ids.insert(rule.id.clone(), index) {
                return Err(RuleError::DuplicateId {
                    id: rule.id,
                    first: format!("rule #{first}"),
                    second: format!("rule #{index}"),
                });
            }
            let invalid_pattern = |message: String| RuleError::InvalidPattern {
                id: rule.id.clone(),
                url: rule.r#match.url.clone(),
                message,
            };
            let pattern = pattern::compile(&rule.r#match.url, strategy).map_err(invalid_pattern)?;
            let matcher = match pattern.exact {
                Some(exact) => UrlMatcher::Exact(exact.into()),
                None => {
                    let regex =
                        Regex::new(&pattern.regex).map_err(|e| invalid_pattern(e.to_string()))?;
                    let groups = regex.captures_len() - 1;
                    UrlMatcher::Regex { regex, groups }
                }
            };
            let methods = Methods::new(&rule.r#match.methods);
            if !methods.is_empty() {
                let id = u32::try_from(index).map_err(|_| RuleError::InvalidRule {
                    repository: None,
                    index,
                    id: Some(rule.id.clone()),
                    key: String::new(),
                    message: "too many rules".into(),
                })?;
                set.root.insert(pattern.prefix.as_bytes(), id);
            }
            set.rules.push(Arc::new(CompiledRule {
                rule,
                index,
                methods,
                matcher,
                regex_source: pattern.regex,
            }));
        }
        set.root.build_sets(&set.rules);
        set.check_overlaps()?;
        Ok(set)
    }

    /// Finds the one rule for a request. `scheme` and `host` are those of the request as received
    /// (`Host` header, with its port); `path` is the raw path without query. The path is normalised
    /// ([`crate::normalize_path`]), scheme and host canonicalised, and the rules are matched against
    /// `scheme://host[:port]/path`.
    pub fn find(
        &self,
        method: &str,
        scheme: &str,
        host: &str,
        path: &str,
    ) -> Result<Matched<'_>, MatchError> {
        let mut url = String::with_capacity(scheme.len() + 3 + host.len() + path.len() + 1);
        if !push_scheme(scheme, &mut url) {
            return Err(MatchError::InvalidScheme);
        }
        url.push_str("://");
        if !push_host(scheme, host, &mut url) {
            return Err(MatchError::InvalidHost);
        }
        let path_at = url.len();
        normalize_path_into(path, &mut url)?;

        let method = RequestMethod::new(method);
        let mut hits = Hits::default();
        self.collect(&url, |methods| methods.contains(&method), &mut hits);
        let index = match hits.first {
            None => return Err(MatchError::NoMatch),
            Some(first) if hits.more.is_empty() => first,
            Some(first) => {
                let mut all = hits.more;
                all.push(first);
                all.sort_unstable();
                return Err(MatchError::Multiple(
                    all.iter().map(|&i| self.rule(i).rule.id.clone()).collect(),
                ));
            }
        };
        let rule = self.rule(index);
        let captures = match &rule.matcher {
            UrlMatcher::Regex { regex, groups } if *groups > 0 => regex
                .captures(&url)
                .map(|caps| {
                    caps.iter()
                        .skip(1)
                        .map(|group| group.map_or_else(String::new, |g| g.as_str().to_owned()))
                        .collect()
                })
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        Ok(Matched {
            rule,
            captures,
            url,
            path_at,
        })
    }

    /// The rule with this id.
    pub fn get(&self, id: &str) -> Option<&Arc<CompiledRule>> {
        self.ids.get(id).and_then(|&i| self.rules.get(i))
    }

    /// All rules, in the order they were given (for the rules API).
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &Arc<CompiledRule>> {
        self.rules.iter()
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// True without rules; Oathkeeper reports not ready then.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The strategy the patterns were compiled for.
    pub fn strategy(&self) -> Strategy {
        self.strategy
    }

    fn rule(&self, index: u32) -> &Arc<CompiledRule> {
        // Indexes come from the tree, which was built from `self.rules`.
        &self.rules[index as usize]
    }

    /// Walks the tree along `url` and collects the rules that match it and whose methods pass.
    fn collect(&self, url: &str, methods_pass: impl Fn(&Methods) -> bool, hits: &mut Hits) {
        let bytes = url.as_bytes();
        let mut node = &self.root;
        let mut depth = 0;
        loop {
            self.collect_node(node, url, &methods_pass, hits);
            let rest = &bytes[depth..];
            let Some(&next) = rest.first() else { break };
            match node.child(next) {
                Some(child) if rest.starts_with(&child.label) => {
                    depth += child.label.len();
                    node = child;
                }
                _ => break,
            }
        }
    }

    fn collect_node(
        &self,
        node: &Node,
        url: &str,
        methods_pass: &impl Fn(&Methods) -> bool,
        hits: &mut Hits,
    ) {
        match &node.set {
            // One pass over the URL: `is_match` first would run the set twice whenever it matches.
            Some(set) => {
                for matched in set.matches(url).iter() {
                    let index = node.rules[matched];
                    if methods_pass(&self.rule(index).methods) {
                        hits.push(index);
                    }
                }
            }
            None => {
                for &index in &node.rules {
                    let rule = self.rule(index);
                    if methods_pass(&rule.methods) && rule.matcher.is_match(url) {
                        hits.push(index);
                    }
                }
            }
        }
    }

    /// Rejects two rules that both match the literal URL of one of them (or have the same pattern)
    /// with a common method.
    fn check_overlaps(&self) -> Result<(), RuleError> {
        let mut by_pattern: HashMap<&str, Vec<usize>> = HashMap::new();
        for (index, rule) in self.rules.iter().enumerate() {
            if rule.methods.is_empty() {
                continue;
            }
            let same = by_pattern.entry(&rule.regex_source).or_default();
            for &other in same.iter() {
                let first = &self.rules[other];
                if let Some(method) = first.methods.common(&rule.methods) {
                    return Err(RuleError::Overlap {
                        first: first.rule.id.clone(),
                        second: rule.rule.id.clone(),
                        url: rule.rule.r#match.url.clone(),
                        method,
                    });
                }
            }
            same.push(index);
            let UrlMatcher::Exact(url) = &rule.matcher else {
                continue;
            };
            if !is_canonical_url(url) {
                // No request can reach it, so it overlaps nothing.
                continue;
            }
            let mut hits = Hits::default();
            self.collect(url, |m| rule.methods.common(m).is_some(), &mut hits);
            let other = hits
                .first
                .into_iter()
                .chain(hits.more)
                .find(|&i| i as usize != index);
            if let Some(other) = other {
                let other = self.rule(other);
                return Err(RuleError::Overlap {
                    first: rule.rule.id.clone(),
                    second: other.rule.id.clone(),
                    url: url.to_string(),
                    method: rule.methods.common(&other.methods).unwrap_or_default(),
                });
            }
        }
        Ok(())
    }
}

/// True when a request can produce exactly this match URL.
fn is_canonical_url(url: &str) -> bool {
    let Some((scheme, rest)) = url.split_once("://") else {
        return false;
    };
    let (host, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
    let mut canonical = String::with_capacity(url.len());
    push_scheme(scheme, &mut canonical)
        && {
            canonical.push_str("://");
            push_host(scheme, host, &mut canonical)
        }
        && normalize_path_into(path, &mut canonical).is_ok()
        && canonical == url
}

#[derive(Default)]
struct Hits {
    first: Option<u32>,
    more: Vec<u32>,
}

impl Hits {
    fn push(&mut self, index: u32) {
        if self.first.is_none() {
            self.first = Some(index);
        } else {
            self.more.push(index);
        }
    }
}

/// A radix tree node: `label` is the text on the edge from the parent; `rules` are the rules whose
/// literal prefix ends here.
#[derive(Debug, Default)]
struct Node {
    label: Box<[u8]>,
    rules: Vec<u32>,
    /// The patterns of `rules`, in the same order, when there are more than [`SET_THRESHOLD`].
    set: Option<RegexSet>,
    /// Sorted by the first byte of their label, which is unique among siblings.
    children: Vec<Node>,
}

impl Node {
    fn child(&self, first: u8) -> Option<&Node> {
        self.children
            .binary_search_by_key(&Some(first), |c| c.label.first().copied())
            .ok()
            .and_then(|i| self.children.get(i))
    }

    fn insert(&mut self, key: &[u8], id: u32) {
        let mut node = self;
        let mut key = key;
        loop {
            let Some(&first) = key.first() else {
                node.rules.push(id);
                return;
            };
            let at = match node
                .children
                .binary_search_by_key(&Some(first), |c| c.label.first().copied())
            {
                Ok(at) => at,
                Err(at) => {
                    node.children.insert(
                        at,
                        Node {
                            label: key.into(),
                            rules: vec![id],
                            ..Node::default()
                        },
                    );
                    return;
                }
            };
            let child = &mut node.children[at];
            let common = child
                .label
                .iter()
                .zip(key)
                .take_while(|(a, b)| a == b)
                .count();
            if common < child.label.len() {
                let tail = Node {
                    label: child.label[common..].into(),
                    rules: std::mem::take(&mut child.rules),
                    set: None,
                    children: std::mem::take(&mut child.children),
                };
                child.label = child.label[..common].into();
                child.children = vec![tail];
            }
            key = &key[common..];
            node = child;
        }
    }

    fn build_sets(&mut self, rules: &[Arc<CompiledRule>]) {
        if self.rules.len() > SET_THRESHOLD {
            let patterns = self
                .rules
                .iter()
                .map(|&i| rules[i as usize].regex_source.as_str());
            // Too big for the regex size limits: test the rules one by one instead.
            self.set = RegexSet::new(patterns).ok();
        }
        for child in &mut self.children {
            child.build_sets(rules);
        }
    }
}

/// The nine methods of RFC 9110 and PATCH, one bit each; others are compared by name.
const STANDARD_METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

fn standard_bit(method: &str) -> u16 {
    STANDARD_METHODS
        .iter()
        .position(|m| m.eq_ignore_ascii_case(method))
        .map_or(0, |i| 1 << i)
}

/// `match.methods`, compared case-insensitively.
#[derive(Debug, Clone, Default)]
struct Methods {
    standard: u16,
    /// Upper-cased.
    other: Vec<String>,
}

struct RequestMethod<'a> {
    bit: u16,
    name: &'a str,
}

impl<'a> RequestMethod<'a> {
    fn new(name: &'a str) -> Self {
        RequestMethod {
            bit: standard_bit(name),
            name,
        }
    }
}

impl Methods {
    fn new(list: &[String]) -> Self {
        let mut methods = Methods::default();
        for method in list {
            match standard_bit(method) {
                0 => methods.other.push(method.to_ascii_uppercase()),
                bit => methods.standard |= bit,
            }
        }
        methods
    }

    fn is_empty(&self) -> bool {
        self.standard == 0 && self.other.is_empty()
    }

    fn contains(&self, method: &RequestMethod<'_>) -> bool {
        if method.bit != 0 {
            self.standard & method.bit != 0
        } else {
            self.other
                .iter()
                .any(|m| m.eq_ignore_ascii_case(method.name))
        }
    }

    /// A method both accept.
    fn common(&self, other: &Methods) -> Option<String> {
        let both = self.standard & other.standard;
        if both != 0 {
            let first = both.trailing_zeros() as usize;
            return STANDARD_METHODS.get(first).map(|m| (*m).to_string());
        }
        self.other.iter().find(|m| other.other.contains(m)).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rule::{Handler, Match, Upstream};

    fn rule(id: &str, url: &str, methods: &[&str]) -> Rule {
        Rule {
            id: id.into(),
            version: String::new(),
            description: String::new(),
            r#match: Match {
                url: url.into(),
                methods: methods.iter().map(|m| m.to_string()).collect(),
            },
            upstream: Upstream::default(),
            authenticators: vec![Handler::new("anonymous")],
            authorizer: Handler::new("allow"),
            mutators: vec![Handler::new("noop")],
            errors: Vec::new(),
        }
    }

    fn set(rules: Vec<Rule>) -> RuleSet {
        RuleSet::compile(rules, Strategy::Regexp).unwrap()
    }

    fn found(set: &RuleSet, method: &str, url: &str) -> Result<String, MatchError> {
        let (scheme, rest) = url.split_once("://").unwrap();
        let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        set.find(method, scheme, host, path)
            .map(|m| m.rule.id().to_string())
    }

    #[test]
    fn the_reference_rule_matches_with_its_capture() {
        let set = set(vec![rule(
            "api-users-get",
            "https://api.example.com/users/<[0-9]+>",
            &["GET", "HEAD"],
        )]);
        let m = set
            .find("GET", "https", "api.example.com", "/users/123")
            .unwrap();
        assert_eq!(m.rule.id(), "api-users-get");
        assert_eq!(m.rule.index(), 0);
        assert_eq!(m.captures, ["123"]);
        assert_eq!(m.url(), "https://api.example.com/users/123");
        assert_eq!(m.path(), "/users/123");
        assert_eq!(
            found(&set, "GET", "https://api.example.com/users/abc"),
            Err(MatchError::NoMatch)
        );
        assert_eq!(
            found(&set, "GET", "http://api.example.com/users/1"),
            Err(MatchError::NoMatch)
        );
    }

    #[test]
    fn captures_are_all_groups_in_order() {
        let set = set(vec![
            rule(
                "r",
                "<https?>://<[^/.]+>.example.com/<(users|groups)>/<[0-9]+>/<(?:x)?(y)?>",
                &["GET"],
            ),
            rule("lit", "https://example.com/plain", &["GET"]),
        ]);
        let m = set
            .find("GET", "http", "tenant.example.com", "/groups/42/x")
            .unwrap();
        assert_eq!(
            m.captures,
            ["http", "tenant", "groups", "groups", "42", "x", ""]
        );
        let m = set.find("GET", "https", "example.com", "/plain").unwrap();
        assert!(m.captures.is_empty());
    }

    #[test]
    fn methods_are_case_insensitive_and_empty_matches_nothing() {
        let set = set(vec![
            rule("get", "https://x/a", &["get", "Head"]),
            rule("custom", "https://x/b", &["PROPFIND"]),
            rule("none", "https://x/c", &[]),
        ]);
        assert_eq!(found(&set, "GET", "https://x/a").unwrap(), "get");
        assert_eq!(found(&set, "head", "https://x/a").unwrap(), "get");
        assert_eq!(found(&set, "POST", "https://x/a"), Err(MatchError::NoMatch));
        assert_eq!(found(&set, "propfind", "https://x/b").unwrap(), "custom");
        assert_eq!(
            found(&set, "MKCOL", "https://x/b"),
            Err(MatchError::NoMatch)
        );
        for method in ["GET", "POST", "DELETE", "FOO"] {
            assert_eq!(found(&set, method, "https://x/c"), Err(MatchError::NoMatch));
        }
        assert_eq!(set.get("none").unwrap().id(), "none");
    }

    #[test]
    fn several_matches_are_an_error_naming_them_in_rule_order() {
        let set = set(vec![
            rule("b", "https://x/<.*>", &["GET"]),
            rule("c", "https://x/api/<.*>", &["GET", "POST"]),
            rule("a", "<.*>/api/v1", &["GET"]),
        ]);
        assert_eq!(
            found(&set, "GET", "https://x/api/v1"),
            Err(MatchError::Multiple(vec![
                "b".into(),
                "c".into(),
                "a".into()
            ]))
        );
        assert_eq!(
            found(&set, "POST", "https://x/api/v1").unwrap(),
            "c",
            "methods decide first"
        );
        assert_eq!(
            MatchError::Multiple(vec!["b".into(), "c".into()]).to_string(),
            "expected exactly one rule but found multiple rules: b, c"
        );
    }

    #[test]
    fn path_tricks_cannot_reach_admin_through_public() {
        let set = set(vec![
            rule("public", "https://app.example.com/public/<.*>", &["GET"]),
            rule("admin", "https://app.example.com/admin<(/.*)?>", &["GET"]),
        ]);
        for path in [
            "/admin",
            "/public/../admin",
            "/%61dmin",
            "//admin",
            "/public/%2e%2e/admin",
            "/public/.%2E/admin",
            "/public/./../admin/",
            "/public//../admin",
        ] {
            let m = set.find("GET", "https", "app.example.com", path).unwrap();
            assert_eq!(m.rule.id(), "admin", "{path}");
            assert!(m.path().starts_with("/admin"), "{path}");
        }
        for path in [
            "/public/..%2Fadmin",
            "/public/..%5Cadmin",
            "/public/..;/admin",
            "/public\\..\\admin",
            "/public/%00/../admin",
        ] {
            assert!(
                matches!(
                    set.find("GET", "https", "app.example.com", path),
                    Err(MatchError::InvalidPath(_))
                ),
                "{path}"
            );
        }
        // An encoded slash stays inside its segment.
        let m = set
            .find("GET", "https", "app.example.com", "/public/a%2fb")
            .unwrap();
        assert_eq!((m.rule.id(), m.path()), ("public", "/public/a%2Fb"));
    }

    #[test]
    fn scheme_and_host_are_canonical() {
        let set = set(vec![rule("r", "https://API.example.com/<.*>", &["GET"])]);
        for host in [
            "api.example.com",
            "API.EXAMPLE.COM",
            "api.example.com.",
            "api.example.com:443",
        ] {
            assert_eq!(
                found(&set, "GET", &format!("HTTPS://{host}/x")).unwrap(),
                "r"
            );
        }
        assert_eq!(
            found(&set, "GET", "https://api.example.com:8443/x"),
            Err(MatchError::NoMatch)
        );
        assert_eq!(
            set.find("GET", "https", "api.example.com/x", "/")
                .unwrap_err(),
            MatchError::InvalidHost
        );
        assert_eq!(
            set.find("GET", "ht tp", "api.example.com", "/")
                .unwrap_err(),
            MatchError::InvalidScheme
        );
    }

    #[test]
    fn a_host_header_cannot_move_text_into_the_path() {
        let set = set(vec![rule("r", "https://x/admin/<.*>", &["GET"])]);
        assert_eq!(
            set.find("GET", "https", "x/admin", "/y").unwrap_err(),
            MatchError::InvalidHost
        );
    }

    #[test]
    fn the_query_never_takes_part() {
        let set = set(vec![rule("r", "https://x/search", &["GET"])]);
        assert_eq!(found(&set, "GET", "https://x/search").unwrap(), "r");
        assert_eq!(
            set.find("GET", "https", "x", "/search?q=1").unwrap_err(),
            MatchError::InvalidPath(PathError::QueryOrFragment { at: 7 })
        );
    }

    #[test]
    fn trailing_slash_is_significant() {
        let set = set(vec![
            rule("users", "https://x/users", &["GET"]),
            rule("dir", "https://x/docs/", &["GET"]),
        ]);
        assert_eq!(found(&set, "GET", "https://x/users").unwrap(), "users");
        assert_eq!(
            found(&set, "GET", "https://x/users/"),
            Err(MatchError::NoMatch)
        );
        assert_eq!(found(&set, "GET", "https://x/docs/").unwrap(), "dir");
        assert_eq!(found(&set, "GET", "https://x/docs/a/..").unwrap(), "dir");
    }

    #[test]
    fn glob_strategy() {
        let set = RuleSet::compile(
            vec![
                rule("users", "https://<*>.example.com/users/<*>", &["GET"]),
                rule("files", "https://static.example.org/<**>", &["GET"]),
                rule("alt", "https://x/<{a,b}>/<[0-9]>", &["GET"]),
            ],
            Strategy::Glob,
        )
        .unwrap();
        assert_eq!(set.strategy(), Strategy::Glob);
        let m = set
            .find("GET", "https", "api.example.com", "/users/42")
            .unwrap();
        assert_eq!(m.rule.id(), "users");
        assert!(m.captures.is_empty());
        assert_eq!(
            found(&set, "GET", "https://api.example.com/users/42/x"),
            Err(MatchError::NoMatch)
        );
        assert_eq!(
            found(&set, "GET", "https://a.b.example.com/users/42"),
            Err(MatchError::NoMatch)
        );
        assert_eq!(
            found(&set, "GET", "https://static.example.org/css/site.min.css").unwrap(),
            "files"
        );
        assert_eq!(found(&set, "GET", "https://x/b/7").unwrap(), "alt");
        assert_eq!(
            found(&set, "GET", "https://x/c/7"),
            Err(MatchError::NoMatch)
        );
        // A valid pattern for one strategy may not be one for the other.
        let star = || vec![rule("g", "https://x/<*>", &["GET"])];
        assert!(RuleSet::compile(star(), Strategy::Glob).is_ok());
        assert!(RuleSet::compile(star(), Strategy::Regexp).is_err());
    }

    #[test]
    fn compile_errors_name_the_rule_and_key() {
        let err = RuleSet::compile(
            vec![
                rule("a", "https://x/a", &["GET"]),
                rule("a", "https://x/b", &["GET"]),
            ],
            Strategy::Regexp,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "duplicate rule id \"a\": rule #0 and rule #1"
        );
        let err = RuleSet::compile(
            vec![rule("bad", "https://x/<(?=a)>", &["GET"])],
            Strategy::Regexp,
        )
        .unwrap_err();
        assert!(
            matches!(&err, RuleError::InvalidPattern { id, .. } if id == "bad"),
            "{err}"
        );
        let mut invalid = rule("m", "https://x/a", &["GET"]);
        invalid.mutators.clear();
        let err = RuleSet::compile(vec![invalid], Strategy::Regexp).unwrap_err();
        assert_eq!(
            err.to_string(),
            "rule #0 (\"m\"): mutators: must list at least one mutator (use `noop` to change nothing)"
        );
    }

    #[test]
    fn overlaps_on_a_literal_url_are_rejected() {
        let err = RuleSet::compile(
            vec![
                rule("all", "https://x/api/<.*>", &["GET", "POST"]),
                rule("health", "https://x/api/health", &["GET"]),
            ],
            Strategy::Regexp,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "rules \"health\" and \"all\" both match GET https://x/api/health; \
             every such request would fail with 500"
        );
        let err = RuleSet::compile(
            vec![
                rule("one", "https://x/<[0-9]+>", &["put"]),
                rule("two", "https://x/<[0-9]+>", &["PUT"]),
            ],
            Strategy::Regexp,
        )
        .unwrap_err();
        assert!(matches!(err, RuleError::Overlap { .. }), "{err}");
        // Disjoint methods, or a literal no request can produce, are fine.
        set(vec![
            rule("all", "https://x/api/<.*>", &["POST"]),
            rule("health", "https://x/api/health", &["GET"]),
            rule("never", "https://x/api//double", &["POST"]),
            rule("same-a", "https://x/<[0-9]+>", &["GET"]),
            rule("same-b", "https://x/<[0-9]+>", &["DELETE"]),
        ]);
    }

    #[test]
    fn literal_paths_in_rules_are_canonical() {
        let set = set(vec![
            rule("cafe", "https://x/caf\u{e9}/<.*>", &["GET"]),
            rule("admin", "https://x/%61dmin", &["GET"]),
        ]);
        assert_eq!(
            found(&set, "GET", "https://x/caf%c3%a9/menu").unwrap(),
            "cafe"
        );
        assert_eq!(
            found(&set, "GET", "https://x/caf\u{e9}/menu").unwrap(),
            "cafe"
        );
        assert_eq!(found(&set, "GET", "https://x/admin").unwrap(), "admin");
    }

    #[test]
    fn the_empty_set_matches_nothing() {
        let set = RuleSet::default();
        assert!(set.is_empty());
        assert_eq!(found(&set, "GET", "https://x/"), Err(MatchError::NoMatch));
    }

    #[test]
    fn strategy_reads_like_the_config() {
        assert_eq!("glob".parse::<Strategy>().unwrap(), Strategy::Glob);
        assert_eq!("regexp".parse::<Strategy>().unwrap(), Strategy::Regexp);
        assert!("regex".parse::<Strategy>().is_err());
        assert_eq!(
            serde_json::from_str::<Strategy>("\"glob\"").unwrap(),
            Strategy::Glob
        );
        assert_eq!(Strategy::default().to_string(), "regexp");
    }

    /// The index must find exactly what testing every rule finds, with small and `RegexSet` buckets.
    #[test]
    fn the_index_agrees_with_a_linear_scan() {
        let mut rules = Vec::new();
        for i in 0..40 {
            rules.push(rule(
                &format!("users-{i}"),
                &format!("https://h{}.example.com/u{i}/<[0-9]+>", i % 4),
                &["GET"],
            ));
            rules.push(rule(
                &format!("lit-{i}"),
                &format!("https://h{}.example.com/u{i}/me", i % 4),
                &["GET", "PUT"],
            ));
            rules.push(rule(
                &format!("any-host-{i}"),
                &format!("https://<[a-z0-9.]+>/t{i}/<.*>"),
                &["POST"],
            ));
        }
        rules.push(rule(
            "no-prefix",
            "<https?>://<.*>/shared/<.*>",
            &["GET", "POST"],
        ));
        rules.push(rule("h0", "https://h0.example.com/<.*>", &["DELETE"]));
        let set = set(rules.clone());
        let linear = |method: &str, url: &str| -> Vec<String> {
            rules
                .iter()
                .filter(|r| {
                    r.r#match
                        .methods
                        .iter()
                        .any(|m| m.eq_ignore_ascii_case(method))
                })
                .filter(|r| {
                    let p = pattern::compile(&r.r#match.url, Strategy::Regexp).unwrap();
                    Regex::new(&p.regex).unwrap().is_match(url)
                })
                .map(|r| r.id.clone())
                .collect()
        };
        let mut checked = 0;
        for method in ["GET", "PUT", "POST", "DELETE"] {
            for host in ["h0.example.com", "h1.example.com", "other.net"] {
                for path in [
                    "/u1/7",
                    "/u4/me",
                    "/u5/me",
                    "/t3/x",
                    "/t39/a/b",
                    "/shared/x",
                    "/",
                    "/u12/x",
                ] {
                    let url = format!("https://{host}{path}");
                    let want = linear(method, &url);
                    let got = match set.find(method, "https", host, path) {
                        Ok(m) => vec![m.rule.id().to_string()],
                        Err(MatchError::NoMatch) => vec![],
                        Err(MatchError::Multiple(ids)) => ids,
                        Err(e) => panic!("{e}"),
                    };
                    assert_eq!(got, want, "{method} {url}");
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, 96);
        let https = set.root.child(b'h').unwrap();
        assert_eq!(&*https.label, b"https://");
        assert_eq!(https.rules.len(), 40);
        assert!(
            https.set.is_some(),
            "the any-host rules are tested with a RegexSet"
        );
    }

    #[test]
    fn radix_tree_splits_and_finds_prefixes() {
        let mut root = Node::default();
        for (i, key) in ["abc", "abd", "ab", "", "abcdef", "x"].iter().enumerate() {
            root.insert(key.as_bytes(), i as u32);
        }
        let mut seen: Vec<u32> = Vec::new();
        let mut node = &root;
        let mut rest: &[u8] = b"abcdefg";
        loop {
            seen.extend(&node.rules);
            let Some(child) = rest.first().and_then(|&b| node.child(b)) else {
                break;
            };
            if !rest.starts_with(&child.label) {
                break;
            }
            rest = &rest[child.label.len()..];
            node = child;
        }
        assert_eq!(seen, [3, 2, 0, 4]);
    }
}
