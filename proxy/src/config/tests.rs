use super::*;
use std::io::Write;

fn file(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new().suffix(".yml").tempfile().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f
}

fn load(
    files: &[&tempfile::NamedTempFile],
    env: &[(&str, &str)],
    sets: &[&str],
) -> Result<Config, ConfigError> {
    let sources = Sources {
        files: files.iter().map(|f| f.path().to_owned()).collect(),
        overrides: sets.iter().map(|s| (*s).to_owned()).collect(),
        dev: false,
        use_env: false,
    };
    let vars: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect();
    Config::load_with_env(&sources, &vars)
}

const KRATOS_QUICKSTART: &str = r#"
version: v1.3.0
dsn: memory
serve:
  public:
    base_url: http://127.0.0.1:4433/
    cors:
      enabled: true
  admin:
    base_url: http://kratos:4434/
selfservice:
  default_browser_return_url: http://127.0.0.1:4455/
  allowed_return_urls:
    - http://127.0.0.1:4455
  methods:
    password:
      enabled: true
    totp:
      config:
        issuer: Kratos
      enabled: true
    lookup_secret:
      enabled: true
    link:
      enabled: true
    code:
      enabled: true
  flows:
    error:
      ui_url: http://127.0.0.1:4455/error
    settings:
      ui_url: http://127.0.0.1:4455/settings
      privileged_session_max_age: 15m
      required_aal: highest_available
    recovery:
      enabled: true
      ui_url: http://127.0.0.1:4455/recovery
      use: code
    verification:
      enabled: true
      ui_url: http://127.0.0.1:4455/verification
      use: code
      after:
        default_browser_return_url: http://127.0.0.1:4455/
    logout:
      after:
        default_browser_return_url: http://127.0.0.1:4455/login
    login:
      ui_url: http://127.0.0.1:4455/login
      lifespan: 10m
    registration:
      lifespan: 10m
      ui_url: http://127.0.0.1:4455/registration
      after:
        password:
          hooks:
            - hook: session
            - hook: show_verification_ui
log:
  level: debug
  format: text
  leak_sensitive_values: true
secrets:
  cookie:
    - PLEASE-CHANGE-ME-I-AM-VERY-INSECURE
  cipher:
    - 32-LONG-SECRET-NOT-SECURE-AT-ALL
ciphers:
  algorithm: xchacha20-poly1305
hashers:
  algorithm: bcrypt
  bcrypt:
    cost: 8
identity:
  default_schema_id: default
  schemas:
    - id: default
      url: file:///etc/config/kratos/identity.schema.json
courier:
  smtp:
    connection_uri: smtps://test:test@mailslurper:1025/?skip_ssl_verify=true
feature_flags:
  use_continue_with_transitions: true
"#;

#[test]
fn kratos_quickstart_config_loads_unchanged() {
    let f = file(KRATOS_QUICKSTART);
    let c = load(&[&f], &[], &[]).unwrap();
    assert_eq!(c.dsn(), "memory");
    assert_eq!(c.selfservice.flows.login.lifespan, Duration::secs(600));
    assert_eq!(
        c.selfservice.flows.settings.privileged_session_max_age,
        Some(Duration::secs(900))
    );
    assert_eq!(
        c.selfservice.flows.recovery.use_method.as_deref(),
        Some("code")
    );
    let hooks = &c
        .selfservice
        .flows
        .registration
        .after
        .password
        .as_ref()
        .unwrap()
        .hooks;
    assert_eq!(hooks[0].hook, "session");
    assert_eq!(c.hashers.algorithm, identity::hash::Algorithm::Bcrypt);
    assert_eq!(c.hashers.bcrypt.cost, 12, "raised to 12 outside --dev");
    assert_eq!(
        c.identity.schemas[0].url,
        "file:///etc/config/kratos/identity.schema.json"
    );
}

#[test]
fn unknown_keys_are_named() {
    let f = file("dsn: memory\nserve:\n  public:\n    prot: 1\n");
    let err = load(&[&f], &[], &[]).unwrap_err().to_string();
    assert!(err.contains("serve.public"), "{err}");
    assert!(err.contains("prot"), "{err}");
    let f = file("dsn: memory\nsurprise: true\n");
    let err = load(&[&f], &[], &[]).unwrap_err().to_string();
    assert!(err.contains("surprise"), "{err}");
}

#[test]
fn wrong_types_and_bad_syntax_are_readable() {
    let f = file("dsn: memory\nserve:\n  admin:\n    port: lots\n");
    let err = load(&[&f], &[], &[]).unwrap_err().to_string();
    assert!(err.contains("serve.admin.port"), "{err}");
    let f = file("dsn: memory\nsession:\n  lifespan: forever\n");
    let err = load(&[&f], &[], &[]).unwrap_err().to_string();
    assert!(
        err.contains("session.lifespan") && err.contains("forever"),
        "{err}"
    );
    let f = file("dsn: [unclosed\n");
    let err = load(&[&f], &[], &[]).unwrap_err().to_string();
    assert!(
        err.contains("not valid YAML") && err.contains("line"),
        "{err}"
    );
    let f = file("- a\n- b\n");
    assert!(load(&[&f], &[], &[])
        .unwrap_err()
        .to_string()
        .contains("mapping"));
}

