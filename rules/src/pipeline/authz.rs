//! Authorizers: `allow`, `deny` and `remote_json`.

use super::{
    effective, template_context, typed, AuthSession, Authorizer, Disabled, ErrorKind,
    OutboundRequest, PipelineConfig, PipelineError, RequestInfo, Services,
};
use crate::template::Template;
use async_trait::async_trait;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Builds the authorizer of a rule.
pub fn build(
    name: &str,
    rule_config: Option<&Value>,
    config: &PipelineConfig,
    services: &Services,
) -> Result<Arc<dyn Authorizer>, String> {
    if !matches!(name, "allow" | "deny" | "remote_json") {
        return Err(format!("unknown authorizer {name:?}"));
    }
    let global = config.authorizers.get(name);
    if !global.is_some_and(|g| g.enabled) {
        return Ok(Arc::new(Disabled(format!("authorizers.{name}"))));
    }
    Ok(match name {
        "allow" => Arc::new(Allow),
        "deny" => Arc::new(Deny),
        _ => {
            let c: RemoteJsonConfig = typed("authorizer", name, effective(global, rule_config))?;
            url::Url::parse(&c.remote)
                .map_err(|e| format!("remote_json: remote {:?}: {e}", c.remote))?;
            let payload =
                Template::compile(&c.payload).map_err(|e| format!("remote_json payload: {e}"))?;
            let headers = c
                .headers
                .iter()
                .map(|(k, v)| {
                    Template::compile(v)
                        .map(|t| (k.clone(), t))
                        .map_err(|e| format!("remote_json header {k:?}: {e}"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            Arc::new(RemoteJson {
                remote: c.remote,
                payload,
                headers,
                forward: c.forward_response_headers_to_upstream,
                http: services.http.clone(),
            })
        }
    })
}

struct Allow;

#[async_trait]
impl Authorizer for Allow {
    async fn authorize(&self, _: &RequestInfo, _: &mut AuthSession) -> Result<(), PipelineError> {
        Ok(())
    }
}

struct Deny;

#[async_trait]
impl Authorizer for Deny {
    async fn authorize(&self, _: &RequestInfo, _: &mut AuthSession) -> Result<(), PipelineError> {
        Err(PipelineError::forbidden(
            "the deny authorizer refuses every request",
        ))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RemoteJsonConfig {
    remote: String,
    payload: String,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    forward_response_headers_to_upstream: Vec<String>,
    /// Accepted for Oathkeeper configs; calls are not retried.
    #[serde(default, rename = "retry")]
    _retry: Option<Value>,
}

struct RemoteJson {
    remote: String,
    payload: Template,
    headers: Vec<(String, Template)>,
    forward: Vec<String>,
    http: Arc<dyn super::HttpClient>,
}

#[async_trait]
impl Authorizer for RemoteJson {
    async fn authorize(
        &self,
        req: &RequestInfo,
        session: &mut AuthSession,
    ) -> Result<(), PipelineError> {
        let ctx = template_context(req, session);
        let body = self
            .payload
            .render(&ctx)
            .map_err(|e| PipelineError::internal(format!("remote_json payload: {e}")))?;
        serde_json::from_str::<Value>(&body).map_err(|e| {
            PipelineError::internal(format!("remote_json payload is not JSON: {e}"))
        })?;
        let mut headers = vec![("Content-Type".to_owned(), "application/json".to_owned())];
        if let Some(a) = req.header("authorization") {
            headers.push(("Authorization".into(), a.to_owned()));
        }
        for (k, t) in &self.headers {
            let v = t
                .render(&ctx)
                .map_err(|e| PipelineError::internal(format!("remote_json header {k}: {e}")))?;
            headers.push((k.clone(), v));
        }
        let res = self
            .http
            .send(OutboundRequest {
                method: "POST".into(),
                url: self.remote.clone(),
                headers,
                body: Some(body.into_bytes()),
            })
            .await
            .map_err(|e| PipelineError::new(ErrorKind::BadGateway, format!("remote_json: {e}")))?;
        match res.status {
            200..=299 => {
                for name in &self.forward {
                    if let Some(v) = res.header(name) {
                        session.header.push((name.clone(), v.to_owned()));
                    }
                }
                Ok(())
            }
            403 => Err(PipelineError::forbidden(
                "the remote authorizer refused the request",
            )),
            429 => {
                let mut err = PipelineError::new(
                    ErrorKind::TooManyRequests,
                    "the remote authorizer is rate limited",
                );
                if let Some(r) = res.header("retry-after") {
                    err.headers.push(("Retry-After".into(), r.to_owned()));
                }
                Err(err)
            }
            other => Err(PipelineError::internal(format!(
                "the remote authorizer answered {other}"
            ))),
        }
    }

    fn sets_headers(&self) -> Vec<String> {
        self.forward.clone()
    }
}
