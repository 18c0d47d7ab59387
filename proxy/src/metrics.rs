//! Prometheus metrics on the `prometheus` crate: one [`Registry`] per process (per [`crate::AppState`]), exposed as
//! text at `/admin/metrics/prometheus`.
//!
//! Series (all prefixed `portcullis_`):
//! - `access_requests_total{decision, rule, source, status}`: every request the edge proxy (`source="proxy"`) or the
//!   decisions API (`source="decisions"`) decided. `rule` is empty when no rule matched; `decision` is `allow`,
//!   `deny`, `identity` (reserved paths), `whoami` or `invalid`.
//! - `upstream_latency_seconds`: from picking the upstream to its response header (edge proxy).
//! - `pipeline_latency_seconds`: rule match plus authenticators, authorizer and mutators.
//! - `access_rules`, `access_rule_reloads_total`, `access_rule_reload_failures_total`.
//! - `session_cache_*_total`: the session cache's counters.
//! - `password_verifications_total`: password hash verifications started (each login guess that got past the
//!   throttle costs one, unknown identifiers included).
//! - `courier_messages_{queued,sent,failed,abandoned}_total` and `courier_messages{status}`.
//!
//! The hot path takes no lock: every rule of a rule-set version owns a [`RuleSeries`], whose counters are resolved
//! once per `(decision, status)` and then kept in lock-free slots. Counters that live in other crates (session
//! cache, hasher, courier, rule set) are read at scrape time by a [`Polled`] collector in the same registry.

use crate::AppState;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use prometheus::core::{Collector, Desc, Describer};
use prometheus::proto::MetricFamily;
use prometheus::{
    Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// `(decision, status)` pairs a [`RuleSeries`] keeps resolved; a rule that sees more falls back to the labelled
/// lookup (a read lock inside `prometheus`).
const SLOTS: usize = 6;

/// Where an access decision was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// The edge proxy.
    Proxy,
    /// The decisions API.
    Decisions,
}

impl Source {
    fn as_str(self) -> &'static str {
        match self {
            Source::Proxy => "proxy",
            Source::Decisions => "decisions",
        }
    }
}

/// One label set of `access_requests_total` short of its status: a source and a rule (or none).
struct Series {
    requests: IntCounterVec,
    source: Source,
    slots: [OnceLock<(&'static str, u16, IntCounter)>; SLOTS],
}

impl Series {
    fn new(requests: &IntCounterVec, source: Source) -> Self {
        Self {
            requests: requests.clone(),
            source,
            slots: Default::default(),
        }
    }

    fn counter(&self, rule: &str, decision: &'static str, status: u16) -> IntCounter {
        let status_text = status.to_string();
        self.requests.with_label_values(&[
            decision,
            rule,
            self.source.as_str(),
            status_text.as_str(),
        ])
    }

    fn inc(&self, rule: &str, decision: &'static str, status: u16) {
        for slot in &self.slots {
            let (d, s, c) =
                slot.get_or_init(|| (decision, status, self.counter(rule, decision, status)));
            if *s == status && *d == decision {
                c.inc();
                return;
            }
        }
        self.counter(rule, decision, status).inc();
    }
}

/// A rule's request counters, for both sources, built with the rule-set version that holds the rule.
pub struct RuleSeries {
    id: Arc<str>,
    proxy: Series,
    decisions: Series,
}

impl std::fmt::Debug for RuleSeries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("RuleSeries").field(&self.id).finish()
    }
}

impl RuleSeries {
    /// The rule id.
    pub fn id(&self) -> &str {
        &self.id
    }

    fn source(&self, source: Source) -> &Series {
        match source {
            Source::Proxy => &self.proxy,
            Source::Decisions => &self.decisions,
        }
    }
}