#[test]
fn environment_overrides_file_and_flags_override_environment() {
    let f = file("dsn: sqlite://from-file.db\nserve:\n  admin:\n    port: 1111\n");
    let c = load(
        &[&f],
        &[
            ("DSN", "postgres://u:p@db/portcullis"),
            ("SERVE_ADMIN_PORT", "2222"),
            ("SERVE_PUBLIC_CORS_ENABLED", "true"),
            ("IDENTITY_DEFAULT_SCHEMA_ID", "people"),
            (
                "IDENTITY_SCHEMAS",
                r#"[{"id":"people","url":"base64://e30"}]"#,
            ),
            (
                "SECRETS_COOKIE",
                "aaaaaaaaaaaaaaaaaaaa,bbbbbbbbbbbbbbbbbbbb",
            ),
            ("SESSION_LIFESPAN", "1h30m"),
            ("HASHERS_ARGON2_PARALLELISM", "3"),
            ("UNRELATED", "x"),
        ],
        &["serve.admin.port=3333"],
    )
    .unwrap();
    assert_eq!(c.dsn(), "postgres://u:p@db/portcullis");
    assert_eq!(c.serve.admin.port, 3333);
    assert!(c.serve.public.cors.enabled);
    assert_eq!(c.identity.default_schema_id, "people");
    assert_eq!(c.secrets.cookie.len(), 2);
    assert_eq!(c.session.lifespan, Duration::secs(5400));
    assert_eq!(c.hashers.argon2.parallelism, Some(3));
    let err = load(&[&f], &[("SERVE_ADMIN_PORT", "many")], &[])
        .unwrap_err()
        .to_string();
    assert!(err.contains("SERVE_ADMIN_PORT"), "{err}");
}

#[test]
fn secrets_are_redacted_and_checked() {
    let f = file("dsn: postgres://user:hunter2hunter2@db/x\nsecrets:\n  cookie: [tooshort]\n");
    let err = load(&[&f], &[], &[]).unwrap_err().to_string();
    assert!(err.contains("secrets.cookie.0"), "{err}");
    let f = file("dsn: postgres://user:hunter2hunter2@db/x\nsecrets:\n  cookie: [a-very-long-cookie-secret]\n");
    let c = load(&[&f], &[], &[]).unwrap();
    let debug = format!("{c:?}");
    assert!(!debug.contains("hunter2"), "{debug}");
    assert!(!debug.contains("a-very-long-cookie-secret"), "{debug}");
    assert_eq!(c.secrets.cookie[0].expose(), "a-very-long-cookie-secret");
}

#[test]
fn dsn_is_required_outside_dev_and_defaulted_in_dev() {
    let err = load(&[], &[], &[]).unwrap_err().to_string();
    assert!(err.contains("dsn"), "{err}");
    let c = Config::load_with_env(
        &Sources {
            dev: true,
            ..Default::default()
        },
        &[],
    )
    .unwrap();
    assert!(c.dsn().starts_with("sqlite://"));
    assert!(c.dev);
    assert_eq!(c.identity.schemas.len(), 1, "built-in schema");
}

#[test]
fn default_schema_must_exist() {
    let f = file("dsn: memory\nidentity:\n  default_schema_id: x\n  schemas: [{id: y, url: 'base64://e30'}]\n");
    let err = load(&[&f], &[], &[]).unwrap_err().to_string();
    assert!(err.contains("identity.default_schema_id"), "{err}");
}

#[test]
fn go_durations_parse() {
    for (s, secs) in [
        ("1h30m", 5400.0),
        ("500ms", 0.5),
        ("1.5h", 5400.0),
        ("0", 0.0),
        ("2m3s", 123.0),
    ] {
        assert_eq!(parse_duration(s).unwrap().as_secs_f64(), secs, "{s}");
    }
    for bad in ["", "10", "-1s", "1x", "h"] {
        assert!(parse_duration(bad).is_err(), "{bad}");
    }
}

#[test]
fn durations_longer_than_go_allows_are_refused() {
    // Issue 15: such a lifespan made `now + lifespan` panic on the first login.
    for value in ["18446744073709551615", "9223372037", "\"690249975h\""] {
        let f = file(&format!("dsn: memory\nsession:\n  lifespan: {value}\n"));
        let err = format!("{:#}", load(&[&f], &[], &[]).unwrap_err());
        assert!(
            err.contains("session") && err.contains("largest duration"),
            "{value}: {err}"
        );
    }
    let f = file("dsn: memory\nsession:\n  lifespan: 9223372036\n");
    assert_eq!(
        load(&[&f], &[], &[]).unwrap().session.lifespan.0.as_secs(),
        9_223_372_036
    );
}

