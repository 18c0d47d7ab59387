//! Rule repositories: the `access_rules.repositories` URLs Oathkeeper reads rules from
//! (`rule/fetcher_default.go`), for the forms that need no network: `file:///abs/path.json`,
//! `file://relative/path.yaml` or a plain path, and `inline://<base64 of a JSON or YAML array>`.
//!
//! Loading is pure and cheap: read, parse, validate. Reloading is the caller's loop: poll
//! [`fingerprint`] of each [`repository_file`], and when one changes load all repositories again,
//! compile a new [`crate::RuleSet`] and swap it in; on error keep the old set. Note that a file being
//! rewritten may briefly be empty, which reads as zero rules (as in Oathkeeper); the next poll sees the
//! finished file.

use std::collections::HashMap;
use std::fmt;
use std::hash::Hasher;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use serde_json::Value;

use crate::normalize::decode_escape;
use crate::rule::Rule;
use crate::RuleError;

/// How to read a rule document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// A JSON array.
    Json,
    /// A YAML sequence (JSON is YAML too).
    Yaml,
    /// JSON if it parses as JSON, YAML otherwise, as Oathkeeper decides.
    Auto,
}

impl Format {
    /// The format a file name suggests: `.json`, `.yaml`/`.yml`, anything else [`Format::Auto`].
    pub fn from_path(path: &Path) -> Format {
        match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("json") => Format::Json,
            Some(e) if e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml") => {
                Format::Yaml
            }
            _ => Format::Auto,
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Format::Json => "JSON",
            Format::Yaml => "YAML",
            Format::Auto => "JSON or YAML",
        })
    }
}

/// Parses a rule document: a JSON or YAML array of rules. Every rule is validated and ids must be
/// unique. Errors name the repository as `(in memory)`; use [`load_repository`] for named sources.
pub fn parse_rules(bytes: &[u8], format: Format) -> Result<Vec<Rule>, RuleError> {
    parse_in("(in memory)", bytes, format)
}

/// Loads the rules of one repository URL: `file:///abs/path`, `file://relative/path`, a plain path,
/// or `inline://<base64>`. A file's extension picks the format (`.json`, `.yaml`, `.yml`; otherwise
/// sniffed); inline content is sniffed.
pub fn load_repository(url: &str) -> Result<Vec<Rule>, RuleError> {
    if let Some(encoded) = url.strip_prefix("inline://") {
        let label = inline_label(encoded);
        let engine = GeneralPurpose::new(
            &alphabet::STANDARD,
            GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
        );
        let bytes = engine
            .decode(encoded.trim())
            .map_err(|source| RuleError::InlineBase64 {
                repository: label.clone(),
                source,
            })?;
        return parse_in(&label, &bytes, Format::Auto);
    }
    let path = repository_file(url).ok_or_else(|| RuleError::UnsupportedRepository {
        repository: url.to_owned(),
    })?;
    let bytes = std::fs::read(&path).map_err(|source| RuleError::Read {
        repository: url.to_owned(),
        source,
    })?;
    parse_in(url, &bytes, Format::from_path(&path))
}

/// Loads several repositories into one list, in order, and checks that ids are unique across them.
pub fn load_repositories<S: AsRef<str>>(urls: &[S]) -> Result<Vec<Rule>, RuleError> {
    let mut all = Vec::new();
    let mut seen: HashMap<String, String> = HashMap::new();
    for url in urls {
        let url = url.as_ref();
        let label = url
            .strip_prefix("inline://")
            .map_or_else(|| url.to_owned(), inline_label);
        for (index, rule) in load_repository(url)?.into_iter().enumerate() {
            let here = format!("repository {label}, rule #{index}");
            if let Some(first) = seen.insert(rule.id.clone(), here.clone()) {
                return Err(RuleError::DuplicateId {
                    id: rule.id,
                    first,
                    second: here,
                });
            }
            all.push(rule);
        }
    }
    Ok(all)
}

/// The local file behind a repository URL, or `None` for `inline://` and remote repositories.
/// `file:///etc/rules.json` is absolute, `file://rules.json` relative to the working directory;
/// percent-escapes are decoded.
pub fn repository_file(url: &str) -> Option<PathBuf> {
    if let Some(rest) = url.strip_prefix("file://") {
        return percent_decode(rest).map(PathBuf::from);
    }
    if url.contains("://") || url.is_empty() {
        return None;
    }
    Some(PathBuf::from(url))
}

