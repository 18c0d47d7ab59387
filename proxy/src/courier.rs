//! The courier in the binary: `courier.*` mapped onto [`flows::courier`], the delivery worker (in `serve`, or alone
//! with `portcullis courier watch`), the admin API and the metrics.

use crate::config::Config;
use crate::error::ApiError;
use crate::extract::{query_get, query_pairs, uuid};
use crate::{pagination, AppState};
use anyhow::Context;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use flows::courier::{
    Courier, EmailTemplateUris, ListMessages, Message, MessageStatus, RetryPolicy, SmtpSender,
    SmtpSettings, SqlCourierStore, TemplateSettings, Templates, VariantName, WorkerSettings,
};
use identity::{Db, SharedClock};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::watch;

/// What `body` says outside `--dev`, as in Kratos.
const REDACTED: &str = "<redacted-unless-dev-mode>";

/// The courier over the database, with the configured templates.
pub fn build(config: &Config, db: &Db, clock: SharedClock) -> anyhow::Result<Courier> {
    let templates = Templates::load(&template_settings(config)?).context("courier templates")?;
    Ok(Courier::new(
        Arc::new(SqlCourierStore::new(db.clone())),
        Arc::new(templates),
        clock,
    ))
}

/// `courier.template_override_path` and `courier.templates.<name>.<valid|invalid>.email.{subject, body.html,
/// body.plaintext}`.
fn template_settings(config: &Config) -> anyhow::Result<TemplateSettings> {
    let mut templates = BTreeMap::new();
    for (name, variants) in &config.courier.templates {
        for (variant, key) in [
            (VariantName::Valid, "valid"),
            (VariantName::Invalid, "invalid"),
        ] {
            let Some(email) = variants.get(key).and_then(|v| v.get("email")) else {
                continue;
            };
            let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
            let uris = EmailTemplateUris {
                subject: text(email.get("subject")),
                body_html: text(email.pointer("/body/html")),
                body_plaintext: text(email.pointer("/body/plaintext")),
            };
            if uris == EmailTemplateUris::default() {
                anyhow::bail!("courier.templates.{name}.{key}.email sets none of subject, body.html and body.plaintext");
            }
            templates.insert((name.clone(), variant), uris);
        }
    }
    Ok(TemplateSettings {
        override_path: config
            .courier
            .template_override_path
            .as_deref()
            .map(|p| p.strip_prefix("file://").unwrap_or(p).into()),
        templates,
    })
}

/// `courier.smtp.*`, or `None` when no `connection_uri` is configured (messages then stay queued).
pub fn smtp_settings(config: &Config) -> Option<SmtpSettings> {
    let s = &config.courier.smtp;
    let uri = s.connection_uri.as_ref()?;
    Some(SmtpSettings {
        connection_uri: uri.expose().to_owned(),
        from_address: s.from_address.clone(),
        from_name: s.from_name.clone(),
        headers: s.headers.clone(),
        local_name: s.local_name.clone(),
        client_cert_path: s.client_cert_path.as_ref().map(Into::into),
        client_key_path: s.client_key_path.as_ref().map(Into::into),
        ..SmtpSettings::default()
    })
}

/// `courier.worker.*` and `courier.message_retries`. A claim outlives a whole batch of slow SMTP exchanges, so
/// another worker never takes a message back while this one may still be sending it.
pub fn worker_settings(config: &Config, smtp: &SmtpSettings) -> WorkerSettings {
    let w = &config.courier.worker;
    let batch = smtp
        .timeout
        .saturating_mul(w.pull_count.max(1))
        .saturating_mul(3);
    let lease = time::Duration::try_from(batch)
        .unwrap_or(time::Duration::hours(1))
        .max(time::Duration::minutes(5));
    WorkerSettings {
        pull_count: w.pull_count.max(1),
        pull_wait: w.pull_wait.0,
        lease,
        retry: RetryPolicy {
            message_retries: config.courier.message_retries.max(1),
            ..RetryPolicy::default()
        },
    }
}