/// The process's metrics.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    /// Requests no rule decided (reserved paths, whoami, no match, invalid).
    unmatched: RuleSeries,
    /// Upstream latency (edge proxy).
    pub upstream_latency: Histogram,
    /// Rule matching plus the pipeline.
    pub pipeline_latency: Histogram,
    courier_outbox: IntGaugeVec,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn histogram(name: &str, help: &str) -> Histogram {
    let opts = HistogramOpts::new(name, help).buckets(BUCKETS.to_vec());
    Histogram::with_opts(opts).unwrap_or_else(|_| unreachable_histogram())
}

/// Names and helps above are constants that `prometheus` accepts; this is never reached.
#[allow(clippy::unwrap_used)]
fn unreachable_histogram() -> Histogram {
    Histogram::with_opts(HistogramOpts::new("unused", "unused")).unwrap()
}

impl Metrics {
    /// A registry with the request counters, the latency histograms and the outbox gauge.
    pub fn new() -> Self {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "portcullis_access_requests_total",
                "Requests decided by the access rules, by source, rule, decision and status.",
            ),
            &["decision", "rule", "source", "status"],
        )
        .unwrap_or_else(|_| unreachable_counters());
        let courier_outbox = IntGaugeVec::new(
            Opts::new(
                "portcullis_courier_messages",
                "Messages in the outbox by status.",
            ),
            &["status"],
        )
        .unwrap_or_else(|_| unreachable_gauges());
        let upstream_latency = histogram(
            "portcullis_upstream_latency_seconds",
            "Time from choosing an upstream to its response header.",
        );
        let pipeline_latency = histogram(
            "portcullis_pipeline_latency_seconds",
            "Rule matching plus the authenticators, authorizer and mutators.",
        );
        for c in [
            Box::new(requests.clone()) as Box<dyn Collector>,
            Box::new(courier_outbox.clone()),
            Box::new(upstream_latency.clone()),
            Box::new(pipeline_latency.clone()),
        ] {
            // Distinct constant names in a new registry: registration cannot fail.
            let _ = registry.register(c);
        }
        let unmatched = RuleSeries {
            id: Arc::from(""),
            proxy: Series::new(&requests, Source::Proxy),
            decisions: Series::new(&requests, Source::Decisions),
        };
        Self {
            registry,
            requests,
            unmatched,
            upstream_latency,
            pipeline_latency,
            courier_outbox,
        }
    }

    /// The counters of one rule (call once per rule and rule-set version).
    pub fn rule(&self, id: &str) -> Arc<RuleSeries> {
        Arc::new(RuleSeries {
            id: Arc::from(id),
            proxy: Series::new(&self.requests, Source::Proxy),
            decisions: Series::new(&self.requests, Source::Decisions),
        })
    }

    /// Counts one decided request (`rule`: the rule that decided, if any).
    pub fn count_request(
        &self,
        source: Source,
        rule: Option<&RuleSeries>,
        decision: &'static str,
        status: u16,
    ) {
        let rule = rule.unwrap_or(&self.unmatched);
        rule.source(source).inc(&rule.id, decision, status);
    }

    /// The count of one request series (tests and dashboards).
    pub fn requests(&self, source: Source, rule: Option<&str>, decision: &str, status: u16) -> u64 {
        let status = status.to_string();
        let labels = [
            decision,
            rule.unwrap_or(""),
            source.as_str(),
            status.as_str(),
        ];
        self.requests
            .get_metric_with_label_values(&labels)
            .map_or(0, |c| c.get())
    }

    /// Adds a collector (a [`Polled`] source); a name that is already registered is refused.
    fn register(&self, c: Box<dyn Collector>) {
        if let Err(e) = self.registry.register(c) {
            tracing::warn!(error = %e, "metric not registered");
        }
    }

    /// Registers the counters that live in the state's services, read at scrape time. Call once per state.
    pub fn register_services(&self, state: &AppState) {
        let sessions = state.sessions.clone();
        let names: Vec<(String, String)> = sessions
            .cache()
            .metrics()
            .snapshot()
            .into_iter()
            .map(|(name, _)| {
                let help = format!("Session cache: {}.", name.replace('_', " "));
                (format!("portcullis_session_cache_{name}_total"), help)
            })
            .collect();
        let specs = names
            .iter()
            .map(|(n, h)| (n.as_str(), h.as_str(), Kind::Counter))
            .collect::<Vec<_>>();
        self.register(Box::new(Polled::new(&specs, move || {
            let snapshot = sessions.cache().metrics().snapshot();
            snapshot.into_iter().map(|(_, v)| v).collect()
        })));

        let identities = state.identities.clone();
        self.register(Box::new(Polled::new(
            &[(
                "portcullis_password_verifications_total",
                "Password hash verifications started (login guesses that got past the throttle, unknown identifiers included).",
                Kind::Counter,
            )],
            move || vec![identities.hasher().verifications()],
        )));

        let courier = state.courier.clone();
        self.register(Box::new(Polled::new(
            &[
                (
                    "portcullis_courier_messages_queued_total",
                    "Messages queued by this process.",
                    Kind::Counter,
                ),
                (
                    "portcullis_courier_messages_sent_total",
                    "Messages delivered by this process.",
                    Kind::Counter,
                ),
                (
                    "portcullis_courier_messages_failed_total",
                    "Failed delivery attempts (retried later).",
                    Kind::Counter,
                ),
                (
                    "portcullis_courier_messages_abandoned_total",
                    "Messages given up after courier.message_retries.",
                    Kind::Counter,
                ),
            ],
            move || {
                let m = courier.metrics();
                vec![m.queued, m.sent, m.failed, m.abandoned]
            },
        )));

        if let Some(access) = &state.access {
            // Weak: the access engine holds these metrics.
            let access: Weak<crate::access::Access> = Arc::downgrade(access);
            self.register(Box::new(Polled::new(
                &[
                    (
                        "portcullis_access_rules",
                        "Rules in the active rule set.",
                        Kind::Gauge,
                    ),
                    (
                        "portcullis_access_rule_reloads_total",
                        "Rule set reloads that took effect.",
                        Kind::Counter,
                    ),
                    (
                        "portcullis_access_rule_reload_failures_total",
                        "Rule set reloads refused (the previous set stayed).",
                        Kind::Counter,
                    ),
                ],
                move || {
                    use std::sync::atomic::Ordering;
                    access.upgrade().map_or_else(Vec::new, |a| {
                        vec![
                            a.current().source.len() as u64,
                            a.reloads.load(Ordering::Relaxed),
                            a.reload_failures.load(Ordering::Relaxed),
                        ]
                    })
                },
            )));
        }
    }

    /// Sets `courier_messages{status}` (read from the outbox, so asynchronous: the scrape handler calls it).
    pub fn set_outbox(&self, by_status: &[(&str, u64)]) {
        for (status, n) in by_status {
            self.courier_outbox
                .with_label_values(&[*status])
                .set(i64::try_from(*n).unwrap_or(i64::MAX));
        }
    }

    /// Every metric in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Err(e) = TextEncoder::new().encode_utf8(&self.registry.gather(), &mut out) {
            tracing::warn!(error = %e, "metrics could not be encoded");
        }
        out
    }
}

