//! Identity schemas on the public listener.

use base64::Engine;
use serde_json::Value;
use tests::{backend_tests, Backend, TestEnv};

backend_tests!(schemas_are_served_by_id_and_base64);

const SCHEMA: &str = r#"{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "properties": {"traits": {"type": "object", "properties": {
    "username": {"type": "string", "minLength": 3,
      "ory.sh/kratos": {"credentials": {"password": {"identifier": true}}}}
  }, "required": ["username"]}}
}"#;

async fn schemas_are_served_by_id_and_base64(backend: Backend) {
    let b64 = base64::engine::general_purpose::STANDARD.encode(SCHEMA);
    let env = TestEnv::builder(backend)
        .file("customer.json", SCHEMA)
        .set("identity.default_schema_id=customer")
        .set(format!(
            r#"identity.schemas=[{{"id":"customer","url":"file://{{dir}}/customer.json"}},{{"id":"staff","url":"base64://{b64}"}}]"#
        ))
        .start()
        .await;
    let res = env
        .http
        .get(env.public_url("schemas"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-total-count"], "2");
    let list: Vec<Value> = res.json().await.unwrap();
    assert_eq!(list[0]["id"], "customer");
    assert_eq!(list[1]["id"], "staff");
    let raw: Value = serde_json::from_str(SCHEMA).unwrap();
    assert_eq!(list[0]["schema"], raw);
    for path in ["schemas/customer", "schemas/Y3VzdG9tZXI", "schemas/staff/"] {
        let res = env.http.get(env.public_url(path)).send().await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
        let got: Value = res.json().await.unwrap();
        assert_eq!(got, raw);
    }
    let res = env
        .http
        .get(env.public_url("schemas/unknown"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let page: Vec<Value> = env
        .http
        .get(env.public_url("schemas?page=1&per_page=1"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page.len(), 1);
    assert_eq!(page[0]["id"], "staff");

    // The configured schema drives validation and identifiers.
    let res = env
        .http
        .post(env.admin_url("admin/identities"))
        .json(&serde_json::json!({"schema_id": "customer", "traits": {"username": "ab"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let err: Value = res.json().await.unwrap();
    assert_eq!(
        err["error"]["reason"],
        "traits.username: length must be >= 3, but got 2"
    );
    let created = env
        .create_identity(serde_json::json!({
            "schema_id": "customer",
            "traits": {"username": "Grace"},
            "credentials": {"password": {"config": {"password": "a long enough password"}}}
        }))
        .await;
    assert_eq!(
        created["credentials"]["password"]["identifiers"][0],
        "grace"
    );
    assert!(created.get("verifiable_addresses").is_none());
}
