//! The `portcullis` command line, run in-process.

use clap::Parser;
use proxy::cli::{execute, Cli};
use serde_json::{json, Value};
use tests::{backend_tests, Backend, TestEnv};

async fn run(args: &[&str]) -> anyhow::Result<()> {
    let mut argv = vec!["portcullis"];
    argv.extend_from_slice(args);
    execute(Cli::try_parse_from(argv)?).await
}

backend_tests!(
    identities_commands_talk_to_the_admin_api,
    migrate_sql_applies_only_with_yes
);

#[tokio::test]
async fn config_check_reports_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.yml");
    std::fs::write(&good, "dsn: memory\nserve:\n  admin:\n    port: 4444\n").unwrap();
    run(&["config", "check", good.to_str().unwrap()])
        .await
        .unwrap();

    let unknown = dir.path().join("unknown.yml");
    std::fs::write(&unknown, "dsn: memory\nsession:\n  lifespam: 1h\n").unwrap();
    let err = run(&["config", "check", unknown.to_str().unwrap()])
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("session") && err.contains("lifespam"), "{err}");

    let bad_schema = dir.path().join("schema.yml");
    std::fs::write(&bad_schema, "dsn: memory\nidentity:\n  schemas:\n    - id: default\n      url: file:///does/not/exist.json\n").unwrap();
    let err = format!(
        "{:#}",
        run(&["config", "check", bad_schema.to_str().unwrap()])
            .await
            .unwrap_err()
    );
    assert!(err.contains("/does/not/exist.json"), "{err}");

    // Without a DSN only `--dev` (SQLite in the working directory) makes a config complete.
    let no_dsn = dir.path().join("no-dsn.yml");
    std::fs::write(&no_dsn, "serve:\n  admin:\n    port: 4444\n").unwrap();
    let err = run(&["config", "check", no_dsn.to_str().unwrap()])
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("dsn"), "{err}");
    run(&["config", "check", "--dev", no_dsn.to_str().unwrap()])
        .await
        .unwrap();

    let missing = dir.path().join("missing.yml");
    let err = run(&["config", "check", missing.to_str().unwrap()])
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing.yml"), "{err}");
}

/// Issue 15: `config check` lists the methods that are switched on but not implemented, one warning each.
#[tokio::test]
async fn config_check_lists_unimplemented_methods() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("methods.yml");
    std::fs::write(
        &file,
        "dsn: memory\nselfservice:\n  methods:\n    lookup_secret: {enabled: true}\n    webauthn: {enabled: true}\n    \
         totp: {enabled: false}\n    password: {enabled: true}\n",
    )
    .unwrap();
    let report = proxy::cli::check_config(vec![file.clone()], false).unwrap();
    let warnings: Vec<&String> = report
        .iter()
        .filter(|l| l.starts_with("warning:"))
        .collect();
    assert_eq!(warnings.len(), 2, "{report:?}");
    assert!(
        warnings[0].contains("selfservice.methods.lookup_secret.enabled"),
        "{report:?}"
    );
    assert!(
        warnings[1].contains("selfservice.methods.webauthn.enabled"),
        "{report:?}"
    );
    assert_eq!(report.last().unwrap(), &format!("{}: ok", file.display()));
    // The command itself still succeeds: the methods are a warning, not an error.
    run(&["config", "check", file.to_str().unwrap()])
        .await
        .unwrap();

    let plain = dir.path().join("plain.yml");
    std::fs::write(&plain, "dsn: memory\n").unwrap();
    let report = proxy::cli::check_config(vec![plain.clone()], false).unwrap();
    assert_eq!(report, [format!("{}: ok", plain.display())]);
}

#[test]
fn version_and_help_are_available() {
    let err = Cli::try_parse_from(["portcullis", "--version"]).unwrap_err();
    assert_eq!(err.kind(), clap::error::ErrorKind::DisplayVersion);
    let help = Cli::try_parse_from(["portcullis", "--help"])
        .unwrap_err()
        .to_string();
    for cmd in ["serve", "migrate", "config", "identities", "hashers"] {
        assert!(help.contains(cmd), "{help}");
    }
    let err = Cli::try_parse_from(["portcullis", "identities", "get"]).unwrap_err();
    assert_eq!(err.kind(), clap::error::ErrorKind::MissingRequiredArgument);
}