/// What a reload loop compares to see whether a rule file changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint {
    /// Last modification time, where the file system keeps one.
    pub modified: Option<SystemTime>,
    /// Length in bytes.
    pub len: u64,
    /// Hash of the content (stable within one build of the binary).
    pub hash: u64,
}

/// Reads the file and returns its fingerprint; `None` if it cannot be read (missing, permissions).
pub fn fingerprint(path: &Path) -> Option<Fingerprint> {
    let modified = std::fs::metadata(path).ok()?.modified().ok();
    let bytes = std::fs::read(path).ok()?;
    let mut hasher = std::hash::DefaultHasher::new();
    hasher.write(&bytes);
    Some(Fingerprint {
        modified,
        len: u64::try_from(bytes.len()).unwrap_or(u64::MAX),
        hash: hasher.finish(),
    })
}

fn parse_in(repository: &str, bytes: &[u8], format: Format) -> Result<Vec<Rule>, RuleError> {
    let syntax = |format, message| RuleError::Syntax {
        repository: repository.to_owned(),
        format,
        message,
    };
    let document = if bytes.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        match format {
            Format::Json => parse_json(bytes).map_err(|m| syntax(Format::Json, m))?,
            Format::Yaml => parse_yaml(bytes).map_err(|m| syntax(Format::Yaml, m))?,
            Format::Auto => match parse_json(bytes) {
                Ok(document) => document,
                Err(json) => parse_yaml(bytes).map_err(|yaml| {
                    let starts_like_json = bytes
                        .iter()
                        .find(|b| !b.is_ascii_whitespace())
                        .is_some_and(|b| *b == b'[' || *b == b'{');
                    if starts_like_json {
                        syntax(Format::Json, json)
                    } else {
                        syntax(Format::Yaml, yaml)
                    }
                })?,
            },
        }
    };
    let items = match document {
        Value::Array(items) => items,
        Value::Null => Vec::new(),
        other => {
            return Err(RuleError::NotAnArray {
                repository: repository.to_owned(),
                found: kind(&other),
            })
        }
    };
    let mut rules = Vec::with_capacity(items.len());
    let mut seen: HashMap<String, usize> = HashMap::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        let id = item.get("id").and_then(Value::as_str).map(str::to_owned);
        let invalid = |key: String, message: String| RuleError::InvalidRule {
            repository: Some(repository.to_owned()),
            index,
            id: id.clone(),
            key,
            message,
        };
        let rule: Rule = serde_path_to_error::deserialize(item).map_err(|e| {
            let path = e.path().to_string();
            let key = if path == "." { String::new() } else { path };
            invalid(key, e.into_inner().to_string())
        })?;
        rule.validate()
            .map_err(|problem| invalid(problem.key, problem.message))?;
        if let Some(first) = seen.insert(rule.id.clone(), index) {
            return Err(RuleError::DuplicateId {
                id: rule.id,
                first: format!("repository {repository}, rule #{first}"),
                second: format!("repository {repository}, rule #{index}"),
            });
        }
        rules.push(rule);
    }
    Ok(rules)
}

fn parse_json(bytes: &[u8]) -> Result<Value, String> {
    serde_json::from_slice(bytes).map_err(|e| e.to_string())
}