/// Starts the delivery worker when SMTP is configured; it stops when `stop` turns true.
pub fn spawn_worker(
    courier: &Courier,
    config: &Config,
    stop: watch::Receiver<bool>,
) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    if config.courier.delivery_strategy != "smtp" {
        anyhow::bail!(
            "courier.delivery_strategy {:?} is not supported (only smtp)",
            config.courier.delivery_strategy
        );
    }
    let Some(smtp) = smtp_settings(config) else {
        tracing::warn!("courier.smtp.connection_uri is not set: e-mails are queued but not sent");
        return Ok(None);
    };
    let sender = Arc::new(SmtpSender::new(&smtp).context("courier.smtp")?);
    let worker = courier.worker(sender, worker_settings(config, &smtp));
    tracing::info!("courier worker started");
    Ok(Some(tokio::spawn(worker.run(stop))))
}

/// A message as Kratos shows it: `body` is the plaintext body (the HTML part is only for delivery), and outside
/// `--dev` it is redacted.
fn message_json(m: &Message, dev: bool) -> Value {
    let mut v = serde_json::to_value(m).unwrap_or(Value::Null);
    if let Some(o) = v.as_object_mut() {
        let body = if !dev {
            REDACTED.to_owned()
        } else if m.body_plaintext.is_empty() {
            m.body.clone()
        } else {
            m.body_plaintext.clone()
        };
        o.insert("body".into(), Value::String(body));
    }
    v
}

/// `GET /admin/courier/messages`.
pub async fn list(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let pairs = query_pairs(raw.as_deref());
    let size = crate::pagination::keyset_size(&pairs, "page_size", 250, 1000)?;
    let status = query_get(&pairs, "status")
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<MessageStatus>().map_err(|_| {
                ApiError::bad_request(format!(
                    "status must be one of queued, sent, processing and abandoned, not {s:?}"
                ))
            })
        })
        .transpose()?;
    let page_token = query_get(&pairs, "page_token")
        .filter(|t| !t.is_empty())
        .map(|t| {
            t.parse()
                .map_err(|_| ApiError::bad_request("the page_token is invalid"))
        })
        .transpose()?;
    let recipient = query_get(&pairs, "recipient")
        .filter(|r| !r.is_empty())
        .map(str::to_owned);
    let page = state
        .courier
        .store()
        .list(&ListMessages {
            page_size: size,
            page_token,
            status,
            recipient,
        })
        .await?;
    let url = format!("{}admin/courier/messages", state.admin_base);
    let headers = pagination::keyset_headers(
        &url,
        &pairs,
        size,
        page.next_page_token.map(|t| t.to_string()),
    );
    let body: Vec<Value> = page
        .messages
        .iter()
        .map(|m| message_json(m, state.config.dev))
        .collect();
    Ok((headers, Json(Value::Array(body))).into_response())
}

/// `GET /admin/courier/messages/{id}`.
pub async fn get(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = uuid(&id)?;
    let m = state.courier.store().get(id).await?;
    Ok(Json(message_json(&m, state.config.dev)))
}

