//! The [`IdentityPool`] conformance suite. Every backend runs every case.

use super::testing;
use super::{AddressKind, Db, IdentityPool, ListIdentities, Page, StoreError};
use crate::model::{Credential, CredentialType, Identity, IdentityState};
use serde_json::json;
use time::macros::datetime;
use time::OffsetDateTime;
use uuid::Uuid;

fn now() -> OffsetDateTime {
    datetime!(2026-03-04 05:06:07.123456 UTC)
}

fn person(email: &str) -> Identity {
    let mut i = Identity::new(
        "default",
        json!({"email": email, "name": {"first": "Ada"}}),
        now(),
    );
    i.set_addresses(
        &[("email".into(), email.into())],
        &[("email".into(), email.into())],
        now(),
    );
    i.credentials.insert(
        CredentialType::Password,
        Credential {
            id: Uuid::new_v4(),
            kind: CredentialType::Password,
            identifiers: vec![email.to_owned()],
            config: json!({"hashed_password": "$2a$04$abc"}),
            version: 0,
            created_at: now(),
            updated_at: now(),
        },
    );
    i
}

async fn create_get_round_trip(db: &Db) {
    let mut a = person("ada@example.com");
    a.metadata_public = Some(json!({"plan": "pro"}));
    a.metadata_admin = Some(json!({"internal": 1}));
    a.external_id = Some("crm-1".into());
    db.create_identity(&a).await.unwrap();
    let got = db.get_identity(a.id, true).await.unwrap();
    assert_eq!(
        got, a,
        "everything survives a round trip, timestamps to the microsecond"
    );
    let without = db.get_identity(a.id, false).await.unwrap();
    assert!(without.credentials.is_empty());
    assert_eq!(without.verifiable_addresses, a.verifiable_addresses);
    let by_ext = db
        .get_identity_by_external_id("crm-1", false)
        .await
        .unwrap();
    assert_eq!(by_ext.id, a.id);
    let found = db
        .find_by_credential_identifier(CredentialType::Password, "ada@example.com")
        .await
        .unwrap();
    assert_eq!(found.id, a.id);
    assert_eq!(
        found.credentials[&CredentialType::Password].hashed_password(),
        Some("$2a$04$abc")
    );
    assert!(matches!(
        db.get_identity(Uuid::new_v4(), false).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        db.find_by_credential_identifier(CredentialType::Oidc, "ada@example.com")
            .await,
        Err(StoreError::NotFound)
    ));
    for kind in [AddressKind::Verifiable, AddressKind::Recovery] {
        let owner = db
            .find_by_address(kind, "email", "ada@example.com")
            .await
            .unwrap();
        assert_eq!(owner.id, a.id, "{kind:?}");
        assert_eq!(owner.verifiable_addresses, a.verifiable_addresses);
        assert!(owner.credentials.is_empty());
        for (via, value) in [("email", "bob@example.com"), ("sms", "ada@example.com")] {
            assert!(
                matches!(
                    db.find_by_address(kind, via, value).await,
                    Err(StoreError::NotFound)
                ),
                "{kind:?} {via} {value}"
            );
        }
    }
}