/// YAML with merge keys (`<<: *defaults`) applied, as Go's YAML reader does, then seen as JSON.
fn parse_yaml(bytes: &[u8]) -> Result<Value, String> {
    let mut document: serde_yaml::Value =
        serde_yaml::from_slice(bytes).map_err(|e| e.to_string())?;
    document.apply_merge().map_err(|e| e.to_string())?;
    serde_yaml::from_value(document).map_err(|e| e.to_string())
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `inline://` URLs can be kilobytes long; errors show their start and size.
fn inline_label(encoded: &str) -> String {
    const SHOWN: usize = 16;
    if encoded.chars().count() <= SHOWN {
        format!("inline://{encoded}")
    } else {
        let start: String = encoded.chars().take(SHOWN).collect();
        format!("inline://{start}... ({} bytes)", encoded.len())
    }
}

/// Decodes every `%XX`; `None` if the result is not UTF-8 or an escape is malformed.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            out.push(decode_escape(&bytes[i..])?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const JSON: &str = r#"[
      {
        "id": "api-users-get",
        "version": "v0.40.0",
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
        "errors": [
          { "handler": "redirect", "config": { "to": "https://login.example.com", "return_to_query_param": "return_to",
              "when": [ { "error": ["unauthorized"], "request": { "header": { "accept": ["text/html"] } } } ] } },
          { "handler": "json" }
        ]
      }
    ]"#;

    const YAML: &str = "\
- id: test-rule-1-yaml
  upstream: { preserve_host: true, strip_path: /api, url: https://mybackend.com/api }
  match: { url: myproxy.com/api, methods: [GET, POST] }
  authenticators: [ { handler: noop }, { handler: anonymous } ]
  authorizer: { handler: allow }
  mutators: [ { handler: noop } ]
";

    fn invalid(result: Result<Vec<Rule>, RuleError>) -> (usize, Option<String>, String, String) {
        match result {
            Err(RuleError::InvalidRule {
                index,
                id,
                key,
                message,
                ..
            }) => (index, id, key, message),
            other => panic!("expected InvalidRule, got {other:?}"),
        }
    }

    #[test]
    fn reads_the_reference_json() {
        let rules = parse_rules(JSON.as_bytes(), Format::Json).unwrap();
        assert_eq!(rules.len(), 1);
        let rule = &rules[0];
        assert_eq!(rule.id, "api-users-get");
        assert_eq!(rule.errors[0].handler, "redirect");
        assert_eq!(
            rule.errors[0].config.as_ref().unwrap()["when"][0]["error"][0],
            "unauthorized"
        );
        assert_eq!(parse_rules(JSON.as_bytes(), Format::Auto).unwrap(), rules);
        assert_eq!(parse_rules(JSON.as_bytes(), Format::Yaml).unwrap(), rules);
    }

    #[test]
    fn reads_the_reference_yaml() {
        let rules = parse_rules(YAML.as_bytes(), Format::Yaml).unwrap();
        assert_eq!(rules[0].id, "test-rule-1-yaml");
        assert!(rules[0].upstream.preserve_host);
        assert_eq!(rules[0].upstream.strip_path, "/api");
        assert_eq!(rules[0].r#match.methods, ["GET", "POST"]);
        assert_eq!(rules[0].authenticators.len(), 2);
        assert_eq!(parse_rules(YAML.as_bytes(), Format::Auto).unwrap(), rules);
    }

    #[test]
    fn yaml_merge_keys_and_null_lists_work() {
        let yaml = "\
- &base
  id: a
  match: { url: 'https://x/a', methods: [GET] }
  authenticators: [ { handler: anonymous } ]
  authorizer: { handler: allow }
  mutators: [ { handler: noop } ]
  errors:
- <<: *base
  id: b
  match: { url: 'https://x/b', methods: [GET] }
";
        let rules = parse_rules(yaml.as_bytes(), Format::Yaml).unwrap();
        assert_eq!(rules[1].id, "b");
        assert_eq!(rules[1].authorizer.handler, "allow");
        assert!(rules[0].errors.is_empty());
    }

    #[test]
    fn empty_documents_hold_no_rules() {
        for (doc, format) in [
            ("", Format::Json),
            ("  \n", Format::Auto),
            ("[]", Format::Json),
            ("null", Format::Json),
            ("# nothing yet\n", Format::Yaml),
            ("~", Format::Yaml),
        ] {
            assert!(
                parse_rules(doc.as_bytes(), format).unwrap().is_empty(),
                "{doc:?}"
            );
        }
    }

    #[test]
    fn unknown_keys_are_named_with_rule_and_path() {
        let yaml = YAML.replace("methods:", "methdos:");
        let (index, id, key, message) = invalid(parse_rules(yaml.as_bytes(), Format::Yaml));
        assert_eq!((index, id.as_deref()), (0, Some("test-rule-1-yaml")));
        assert_eq!(key, "match.methdos");
        assert!(message.contains("unknown field `methdos`"), "{message}");

        let json = JSON.replace("\"preserve_path\"", "\"preserve_paths\"");
        // Handler config is free-form: the pipeline validates it.
        parse_rules(json.as_bytes(), Format::Json).unwrap();

        let json = JSON.replace(
            "{ \"handler\": \"jwt\" }",
            "{ \"handler\": \"jwt\", \"enabled\": true }",
        );
        let (_, _, key, message) = invalid(parse_rules(json.as_bytes(), Format::Json));
        assert_eq!(key, "authenticators[1].enabled");
        assert!(message.contains("unknown field `enabled`"), "{message}");

        let json = JSON.replace("\"version\"", "\"versoin\"");
        let (_, _, key, message) = invalid(parse_rules(json.as_bytes(), Format::Json));
        assert_eq!(key, "versoin");
        assert!(message.contains("unknown field `versoin`"), "{message}");
    }

    #[test]
    fn wrong_types_and_missing_keys_are_named() {
        let json = JSON.replace(
            "\"methods\": [\"GET\", \"HEAD\"]",
            "\"methods\": [\"GET\", 7]",
        );
        let (_, _, key, message) = invalid(parse_rules(json.as_bytes(), Format::Json));
        assert_eq!(key, "match.methods[1]");
        assert!(message.contains("invalid type"), "{message}");

        let yaml = YAML.replace("  authorizer: { handler: allow }\n", "");
        let (_, _, key, message) = invalid(parse_rules(yaml.as_bytes(), Format::Yaml));
        assert_eq!(key, "");
        assert_eq!(message, "missing field `authorizer`");

        let yaml = YAML.replace("  mutators: [ { handler: noop } ]\n", "");
        let err = parse_rules(yaml.as_bytes(), Format::Yaml).unwrap_err();
        assert_eq!(
            err.to_string(),
            "repository (in memory): rule #0 (\"test-rule-1-yaml\"): mutators: \
             must list at least one mutator (use `noop` to change nothing)"
        );
    }

    #[test]
    fn the_id_is_required_and_unique() {
        let yaml = YAML.replace("- id: test-rule-1-yaml\n  upstream", "- upstream");
        let (index, id, _, message) = invalid(parse_rules(yaml.as_bytes(), Format::Yaml));
        assert_eq!((index, id), (0, None));
        assert_eq!(message, "missing field `id`");

        let twice = format!(
            "{YAML}{}",
            YAML.replace("strip_path: /api", "strip_path: /b")
        );
        let err = parse_rules(twice.as_bytes(), Format::Yaml).unwrap_err();
        assert_eq!(
            err.to_string(),
            "duplicate rule id \"test-rule-1-yaml\": repository (in memory), rule #0 and \
             repository (in memory), rule #1"
        );
    }

    #[test]
    fn syntax_errors_say_where() {
        let err = parse_rules(b"[{\"id\": }]", Format::Json).unwrap_err();
        assert!(
            matches!(&err, RuleError::Syntax { format: Format::Json, message, .. } if message.contains("line 1")),
            "{err}"
        );
        // Auto reports the JSON error for what looks like JSON.
        let err = parse_rules(b"[{\"id\": \"a\"", Format::Auto).unwrap_err();
        assert!(
            matches!(
                err,
                RuleError::Syntax {
                    format: Format::Json,
                    ..
                }
            ),
            "{err}"
        );
        let err = parse_rules(b"- id: [unclosed\n", Format::Auto).unwrap_err();
        assert!(
            matches!(
                err,
                RuleError::Syntax {
                    format: Format::Yaml,
                    ..
                }
            ),
            "{err}"
        );
        let err = parse_rules(b"{\"id\": \"a\"}", Format::Json).unwrap_err();
        assert_eq!(
            err.to_string(),
            "repository (in memory): expected an array of rules, found an object"
        );
    }

    #[test]
    fn inline_repositories_are_base64_json_or_yaml() {
        let engine = base64::engine::general_purpose::STANDARD;
        for doc in [JSON, YAML] {
            let url = format!("inline://{}", engine.encode(doc));
            let rules = load_repository(&url).unwrap();
            assert_eq!(rules.len(), 1);
        }
        let unpadded = format!(
            "inline://{}",
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(YAML)
        );
        assert_eq!(load_repository(&unpadded).unwrap().len(), 1);

        let err = load_repository("inline://not base64!").unwrap_err();
        assert!(matches!(err, RuleError::InlineBase64 { .. }), "{err}");
        let bad = format!(
            "inline://{}",
            engine.encode(YAML.replace("match:", "matches:"))
        );
        let err = load_repository(&bad).unwrap_err().to_string();
        assert!(
            err.starts_with("repository inline://LSBpZDogdGVzdC1y... ("),
            "{err}"
        );
        assert!(err.contains("unknown field `matches`"), "{err}");
    }

    #[test]
    fn file_repositories_by_extension() {
        let dir = std::env::temp_dir().join(format!("rules-repo-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let json = dir.join("rules.json");
        let yaml = dir.join("rules with space.yml");
        std::fs::write(&json, JSON).unwrap();
        std::fs::write(&yaml, YAML).unwrap();

        let url = format!("file://{}", json.display());
        assert_eq!(load_repository(&url).unwrap()[0].id, "api-users-get");
        let url = format!("file://{}", yaml.display().to_string().replace(' ', "%20"));
        assert_eq!(load_repository(&url).unwrap()[0].id, "test-rule-1-yaml");
        assert_eq!(
            load_repository(&yaml.display().to_string()).unwrap()[0].id,
            "test-rule-1-yaml"
        );

        // A .json file is read as JSON only.
        std::fs::write(&json, YAML).unwrap();
        let err = load_repository(&format!("file://{}", json.display())).unwrap_err();
        assert!(
            matches!(
                err,
                RuleError::Syntax {
                    format: Format::Json,
                    ..
                }
            ),
            "{err}"
        );

        let missing = format!("file://{}/missing.json", dir.display());
        let err = load_repository(&missing).unwrap_err();
        assert!(matches!(err, RuleError::Read { .. }), "{err}");
        assert!(
            err.to_string()
                .starts_with(&format!("repository {missing}: ")),
            "{err}"
        );

        for url in [
            "https://example.com/rules.json",
            "s3://bucket/rules.json",
            "",
        ] {
            let err = load_repository(url).unwrap_err();
            assert!(
                matches!(err, RuleError::UnsupportedRepository { .. }),
                "{url}"
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn ids_must_be_unique_across_repositories() {
        let engine = base64::engine::general_purpose::STANDARD;
        let a = format!("inline://{}", engine.encode(YAML));
        let b = format!(
            "inline://{}",
            engine.encode(YAML.replace("/api,", "/other,"))
        );
        assert_eq!(load_repositories(&[a.as_str()]).unwrap().len(), 1);
        let err = load_repositories(&[a, b]).unwrap_err();
        assert!(matches!(err, RuleError::DuplicateId { .. }), "{err}");
        assert!(
            err.to_string().contains("rule #0 and repository inline://"),
            "{err}"
        );
    }

    #[test]
    fn repository_urls_map_to_files() {
        assert_eq!(
            repository_file("file:///etc/rules.json"),
            Some(PathBuf::from("/etc/rules.json"))
        );
        assert_eq!(
            repository_file("file://rules/a.yaml"),
            Some(PathBuf::from("rules/a.yaml"))
        );
        assert_eq!(
            repository_file("/etc/rules.yml"),
            Some(PathBuf::from("/etc/rules.yml"))
        );
        assert_eq!(repository_file("inline://W10="), None);
        assert_eq!(repository_file("http://x/rules.json"), None);
        assert_eq!(repository_file("file:///bad%zz"), None);
        assert_eq!(Format::from_path(Path::new("a.YAML")), Format::Yaml);
        assert_eq!(Format::from_path(Path::new("a.rules")), Format::Auto);
    }

    #[test]
    fn fingerprints_change_with_the_content() {
        let path = std::env::temp_dir().join(format!("rules-fp-{}.json", std::process::id()));
        std::fs::write(&path, "[]").unwrap();
        let first = fingerprint(&path).unwrap();
        assert_eq!(first.len, 2);
        assert_eq!(fingerprint(&path), Some(first));
        std::fs::write(&path, "[ ]").unwrap();
        let second = fingerprint(&path).unwrap();
        assert_ne!(first.hash, second.hash);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(fingerprint(&path), None);
    }
}
