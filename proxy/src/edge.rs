//! The edge proxy's decider: reserved paths go to the identity module, `/sessions/whoami` is answered from the
//! session cache right here, and everything else runs through the access rules.

use crate::access::Verdict;
use crate::gateway::{Decider, Decision, GatewayRequest, Label, Outcome};
use crate::metrics::{RuleSeries, Source};
use crate::AppState;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use rules::pipeline::RequestInfo;
use serde_json::json;
use std::sync::Arc;

/// Decides for the gateway.
pub struct EdgeDecider {
    /// Shared state.
    pub state: AppState,
}

fn respond(
    status: StatusCode,
    headers: Vec<(HeaderName, HeaderValue)>,
    body: impl Into<bytes::Bytes>,
) -> Decision {
    Decision::Respond {
        status,
        headers,
        body: body.into(),
    }
}

fn json_error(status: StatusCode, reason: &str) -> Decision {
    let body = json!({"error": {
        "code": status.as_u16(),
        "status": status.canonical_reason().unwrap_or(""),
        "message": reason,
    }});
    respond(
        status,
        vec![(
            axum::http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body.to_string().into_bytes(),
    )
}

impl EdgeDecider {
    /// `/sessions/whoami` from the cache, serialised by the very code the public listener uses (same bytes).
    async fn whoami(&self, req: &GatewayRequest) -> Decision {
        // Personal: as on the public listener (`listener::no_store`), no shared cache may keep it.
        let no_store = HeaderValue::from_static("private, no-store");
        match crate::sessions::whoami_answer(&self.state, &req.headers, req.query.as_deref()).await
        {
            Ok(answer) => {
                let mut headers: Vec<(HeaderName, HeaderValue)> = answer.headers().collect();
                headers.push((axum::http::header::CACHE_CONTROL, no_store));
                respond(StatusCode::OK, headers, answer.body)
            }
            Err(e) => {
                let (mut parts, body) = e.into_response().into_parts();
                parts
                    .headers
                    .entry(axum::http::header::CACHE_CONTROL)
                    .or_insert(no_store);
                let body = axum::body::to_bytes(body, 16 * 1024 * 1024)
                    .await
                    .unwrap_or_default();
                let headers = parts
                    .headers
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                respond(parts.status, headers, body)
            }
        }
    }
}

fn label(rule: Option<Arc<RuleSeries>>, decision: &'static str) -> Label {
    Label { rule, decision }
}

#[async_trait::async_trait]
impl Decider for EdgeDecider {
    async fn decide(&self, req: &GatewayRequest) -> Decision {
        self.decide_labelled(req).await.0
    }

    async fn decide_labelled(&self, req: &GatewayRequest) -> (Decision, Label) {
        let path = match rules::normalize_path(&req.path) {
            Ok(p) => p,
            Err(e) => {
                let answer = json_error(
                    StatusCode::BAD_REQUEST,
                    &format!("invalid request path: {e}"),
                );
                return (answer, label(None, "invalid"));
            }
        };
        if path == "/sessions/whoami" {
            return (self.whoami(req).await, label(None, "whoami"));
        }
        if crate::gateway::is_reserved_path(&path) {
            return (Decision::Identity, label(None, "identity"));
        }
        let Some(access) = self.state.access.as_ref() else {
            let answer = json_error(
                StatusCode::NOT_FOUND,
                "Requested url does not match any rules",
            );
            return (answer, label(None, "deny"));
        };
        let headers: Vec<(String, String)> = req
            .headers
            .iter()
            .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect();
        let info = RequestInfo {
            method: req.method.as_str().to_owned(),
            scheme: req.scheme.to_owned(),
            host: req.host.clone(),
            path,
            query: req.query.clone(),
            headers,
            client_ip: req.client_ip,
            forwarded_for: None,
        };
        match access.evaluate(&info).await {
            Verdict::Allow {
                upstream,
                strip,
                set,
                rule,
            } => {
                let allowed = label(Some(rule), "allow");
                let (url, preserve_host, strip_path) = match upstream {
                    Some(u) => match &u.url {
                        Some(url) => (url.clone(), u.preserve_host, u.strip_path.clone()),
                        None => {
                            let answer = json_error(
                                StatusCode::INTERNAL_SERVER_ERROR,
                                "the rule's upstream is not a URL",
                            );
                            return (answer, allowed);
                        }
                    },
                    None => match &access.default_upstream {
                        Some(u) => (u.clone(), false, None),
                        None => {
                            let answer = json_error(
                                StatusCode::BAD_GATEWAY,
                                "the rule names no upstream and proxy.upstream is not set",
                            );
                            return (answer, allowed);
                        }
                    },
                };
                // Every identity header a client sent goes, in any spelling: whatever any rule or preset can set
                // (one set per rule-set version), and whatever this rule sets.
                let remove: Vec<HeaderName> = req
                    .headers
                    .keys()
                    .filter(|k| strip.contains(k.as_str()))
                    .cloned()
                    .collect();
                let mut set_headers = Vec::with_capacity(set.len());
                for (k, v) in set {
                    match (HeaderName::try_from(k), HeaderValue::try_from(v)) {
                        (Ok(k), Ok(v)) => set_headers.push((k, v)),
                        _ => {
                            let answer = json_error(
                                StatusCode::INTERNAL_SERVER_ERROR,
                                "a mutator produced an invalid header",
                            );
                            return (answer, allowed);
                        }
                    }
                }
                let forward = Decision::Forward {
                    upstream: url,
                    preserve_host,
                    strip_path,
                    path: Some(info.path),
                    remove_headers: remove,
                    set_headers,
                };
                (forward, allowed)
            }
            Verdict::Deny { response, rule } => {
                let status = StatusCode::from_u16(response.status)
                    .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                let headers = response
                    .headers
                    .into_iter()
                    .filter_map(|(k, v)| {
                        Some((
                            HeaderName::try_from(k).ok()?,
                            HeaderValue::try_from(v).ok()?,
                        ))
                    })
                    .collect();
                (respond(status, headers, response.body), label(rule, "deny"))
            }
        }
    }

    fn observe(&self, outcome: &Outcome<'_>) {
        let metrics = &self.state.metrics;
        metrics.count_request(
            Source::Proxy,
            outcome.label.rule.as_deref(),
            outcome.label.decision,
            outcome.status,
        );
        // Only app upstreams: the identity module behind reserved paths is not an upstream.
        if let (Some(latency), "allow") = (outcome.upstream_latency, outcome.label.decision) {
            crate::metrics::observe(&metrics.upstream_latency, latency);
        }
    }
}
