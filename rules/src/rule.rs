//! The access rule model, field for field the one Oathkeeper reads from its rule files
//! (`rule/rule.go`).
//!
//! A rule file is a JSON or YAML array of these objects. Unlike Oathkeeper, which ignores keys it does
//! not know, every object here rejects unknown keys, so a typo such as `methdos` is reported instead of
//! silently producing a rule that matches nothing. The gRPC match form (`match.full_method`) is not
//! supported and is rejected as an unknown key.

use serde::{Deserialize, Deserializer, Serialize};

/// One access rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Unique within the rule set. Required.
    pub id: String,
    /// The Oathkeeper release the rule was written for; free text, kept for the rules API.
    #[serde(default)]
    pub version: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// Which requests this rule handles.
    pub r#match: Match,
    /// Where proxy mode forwards the request. Absent for rules used only through `/decisions`.
    #[serde(default)]
    pub upstream: Upstream,
    /// Tried in order until one is responsible. At least one.
    #[serde(default, deserialize_with = "null_as_default")]
    pub authenticators: Vec<Handler>,
    /// Exactly one.
    pub authorizer: Handler,
    /// Run in order; all must succeed. At least one (`noop` if nothing is to change).
    #[serde(default, deserialize_with = "null_as_default")]
    pub mutators: Vec<Handler>,
    /// Error handlers with their `when` conditions; empty means the global `errors.fallback`.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub errors: Vec<Handler>,
}

/// `match`: the URL pattern and the methods a rule applies to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Match {
    /// `scheme://host[:port]/path` pattern; `<...>` parts are regular expressions or globs, depending on the
    /// matching strategy, and everything outside them is literal.
    pub url: String,
    /// HTTP methods, compared case-insensitively. As in Oathkeeper, an empty list matches no request.
    #[serde(default, deserialize_with = "null_as_default")]
    pub methods: Vec<String>,
}

/// `upstream`: where proxy mode forwards a request that passed the pipeline.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Upstream {
    /// Base URL of the upstream; may be empty for decision-only rules.
    #[serde(default)]
    pub url: String,
    /// Keep the client's `Host` header instead of the upstream URL's host.
    #[serde(default)]
    pub preserve_host: bool,
    /// Removed (first occurrence of `/<strip_path>`) from the forwarded path.
    #[serde(default)]
    pub strip_path: String,
}

/// A pipeline handler reference: its name and its rule-level config, merged over the global config of
/// that handler by the pipeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Handler {
    /// Handler name, e.g. `cookie_session`, `allow`, `header`, `json`.
    pub handler: String,
    /// Handler-specific config; `null` and absent are the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<serde_json::Value>,
}

impl Handler {
    /// A handler without rule-level config.
    pub fn new(handler: impl Into<String>) -> Self {
        Handler {
            handler: handler.into(),
            config: None,
        }
    }
}

/// A structural problem in one rule: the key (`match.url`, `authenticators[1].handler`) and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// Dotted path of the offending key.
    pub key: String,
    /// What is wrong with it.
    pub message: String,
}

impl Invalid {
    fn new(key: impl Into<String>, message: impl Into<String>) -> Self {
        Invalid {
            key: key.into(),
            message: message.into(),
        }
    }
}

impl Rule {
    /// Checks what Oathkeeper's rule validator checks without knowing the enabled handlers: a non-empty
    /// `id` and `match.url`, method names that are HTTP tokens, at least one authenticator and mutator,
    /// non-empty handler names and an absolute `upstream.url` when one is given.
    ///
    /// Whether a handler exists, is enabled and accepts its config is the pipeline's business.
    pub fn validate(&self) -> Result<(), Invalid> {
        if self.id.trim().is_empty() {
            return Err(Invalid::new("id", "must not be empty"));
        }
        if self.r#match.url.is_empty() {
            return Err(Invalid::new("match.url", "must not be empty"));
        }
        for (i, method) in self.r#match.methods.iter().enumerate() {
            if !is_token(method) {
                return Err(Invalid::new(
                    format!("match.methods[{i}]"),
                    format!("{method:?} is not an HTTP method"),
                ));
            }
        }
        if !self.upstream.url.is_empty() && !is_absolute_url(&self.upstream.url) {
            return Err(Invalid::new(
                "upstream.url",
                format!("{:?} is not an absolute URL", self.upstream.url),
            ));
        }
        if self.authenticators.is_empty() {
            return Err(Invalid::new(
                "authenticators",
                "must list at least one authenticator",
            ));
        }
        check_names("authenticators", &self.authenticators)?;
        if self.authorizer.handler.is_empty() {
            return Err(Invalid::new("authorizer.handler", "must not be empty"));
        }
        if self.mutators.is_empty() {
            return Err(Invalid::new(
                "mutators",
                "must list at least one mutator (use `noop` to change nothing)",
            ));
        }
        check_names("mutators", &self.mutators)?;
        check_names("errors", &self.errors)
    }
}

fn check_names(list: &str, handlers: &[Handler]) -> Result<(), Invalid> {
    match handlers.iter().position(|h| h.handler.is_empty()) {
        Some(i) => Err(Invalid::new(
            format!("{list}[{i}].handler"),
            "must not be empty",
        )),
        None => Ok(()),
    }
}

/// RFC 9110 `token`, the syntax of a method name.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// `scheme://` followed by something: what Go's `url.ParseRequestURI` needs for an upstream to be usable.
fn is_absolute_url(s: &str) -> bool {
    match s.split_once("://") {
        Some((scheme, rest)) => {
            let mut chars = scheme.chars();
            chars.next().is_some_and(|c| c.is_ascii_alphabetic())
                && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
                && !rest.is_empty()
        }
        None => false,
    }
}

