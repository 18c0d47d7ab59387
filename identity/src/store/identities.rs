//! [`IdentityPool`] on SQL.

use super::{AddressKind, Db, IdentityPool, ListIdentities, Page, StoreError};
use crate::model::{
    Credential, CredentialType, Identity, IdentityState, RecoveryAddress, VerifiableAddress,
};
use crate::on_pool;
use async_trait::async_trait;
use serde_json::Value;
use sqlx::types::Json;
use sqlx::FromRow;
use std::collections::{BTreeMap, HashMap};
use time::OffsetDateTime;
use uuid::Uuid;

const IDENTITY_COLUMNS: &str = "id, schema_id, traits, state, state_changed_at, metadata_public, \
     metadata_admin, external_id, organization_id, created_at, updated_at";

#[derive(FromRow)]
struct IdentityRow {
    id: Uuid,
    schema_id: String,
    traits: Json<Value>,
    state: String,
    state_changed_at: Option<OffsetDateTime>,
    metadata_public: Option<Json<Value>>,
    metadata_admin: Option<Json<Value>>,
    external_id: Option<String>,
    organization_id: Option<Uuid>,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

#[derive(FromRow)]
struct CredentialRow {
    id: Uuid,
    identity_id: Uuid,
    #[sqlx(rename = "type")]
    kind: String,
    config: Json<Value>,
    version: i32,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

#[derive(FromRow)]
struct IdentifierRow {
    identity_credential_id: Uuid,
    identifier: String,
}

#[derive(FromRow)]
struct VerifiableRow {
    id: Uuid,
    identity_id: Uuid,
    via: String,
    value: String,
    verified: bool,
    verified_at: Option<OffsetDateTime>,
    status: String,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

#[derive(FromRow)]
struct RecoveryRow {
    id: Uuid,
    identity_id: Uuid,
    via: String,
    value: String,
    created_at: OffsetDateTime,
    updated_at: OffsetDateTime,
}

fn corrupt(what: &str, value: &str) -> StoreError {
    StoreError::Backend(sqlx::Error::Decode(
        format!("unexpected {what} {value:?} in the database").into(),
    ))
}

impl IdentityRow {
    fn into_identity(self) -> Result<Identity, StoreError> {
        Ok(Identity {
            id: self.id,
            schema_id: self.schema_id,
            traits: self.traits.0,
            state: self
                .state
                .parse::<IdentityState>()
                .map_err(|_| corrupt("identity state", &self.state))?,
            state_changed_at: self.state_changed_at,
            metadata_public: self.metadata_public.map(|j| j.0).filter(|v| !v.is_null()),
            metadata_admin: self.metadata_admin.map(|j| j.0).filter(|v| !v.is_null()),
            external_id: self.external_id,
            organization_id: self.organization_id,
            credentials: BTreeMap::new(),
            verifiable_addresses: Vec::new(),
            recovery_addresses: Vec::new(),
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

/// `$start, $start+1, …` for `n` parameters.
fn placeholders(start: usize, n: usize) -> String {
    (start..start + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn opt_json(v: &Option<Value>) -> Option<Json<&Value>> {
    v.as_ref().filter(|v| !v.is_null()).map(Json)
}

#[async_trait]
impl IdentityPool for Db {
    async fn create_identity(&self, identity: &Identity) -> Result<(), StoreError> {
        on_pool!(self, pool, {
            let mut tx = pool.begin().await?;
            sqlx::query(&format!(
                "INSERT INTO identities ({IDENTITY_COLUMNS}) VALUES ({})",
                placeholders(1, 11)
            ))
            .bind(identity.id)
            .bind(&identity.schema_id)
            .bind(Json(&identity.traits))
            .bind(identity.state.as_str())
            .bind(identity.state_changed_at)
            .bind(opt_json(&identity.metadata_public))
            .bind(opt_json(&identity.metadata_admin))
            .bind(identity.external_id.as_deref())
            .bind(identity.organization_id)
            .bind(identity.created_at)
            .bind(identity.updated_at)
            .execute(&mut *tx)
            .await?;
            insert_children!(tx, identity);
            tx.commit().await?;
            Ok(())
        })
    }

    async fn update_identity(&self, identity: &Identity) -> Result<(), StoreError> {
        on_pool!(self, pool, {
            let mut tx = pool.begin().await?;
            let done = sqlx::query(
                "UPDATE identities SET schema_id = $2, traits = $3, state = $4, state_changed_at = $5, \
                 metadata_public = $6, metadata_admin = $7, external_id = $8, organization_id = $9, \
                 updated_at = $10 WHERE id = $1",
            )
            .bind(identity.id)
            .bind(&identity.schema_id)
            .bind(Json(&identity.traits))
            .bind(identity.state.as_str())
            .bind(identity.state_changed_at)
            .bind(opt_json(&identity.metadata_public))
            .bind(opt_json(&identity.metadata_admin))
            .bind(identity.external_id.as_deref())
            .bind(identity.organization_id)
            .bind(identity.updated_at)
            .execute(&mut *tx)
            .await?;
            if done.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
            for table in [
                "identity_credentials",
                "identity_verifiable_addresses",
                "identity_recovery_addresses",
            ] {
                sqlx::query(&format!("DELETE FROM {table} WHERE identity_id = $1"))
                    .bind(identity.id)
                    .execute(&mut *tx)
                    .await?;
            }
            insert_children!(tx, identity);
            tx.commit().await?;
            Ok(())
        })
    }

    async fn get_identity(&self, id: Uuid, with_credentials: bool) -> Result<Identity, StoreError> {
        let row: IdentityRow = on_pool!(self, pool, {
            sqlx::query_as(&format!(
                "SELECT {IDENTITY_COLUMNS} FROM identities WHERE id = $1"
            ))
            .bind(id)
            .fetch_optional(pool)
            .await?
        })
        .ok_or(StoreError::NotFound)?;
        let mut list = vec![row.into_identity()?];
        self.load_children(&mut list, with_credentials).await?;
        list.pop().ok_or(StoreError::NotFound)
    }

    async fn get_identity_by_external_id(
        &self,
        external_id: &str,
        with_credentials: bool,
    ) -> Result<Identity, StoreError> {
        let id: Uuid = on_pool!(self, pool, {
            sqlx::query_scalar("SELECT id FROM identities WHERE external_id = $1")
                .bind(external_id)
                .fetch_optional(pool)
                .await?
        })
        .ok_or(StoreError::NotFound)?;
        self.get_identity(id, with_credentials).await
    }

    async fn find_by_credential_identifier(
        &self,
        kind: CredentialType,
        identifier: &str,
    ) -> Result<Identity, StoreError> {
        let id: Uuid = on_pool!(self, pool, {
            sqlx::query_scalar(
                "SELECT identity_id FROM identity_credential_identifiers WHERE type = $1 AND identifier = $2",
            )
            .bind(kind.as_str())
            .bind(identifier)
            .fetch_optional(pool)
            .await?
        })
        .ok_or(StoreError::NotFound)?;
        self.get_identity(id, true).await
    }

    async fn find_by_address(
        &self,
        kind: AddressKind,
        via: &str,
        value: &str,
    ) -> Result<Identity, StoreError> {
        let sql = match kind {
            AddressKind::Verifiable => {
                "SELECT identity_id FROM identity_verifiable_addresses WHERE via = $1 AND value = $2"
            }
            AddressKind::Recovery => {
                "SELECT identity_id FROM identity_recovery_addresses WHERE via = $1 AND value = $2"
            }
        };
        let id: Uuid = on_pool!(self, pool, {
            sqlx::query_scalar(sql)
                .bind(via)
                .bind(value)
                .fetch_optional(pool)
                .await?
        })
        .ok_or(StoreError::NotFound)?;
        self.get_identity(id, false).await
    }

    async fn list_identities(
        &self,
        params: &ListIdentities,
    ) -> Result<(Vec<Identity>, Option<u64>), StoreError> {
        // Build one WHERE clause; every value is bound, never interpolated.
        let mut conditions: Vec<String> = Vec::new();
        let mut uuids: Vec<Uuid> = Vec::new();
        let mut text: Option<String> = None;
        let mut next = 1;
        if !params.ids.is_empty() {
            conditions.push(format!("id IN ({})", placeholders(next, params.ids.len())));
            next += params.ids.len();
            uuids.extend(&params.ids);
        }
        if let Some(ident) = &params.credentials_identifier {
            conditions.push(format!(
                "id IN (SELECT identity_id FROM identity_credential_identifiers WHERE identifier = ${next})"
            ));
            next += 1;
            text = Some(ident.clone());
        } else if let Some(similar) = &params.credentials_identifier_similar {
            conditions.push(format!(
                "id IN (SELECT identity_id FROM identity_credential_identifiers WHERE LOWER(identifier) LIKE ${next} ESCAPE '\\')"
            ));
            next += 1;
            let escaped = similar
                .to_lowercase()
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_");
            text = Some(format!("%{escaped}%"));
        }
        let (limit, offset, after) = match params.page {
            Page::Keyset { after, size } => (size, 0u64, after),
            Page::Offset { page, per_page } => {
                (per_page, u64::from(page) * u64::from(per_page), None)
            }
        };
        let mut page_conditions = conditions.clone();
        if after.is_some() {
            page_conditions.push(format!("id > ${next}"));
        }
        let where_all = if conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conditions.join(" AND "))
        };
        let where_page = if page_conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", page_conditions.join(" AND "))
        };
        let sql = format!(
            "SELECT {IDENTITY_COLUMNS} FROM identities{where_page} ORDER BY id LIMIT {limit} OFFSET {offset}"
        );
        let want_total = matches!(params.page, Page::Offset { .. });
        let (rows, total): (Vec<IdentityRow>, Option<i64>) = on_pool!(self, pool, {
            let mut q = sqlx::query_as(&sql);
            for id in &uuids {
                q = q.bind(*id);
            }
            if let Some(t) = &text {
                q = q.bind(t.as_str());
            }
            if let Some(a) = after {
                q = q.bind(a);
            }
            let rows = q.fetch_all(pool).await?;
            let total = if want_total {
                let count_sql = format!("SELECT COUNT(*) FROM identities{where_all}");
                let mut c = sqlx::query_scalar(&count_sql);
                for id in &uuids {
                    c = c.bind(*id);
                }
                if let Some(t) = &text {
                    c = c.bind(t.as_str());
                }
                Some(c.fetch_one(pool).await?)
            } else {
                None
            };
            (rows, total)
        });
        let mut list = rows
            .into_iter()
            .map(IdentityRow::into_identity)
            .collect::<Result<Vec<_>, _>>()?;
        self.load_children(&mut list, params.with_credentials)
            .await?;
        Ok((list, total.map(|t| u64::try_from(t).unwrap_or(0))))
    }

    async fn delete_identity(&self, id: Uuid) -> Result<(), StoreError> {
        let done = on_pool!(self, pool, {
            sqlx::query("DELETE FROM identities WHERE id = $1")
                .bind(id)
                .execute(pool)
                .await?
                .rows_affected()
        });
        if done == 0 {
            Err(StoreError::NotFound)
        } else {
            Ok(())
        }
    }

    async fn ping(&self) -> Result<(), StoreError> {
        on_pool!(self, pool, {
            sqlx::query("SELECT 1").execute(pool).await?;
        });
        Ok(())
    }
}

/// Inserts credentials, identifiers and addresses of `$identity` inside the open transaction `$tx`.
macro_rules! insert_children {
    ($tx:ident, $identity:expr) => {
        let identity: &Identity = $identity;
        for cred in identity.credentials.values() {
            sqlx::query(
                "INSERT INTO identity_credentials (id, identity_id, type, config, version, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(cred.id)
            .bind(identity.id)
            .bind(cred.kind.as_str())
            .bind(Json(&cred.config))
            .bind(cred.version)
            .bind(cred.created_at)
            .bind(cred.updated_at)
            .execute(&mut *$tx)
            .await?;
            for ident in &cred.identifiers {
                sqlx::query(
                    "INSERT INTO identity_credential_identifiers \
                     (id, identity_credential_id, identity_id, type, identifier, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(Uuid::new_v4())
                .bind(cred.id)
                .bind(identity.id)
                .bind(cred.kind.as_str())
                .bind(ident.as_str())
                .bind(cred.created_at)
                .bind(cred.updated_at)
                .execute(&mut *$tx)
                .await?;
            }
        }
        for a in &identity.verifiable_addresses {
            sqlx::query(
                "INSERT INTO identity_verifiable_addresses \
                 (id, identity_id, via, value, verified, verified_at, status, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(a.id)
            .bind(identity.id)
            .bind(a.via.as_str())
            .bind(a.value.as_str())
            .bind(a.verified)
            .bind(a.verified_at)
            .bind(a.status.as_str())
            .bind(a.created_at)
            .bind(a.updated_at)
            .execute(&mut *$tx)
            .await?;
        }
        for a in &identity.recovery_addresses {
            sqlx::query(
                "INSERT INTO identity_recovery_addresses (id, identity_id, via, value, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(a.id)
            .bind(identity.id)
            .bind(a.via.as_str())
            .bind(a.value.as_str())
            .bind(a.created_at)
            .bind(a.updated_at)
            .execute(&mut *$tx)
            .await?;
        }
    };
}
use insert_children;

impl Db {
    /// Loads addresses (and credentials if asked) of every identity in `list` with one query per table.
    async fn load_children(
        &self,
        list: &mut [Identity],
        with_credentials: bool,
    ) -> Result<(), StoreError> {
        if list.is_empty() {
            return Ok(());
        }
        let ids: Vec<Uuid> = list.iter().map(|i| i.id).collect();
        let marks = placeholders(1, ids.len());
        let verifiable_sql = format!(
            "SELECT id, identity_id, via, value, verified, verified_at, status, created_at, updated_at \
             FROM identity_verifiable_addresses WHERE identity_id IN ({marks}) ORDER BY created_at, id"
        );
        let recovery_sql = format!(
            "SELECT id, identity_id, via, value, created_at, updated_at \
             FROM identity_recovery_addresses WHERE identity_id IN ({marks}) ORDER BY created_at, id"
        );
        let credentials_sql = format!(
            "SELECT id, identity_id, type, config, version, created_at, updated_at \
             FROM identity_credentials WHERE identity_id IN ({marks})"
        );
        let identifiers_sql = format!(
            "SELECT identity_credential_id, identifier FROM identity_credential_identifiers \
             WHERE identity_id IN ({marks}) ORDER BY created_at, identifier"
        );
        let (verifiable, recovery, creds, idents): (
            Vec<VerifiableRow>,
            Vec<RecoveryRow>,
            Vec<CredentialRow>,
            Vec<IdentifierRow>,
        ) = on_pool!(self, pool, {
            let mut q = sqlx::query_as(&verifiable_sql);
            for id in &ids {
                q = q.bind(*id);
            }
            let verifiable = q.fetch_all(pool).await?;
            let mut q = sqlx::query_as(&recovery_sql);
            for id in &ids {
                q = q.bind(*id);
            }
            let recovery = q.fetch_all(pool).await?;
            let (creds, idents) = if with_credentials {
                let mut q = sqlx::query_as(&credentials_sql);
                for id in &ids {
                    q = q.bind(*id);
                }
                let creds = q.fetch_all(pool).await?;
                let mut q = sqlx::query_as(&identifiers_sql);
                for id in &ids {
                    q = q.bind(*id);
                }
                (creds, q.fetch_all(pool).await?)
            } else {
                (Vec::new(), Vec::new())
            };
            (verifiable, recovery, creds, idents)
        });

        let index: HashMap<Uuid, usize> = ids.iter().enumerate().map(|(i, id)| (*id, i)).collect();
        for r in verifiable {
            if let Some(&i) = index.get(&r.identity_id) {
                list[i].verifiable_addresses.push(VerifiableAddress {
                    id: r.id,
                    via: r.via,
                    value: r.value,
                    verified: r.verified,
                    verified_at: r.verified_at,
                    status: r
                        .status
                        .parse()
                        .map_err(|_| corrupt("address status", &r.status))?,
                    created_at: r.created_at,
                    updated_at: r.updated_at,
                });
            }
        }
        for r in recovery {
            if let Some(&i) = index.get(&r.identity_id) {
                list[i].recovery_addresses.push(RecoveryAddress {
                    id: r.id,
                    via: r.via,
                    value: r.value,
                    created_at: r.created_at,
                    updated_at: r.updated_at,
                });
            }
        }
        let mut identifiers: HashMap<Uuid, Vec<String>> = HashMap::new();
        for r in idents {
            identifiers
                .entry(r.identity_credential_id)
                .or_default()
                .push(r.identifier);
        }
        for r in creds {
            let kind: CredentialType = r
                .kind
                .parse()
                .map_err(|_| corrupt("credential type", &r.kind))?;
            if let Some(&i) = index.get(&r.identity_id) {
                list[i].credentials.insert(
                    kind,
                    Credential {
                        id: r.id,
                        kind,
                        identifiers: identifiers.remove(&r.id).unwrap_or_default(),
                        config: r.config.0,
                        version: r.version,
                        created_at: r.created_at,
                        updated_at: r.updated_at,
                    },
                );
            }
        }
        Ok(())
    }
}
