//! The JSON shapes of identities, exactly as Kratos emits them.

use crate::model::{CredentialType, Identity};
use serde_json::{json, Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// RFC 3339 in UTC with a `Z` suffix, as Go prints `time.Time`.
pub fn timestamp(t: OffsetDateTime) -> Value {
    Value::String(
        t.to_offset(time::UtcOffset::UTC)
            .format(&Rfc3339)
            .unwrap_or_default(),
    )
}

/// Which credentials an identity view carries.
#[derive(Debug, Clone, Copy)]
pub enum CredentialsView<'a> {
    /// None (public views, lists without `include_credential`).
    Omit,
    /// Every credential, with `config` only for the listed types.
    WithConfigFor(&'a [CredentialType]),
}

/// The identity as the admin API shows it (with `metadata_admin`).
pub fn admin_identity(identity: &Identity, public_base: &str, creds: CredentialsView<'_>) -> Value {
    render(identity, public_base, creds, true)
}

/// The identity as its owner sees it (sessions, settings): no credentials, no `metadata_admin`.
pub fn public_identity(identity: &Identity, public_base: &str) -> Value {
    render(identity, public_base, CredentialsView::Omit, false)
}

/// `<public>/schemas/<unpadded base64url(schema_id)>`.
pub fn schema_url(public_base: &str, schema_id: &str) -> String {
    format!(
        "{}/schemas/{}",
        public_base.trim_end_matches('/'),
        crate::schema::schema_url_id(schema_id)
    )
}

fn render(
    identity: &Identity,
    public_base: &str,
    creds: CredentialsView<'_>,
    admin: bool,
) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(identity.id));
    if let CredentialsView::WithConfigFor(with_config) = creds {
        if !identity.credentials.is_empty() {
            let mut c = Map::new();
            for (kind, cred) in &identity.credentials {
                let mut o = Map::new();
                o.insert("type".into(), json!(kind.as_str()));
                o.insert("identifiers".into(), json!(cred.identifiers));
                if with_config.contains(kind) {
                    o.insert("config".into(), cred.config.clone());
                }
                o.insert("version".into(), json!(cred.version));
                o.insert("created_at".into(), timestamp(cred.created_at));
                o.insert("updated_at".into(), timestamp(cred.updated_at));
                c.insert(kind.as_str().into(), Value::Object(o));
            }
            m.insert("credentials".into(), Value::Object(c));
        }
    }
    m.insert("schema_id".into(), json!(identity.schema_id));
    m.insert(
        "schema_url".into(),
        json!(schema_url(public_base, &identity.schema_id)),
    );
    m.insert("state".into(), json!(identity.state.as_str()));
    if let Some(t) = identity.state_changed_at {
        m.insert("state_changed_at".into(), timestamp(t));
    }
    m.insert("traits".into(), identity.traits.clone());
    if !identity.verifiable_addresses.is_empty() {
        let list: Vec<Value> = identity
            .verifiable_addresses
            .iter()
            .map(|a| {
                let mut o = Map::new();
                o.insert("id".into(), json!(a.id));
                o.insert("value".into(), json!(a.value));
                o.insert("verified".into(), json!(a.verified));
                o.insert("via".into(), json!(a.via));
                o.insert("status".into(), json!(a.status.as_str()));
                if let Some(t) = a.verified_at {
                    o.insert("verified_at".into(), timestamp(t));
                }
                o.insert("created_at".into(), timestamp(a.created_at));
                o.insert("updated_at".into(), timestamp(a.updated_at));
                Value::Object(o)
            })
            .collect();
        m.insert("verifiable_addresses".into(), Value::Array(list));
    }
    if !identity.recovery_addresses.is_empty() {
        let list: Vec<Value> = identity
            .recovery_addresses
            .iter()
            .map(|a| {
                json!({
                    "id": a.id,
                    "value": a.value,
                    "via": a.via,
                    "created_at": timestamp(a.created_at),
                    "updated_at": timestamp(a.updated_at),
                })
            })
            .collect();
        m.insert("recovery_addresses".into(), Value::Array(list));
    }
    m.insert(
        "metadata_public".into(),
        identity.metadata_public.clone().unwrap_or(Value::Null),
    );
    if admin {
        if let Some(md) = &identity.metadata_admin {
            m.insert("metadata_admin".into(), md.clone());
        }
    }
    m.insert("created_at".into(), timestamp(identity.created_at));
    m.insert("updated_at".into(), timestamp(identity.updated_at));
    m.insert("organization_id".into(), json!(identity.organization_id));
    if let Some(e) = &identity.external_id {
        m.insert("external_id".into(), json!(e));
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Credential;
    use time::macros::datetime;

    #[test]
    fn admin_and_public_views_follow_kratos() {
        let now = datetime!(2026-01-02 03:04:05.5 UTC);
        let mut i = Identity::new("default", json!({"email": "a@example.com"}), now);
        i.metadata_admin = Some(json!({"x": 1}));
        i.set_addresses(&[("email".into(), "a@example.com".into())], &[], now);
        i.credentials.insert(
            CredentialType::Password,
            Credential {
                id: uuid::Uuid::new_v4(),
                kind: CredentialType::Password,
                identifiers: vec!["a@example.com".into()],
                config: json!({"hashed_password": "$2a$04$x"}),
                version: 0,
                created_at: now,
                updated_at: now,
            },
        );
        let base = "http://127.0.0.1:4433/";
        let admin = admin_identity(&i, base, CredentialsView::WithConfigFor(&[]));
        assert_eq!(
            admin["schema_url"],
            "http://127.0.0.1:4433/schemas/ZGVmYXVsdA"
        );
        assert_eq!(admin["created_at"], "2026-01-02T03:04:05.5Z");
        assert_eq!(admin["metadata_public"], Value::Null);
        assert_eq!(admin["organization_id"], Value::Null);
        assert_eq!(admin["metadata_admin"]["x"], 1);
        assert!(admin["credentials"]["password"].get("config").is_none());
        assert!(admin.get("external_id").is_none());
        assert!(admin.get("recovery_addresses").is_none());
        assert_eq!(admin["verifiable_addresses"][0]["status"], "pending");
        let with = admin_identity(
            &i,
            base,
            CredentialsView::WithConfigFor(&[CredentialType::Password]),
        );
        assert_eq!(
            with["credentials"]["password"]["config"]["hashed_password"],
            "$2a$04$x"
        );
        let public = public_identity(&i, base);
        assert!(public.get("credentials").is_none());
        assert!(public.get("metadata_admin").is_none());
    }
}