async fn duplicates_conflict_and_leave_nothing_behind(db: &Db) {
    let a = person("dup@example.com");
    db.create_identity(&a).await.unwrap();
    let b = person("dup@example.com");
    assert!(matches!(
        db.create_identity(&b).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(
        matches!(
            db.get_identity(b.id, false).await,
            Err(StoreError::NotFound)
        ),
        "the failed create rolled back"
    );
    let mut c = person("other@example.com");
    c.external_id = Some("ext-dup".into());
    db.create_identity(&c).await.unwrap();
    let mut d = person("other2@example.com");
    d.external_id = Some("ext-dup".into());
    assert!(matches!(
        db.create_identity(&d).await,
        Err(StoreError::Conflict(_))
    ));
}

async fn update_replaces_children(db: &Db) {
    let mut a = person("before@example.com");
    db.create_identity(&a).await.unwrap();
    a.traits = json!({"email": "after@example.com"});
    a.state = IdentityState::Inactive;
    a.set_addresses(&[("email".into(), "after@example.com".into())], &[], now());
    a.set_credential_identifiers(
        CredentialType::Password,
        vec!["after@example.com".into()],
        now(),
    );
    a.metadata_public = None;
    a.updated_at = now() + time::Duration::minutes(1);
    db.update_identity(&a).await.unwrap();
    let got = db.get_identity(a.id, true).await.unwrap();
    assert_eq!(got, a);
    assert!(got.recovery_addresses.is_empty());
    // The old identifier is free again, the new one is taken.
    db.create_identity(&person("before@example.com"))
        .await
        .unwrap();
    assert!(matches!(
        db.create_identity(&person("after@example.com")).await,
        Err(StoreError::Conflict(_))
    ));
    let ghost = person("ghost@example.com");
    assert!(matches!(
        db.update_identity(&ghost).await,
        Err(StoreError::NotFound)
    ));
}

async fn list_pages_and_filters(db: &Db) {
    let everything = ListIdentities {
        page: Page::Offset {
            page: 0,
            per_page: 1000,
        },
        ..Default::default()
    };
    let before = db.list_identities(&everything).await.unwrap().1.unwrap();
    let mut ids = Vec::new();
    for n in 0..7 {
        let p = person(&format!("list{n}@example.com"));
        ids.push(p.id);
        db.create_identity(&p).await.unwrap();
    }
    ids.sort();
    // Keyset pages of 3 cover everything exactly once, in id order.
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let params = ListIdentities {
            page: Page::Keyset { after, size: 3 },
            ..Default::default()
        };
        let (page, total) = db.list_identities(&params).await.unwrap();
        assert!(total.is_none());
        assert!(page.len() <= 3);
        if page.is_empty() {
            break;
        }
        after = page.last().map(|i| i.id);
        seen.extend(page.iter().map(|i| i.id));
    }
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted, "pages come in id order");
    seen.retain(|id| ids.contains(id));
    assert_eq!(seen, ids, "every new identity exactly once");
    // Offset pages report the total.
    let (page, total) = db
        .list_identities(&ListIdentities {
            page: Page::Offset {
                page: 1,
                per_page: 5,
            },
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(total, Some(before + 7));
    assert_eq!(page.len() as u64, (before + 7 - 5).min(5));
    // Filters.
    let (page, _) = db
        .list_identities(&ListIdentities {
            ids: vec![ids[2], ids[4], Uuid::new_v4()],
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        page.iter().map(|i| i.id).collect::<Vec<_>>(),
        vec![ids[2], ids[4]]
    );
    let (page, _) = db
        .list_identities(&ListIdentities {
            credentials_identifier: Some("list3@example.com".into()),
            with_credentials: true,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].traits["email"], "list3@example.com");
    assert!(page[0].credentials.contains_key(&CredentialType::Password));
    let (page, _) = db
        .list_identities(&ListIdentities {
            credentials_identifier_similar: Some("LIST".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.len(), 7);
    let (page, _) = db
        .list_identities(&ListIdentities {
            credentials_identifier_similar: Some("%".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(page.is_empty(), "LIKE wildcards are escaped");
}

async fn delete_cascades(db: &Db) {
    let a = person("gone@example.com");
    db.create_identity(&a).await.unwrap();
    db.delete_identity(a.id).await.unwrap();
    assert!(matches!(
        db.get_identity(a.id, true).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        db.delete_identity(a.id).await,
        Err(StoreError::NotFound)
    ));
    // Its identifier and addresses are free again.
    db.create_identity(&person("gone@example.com"))
        .await
        .unwrap();
    db.ping().await.unwrap();
}

async fn run_all(db: Db) {
    create_get_round_trip(&db).await;
    duplicates_conflict_and_leave_nothing_behind(&db).await;
    update_replaces_children(&db).await;
    list_pages_and_filters(&db).await;
    delete_cascades(&db).await;
}

#[tokio::test]
async fn identity_pool_conformance_sqlite_file() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = testing::sqlite_file(dir.path()).await.unwrap();
    run_all(db).await;
}

#[tokio::test]
async fn identity_pool_conformance_sqlite_memory() {
    let db = Db::connect("sqlite::memory:").await.unwrap();
    db.migrate().await.unwrap();
    run_all(db).await;
}

#[tokio::test]
async fn identity_pool_conformance_postgres() {
    // Runs when TEST_DATABASE_URL is set (CI always sets it); an unreachable server fails the test.
    let Ok(url) = std::env::var("TEST_DATABASE_URL") else {
        return;
    };
    let (db, _) = testing::isolated_postgres(&url)
        .await
        .unwrap_or_else(|e| panic!("TEST_DATABASE_URL is set but unusable: {e}"));
    assert_eq!(db.backend(), super::Backend::Postgres);
    run_all(db).await;
}