#[allow(clippy::unwrap_used)]
fn unreachable_counters() -> IntCounterVec {
    IntCounterVec::new(Opts::new("unused", "unused"), &["unused"]).unwrap()
}

#[allow(clippy::unwrap_used)]
fn unreachable_gauges() -> IntGaugeVec {
    IntGaugeVec::new(Opts::new("unused", "unused"), &["unused"]).unwrap()
}

/// What a polled value is exposed as.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Counter,
    Gauge,
}

/// Unlabelled values that live elsewhere, read when the registry is gathered.
struct Polled {
    specs: Vec<(Opts, Kind)>,
    descs: Vec<Desc>,
    read: Box<dyn Fn() -> Vec<u64> + Send + Sync>,
}

impl Polled {
    fn new(
        specs: &[(&str, &str, Kind)],
        read: impl Fn() -> Vec<u64> + Send + Sync + 'static,
    ) -> Self {
        let specs: Vec<(Opts, Kind)> = specs
            .iter()
            .map(|(name, help, kind)| (Opts::new(*name, *help), *kind))
            .collect();
        let descs = specs
            .iter()
            .filter_map(|(o, _)| o.describe().ok())
            .collect();
        Self {
            specs,
            descs,
            read: Box::new(read),
        }
    }
}

impl Collector for Polled {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let values = (self.read)();
        self.specs
            .iter()
            .zip(values)
            .filter_map(|((opts, kind), value)| match kind {
                Kind::Counter => {
                    let c = IntCounter::with_opts(opts.clone()).ok()?;
                    c.inc_by(value);
                    c.collect().pop()
                }
                Kind::Gauge => {
                    let g = IntGauge::with_opts(opts.clone()).ok()?;
                    g.set(i64::try_from(value).unwrap_or(i64::MAX));
                    g.collect().pop()
                }
            })
            .collect()
    }
}