/// YAML files often leave a list key without a value (`errors:`); Go reads that `null` as an empty list.
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn minimal() -> serde_json::Value {
        json!({
            "id": "r1",
            "match": { "url": "https://example.com/<.*>", "methods": ["GET"] },
            "authenticators": [{ "handler": "anonymous" }],
            "authorizer": { "handler": "allow" },
            "mutators": [{ "handler": "noop" }]
        })
    }

    #[test]
    fn the_reference_example_round_trips() {
        let value = json!({
            "id": "api-users-get",
            "version": "v0.40.0",
            "description": "optional, free text",
            "match": { "url": "https://api.example.com/users/<[0-9]+>", "methods": ["GET", "HEAD"] },
            "upstream": { "url": "http://users-svc:8080", "preserve_host": false, "strip_path": "" },
            "authenticators": [
                { "handler": "cookie_session", "config": { "check_session_url": "http://kratos:4433/sessions/whoami", "preserve_path": true } },
                { "handler": "jwt" },
                { "handler": "anonymous" }
            ],
            "authorizer": { "handler": "allow" },
            "mutators": [
                { "handler": "header", "config": { "headers": { "X-User": "{{ print .Subject }}" } } },
                { "handler": "id_token" }
            ],
            "errors": [{ "handler": "json" }]
        });
        let rule: Rule = serde_json::from_value(value.clone()).unwrap();
        assert_eq!(rule.id, "api-users-get");
        assert_eq!(rule.r#match.methods, ["GET", "HEAD"]);
        assert_eq!(rule.upstream.url, "http://users-svc:8080");
        assert_eq!(rule.authenticators.len(), 3);
        assert_eq!(rule.authenticators[1], Handler::new("jwt"));
        assert_eq!(
            rule.mutators[0].config,
            Some(json!({ "headers": { "X-User": "{{ print .Subject }}" } }))
        );
        rule.validate().unwrap();
        assert_eq!(serde_json::to_value(&rule).unwrap(), value);
    }

    #[test]
    fn optional_keys_default() {
        let rule: Rule = serde_json::from_value(minimal()).unwrap();
        assert_eq!(rule.version, "");
        assert_eq!(rule.upstream, Upstream::default());
        assert!(rule.errors.is_empty());
        assert_eq!(rule.authorizer.config, None);
    }

    #[test]
    fn null_lists_and_config_are_empty() {
        let mut value = minimal();
        value["errors"] = json!(null);
        value["match"]["methods"] = json!(null);
        value["authorizer"]["config"] = json!(null);
        let rule: Rule = serde_json::from_value(value).unwrap();
        assert!(rule.errors.is_empty());
        assert!(rule.r#match.methods.is_empty());
        assert_eq!(rule.authorizer.config, None);
    }

    #[test]
    fn unknown_keys_are_rejected_everywhere() {
        for (pointer, key) in [
            ("", "matches"),
            ("/match", "full_method"),
            ("/authorizer", "configs"),
            ("/mutators/0", "enabled"),
        ] {
            let mut value = minimal();
            value
                .pointer_mut(pointer)
                .unwrap()
                .as_object_mut()
                .unwrap()
                .insert(key.into(), json!(1));
            let err = serde_json::from_value::<Rule>(value).unwrap_err();
            assert!(err.to_string().contains(key), "{err}");
        }
        let mut value = minimal();
        value["upstream"] = json!({ "url": "http://a", "strip": "/x" });
        let err = serde_json::from_value::<Rule>(value).unwrap_err();
        assert!(err.to_string().contains("unknown field `strip`"), "{err}");
    }

    #[test]
    fn id_match_and_authorizer_are_required() {
        for key in ["id", "match", "authorizer"] {
            let mut value = minimal();
            value.as_object_mut().unwrap().remove(key);
            let err = serde_json::from_value::<Rule>(value).unwrap_err();
            assert!(err.to_string().contains(&format!("missing field `{key}`")));
        }
    }

    #[test]
    fn validate_names_the_key() {
        let base: Rule = serde_json::from_value(minimal()).unwrap();
        base.validate().unwrap();
        type Change = fn(&mut Rule);
        let cases: [(&str, Change); 9] = [
            ("id", |r| r.id = " ".into()),
            ("match.url", |r| r.r#match.url.clear()),
            ("match.methods[1]", |r| {
                r.r#match.methods.push("GE T".into())
            }),
            ("upstream.url", |r| r.upstream.url = "users-svc:8080".into()),
            ("authenticators", |r| r.authenticators.clear()),
            ("authenticators[1].handler", |r| {
                r.authenticators.push(Handler::new(""))
            }),
            ("authorizer.handler", |r| r.authorizer.handler.clear()),
            ("mutators", |r| r.mutators.clear()),
            ("errors[0].handler", |r| r.errors.push(Handler::new(""))),
        ];
        for (key, change) in cases {
            let mut rule = base.clone();
            change(&mut rule);
            assert_eq!(rule.validate().unwrap_err().key, key);
        }
    }

    #[test]
    fn methods_may_be_any_token_in_any_case() {
        let mut rule: Rule = serde_json::from_value(minimal()).unwrap();
        rule.r#match.methods = vec!["get".into(), "PROPFIND".into()];
        rule.validate().unwrap();
    }
}
