//! Courier tests against real components: SQLite always, PostgreSQL when `TEST_DATABASE_URL` is set (an unusable
//! URL fails), and a real SMTP server (the integration harness' sink, compiled in here too).

use super::*;
use identity::{Db, ManualClock};
use serde_json::json;
use std::collections::HashSet;
use time::macros::datetime;
use time::Duration;

#[allow(dead_code)]
#[path = "../../../tests/src/smtp_sink.rs"]
mod smtp_sink;

use smtp_sink::{Mode, SmtpSink};

const WAIT: std::time::Duration = std::time::Duration::from_secs(20);

/// Every backend under test, each a fresh database. The temp dir lives as long as the returned value.
async fn backends() -> Vec<(&'static str, Db, Option<tempfile::TempDir>)> {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = identity::store::testing::sqlite_file(dir.path())
        .await
        .unwrap();
    let mut out = vec![("sqlite", db, Some(dir))];
    if let Ok(url) = std::env::var("TEST_DATABASE_URL") {
        let (db, _) = identity::store::testing::isolated_postgres(&url)
            .await
            .unwrap_or_else(|e| panic!("TEST_DATABASE_URL is set but unusable: {e}"));
        out.push(("postgres", db, None));
    }
    out
}

struct Rig {
    clock: ManualClock,
    courier: Courier,
    sink: SmtpSink,
    worker: Worker,
}

async fn rig(db: Db, retry: RetryPolicy) -> Rig {
    let clock = ManualClock::new(datetime!(2026-03-01 10:00:00 UTC));
    let courier = Courier::new(
        Arc::new(SqlCourierStore::new(db)),
        Arc::new(Templates::builtin()),
        Arc::new(clock.clone()),
    );
    let sink = SmtpSink::start().await.unwrap();
    let sender = SmtpSender::new(&SmtpSettings {
        connection_uri: sink.uri(),
        from_address: "courier@portcullis.test".into(),
        from_name: Some("Portcullis".into()),
        headers: [("X-Portcullis".to_owned(), "yes".to_owned())].into(),
        local_name: "worker.test".into(),
        timeout: std::time::Duration::from_secs(10),
        ..Default::default()
    })
    .unwrap();
    let worker = courier.worker(
        Arc::new(sender),
        WorkerSettings {
            pull_count: 10,
            pull_wait: std::time::Duration::from_secs(3600),
            lease: Duration::minutes(5),
            retry,
        },
    );
    Rig {
        clock,
        courier,
        sink,
        worker,
    }
}

async fn next_mail(sink: &mut SmtpSink) -> smtp_sink::Mail {
    tokio::time::timeout(WAIT, sink.next_mail())
        .await
        .expect("no mail arrived")
        .expect("sink closed")
}

#[tokio::test]
async fn a_queued_message_is_delivered_over_smtp_and_marked_sent() {
    for (name, db, _dir) in backends().await {
        let mut r = rig(db, RetryPolicy::default()).await;
        let m = r
            .courier
            .queue_email(
                "user@example.org",
                TemplateType::RecoveryCodeValid,
                json!({"RecoveryCode": "493817", "Identity": {"traits": {"email": "user@example.org"}}}),
                None,
            )
            .await
            .unwrap();
        assert_eq!(m.status, MessageStatus::Queued, "{name}");
        assert_eq!(m.subject, "Recover access to your account");
        let report = r.worker.tick().await.unwrap();
        assert_eq!((report.claimed, report.sent), (1, 1), "{name}");

        let mail = next_mail(&mut r.sink).await;
        assert_eq!(mail.from, "courier@portcullis.test");
        assert_eq!(mail.to, vec!["user@example.org".to_owned()]);
        assert_eq!(mail.find_code().as_deref(), Some("493817"), "{name}");
        assert!(mail.html_body().contains("493817"));
        assert_eq!(
            mail.header("Subject").as_deref(),
            Some("Recover access to your account")
        );
        assert_eq!(mail.header("X-Portcullis").as_deref(), Some("yes"));
        assert!(mail
            .header("From")
            .unwrap()
            .contains("Portcullis <courier@portcullis.test>"));
        assert!(mail
            .header("Content-Type")
            .unwrap()
            .starts_with("multipart/alternative"));

        let got = r.courier.store().get(m.id).await.unwrap();
        assert_eq!(got.status, MessageStatus::Sent, "{name}");
        assert_eq!(got.send_count, 1);
        assert_eq!(got.dispatches.len(), 1);
        assert_eq!(got.dispatches[0].status, DispatchStatus::Success);
        assert_eq!(got.dispatches[0].error, None);
        assert_eq!(got.template_data["To"], "user@example.org", "To added");
        assert_eq!(
            r.courier.metrics(),
            MetricsSnapshot {
                queued: 1,
                sent: 1,
                failed: 0,
                abandoned: 0
            }
        );
        assert_eq!(r.worker.tick().await.unwrap().claimed, 0, "sent once");
        assert!(r.sink.try_next_mail().is_none());
    }
}

