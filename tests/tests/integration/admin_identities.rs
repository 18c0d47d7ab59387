//! `/admin/identities` over HTTP, on every backend.

use serde_json::{json, Value};
use tests::{backend_tests, Backend, TestEnv};

backend_tests!(
    create_get_and_hash_plaintext_password,
    imported_hashes_are_kept_and_verifiable,
    unknown_hash_format_is_rejected,
    schema_violations_name_the_field,
    duplicates_conflict,
    list_paginates_with_link_headers,
    list_filters_and_bad_parameters,
    put_replaces_and_tracks_state_changes,
    json_patch_edits_the_admin_view,
    batch_create_reports_each_item,
    delete_credentials_keeps_a_first_factor,
    delete_identity,
    external_id_lookup,
    bad_ids_and_unknown_ids,
    trait_validation_errors_carry_only_a_reason,
    malformed_identity_ids_are_not_found,
    negative_pages_are_the_first_page,
    batch_patch_without_identities_patches_nothing,
    deleting_a_credential_the_identity_lacks_is_not_found,
);

fn person(email: &str) -> Value {
    json!({
        "schema_id": "default",
        "traits": {"email": email, "name": {"first": "Ada", "last": "Lovelace"}},
    })
}

const PASSWORD: &str = "correct horse";

async fn create_get_and_hash_plaintext_password(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let mut body = person("Ada@Example.com");
    body["credentials"] = json!({"password": {"config": {"password": "a long enough password"}}});
    body["metadata_public"] = json!({"plan": "pro"});
    body["metadata_admin"] = json!({"crm": 42});
    let res = env
        .http
        .post(env.admin_url("admin/identities"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let created: Value = res.json().await.unwrap();
    let id = created["id"].as_str().unwrap();
    assert_eq!(location, env.admin_url(&format!("admin/identities/{id}")));
    assert_eq!(created["schema_id"], "default");
    assert_eq!(created["schema_url"], env.public_url("schemas/ZGVmYXVsdA"));
    assert_eq!(created["state"], "active");
    assert_eq!(
        created["state_changed_at"], "2026-06-01T12:00:00Z",
        "the injected clock"
    );
    assert_eq!(
        created["traits"]["email"], "Ada@Example.com",
        "traits are stored as given"
    );
    assert_eq!(
        created["verifiable_addresses"][0]["value"], "ada@example.com",
        "addresses are lower-cased"
    );
    assert_eq!(created["verifiable_addresses"][0]["status"], "pending");
    assert_eq!(created["verifiable_addresses"][0]["verified"], false);
    assert_eq!(created["recovery_addresses"][0]["via"], "email");
    assert_eq!(
        created["credentials"]["password"]["identifiers"],
        json!(["ada@example.com"])
    );
    assert!(
        created["credentials"]["password"].get("config").is_none(),
        "no config without include_credential"
    );
    assert_eq!(created["metadata_admin"]["crm"], 42);
    assert_eq!(created["organization_id"], Value::Null);

    let got: Value = env
        .http
        .get(env.admin_url(&format!(
            "admin/identities/{id}?include_credential=password"
        )))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let hash = got["credentials"]["password"]["config"]["hashed_password"]
        .as_str()
        .unwrap();
    assert!(hash.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"), "{hash}");
    assert!(identity::hash::verify_blocking(b"a long enough password", hash).unwrap());
    assert!(!identity::hash::verify_blocking(b"wrong", hash).unwrap());
    assert_eq!(got["metadata_public"]["plan"], "pro");
}

async fn imported_hashes_are_kept_and_verifiable(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let bcrypt_hash = bcrypt::hash(PASSWORD, 4).unwrap();
    let vectors = [
        bcrypt_hash.as_str(),
        "$argon2id$v=19$m=1024,t=2,p=2$Jtam6canrZB4HLg0uN9Dcw$P+kOqU+Y+z7cXutw8LUlPQ8PU6uZkX0hLF141o5Ci/M",
        "$pbkdf2-sha256$i=1000,l=32$wlUUBO7LHhL/y+5B1EjbAg$9boJ2+rp3gaUxs6TRwx5sY4o6b4QZw80fybEgPOpK9w",
        "$scrypt$ln=16,r=1,p=2$Jbj4GM6VWUi0Ug==$8R50jGC8TRSFJib6/zG3aCqJC7I=",
        "{SSHA256}4iqWCFL7V94YeL182UysP1TAfLpUorhKIHUCG1ajBHNbBGiQ3F4lfhtn0H/JQ7wA",
        "$sha512-crypt$dqjrRrH8m1YjJ4Y4$rnJlH5pP/6MQ99GX/kND5flTlgnAuM9rvCq6tGU67NLLw/3IFBaLXLe2CfYyEimlb.MYhojC1mZavTVXcEu93/",
    ];
    for (n, hash) in vectors.iter().enumerate() {
        let mut body = person(&format!("import{n}@example.com"));
        body["credentials"] = json!({"password": {"config": {"hashed_password": hash}}});
        let created = env.create_identity(body).await;
        let got: Value = env
            .http
            .get(env.admin_url(&format!(
                "admin/identities/{}",
                created["id"].as_str().unwrap()
            )))
            .query(&[("include_credential", "password")])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let stored = got["credentials"]["password"]["config"]["hashed_password"]
            .as_str()
            .unwrap();
        assert_eq!(stored, *hash, "imported hashes are kept as-is");
        assert!(
            identity::hash::verify_blocking(PASSWORD.as_bytes(), stored).unwrap(),
            "{hash}"
        );
    }
}

async fn unknown_hash_format_is_rejected(backend: Backend) {
    let env = TestEnv::start(backend).await;
    for bad in ["not-a-hash", "$md5$abc", "$argon2id$v=19$m=bad$x$y"] {
        let mut body = person("nohash@example.com");
        body["credentials"] = json!({"password": {"config": {"hashed_password": bad}}});
        let res = env
            .http
            .post(env.admin_url("admin/identities"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{bad}");
        let err: Value = res.json().await.unwrap();
        assert!(
            err["error"]["reason"].as_str().unwrap().contains("hash"),
            "{err}"
        );
    }
    // Nothing was stored.
    let list: Vec<Value> = env
        .http
        .get(env.admin_url("admin/identities"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(list.is_empty());
}

async fn schema_violations_name_the_field(backend: Backend) {
    let env = TestEnv::start(backend).await;
    // Kratos sends only a reason; it names the field and says what is wrong with it.
    let cases = [
        (
            json!({"name": {"first": "x"}}),
            "traits.email",
            "is missing",
        ),
        (json!({"email": "not-an-email"}), "traits.email", "email"),
        (
            json!({"email": 12}),
            "traits.email",
            "expected string, but got number",
        ),
        (json!({"email": "a@"}), "traits.email", "email"),
    ];
    for (traits, node, why) in cases {
        let res = env
            .http
            .post(env.admin_url("admin/identities"))
            .json(&json!({"schema_id": "default", "traits": traits}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400);
        let err: Value = res.json().await.unwrap();
        assert!(err["error"].get("details").is_none(), "{err}");
        let reason = err["error"]["reason"].as_str().unwrap();
        assert!(
            reason.starts_with(&format!("{node}: ")) && reason.contains(why),
            "expected {why:?} on {node}: {err}"
        );
    }
    let res = env
        .http
        .post(env.admin_url("admin/identities"))
        .json(&json!({"schema_id": "nope", "traits": {"email": "a@example.com"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let err: Value = res.json().await.unwrap();
    assert!(err["error"]["reason"].as_str().unwrap().contains("nope"));
    let res = env
        .http
        .post(env.admin_url("admin/identities"))
        .json(&json!({"schema_id": "default", "traits": {"email": "a@example.com"}, "state": "sleeping"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
}

async fn duplicates_conflict(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let mut first = person("dup@example.com");
    first["credentials"] = json!({"password": {"config": {"password": "a long enough password"}}});
    first["external_id"] = json!("ext-1");
    env.create_identity(first.clone()).await;
    let res = env
        .http
        .post(env.admin_url("admin/identities"))
        .json(&first)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 409);
    let err: Value = res.json().await.unwrap();
    assert_eq!(err["error"]["code"], 409);
    assert!(
        !err.to_string().to_lowercase().contains("unique constraint"),
        "no SQL text leaks: {err}"
    );
    // Same address without a password credential still conflicts on the verifiable address.
    let res = env
        .http
        .post(env.admin_url("admin/identities"))
        .json(&person("DUP@example.com"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 409);
    let mut other = person("other@example.com");
    other["external_id"] = json!("ext-1");
    let res = env
        .http
        .post(env.admin_url("admin/identities"))
        .json(&other)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 409);
}

fn next_token(res: &reqwest::Response) -> Option<String> {
    let link = res.headers().get("link")?.to_str().ok()?;
    proxy::cli::next_page_token(link)
}

async fn list_paginates_with_link_headers(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let mut ids = Vec::new();
    for n in 0..7 {
        ids.push(
            env.create_identity(person(&format!("page{n}@example.com")))
                .await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    ids.sort();
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut req = env
            .http
            .get(env.admin_url("admin/identities"))
            .query(&[("page_size", "3")]);
        if let Some(t) = &token {
            req = req.query(&[("page_token", t)]);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 200);
        let link = res.headers()["link"].to_str().unwrap().to_owned();
        assert!(link.contains("rel=\"first\""), "{link}");
        token = next_token(&res);
        let page: Vec<Value> = res.json().await.unwrap();
        assert!(page.len() <= 3);
        assert!(
            page.iter().all(|i| i.get("credentials").is_none()),
            "no credentials in plain lists"
        );
        seen.extend(page.iter().map(|i| i["id"].as_str().unwrap().to_owned()));
        pages += 1;
        if token.is_none() {
            break;
        }
        assert!(pages < 10, "pagination does not end");
    }
    assert_eq!(pages, 3, "7 identities in pages of 3");
    assert_eq!(seen, ids, "every identity once, in id order");

    // Legacy offset pagination carries X-Total-Count.
    let res = env
        .http
        .get(env.admin_url("admin/identities?page=1&per_page=5"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-total-count"], "7");
    let link = res.headers()["link"].to_str().unwrap().to_owned();
    assert!(
        link.contains("rel=\"prev\"")
            && link.contains("rel=\"last\"")
            && !link.contains("rel=\"next\""),
        "{link}"
    );
    let page: Vec<Value> = res.json().await.unwrap();
    assert_eq!(page.len(), 2);
}

async fn list_filters_and_bad_parameters(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let mut with_pw = person("filter@example.com");
    with_pw["credentials"] =
        json!({"password": {"config": {"password": "a long enough password"}}});
    let a = env.create_identity(with_pw).await;
    let b = env.create_identity(person("b@example.com")).await;
    env.create_identity(person("c@example.com")).await;
    let ids = |list: &[Value]| {
        list.iter()
            .map(|i| i["id"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };

    let url = format!(
        "admin/identities?ids={}&ids={}",
        a["id"].as_str().unwrap(),
        b["id"].as_str().unwrap()
    );
    let list: Vec<Value> = env
        .http
        .get(env.admin_url(&url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut want = vec![
        a["id"].as_str().unwrap().to_owned(),
        b["id"].as_str().unwrap().to_owned(),
    ];
    want.sort();
    assert_eq!(ids(&list), want);

    let list: Vec<Value> = env
        .http
        .get(env.admin_url("admin/identities"))
        .query(&[("credentials_identifier", "filter@example.com")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ids(&list), vec![a["id"].as_str().unwrap().to_owned()]);
    assert_eq!(
        list[0]["credentials"]["password"]["identifiers"][0],
        "filter@example.com"
    );
    assert!(list[0]["credentials"]["password"].get("config").is_none());

    let list: Vec<Value> = env
        .http
        .get(env.admin_url("admin/identities?include_credential=password"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let with_config = list.iter().find(|i| i["id"] == a["id"]).unwrap();
    assert!(with_config["credentials"]["password"]["config"]["hashed_password"].is_string());

    for bad in [
        "admin/identities?ids=not-a-uuid",
        "admin/identities?include_credential=magic",
        "admin/identities?page_token=garbage",
        "admin/identities?page_size=ten",
        "admin/identities?consistency=sometimes",
        "admin/identities?credentials_identifier=x&preview_credentials_identifier_similar=y",
    ] {
        let res = env.http.get(env.admin_url(bad)).send().await.unwrap();
        assert_eq!(res.status(), 400, "{bad}");
        let err: Value = res.json().await.unwrap();
        assert_eq!(err["error"]["code"], 400);
    }
    let many: String = (0..501)
        .map(|_| format!("ids={}&", uuid::Uuid::new_v4()))
        .collect();
    let res = env
        .http
        .get(env.admin_url(&format!("admin/identities?{many}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
}

async fn put_replaces_and_tracks_state_changes(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let mut body = person("put@example.com");
    body["metadata_public"] = json!({"a": 1});
    body["metadata_admin"] = json!({"b": 2});
    body["external_id"] = json!("put-ext");
    body["credentials"] = json!({"password": {"config": {"password": "a long enough password"}}});
    let created = env.create_identity(body).await;
    let id = created["id"].as_str().unwrap();
    env.clock.advance(time::Duration::hours(1));
    let res = env
        .http
        .put(env.admin_url(&format!("admin/identities/{id}")))
        .json(&json!({"traits": {"email": "moved@example.com"}, "state": "inactive", "schema_id": ""}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let updated: Value = res.json().await.unwrap();
    assert_eq!(updated["state"], "inactive");
    assert_eq!(updated["state_changed_at"], "2026-06-01T13:00:00Z");
    assert_eq!(updated["updated_at"], "2026-06-01T13:00:00Z");
    assert_eq!(updated["created_at"], created["created_at"]);
    assert_eq!(
        updated["schema_id"], "default",
        "an empty schema_id keeps the schema"
    );
    assert_eq!(
        updated["metadata_public"],
        Value::Null,
        "PUT is a full replace"
    );
    assert!(updated.get("metadata_admin").is_none());
    assert!(updated.get("external_id").is_none());
    assert_eq!(updated["verifiable_addresses"].as_array().unwrap().len(), 1);
    assert_eq!(
        updated["verifiable_addresses"][0]["value"],
        "moved@example.com"
    );
    assert_eq!(
        updated["credentials"]["password"]["identifiers"],
        json!(["moved@example.com"])
    );
    // The old address and identifier are free again.
    env.create_identity(person("put@example.com")).await;

    let res = env
        .http
        .put(env.admin_url(&format!("admin/identities/{id}")))
        .json(&json!({"traits": {"email": "bad"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let res = env
        .http
        .put(env.admin_url(&format!("admin/identities/{}", uuid::Uuid::new_v4())))
        .json(&json!({"traits": {"email": "x@example.com"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}

async fn json_patch_edits_the_admin_view(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let created = env.create_identity(person("patch@example.com")).await;
    let id = created["id"].as_str().unwrap();
    let url = env.admin_url(&format!("admin/identities/{id}"));
    let res = env
        .http
        .patch(&url)
        .json(&json!([
            {"op": "replace", "path": "/traits/name/first", "value": "Grace"},
            {"op": "add", "path": "/metadata_public", "value": {"tier": "gold"}},
            {"op": "replace", "path": "/state", "value": "inactive"},
            {"op": "replace", "path": "/verifiable_addresses/0/verified", "value": true},
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let patched: Value = res.json().await.unwrap();
    assert_eq!(patched["traits"]["name"]["first"], "Grace");
    assert_eq!(patched["metadata_public"]["tier"], "gold");
    assert_eq!(patched["state"], "inactive");
    assert_eq!(patched["verifiable_addresses"][0]["verified"], true);
    assert_eq!(patched["verifiable_addresses"][0]["status"], "completed");

    for (patch, why) in [
        (
            json!([{"op": "replace", "path": "/id", "value": "x"}]),
            "id is read-only",
        ),
        (
            json!([{"op": "add", "path": "/credentials/password", "value": {}}]),
            "credentials are read-only",
        ),
        (
            json!([{"op": "replace", "path": "/state", "value": "gone"}]),
            "invalid state",
        ),
        (
            json!([{"op": "remove", "path": "/traits/email"}]),
            "schema violation",
        ),
        (
            json!([{"op": "replace", "path": "/nothing/here", "value": 1}]),
            "bad path",
        ),
        (json!({"op": "replace"}), "not a patch"),
    ] {
        let res = env.http.patch(&url).json(&patch).send().await.unwrap();
        assert_eq!(res.status(), 400, "{why}");
    }
    let unchanged: Value = env
        .http
        .get(&url)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        unchanged["traits"], patched["traits"],
        "failed patches change nothing"
    );
}

async fn batch_create_reports_each_item(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let patch_ids: Vec<String> = (0..3).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    let res = env
        .http
        .patch(env.admin_url("admin/identities"))
        .json(&json!({"identities": [
            {"create": person("batch1@example.com"), "patch_id": patch_ids[0]},
            {"create": {"schema_id": "default", "traits": {"email": "broken"}}, "patch_id": patch_ids[1]},
            {"create": person("batch1@example.com"), "patch_id": patch_ids[2]},
            {"create": person("batch2@example.com")},
        ]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let out: Value = res.json().await.unwrap();
    let items = out["identities"].as_array().unwrap();
    assert_eq!(items.len(), 4);
    assert_eq!(items[0]["action"], "create");
    assert_eq!(items[0]["patch_id"], patch_ids[0].as_str());
    assert_eq!(items[1]["action"], "error");
    assert_eq!(items[1]["error"]["code"], 400);
    assert_eq!(items[2]["action"], "error");
    assert_eq!(items[2]["error"]["code"], 409);
    assert_eq!(items[3]["action"], "create");
    assert!(items[3].get("patch_id").is_none());
    let first = items[0]["identity"].as_str().unwrap();
    let res = env
        .http
        .get(env.admin_url(&format!("admin/identities/{first}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    let res = env
        .http
        .patch(env.admin_url("admin/identities"))
        .json(&json!({"nope": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let too_many: Vec<Value> = (0..1001)
        .map(|n| json!({"create": person(&format!("m{n}@example.com"))}))
        .collect();
    let res = env
        .http
        .patch(env.admin_url("admin/identities"))
        .json(&json!({ "identities": too_many }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
}

async fn delete_credentials_keeps_a_first_factor(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let mut body = person("creds@example.com");
    body["credentials"] = json!({
        "password": {"config": {"password": "a long enough password"}},
        "oidc": {"config": {"providers": [
            {"provider": "google", "subject": "g-1"},
            {"provider": "github", "subject": "gh-1"}
        ]}}
    });
    let created = env.create_identity(body).await;
    let id = created["id"].as_str().unwrap();
    assert_eq!(
        created["credentials"]["oidc"]["identifiers"],
        json!(["google:g-1", "github:gh-1"])
    );
    let del = |path: String| {
        let http = env.http.clone();
        let url = env.admin_url(&path);
        async move { http.delete(url).send().await.unwrap().status() }
    };
    assert_eq!(
        del(format!("admin/identities/{id}/credentials/totp")).await,
        404
    );
    // Types the identity has no credential of are 404s, as in Kratos (the identity has no `code` credential).
    assert_eq!(
        del(format!("admin/identities/{id}/credentials/magic")).await,
        404
    );
    assert_eq!(
        del(format!("admin/identities/{id}/credentials/code")).await,
        404
    );
    assert_eq!(
        del(format!("admin/identities/{id}/credentials/oidc")).await,
        400,
        "identifier required"
    );
    assert_eq!(
        del(format!(
            "admin/identities/{id}/credentials/oidc?identifier=google:g-1"
        ))
        .await,
        204
    );
    assert_eq!(
        del(format!(
            "admin/identities/{id}/credentials/oidc?identifier=google:g-1"
        ))
        .await,
        404
    );
    assert_eq!(
        del(format!("admin/identities/{id}/credentials/password")).await,
        204,
        "oidc remains"
    );
    assert_eq!(
        del(format!(
            "admin/identities/{id}/credentials/oidc?identifier=github:gh-1"
        ))
        .await,
        400,
        "the last first factor stays"
    );
    let got: Value = env
        .http
        .get(env.admin_url(&format!("admin/identities/{id}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(got["credentials"].get("password").is_none());
    assert_eq!(
        got["credentials"]["oidc"]["identifiers"],
        json!(["github:gh-1"])
    );
}

async fn delete_identity(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let created = env.create_identity(person("bye@example.com")).await;
    let url = env.admin_url(&format!(
        "admin/identities/{}",
        created["id"].as_str().unwrap()
    ));
    assert_eq!(env.http.delete(&url).send().await.unwrap().status(), 204);
    assert_eq!(env.http.get(&url).send().await.unwrap().status(), 404);
    assert_eq!(env.http.delete(&url).send().await.unwrap().status(), 404);
}

async fn external_id_lookup(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let mut body = person("ext@example.com");
    body["external_id"] = json!("crm/42 x");
    let created = env.create_identity(body).await;
    let res = env
        .http
        .get(env.admin_url("admin/identities/by/external/crm%2F42%20x"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let got: Value = res.json().await.unwrap();
    assert_eq!(got["id"], created["id"]);
    assert_eq!(got["external_id"], "crm/42 x");
    let res = env
        .http
        .get(env.admin_url("admin/identities/by/external/unknown"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}

async fn bad_ids_and_unknown_ids(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let res = env
        .http
        .get(env.admin_url("admin/identities/not-a-uuid"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let res = env
        .http
        .get(env.admin_url(&format!("admin/identities/{}", uuid::Uuid::new_v4())))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let err: Value = res.json().await.unwrap();
    assert_eq!(err["error"]["message"], "Unable to locate the resource");
    assert_eq!(err["error"]["status"], "Not Found");
}

/// The status and JSON body of an admin request.
async fn call(
    env: &TestEnv,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = env.http.request(method, env.admin_url(path));
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Issue 15: Kratos answers traits that fail the schema with a `reason` only; Portcullis added
/// `details.messages` on create, replace and patch.
async fn trait_validation_errors_carry_only_a_reason(backend: Backend) {
    use reqwest::Method;
    let env = TestEnv::start(backend).await;
    let created = env.create_identity(person("valid@example.com")).await;
    let id = created["id"].as_str().unwrap();
    let cases = [
        (
            Method::POST,
            "admin/identities".to_owned(),
            json!({"schema_id": "default", "traits": {"email": "not-an-email"}}),
        ),
        (
            Method::PUT,
            format!("admin/identities/{id}"),
            json!({"schema_id": "default", "state": "active", "traits": {"email": "not-an-email"}}),
        ),
        (
            Method::PATCH,
            format!("admin/identities/{id}"),
            json!([{"op": "replace", "path": "/traits/email", "value": "not-an-email"}]),
        ),
    ];
    for (method, path, body) in cases {
        let (status, err) = call(&env, method.clone(), &path, Some(body)).await;
        assert_eq!(status, 400, "{method} {path}: {err}");
        assert!(
            err["error"].get("details").is_none(),
            "{method} {path}: {err}"
        );
        let reason = err["error"]["reason"].as_str().unwrap();
        assert!(
            reason.starts_with("traits.email: ") && reason.contains("not-an-email"),
            "{method} {path}: {err}"
        );
    }
    // Nothing changed.
    let (_, got) = call(&env, Method::GET, &format!("admin/identities/{id}"), None).await;
    assert_eq!(got["traits"]["email"], "valid@example.com");
}

/// Issue 15: Kratos reads identity ids with `x.ParseUUID`, so a malformed id is a 404 like an unknown one on every
/// `/admin/identities/{id}` path; session paths keep their 400.
async fn malformed_identity_ids_are_not_found(backend: Backend) {
    use reqwest::Method;
    let env = TestEnv::start(backend).await;
    let cases = [
        (Method::GET, "admin/identities/not-a-uuid", None),
        (
            Method::PUT,
            "admin/identities/not-a-uuid",
            Some(
                json!({"schema_id": "default", "state": "active", "traits": {"email": "a@example.com"}}),
            ),
        ),
        (
            Method::PATCH,
            "admin/identities/not-a-uuid",
            Some(json!([])),
        ),
        (Method::DELETE, "admin/identities/not-a-uuid", None),
        (
            Method::DELETE,
            "admin/identities/not-a-uuid/credentials/password",
            None,
        ),
    ];
    for (method, path, body) in cases {
        let (status, err) = call(&env, method.clone(), path, body).await;
        assert_eq!(status, 404, "{method} {path}: {err}");
        assert_eq!(err["error"]["code"], 404, "{err}");
        assert_eq!(err["error"]["message"], "Unable to locate the resource");
    }
    for path in [
        "admin/sessions/not-a-uuid",
        "admin/identities/not-a-uuid/sessions",
    ] {
        let (status, err) = call(&env, Method::GET, path, None).await;
        assert_eq!(status, 400, "{path}: {err}");
    }
}

/// Issue 15: Kratos reads a negative `page` as page 0 and clamps `per_page` to at least 1 (Portcullis answered
/// 400); a keyset `page_size` of zero or less is the default size, one that is not a number a 400; legacy pages
/// reach only the first 1000 identities.
async fn negative_pages_are_the_first_page(backend: Backend) {
    use reqwest::Method;
    let env = TestEnv::start(backend).await;
    let mut ids = Vec::new();
    for n in 0..3 {
        let created = env
            .create_identity(person(&format!("page{n}@example.com")))
            .await;
        ids.push(created["id"].as_str().unwrap().to_owned());
    }
    let res = env
        .http
        .get(env.admin_url("admin/identities?page=-1&per_page=-5"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-total-count"], "3");
    let page: Vec<Value> = res.json().await.unwrap();
    assert_eq!(page.len(), 1, "per_page below 1 is 1");
    for (path, expected) in [
        ("admin/identities?page=-2", 3),
        ("admin/identities?page_size=-1", 3),
        ("admin/identities?page_size=0", 3),
        ("admin/identities?per_page=-3", 3),
        ("admin/identities?page=0&per_page=2", 2),
    ] {
        let (status, list) = call(&env, Method::GET, path, None).await;
        assert_eq!(status, 200, "{path}: {list}");
        assert_eq!(list.as_array().unwrap().len(), expected, "{path}");
    }
    for path in [
        "admin/identities?page=5&per_page=250",
        "admin/identities?page_size=ten",
        "admin/sessions?page_size=ten",
    ] {
        let (status, err) = call(&env, Method::GET, path, None).await;
        assert_eq!(status, 400, "{path}: {err}");
        assert_eq!(err["error"]["code"], 400, "{err}");
    }
    let id = &ids[0];
    for path in [
        format!("admin/identities/{id}/sessions?page=-1&per_page=-1"),
        "admin/sessions?page_size=-5".to_owned(),
        "admin/courier/messages?page_size=-5".to_owned(),
    ] {
        let (status, body) = call(&env, Method::GET, &path, None).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert!(body.is_array(), "{path}: {body}");
    }
    let res = env
        .http
        .get(env.public_url("schemas?page=-2&per_page=-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let schemas: Vec<Value> = res.json().await.unwrap();
    assert_eq!(schemas.len(), 1);
}

/// Issue 15: a batch body without `identities` (or with `null`) patches nothing, as in Kratos: 200 with an empty
/// list, where Portcullis answered 400.
async fn batch_patch_without_identities_patches_nothing(backend: Backend) {
    use reqwest::Method;
    let env = TestEnv::start(backend).await;
    for body in [
        json!({}),
        json!({"identities": null}),
        json!({"identities": []}),
    ] {
        let (status, out) = call(&env, Method::PATCH, "admin/identities", Some(body.clone())).await;
        assert_eq!(status, 200, "{body}: {out}");
        assert_eq!(out, json!({"identities": []}), "{body}");
    }
    for body in [
        json!({"identities": "all"}),
        json!([]),
        json!({"identities": {}}),
    ] {
        let (status, out) = call(&env, Method::PATCH, "admin/identities", Some(body.clone())).await;
        assert_eq!(status, 400, "{body}: {out}");
    }
    let (_, list) = call(&env, Method::GET, "admin/identities", None).await;
    assert_eq!(list, json!([]));
}

/// Issue 15: removing a credential type the identity has none of is a 404 in Kratos, whatever the type (Portcullis
/// answered 400: identifier required, last first factor, unknown type).
async fn deleting_a_credential_the_identity_lacks_is_not_found(backend: Backend) {
    use reqwest::Method;
    let env = TestEnv::start(backend).await;
    let mut body = person("lacks@example.com");
    body["credentials"] = json!({"password": {"config": {"password": "a long enough password"}}});
    let with_password = env.create_identity(body).await;
    let with_password = with_password["id"].as_str().unwrap();
    let bare = env.create_identity(person("bare@example.com")).await;
    let bare = bare["id"].as_str().unwrap();
    for (id, kind) in [
        (with_password, "oidc"),
        (with_password, "oidc?identifier=google:g-1"),
        (with_password, "saml"),
        (with_password, "webauthn"),
        (with_password, "magic"),
        (bare, "password"),
        (bare, "totp"),
    ] {
        let (status, err) = call(
            &env,
            Method::DELETE,
            &format!("admin/identities/{id}/credentials/{kind}"),
            None,
        )
        .await;
        assert_eq!(status, 404, "{kind}: {err}");
        let type_name = kind.split('?').next().unwrap();
        assert!(
            err["error"]["reason"].as_str().unwrap().contains(type_name),
            "{kind}: {err}"
        );
    }
    // A credential the identity has is still guarded: the last first factor stays.
    let (status, _) = call(
        &env,
        Method::DELETE,
        &format!("admin/identities/{with_password}/credentials/password"),
        None,
    )
    .await;
    assert_eq!(status, 400);
}