#[test]
fn reference_config_matches_defaults() {
    // deploy/config.reference.yaml documents every key with its default; keep it in sync.
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/config.reference.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let documented: serde_json::Value = serde_yaml::from_str(&text).unwrap();
    let defaults = serde_json::to_value(Config::default()).unwrap();
    assert_eq!(
        documented, defaults,
        "deploy/config.reference.yaml is out of date: regenerate it with `portcullis config defaults > deploy/config.reference.yaml`"
    );
}

#[test]
fn kratos_only_keys_load_and_are_reported() {
    let f = file(
        "dsn: memory\ntracing: {provider: jaeger, providers: {jaeger: {local_agent_address: a:6831}}}\ndatabase: {cleanup: {batch_size: 100}}\n\
         clients: {http: {disallow_private_ip_ranges: true}}\n",
    );
    let c = Config::load(&Sources {
        files: vec![f.path().to_path_buf()],
        ..Default::default()
    })
    .unwrap();
    assert_eq!(c.ignored_kratos_keys(), ["tracing", "clients", "database"]);
    let plain = file("dsn: memory\n");
    let c = Config::load(&Sources {
        files: vec![plain.path().to_path_buf()],
        ..Default::default()
    })
    .unwrap();
    assert!(c.ignored_kratos_keys().is_empty());
}

#[test]
fn enabled_methods_that_are_not_implemented_are_reported() {
    let f = file(
        "dsn: memory\nselfservice:\n  methods:\n    totp: {enabled: true}\n    oidc: {enabled: true, config: {providers: []}}\n    \
         webauthn: {enabled: false}\n    code: {enabled: true}\n",
    );
    let c = Config::load(&Sources {
        files: vec![f.path().to_path_buf()],
        ..Default::default()
    })
    .unwrap();
    assert_eq!(c.unimplemented_methods(), ["totp", "oidc"]);
    let plain = file("dsn: memory\n");
    let c = Config::load(&Sources {
        files: vec![plain.path().to_path_buf()],
        ..Default::default()
    })
    .unwrap();
    assert!(c.unimplemented_methods().is_empty());
}

#[test]
fn listener_limits_must_be_positive() {
    for (key, value) in [
        ("serve.public.timeout.read", "0s"),
        ("serve.admin.timeout.idle", "0s"),
        ("serve.api.timeout.write", "0s"),
        ("serve.public.max_connections", "0"),
    ] {
        let err = Config::load(&Sources {
            overrides: vec!["dsn=memory".into(), format!("{key}={value}")],
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(err.contains(key), "{key}: {err}");
    }
    let c = Config::load(&Sources {
        overrides: vec!["dsn=memory".into(), "serve.api.timeout.read=5s".into()],
        ..Default::default()
    })
    .unwrap();
    assert_eq!(
        c.serve.api.timeout.read.0,
        std::time::Duration::from_secs(5)
    );
}

#[test]
fn a_partial_listener_section_keeps_that_listeners_defaults() {
    let f = file(
        "dsn: memory\nserve:\n  admin: {port: 5000}\n  api: {disabled: false}\n  public: {base_url: 'http://x/'}\n",
    );
    let c = load(&[&f], &[], &[]).unwrap();
    assert_eq!(
        (c.serve.admin.host.as_str(), c.serve.admin.port),
        ("127.0.0.1", 5000)
    );
    assert_eq!(
        (c.serve.api.host.as_str(), c.serve.api.port),
        ("127.0.0.1", 4456)
    );
    assert_eq!(c.serve.api.trusted_proxies, ["127.0.0.0/8", "::1/128"]);
    assert_eq!(
        (c.serve.public.host.as_str(), c.serve.public.port),
        ("", 4433)
    );
    let f = file("dsn: memory\nserve:\n  admin: {surprise: 1}\n");
    let err = load(&[&f], &[], &[]).unwrap_err().to_string();
    assert!(
        err.contains("serve.admin") && err.contains("surprise"),
        "{err}"
    );
}

#[test]
fn trusted_proxies_must_be_cidrs_or_addresses() {
    for key in [
        "serve.proxy.trusted_proxies",
        "serve.public.trusted_proxies",
        "serve.admin.trusted_proxies",
        "serve.api.trusted_proxies",
    ] {
        let err = Config::load(&Sources {
            overrides: vec![
                "dsn=memory".into(),
                format!("{key}=[\"10.0.0.0/8\",\"nginx\"]"),
            ],
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
        assert!(
            err.contains(&format!("{key}.1")) && err.contains("nginx"),
            "{key}: {err}"
        );
    }
    let c = Config::load(&Sources {
        overrides: vec![
            "dsn=memory".into(),
            "serve.public.trusted_proxies=[\"10.0.0.0/8\",\"192.0.2.1\",\"::1/128\"]".into(),
        ],
        ..Default::default()
    })
    .unwrap();
    assert_eq!(c.serve.public.trusted_proxies.len(), 3);
}
