//! Rules about the repository itself.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn migrations_are_paired() {
    let list = |backend: &str| -> BTreeSet<String> {
        std::fs::read_dir(root().join("migrations").join(backend))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    };
    let sqlite = list("sqlite");
    let postgres = list("postgres");
    assert!(!sqlite.is_empty());
    assert_eq!(
        sqlite, postgres,
        "migrations/sqlite and migrations/postgres must list the same versions and names"
    );
    for name in &sqlite {
        let (version, rest) = name
            .split_once('_')
            .unwrap_or_else(|| panic!("{name}: expected <version>_<name>.sql"));
        assert!(
            version.chars().all(|c| c.is_ascii_digit()),
            "{name}: version must be numeric"
        );
        assert!(rest.ends_with(".sql"), "{name}");
    }
}

/// Only `proxy` may depend on server frameworks; the domain crates take and return plain types.
#[test]
fn domain_crates_never_depend_on_server_frameworks() {
    let out = std::process::Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1"])
        .current_dir(root())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: HashMap<String, String> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["id"].as_str().unwrap().to_owned(),
                p["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let nodes: HashMap<String, &serde_json::Value> = meta["resolve"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["id"].as_str().unwrap().to_owned(), n))
        .collect();
    for domain in ["gotmpl", "identity", "flows", "rules"] {
        let start = names
            .iter()
            .find(|(_, n)| n.as_str() == domain)
            .map(|(id, _)| id.clone())
            .unwrap();
        // Walk normal (non-dev, non-build) dependencies transitively.
        let mut seen = BTreeSet::new();
        let mut stack = vec![start];
        while let Some(id) = stack.pop() {
            if !seen.insert(id.clone()) {
                continue;
            }
            for dep in nodes[&id]["deps"].as_array().unwrap() {
                let normal = dep["dep_kinds"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|k| k["kind"].is_null());
                if normal {
                    stack.push(dep["pkg"].as_str().unwrap().to_owned());
                }
            }
        }
        let forbidden: Vec<&String> = seen
            .iter()
            .map(|id| &names[id])
            .filter(|n| {
                n.starts_with("pingora")
                    || n.starts_with("axum")
                    || n.starts_with("tower")
                    || n.starts_with("hyper")
                    || n.as_str() == "proxy"
            })
            .collect();
        assert!(forbidden.is_empty(), "{domain} depends on {forbidden:?}");
        assert!(seen.len() > 1, "{domain} has dependencies, so the walk ran");
    }
}

#[test]
fn flows_and_rules_do_not_depend_on_each_other() {
    for (a, b) in [("flows", "rules"), ("rules", "flows")] {
        let manifest = std::fs::read_to_string(root().join(a).join("Cargo.toml")).unwrap();
        assert!(
            !manifest
                .lines()
                .any(|l| l.trim_start().starts_with(&format!("{b} "))
                    || l.trim_start().starts_with(&format!("{b}."))),
            "{a} must not depend on {b}"
        );
    }
}

/// The template engine is a leaf: it knows no domain crate, so both `rules` and `flows` can use it.
#[test]
fn gotmpl_depends_on_no_workspace_crate() {
    let manifest = std::fs::read_to_string(root().join("gotmpl").join("Cargo.toml")).unwrap();
    for b in ["identity", "flows", "rules", "proxy"] {
        assert!(
            !manifest
                .lines()
                .any(|l| l.trim_start().starts_with(&format!("{b} "))
                    || l.trim_start().starts_with(&format!("{b}."))),
            "gotmpl must not depend on {b}"
        );
    }
}