#[tokio::test]
async fn argon2_calibrate_finds_parameters() {
    run(&[
        "hashers",
        "argon2",
        "calibrate",
        "5ms",
        "--max-memory",
        "16MB",
        "--parallelism",
        "1",
    ])
    .await
    .unwrap();
    assert!(run(&["hashers", "argon2", "calibrate", "soon"])
        .await
        .is_err());
}

async fn identities_commands_talk_to_the_admin_api(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let endpoint = env.admin.trim_end_matches('/').to_owned();
    let file = env.dir.path().join("people.json");
    std::fs::write(
        &file,
        serde_json::to_string(&json!([
            {"schema_id": "default", "traits": {"email": "cli1@example.com"}},
            {"schema_id": "default", "traits": {"email": "cli2@example.com"},
             "credentials": {"password": {"config": {"hashed_password": "$2a$04$Z8abMGss14r0xn/AL7afHuQQbV7wxk8.xGo./g8/R4t.BQcHjhRle"}}}}
        ]))
        .unwrap(),
    )
    .unwrap();
    run(&[
        "identities",
        "--endpoint",
        &endpoint,
        "import",
        file.to_str().unwrap(),
    ])
    .await
    .unwrap();
    let list: Vec<Value> = env
        .http
        .get(env.admin_url("admin/identities"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list.len(), 2);
    run(&[
        "identities",
        "--endpoint",
        &endpoint,
        "list",
        "--page-size",
        "1",
    ])
    .await
    .unwrap();
    let id = list[0]["id"].as_str().unwrap();
    run(&["identities", "--endpoint", &endpoint, "get", id])
        .await
        .unwrap();
    run(&["identities", "--endpoint", &endpoint, "delete", id])
        .await
        .unwrap();
    let res = env
        .http
        .get(env.admin_url(&format!("admin/identities/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    // Importing the same people again fails for the one that still exists and says so.
    let err = run(&[
        "identities",
        "--endpoint",
        &endpoint,
        "import",
        file.to_str().unwrap(),
    ])
    .await
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("1 identities could not be imported"),
        "{err}"
    );
    assert!(
        run(&["identities", "--endpoint", &endpoint, "get", "not-a-uuid"])
            .await
            .is_err()
    );
}

async fn migrate_sql_applies_only_with_yes(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let dsn = tests::empty_database(backend, dir.path()).await;
    let err = run(&["migrate", "sql", &dsn]).await.unwrap_err();
    assert!(err.to_string().contains("--yes"), "{err}");
    let db = identity::Db::connect(&dsn).await.unwrap();
    assert!(
        !db.pending_migrations().await.unwrap().is_empty(),
        "nothing applied without --yes"
    );
    run(&["migrate", "sql", &dsn, "--yes"]).await.unwrap();
    assert!(db.pending_migrations().await.unwrap().is_empty());
    run(&["migrate", "sql", &dsn, "--yes"]).await.unwrap();
    db.close().await;
}

backend_tests!(serve_migrates_only_where_it_may);

/// `serve` migrates SQLite (and anything in `--dev`) itself. On PostgreSQL outside `--dev` it leaves migrations to
/// `portcullis migrate sql` (a migration Job) and is not ready until they have run.
async fn serve_migrates_only_where_it_may(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let dsn = tests::empty_database(backend, dir.path()).await;
    let load = |dev: bool| {
        let mut overrides = Vec::new();
        for key in ["public", "admin", "api", "proxy"] {
            overrides.push(format!("serve.{key}.host=127.0.0.1"));
            overrides.push(format!("serve.{key}.port=0"));
        }
        proxy::config::Config::load_with_env(
            &proxy::config::Sources {
                dev,
                overrides,
                ..Default::default()
            },
            &[("DSN".to_owned(), dsn.clone())],
        )
        .unwrap()
    };
    match backend {
        Backend::Sqlite => {
            let db = proxy::open_db(&load(false)).await.unwrap();
            assert!(db.pending_migrations().await.unwrap().is_empty());
        }
        Backend::Postgres => {
            let db = proxy::open_db(&load(false)).await.unwrap();
            assert!(!db.pending_migrations().await.unwrap().is_empty());
            // The product starts, but says it is not ready, and why (on the admin listener).
            let config = load(false);
            let running = proxy::start(config, proxy::Options::default())
                .await
                .unwrap();
            let http = reqwest::Client::new();
            let ready = |base: String| {
                let http = http.clone();
                async move {
                    let res = http
                        .get(format!("{base}health/ready"))
                        .send()
                        .await
                        .unwrap();
                    let status = res.status().as_u16();
                    (status, res.text().await.unwrap())
                }
            };
            let (status, body) = ready(running.public_url.clone()).await;
            assert_eq!(status, 503, "{body}");
            assert!(
                !body.contains("migrate"),
                "the public listener does not explain: {body}"
            );
            let (status, body) = ready(format!("{}admin/", running.admin_url)).await;
            assert_eq!(status, 503);
            assert!(body.contains("migrate sql"), "{body}");
            run(&["migrate", "sql", &dsn, "--yes"]).await.unwrap();
            let (status, body) = ready(running.public_url.clone()).await;
            assert_eq!(status, 200, "{body}");
            assert!(db.pending_migrations().await.unwrap().is_empty());
            db.close().await;
        }
    }
}

#[tokio::test]
async fn rules_validate_checks_rule_files_offline() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, body: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, body).unwrap();
        p.to_str().unwrap().to_owned()
    };
    let good = write(
        "good.yaml",
        r#"
- id: app
  match: {url: "http://<[^/]+>/app/<.*>", methods: [GET]}
  authenticators: [{handler: cookie_session}]
  authorizer: {handler: allow}
  mutators: [{handler: header, config: {headers: {X-User: "{{ print .Subject }}"}}}]
"#,
    );
    run(&["rules", "validate", &good]).await.unwrap();

    // Each kind of mistake is reported with the rule or file it is in.
    let cases = [
        ("syntax.json", "[{\"id\": \"x\",", "syntax.json"),
        (
            "template.json",
            r#"[{"id": "tpl", "match": {"url": "http://a/<.*>", "methods": ["GET"]}, "authenticators": [{"handler": "noop"}], "authorizer": {"handler": "allow"}, "mutators": [{"handler": "header", "config": {"headers": {"X": "{{ print .Subject "}}}]}]"#,
            "tpl",
        ),
        (
            "regex.json",
            r#"[{"id": "re", "match": {"url": "http://a/<[>", "methods": ["GET"]}, "authenticators": [{"handler": "noop"}], "authorizer": {"handler": "allow"}, "mutators": [{"handler": "noop"}]}]"#,
            "re",
        ),
        (
            "handler.json",
            r#"[{"id": "h", "match": {"url": "http://a/", "methods": ["GET"]}, "authenticators": [{"handler": "nonesuch"}], "authorizer": {"handler": "allow"}, "mutators": [{"handler": "noop"}]}]"#,
            "nonesuch",
        ),
        (
            "dupes.json",
            r#"[{"id": "d", "match": {"url": "http://a/", "methods": ["GET"]}, "authenticators": [{"handler": "noop"}], "authorizer": {"handler": "allow"}, "mutators": [{"handler": "noop"}]},
                {"id": "d", "match": {"url": "http://b/", "methods": ["GET"]}, "authenticators": [{"handler": "noop"}], "authorizer": {"handler": "allow"}, "mutators": [{"handler": "noop"}]}]"#,
            "\"d\"",
        ),
    ];
    for (name, body, expect) in cases {
        let path = write(name, body);
        let err = format!(
            "{:#}",
            run(&["rules", "validate", &path]).await.unwrap_err()
        );
        assert!(err.contains(expect), "{name}: {err}");
    }

    // A handler the config disables fails validation, as it would fail `serve`.
    let config = write(
        "config.yaml",
        "authenticators:\n  cookie_session:\n    enabled: false\n",
    );
    let err = format!(
        "{:#}",
        run(&["rules", "validate", &good, "--config", &config])
            .await
            .unwrap_err()
    );
    assert!(err.contains("cookie_session"), "{err}");
}

#[tokio::test]
async fn courier_watch_needs_an_smtp_server() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yml");
    std::fs::write(&config, "dsn: memory\n").unwrap();
    let err = run(&["courier", "watch", "--config", config.to_str().unwrap()])
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("courier.smtp.connection_uri"), "{err}");
    // An unusable URI is refused before any message is claimed.
    std::fs::write(
        &config,
        "dsn: memory\ncourier:\n  smtp:\n    connection_uri: ftp://mail.example.com/\n",
    )
    .unwrap();
    let err = format!(
        "{:#}",
        run(&["courier", "watch", "--config", config.to_str().unwrap()])
            .await
            .unwrap_err()
    );
    assert!(err.contains("courier.smtp"), "{err}");
}
