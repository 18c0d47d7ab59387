//! Prometheus metrics: a small lock-light registry and the text exposition at
//! `/admin/metrics/prometheus`.
//!
//! Series (all prefixed `portcullis_`):
//! - `access_requests_total{source, rule, decision, status}`: every request the edge proxy
//!   (`source="proxy"`) or the decisions API (`source="decisions"`) decided. `rule` is empty when no
//!   rule matched; `decision` is `allow`, `deny`, `identity` (reserved paths), `whoami` or `invalid`.
//! - `upstream_latency_seconds`: from picking the upstream to its response header (edge proxy).
//! - `pipeline_latency_seconds`: rule match plus authenticators, authorizer and mutators.
//! - `access_rules`, `access_rule_reloads_total`, `access_rule_reload_failures_total`.
//! - `session_cache_*_total`: the session cache's counters.
//! - `password_verifications_total`: password hash verifications started (each login guess that got past the
//!   throttle costs one, unknown identifiers included).

use crate::AppState;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use std::collections::HashMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A latency histogram with fixed buckets; recording is a few relaxed atomic adds.
#[derive(Debug, Default)]
pub struct Histogram {
    /// Per-bucket counts (not cumulative); the last slot is `+Inf`.
    counts: [AtomicU64; BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let slot = BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(BUCKETS.len());
        self.counts[slot].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// How many observations were recorded.
    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} histogram");
        let mut cumulative = 0u64;
        for (i, bound) in BUCKETS.iter().enumerate() {
            cumulative += self.counts[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
        }
        cumulative += self.counts[BUCKETS.len()].load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {cumulative}");
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum {sum}");
        let _ = writeln!(out, "{name}_count {cumulative}");
    }
}

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

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct RequestKey {
    source: Source,
    rule: Option<Arc<str>>,
    decision: &'static str,
    status: u16,
}

/// The process's metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: RwLock<HashMap<RequestKey, AtomicU64>>,
    /// Upstream latency (edge proxy).
    pub upstream_latency: Histogram,
}

impl Metrics {
    /// Counts one decided request. The label set is bounded: rule ids come from the rule files.
    pub fn count_request(
        &self,
        source: Source,
        rule: Option<&Arc<str>>,
        decision: &'static str,
        status: u16,
    ) {
        let key = RequestKey {
            source,
            rule: rule.cloned(),
            decision,
            status,
        };
        if let Ok(map) = self.requests.read() {
            if let Some(c) = map.get(&key) {
                c.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        if let Ok(mut map) = self.requests.write() {
            map.entry(key).or_default().fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The count of one request series (tests and dashboards).
    pub fn requests(&self, source: Source, rule: Option<&str>, decision: &str, status: u16) -> u64 {
        self.requests.read().map_or(0, |map| {
            map.iter()
                .filter(|(k, _)| {
                    k.source == source
                        && k.rule.as_deref() == rule
                        && k.decision == decision
                        && k.status == status
                })
                .map(|(_, v)| v.load(Ordering::Relaxed))
                .sum()
        })
    }

    fn render_requests(&self, out: &mut String) {
        let name = "portcullis_access_requests_total";
        let _ = writeln!(
            out,
            "# HELP {name} Requests decided by the access rules, by source, rule, decision and status."
        );
        let _ = writeln!(out, "# TYPE {name} counter");
        let Ok(map) = self.requests.read() else {
            return;
        };
        let mut rows: Vec<(String, u64)> = map
            .iter()
            .map(|(k, v)| {
                let labels = format!(
                    "source=\"{}\",rule=\"{}\",decision=\"{}\",status=\"{}\"",
                    k.source.as_str(),
                    escape_label(k.rule.as_deref().unwrap_or("")),
                    k.decision,
                    k.status
                );
                (labels, v.load(Ordering::Relaxed))
            })
            .collect();
        rows.sort();
        for (labels, value) in rows {
            let _ = writeln!(out, "{name}{{{labels}}} {value}");
        }
    }
}

/// Escapes a label value for the text format.
fn escape_label(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

fn counter(out: &mut String, name: &str, help: &str, value: u64) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} counter");
    let _ = writeln!(out, "{name} {value}");
}

/// Renders every metric in the Prometheus text format.
pub fn render(state: &AppState) -> String {
    let mut out = String::new();
    for (name, value) in state.sessions.cache().metrics().snapshot() {
        let metric = format!("portcullis_session_cache_{name}_total");
        let _ = writeln!(out, "# TYPE {metric} counter");
        let _ = writeln!(out, "{metric} {value}");
    }
    counter(
        &mut out,
        "portcullis_password_verifications_total",
        "Password hash verifications started (login guesses that got past the throttle, unknown identifiers included).",
        state.identities.hasher().verifications(),
    );
    state.metrics.render_requests(&mut out);
    state.metrics.upstream_latency.render(
        &mut out,
        "portcullis_upstream_latency_seconds",
        "Time from choosing an upstream to its response header.",
    );
    if let Some(access) = &state.access {
        access.pipeline_latency.render(
            &mut out,
            "portcullis_pipeline_latency_seconds",
            "Rule matching plus the authenticators, authorizer and mutators.",
        );
        let _ = writeln!(
            out,
            "# HELP portcullis_access_rules Rules in the active rule set."
        );
        let _ = writeln!(out, "# TYPE portcullis_access_rules gauge");
        let _ = writeln!(
            out,
            "portcullis_access_rules {}",
            access.current().source.len()
        );
        counter(
            &mut out,
            "portcullis_access_rule_reloads_total",
            "Rule set reloads that took effect.",
            access.reloads.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "portcullis_access_rule_reload_failures_total",
            "Rule set reloads refused (the previous set stayed).",
            access.reload_failures.load(Ordering::Relaxed),
        );
    }
    out
}

/// `GET /admin/metrics/prometheus`.
pub async fn prometheus(State(state): State<AppState>) -> impl IntoResponse {
    let mut body = render(&state);
    crate::courier::render_metrics(&state, &mut body).await;
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(300));
        h.observe(Duration::from_millis(3));
        h.observe(Duration::from_secs(20));
        let mut out = String::new();
        h.render(&mut out, "x", "help");
        assert!(out.contains("x_bucket{le=\"0.0005\"} 1\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"0.005\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"10\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{le=\"+Inf\"} 3\n"), "{out}");
        assert!(out.contains("x_count 3\n"), "{out}");
        assert!(out.contains("x_sum 20.0033\n"), "{out}");
    }

    #[test]
    fn request_series_are_counted_and_escaped() {
        let m = Metrics::default();
        let rule: Arc<str> = Arc::from("a\"b");
        m.count_request(Source::Proxy, Some(&rule), "allow", 200);
        m.count_request(Source::Proxy, Some(&rule), "allow", 200);
        m.count_request(Source::Decisions, None, "deny", 404);
        assert_eq!(m.requests(Source::Proxy, Some("a\"b"), "allow", 200), 2);
        assert_eq!(m.requests(Source::Decisions, None, "deny", 404), 1);
        assert_eq!(m.requests(Source::Proxy, None, "deny", 404), 0);
        let mut out = String::new();
        m.render_requests(&mut out);
        assert!(out.contains(
            "portcullis_access_requests_total{source=\"proxy\",rule=\"a\\\"b\",decision=\"allow\",status=\"200\"} 2\n"
        ), "{out}");
        assert!(out.contains(
            "portcullis_access_requests_total{source=\"decisions\",rule=\"\",decision=\"deny\",status=\"404\"} 1\n"
        ), "{out}");
    }
}