/// Records a duration in seconds.
pub fn observe(h: &Histogram, d: Duration) {
    h.observe(d.as_secs_f64());
}

/// `GET /admin/metrics/prometheus`.
pub async fn prometheus(State(state): State<AppState>) -> impl IntoResponse {
    crate::courier::update_outbox_metrics(&state).await;
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let m = Metrics::new();
        observe(&m.upstream_latency, Duration::from_micros(300));
        observe(&m.upstream_latency, Duration::from_millis(3));
        observe(&m.upstream_latency, Duration::from_secs(20));
        let out = m.render();
        let x = "portcullis_upstream_latency_seconds";
        assert!(
            out.contains(&format!("{x}_bucket{{le=\"0.0005\"}} 1\n")),
            "{out}"
        );
        assert!(
            out.contains(&format!("{x}_bucket{{le=\"0.005\"}} 2\n")),
            "{out}"
        );
        assert!(
            out.contains(&format!("{x}_bucket{{le=\"10\"}} 2\n")),
            "{out}"
        );
        assert!(
            out.contains(&format!("{x}_bucket{{le=\"+Inf\"}} 3\n")),
            "{out}"
        );
        assert!(out.contains(&format!("{x}_count 3\n")), "{out}");
        assert!(out.contains(&format!("{x}_sum 20.0033\n")), "{out}");
    }

    #[test]
    fn request_series_are_counted_and_escaped() {
        let m = Metrics::new();
        let rule = m.rule("a\"b");
        m.count_request(Source::Proxy, Some(&rule), "allow", 200);
        m.count_request(Source::Proxy, Some(&rule), "allow", 200);
        m.count_request(Source::Decisions, None, "deny", 404);
        assert_eq!(m.requests(Source::Proxy, Some("a\"b"), "allow", 200), 2);
        assert_eq!(m.requests(Source::Decisions, None, "deny", 404), 1);
        assert_eq!(m.requests(Source::Proxy, None, "deny", 404), 0);
        let out = m.render();
        assert!(out.contains(
            "portcullis_access_requests_total{decision=\"allow\",rule=\"a\\\"b\",source=\"proxy\",status=\"200\"} 2\n"
        ), "{out}");
        assert!(out.contains(
            "portcullis_access_requests_total{decision=\"deny\",rule=\"\",source=\"decisions\",status=\"404\"} 1\n"
        ), "{out}");
    }

    #[test]
    fn a_rule_with_more_outcomes_than_slots_counts_them_all() {
        let m = Metrics::new();
        let rule = m.rule("busy");
        let statuses: Vec<u16> = (0..(SLOTS as u16 + 3)).map(|i| 200 + i).collect();
        for (i, s) in statuses.iter().enumerate() {
            for _ in 0..=i {
                m.count_request(Source::Proxy, Some(&rule), "allow", *s);
            }
        }
        for (i, s) in statuses.iter().enumerate() {
            assert_eq!(
                m.requests(Source::Proxy, Some("busy"), "allow", *s),
                i as u64 + 1,
                "status {s}"
            );
        }
        assert_eq!(m.requests(Source::Decisions, Some("busy"), "allow", 200), 0);
    }
}
