//! The courier in the running product: the worker delivers queued e-mail over real SMTP, the admin API lists and
//! shows messages (bodies redacted outside `--dev`), and the metrics count them.

use serde_json::{json, Value};
use tests::smtp_sink::SmtpSink;
use tests::{backend_tests, Backend, TestEnv};

backend_tests!(
    queued_mail_is_delivered_and_listed,
    messages_name_the_email_channel
);

async fn queued_mail_is_delivered_and_listed(backend: Backend) {
    let mut sink = SmtpSink::start().await.unwrap();
    let env = TestEnv::builder(backend)
        .set(format!("courier.smtp.connection_uri={}", sink.uri()))
        .set("courier.smtp.from_name=Portcullis Tests")
        .start()
        .await;
    let courier = env.running.as_ref().unwrap().state.courier.clone();
    let queued = courier
        .queue_email(
            "ada@example.com",
            flows::courier::TemplateType::RecoveryCodeValid,
            json!({"RecoveryCode": "493817", "Identity": {"traits": {"email": "ada@example.com"}}}),
            None,
        )
        .await
        .unwrap();

    // The worker in `serve` delivers it over SMTP.
    let mail = tokio::time::timeout(std::time::Duration::from_secs(10), sink.next_mail())
        .await
        .expect("the mail arrives")
        .unwrap();
    assert_eq!(mail.to, ["ada@example.com"]);
    assert_eq!(mail.find_code().as_deref(), Some("493817"));
    assert!(mail.header("from").unwrap().contains("Portcullis Tests"));

    // The admin API: sent, with a success dispatch. The harness runs in --dev, where bodies are shown (outside
    // --dev they are redacted: unit-tested in proxy::courier).
    let mut polls = 0;
    let one = loop {
        polls += 1;
        assert!(polls < 10_000, "the message was never marked sent");
        let one: Value = env
            .http
            .get(env.admin_url(&format!("admin/courier/messages/{}", queued.id)))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if one["status"] == "sent" {
            break one;
        }
        // The worker marks the message right after the SMTP exchange the sink has already seen.
        tokio::task::yield_now().await;
    };
    assert_eq!(one["recipient"], "ada@example.com");
    assert_eq!(one["template_type"], "recovery_code_valid");
    assert_eq!(one["type"], "email");
    assert_eq!(one["send_count"], 1);
    assert!(one["body"].as_str().unwrap().contains("493817"), "{one}");
    assert_eq!(one["dispatches"][0]["status"], "success");

    let res = env
        .http
        .get(env.admin_url("admin/courier/messages?status=sent&page_size=10"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers().contains_key("link"));
    let list: Value = res.json().await.unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["id"], queued.id.to_string());
    let none: Value = env
        .http
        .get(env.admin_url("admin/courier/messages?recipient=bob@example.com"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(none, json!([]));

    // Bad input: the Kratos error envelope.
    for bad in [
        "admin/courier/messages?status=lost",
        "admin/courier/messages?page_token=nonsense",
        "admin/courier/messages/not-a-uuid",
    ] {
        let res = env.http.get(env.admin_url(bad)).send().await.unwrap();
        assert_eq!(res.status(), 400, "{bad}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["error"]["code"], 400, "{bad}");
    }
    let missing = env
        .http
        .get(env.admin_url(&format!("admin/courier/messages/{}", uuid::Uuid::new_v4())))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);

    // Metrics.
    let metrics = env.metrics().await;
    assert!(
        metrics.contains("portcullis_courier_messages_queued_total 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("portcullis_courier_messages_sent_total 1\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("portcullis_courier_messages{status=\"sent\"} 1\n"),
        "{metrics}"
    );
}

/// Issue 15: Kratos writes `"channel": "email"` on e-mail messages, both those queued directly and those a flow
/// queues in its transaction (the outbox); Portcullis wrote `null`.
async fn messages_name_the_email_channel(backend: Backend) {
    let (env, mut sink) =
        crate::recovery::env_with_mail(backend, &[crate::recovery::RECOVERY_ON]).await;
    crate::recovery::person(&env, "chan@example.com").await;
    let flow = crate::recovery::native_flow(&env, "recovery").await;
    let (status, _) = crate::recovery::post(
        &env,
        &flow,
        json!({"method": "code", "email": "chan@example.com"}),
    )
    .await;
    assert_eq!(status, 200);
    crate::recovery::mail_to(&mut sink, "chan@example.com").await;
    let courier = env.running.as_ref().unwrap().state.courier.clone();
    let queued = courier
        .queue_email(
            "direct@example.com",
            flows::courier::TemplateType::RecoveryCodeValid,
            json!({"RecoveryCode": "493817", "Identity": {"traits": {"email": "direct@example.com"}}}),
            None,
        )
        .await
        .unwrap();

    let list: Vec<Value> = env
        .http
        .get(env.admin_url("admin/courier/messages"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let recipients: Vec<&str> = list
        .iter()
        .map(|m| m["recipient"].as_str().unwrap())
        .collect();
    assert!(
        recipients.contains(&"chan@example.com") && recipients.contains(&"direct@example.com"),
        "{list:?}"
    );
    for m in &list {
        assert_eq!(m["channel"], "email", "{m}");
        assert_eq!(m["type"], "email", "{m}");
    }
    let one: Value = env
        .http
        .get(env.admin_url(&format!("admin/courier/messages/{}", queued.id)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(one["channel"], "email", "{one}");
}