/// Reads the outbox's counts by status into the metrics (`portcullis_courier_messages{status}`).
pub async fn update_outbox_metrics(state: &AppState) {
    if let Ok(by_status) = state.courier.store().count_by_status().await {
        let rows: Vec<(&str, u64)> = by_status.iter().map(|(s, n)| (s.as_str(), *n)).collect();
        state.metrics.set_outbox(&rows);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::config::Config;
    use flows::courier::{MessageStatus, MessageType, TemplateType};

    fn b64(s: &str) -> String {
        use base64::Engine as _;
        format!(
            "base64://{}",
            base64::engine::general_purpose::STANDARD.encode(s)
        )
    }

    #[tokio::test]
    async fn courier_templates_from_config_override_the_builtins() {
        let mut config = Config::default();
        config.courier.templates.insert(
            "recovery_code".into(),
            serde_json::json!({"valid": {"email": {
                "subject": b64("Your {{ .RecoveryCode }}"),
                "body": {"plaintext": b64("Code: {{ .RecoveryCode }}")}
            }}}),
        );
        // Kratos' documented pattern for mails in the identity's language.
        config.courier.templates.insert(
            "verification_code".into(),
            serde_json::json!({"valid": {"email": {
                "body": {"html": b64(r#"{{define "en"}}Code {{ .VerificationCode }}{{end}}{{define "de"}}Kode {{ .VerificationCode }}{{end}}
{{- if eq (index .Identity.traits "lang") "de" }}{{ template "de" . }}{{ else }}{{ template "en" . }}{{ end -}}"#)}
            }}}),
        );
        let db = Db::connect("memory").await.unwrap();
        db.migrate().await.unwrap();
        let clock: SharedClock = Arc::new(identity::SystemClock);
        let courier = build(&config, &db, clock).unwrap();
        let m = courier
            .queue_email(
                "a@example.com",
                TemplateType::RecoveryCodeValid,
                serde_json::json!({"RecoveryCode": "246810"}),
                None,
            )
            .await
            .unwrap();
        assert_eq!(m.subject, "Your 246810");
        assert_eq!(m.body_plaintext, "Code: 246810");
        // Parts not overridden, and other templates, keep the built-ins.
        assert!(m.body.contains("246810"), "{}", m.body);
        let other = courier
            .queue_email(
                "a@example.com",
                TemplateType::VerificationCodeValid,
                serde_json::json!({"VerificationCode": "135790"}),
                None,
            )
            .await
            .unwrap();
        assert!(!other.subject.is_empty() && other.subject != "Your 246810");
        assert_eq!(other.body, "Code 135790");
        let german = courier
            .queue_email(
                "a@example.com",
                TemplateType::VerificationCodeValid,
                serde_json::json!({"VerificationCode": "<1>", "Identity": {"traits": {"lang": "de"}}}),
                None,
            )
            .await
            .unwrap();
        assert_eq!(german.body, "Kode &lt;1&gt;");

        // A template that does not parse stops start-up, naming the template and the problem.
        config.courier.templates.insert(
            "recovery_code".into(),
            serde_json::json!({"valid": {"email": {"subject": b64("{{ shout .RecoveryCode }}")}}}),
        );
        let clock: SharedClock = Arc::new(identity::SystemClock);
        let err = format!("{:#}", build(&config, &db, clock).unwrap_err());
        assert!(
            err.contains("recovery_code/valid") && err.contains("shout"),
            "{err}"
        );
        config.courier.templates.remove("recovery_code");

        // A template entry that sets nothing, or names a file that is not there, stops start-up with the key.
        config.courier.templates.insert(
            "verification_code".into(),
            serde_json::json!({"valid": {"email": {}}}),
        );
        let clock: SharedClock = Arc::new(identity::SystemClock);
        let err = build(&config, &db, clock).unwrap_err().to_string();
        assert!(
            err.contains("courier.templates.verification_code.valid"),
            "{err}"
        );
        config.courier.templates.insert(
            "verification_code".into(),
            serde_json::json!({"valid": {"email": {"subject": "file:///does/not/exist.gotmpl"}}}),
        );
        let clock: SharedClock = Arc::new(identity::SystemClock);
        let err = format!("{:#}", build(&config, &db, clock).unwrap_err());
        assert!(err.contains("/does/not/exist.gotmpl"), "{err}");
    }

    #[test]
    fn bodies_are_redacted_outside_dev_mode() {
        let now = time::OffsetDateTime::UNIX_EPOCH;
        let m = Message {
            id: uuid::Uuid::new_v4(),
            status: MessageStatus::Sent,
            kind: MessageType::Email,
            recipient: "a@example.com".into(),
            subject: "Recover access".into(),
            body: "your code: 123456".into(),
            body_plaintext: "your code: 123456".into(),
            template_type: TemplateType::RecoveryCodeValid,
            template_data: serde_json::json!({"RecoveryCode": "123456"}),
            channel: None,
            send_count: 1,
            identity_id: None,
            dispatches: Vec::new(),
            created_at: now,
            updated_at: now,
            next_attempt_at: None,
            claim: None,
        };
        let shown = message_json(&m, true);
        assert_eq!(shown["body"], "your code: 123456");
        let hidden = message_json(&m, false);
        assert_eq!(hidden["body"], REDACTED);
        assert!(!hidden.to_string().contains("123456"), "{hidden}");
    }
}