#[tokio::test]
async fn an_outage_is_retried_after_backoff_and_the_mail_delivered_once() {
    for (name, db, _dir) in backends().await {
        let retry = RetryPolicy {
            message_retries: 5,
            backoff_base: Duration::seconds(10),
            backoff_max: Duration::minutes(10),
        };
        let mut r = rig(db, retry).await;
        let store = r.courier.store().clone();
        let m = r
            .courier
            .queue_email(
                "a@example.org",
                TemplateType::LoginCodeValid,
                json!({"LoginCode": "120934"}),
                None,
            )
            .await
            .unwrap();

        // The server answers 451 to MAIL FROM.
        r.sink.set_mode(Mode::RefuseMail);
        let t = r.worker.tick().await.unwrap();
        assert_eq!((t.claimed, t.retried), (1, 1), "{name}");
        let got = store.get(m.id).await.unwrap();
        assert_eq!(got.status, MessageStatus::Queued);
        assert_eq!(got.send_count, 1);
        assert_eq!(got.dispatches[0].status, DispatchStatus::Failed);
        let reason = got.dispatches[0].error.as_ref().unwrap()["reason"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(
            reason.contains("451") || reason.contains("try again"),
            "{reason}"
        );
        assert_eq!(r.worker.tick().await.unwrap().claimed, 0, "backoff holds");

        // The server is down altogether.
        r.sink.stop().await;
        r.clock.advance(Duration::seconds(10));
        let t = r.worker.tick().await.unwrap();
        assert_eq!((t.claimed, t.retried), (1, 1), "{name}");
        assert_eq!(store.get(m.id).await.unwrap().send_count, 2);

        // Back up; the second backoff is twice the first.
        r.sink.restart().await.unwrap();
        r.sink.set_mode(Mode::Accept);
        r.clock.advance(Duration::seconds(19));
        assert_eq!(r.worker.tick().await.unwrap().claimed, 0, "{name}");
        r.clock.advance(Duration::seconds(1));
        let t = r.worker.tick().await.unwrap();
        assert_eq!((t.claimed, t.sent), (1, 1), "{name}");
        let mail = next_mail(&mut r.sink).await;
        assert_eq!(mail.find_code().as_deref(), Some("120934"));
        r.clock.advance(Duration::hours(1));
        assert_eq!(r.worker.tick().await.unwrap().claimed, 0);
        assert!(r.sink.try_next_mail().is_none(), "delivered exactly once");

        let got = store.get(m.id).await.unwrap();
        assert_eq!(got.status, MessageStatus::Sent);
        assert_eq!(got.send_count, 3);
        let statuses: Vec<_> = got.dispatches.iter().map(|d| d.status).collect();
        assert_eq!(
            statuses,
            vec![
                DispatchStatus::Success,
                DispatchStatus::Failed,
                DispatchStatus::Failed
            ],
            "newest first"
        );
        let snap = r.courier.metrics();
        assert_eq!((snap.sent, snap.failed, snap.abandoned), (1, 2, 0));
    }
}

#[tokio::test]
async fn a_message_is_abandoned_after_message_retries() {
    for (name, db, _dir) in backends().await {
        let retry = RetryPolicy {
            message_retries: 3,
            backoff_base: Duration::seconds(1),
            backoff_max: Duration::seconds(2),
        };
        let r = rig(db, retry).await;
        r.sink.set_mode(Mode::RefuseConnect);
        let m = r
            .courier
            .queue_email(
                "b@example.org",
                TemplateType::Stub,
                json!({"Subject": "s", "Body": "b"}),
                None,
            )
            .await
            .unwrap();
        let mut statuses = Vec::new();
        for _ in 0..3 {
            let t = r.worker.tick().await.unwrap();
            assert_eq!(t.claimed, 1, "{name}");
            statuses.push(r.courier.store().get(m.id).await.unwrap().status);
            r.clock.advance(Duration::seconds(2));
        }
        assert_eq!(
            statuses,
            vec![
                MessageStatus::Queued,
                MessageStatus::Queued,
                MessageStatus::Abandoned
            ],
            "{name}"
        );
        r.clock.advance(Duration::days(1));
        assert_eq!(r.worker.tick().await.unwrap().claimed, 0);
        let got = r.courier.store().get(m.id).await.unwrap();
        assert_eq!(got.send_count, 3);
        assert_eq!(got.dispatches.len(), 3);
        let snap = r.courier.metrics();
        assert_eq!((snap.failed, snap.abandoned, snap.sent), (3, 1, 0));
        let counts = r.courier.store().count_by_status().await.unwrap();
        assert_eq!(counts[&MessageStatus::Abandoned], 1);
        assert_eq!(counts[&MessageStatus::Queued], 0);
    }
}

#[tokio::test]
async fn an_expired_lease_lets_another_worker_take_the_message() {
    for (name, db, _dir) in backends().await {
        let store = SqlCourierStore::new(db);
        let t0 = datetime!(2026-03-01 10:00:00.5 UTC);
        let m = store
            .enqueue(&new_message("c@example.org"), t0)
            .await
            .unwrap();
        let lease = Duration::seconds(30);
        let first = store.claim(10, t0, lease).await.unwrap();
        assert_eq!(first.len(), 1, "{name}");
        assert_eq!(first[0].status, MessageStatus::Processing);
        // The worker dies here without marking it.
        assert!(store
            .claim(10, t0 + Duration::seconds(10), lease)
            .await
            .unwrap()
            .is_empty());
        assert!(store
            .claim(10, t0 + Duration::milliseconds(29_999), lease)
            .await
            .unwrap()
            .is_empty());
        let again = store
            .claim(10, t0 + Duration::seconds(31), lease)
            .await
            .unwrap();
        assert_eq!(again.iter().map(|m| m.id).collect::<Vec<_>>(), vec![m.id]);
        // The first claim is gone: its worker cannot mark the message the second one holds.
        for stale in [
            store.mark_sent(&first[0], t0 + Duration::seconds(32)).await,
            store
                .mark_failed(
                    &first[0],
                    t0 + Duration::seconds(32),
                    &json!({"reason": "late"}),
                    &RetryPolicy::default(),
                )
                .await
                .map(|_| ()),
        ] {
            assert!(matches!(stale, Err(StoreError::NotFound)), "{name}");
        }
        store
            .mark_sent(&again[0], t0 + Duration::seconds(32))
            .await
            .unwrap();
        assert!(
            matches!(
                store.mark_sent(&again[0], t0 + Duration::seconds(33)).await,
                Err(StoreError::NotFound)
            ),
            "only a claimed message can be marked"
        );
        assert!(store
            .claim(10, t0 + Duration::hours(1), lease)
            .await
            .unwrap()
            .is_empty());
    }
}

fn new_message(to: &str) -> NewMessage {
    let r = Templates::builtin().render(
        TemplateType::VerificationCodeValid,
        &json!({"To": to, "VerificationCode": "777000", "VerificationURL": "http://x/v?code=777000"}),
    );
    NewMessage {
        recipient: to.to_owned(),
        subject: r.subject,
        body: r.body_html,
        body_plaintext: r.body_plaintext,
        template_type: TemplateType::VerificationCodeValid,
        template_data: json!({"To": to, "VerificationCode": "777000"}),
        identity_id: None,
    }
}

#[tokio::test]
async fn list_is_keyset_paginated_newest_first_and_serialises_like_kratos() {
    for (name, db, _dir) in backends().await {
        let store = SqlCourierStore::new(db.clone());
        let t0 = datetime!(2026-03-01 10:00:00 UTC);
        let mut ids = Vec::new();
        for i in 0..5 {
            // Sub-second steps: ordering must not depend on the text form of timestamps.
            let at = t0 + Duration::milliseconds(i * 250);
            let to = if i % 2 == 0 {
                "even@example.org"
            } else {
                "odd@example.org"
            };
            ids.push(store.enqueue(&new_message(to), at).await.unwrap().id);
        }
        // Two messages in the same microsecond are ordered by id.
        ids.push(
            store
                .enqueue(&new_message("even@example.org"), t0 + Duration::seconds(1))
                .await
                .unwrap()
                .id,
        );
        ids.push(
            store
                .enqueue(&new_message("odd@example.org"), t0 + Duration::seconds(1))
                .await
                .unwrap()
                .id,
        );
        let mut seen = Vec::new();
        let mut token = None;
        let mut pages = 0;
        loop {
            let page = store
                .list(&ListMessages {
                    page_size: 2,
                    page_token: token,
                    ..Default::default()
                })
                .await
                .unwrap();
            pages += 1;
            assert!(page.messages.len() <= 2);
            seen.extend(page.messages.iter().map(|m| (m.created_at, m.id)));
            match page.next_page_token {
                Some(t) => token = Some(t.to_string().parse().unwrap()),
                None => break,
            }
        }
        assert_eq!(pages, 4, "{name}");
        let mut expected = seen.clone();
        expected.sort_by(|a, b| b.cmp(a));
        assert_eq!(seen, expected, "{name}: newest first, then id descending");
        let all: HashSet<_> = seen.iter().map(|(_, id)| *id).collect();
        assert_eq!(all, ids.iter().copied().collect::<HashSet<_>>());

        let odd = store
            .list(&ListMessages {
                page_size: 10,
                recipient: Some("odd@example.org".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(odd.messages.len(), 3, "{name}");
        assert!(odd.next_page_token.is_none());
        store
            .claim(1, t0 + Duration::hours(1), Duration::minutes(1))
            .await
            .unwrap();
        let processing = store
            .list(&ListMessages {
                page_size: 10,
                status: Some(MessageStatus::Processing),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(processing.messages.len(), 1, "{name}");
        assert!("not-a-token".parse::<PageToken>().is_err());

        // JSON shape of GET /admin/courier/messages/{id}.
        let id = processing.messages[0].id;
        store
            .mark_failed(
                &processing.messages[0],
                t0 + Duration::hours(1),
                &json!({"reason": "boom"}),
                &RetryPolicy::default(),
            )
            .await
            .unwrap();
        let v = serde_json::to_value(store.get(id).await.unwrap()).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            vec![
                "id",
                "status",
                "type",
                "recipient",
                "body",
                "subject",
                "template_type",
                "channel",
                "send_count",
                "dispatches",
                "created_at",
                "updated_at"
            ]
        );
        assert_eq!(v["type"], "email");
        assert_eq!(v["status"], "queued");
        assert_eq!(v["template_type"], "verification_code_valid");
        assert_eq!(v["send_count"], 1);
        assert_eq!(v["channel"], "email");
        // Rows stored before the channel was written read as their kind's channel.
        identity::on_pool!(&db, pool, {
            sqlx::query("UPDATE courier_messages SET channel = NULL")
                .execute(pool)
                .await
                .unwrap();
        });
        assert_eq!(
            store.get(id).await.unwrap().channel.as_deref(),
            Some("email")
        );
        assert_eq!(v["updated_at"], "2026-03-01T11:00:00Z");
        let d = &v["dispatches"][0];
        assert_eq!(d["status"], "failed");
        assert_eq!(d["message_id"], id.to_string());
        assert_eq!(d["error"]["reason"], "boom");
        // In lists there are no dispatches.
        let listed = serde_json::to_value(&odd.messages[0]).unwrap();
        assert!(listed.get("dispatches").is_none());
        assert!(listed.get("body_plaintext").is_none());
        assert!(listed.get("template_data").is_none());
    }
}

#[tokio::test]
async fn a_running_worker_wakes_up_when_a_message_is_queued_and_stops_on_signal() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = identity::store::testing::sqlite_file(dir.path())
        .await
        .unwrap();
    let Rig {
        courier,
        mut sink,
        worker,
        ..
    } = rig(db, RetryPolicy::default()).await;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let handle = tokio::spawn(worker.run(stop_rx));
    // pull_wait is an hour: only the notification can make the worker deliver in time.
    courier
        .queue_email(
            "d@example.org",
            TemplateType::VerificationValid,
            json!({"VerificationURL": "https://app.test/verify?token=abc&flow=1"}),
            None,
        )
        .await
        .unwrap();
    let mail = next_mail(&mut sink).await;
    assert_eq!(
        mail.find_url().as_deref(),
        Some("https://app.test/verify?token=abc&flow=1")
    );
    assert!(mail
        .html_body()
        .contains("href=\"https://app.test/verify?token=abc&amp;flow=1\""));
    stop_tx.send_replace(true);
    tokio::time::timeout(WAIT, handle).await.unwrap().unwrap();
}

#[tokio::test]
async fn two_workers_on_postgres_never_send_a_message_twice() {
    let Ok(url) = std::env::var("TEST_DATABASE_URL") else {
        return;
    };
    let (db, dsn) = identity::store::testing::isolated_postgres(&url)
        .await
        .unwrap_or_else(|e| panic!("TEST_DATABASE_URL is set but unusable: {e}"));
    let now = datetime!(2026-03-01 10:00:00 UTC);
    let store_a = SqlCourierStore::new(db);
    // The second worker has its own pool, as a second replica would.
    let store_b = SqlCourierStore::new(Db::connect(&dsn).await.unwrap());

    // Claims race: the sets are disjoint and cover every message.
    for i in 0..40 {
        store_a
            .enqueue(&new_message(&format!("u{i}@example.org")), now)
            .await
            .unwrap();
    }
    let lease = Duration::minutes(5);
    let mut claimed_a = Vec::new();
    let mut claimed_b = Vec::new();
    loop {
        let (a, b) = tokio::join!(store_a.claim(3, now, lease), store_b.claim(3, now, lease));
        let (a, b) = (a.unwrap(), b.unwrap());
        if a.is_empty() && b.is_empty() {
            break;
        }
        claimed_a.extend(a);
        claimed_b.extend(b);
    }
    let set_a: HashSet<_> = claimed_a.iter().map(|m| m.id).collect();
    let set_b: HashSet<_> = claimed_b.iter().map(|m| m.id).collect();
    assert!(set_a.is_disjoint(&set_b));
    assert_eq!(set_a.len() + set_b.len(), 40);
    assert_eq!(
        claimed_a.len() + claimed_b.len(),
        40,
        "nobody claimed twice"
    );
    for m in claimed_a.iter().chain(&claimed_b) {
        store_a.mark_sent(m, now).await.unwrap();
    }

    // Two running workers against one sink deliver each new message exactly once.
    let clock = ManualClock::new(now + Duration::hours(1));
    let mut sink = SmtpSink::start().await.unwrap();
    let sender: Arc<dyn Sender> = Arc::new(
        SmtpSender::new(&SmtpSettings {
            connection_uri: sink.uri(),
            ..Default::default()
        })
        .unwrap(),
    );
    let settings = WorkerSettings {
        pull_count: 2,
        pull_wait: std::time::Duration::from_millis(20),
        lease: Duration::minutes(5),
        retry: RetryPolicy::default(),
    };
    let courier_a = Courier::new(
        Arc::new(store_a),
        Arc::new(Templates::builtin()),
        Arc::new(clock.clone()),
    );
    let courier_b = Courier::new(
        Arc::new(store_b),
        Arc::new(Templates::builtin()),
        Arc::new(clock.clone()),
    );
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let wa = tokio::spawn(
        courier_a
            .worker(sender.clone(), settings)
            .run(stop_rx.clone()),
    );
    let wb = tokio::spawn(courier_b.worker(sender, settings).run(stop_rx));
    let total = 30;
    for i in 0..total {
        let c = if i % 2 == 0 { &courier_a } else { &courier_b };
        c.queue_email(
            &format!("w{i}@example.org"),
            TemplateType::LoginCodeValid,
            json!({"LoginCode": format!("{:06}", i)}),
            None,
        )
        .await
        .unwrap();
    }
    let mut recipients = HashSet::new();
    for _ in 0..total {
        let mail = next_mail(&mut sink).await;
        assert!(
            recipients.insert(mail.to[0].clone()),
            "{} twice",
            mail.to[0]
        );
    }
    stop_tx.send_replace(true);
    tokio::time::timeout(WAIT, wa).await.unwrap().unwrap();
    tokio::time::timeout(WAIT, wb).await.unwrap().unwrap();
    assert!(sink.try_next_mail().is_none(), "no mail sent twice");
    let counts = courier_a.store().count_by_status().await.unwrap();
    assert_eq!(counts[&MessageStatus::Sent], 40 + total);
    let (a, b) = (courier_a.metrics(), courier_b.metrics());
    assert_eq!(a.sent + b.sent, total);
}
