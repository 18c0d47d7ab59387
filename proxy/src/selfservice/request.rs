//! The request side of every self-service handler: the request URL, the caller's session, what web hooks see of
//! the request, and a flow submit read once (flow, client, body, CSRF) before the flow service sees it.

use super::{
    body_of, browser_on_api_flow, check_csrf, csrf_of_request, fail, submit_client, Client,
};
use super::{flow_error, retry};
use crate::error::ApiError;
use crate::extract::{query_get, query_pairs, uuid};
use crate::sessions::{device_info, request_token};
use crate::AppState;
use axum::extract::Request;
use axum::http::{header, HeaderMap};
use axum::response::Response;
use flows::hooks::HookRequest;
use flows::{Flow, FlowKind, FlowType, SubmitContext};
use identity::session::SessionSnapshot;
use serde_json::{json, Map, Value};
use std::net::IpAddr;
use std::sync::Arc;

/// The request's full public URL.
pub fn request_url(state: &AppState, req: &Request) -> String {
    // A nested router sees its own part of the path; the request's own URI is kept as `OriginalUri`.
    let uri = req
        .extensions()
        .get::<axum::extract::OriginalUri>()
        .map_or(req.uri(), |o| &o.0);
    format!(
        "{}{}",
        state.public_base.trim_end_matches('/'),
        uri.path_and_query().map(|p| p.as_str()).unwrap_or_default()
    )
}

/// The session of the request's cookie or `X-Session-Token`, if valid.
pub async fn current_session(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<Arc<SessionSnapshot>>, ApiError> {
    match request_token(state, headers) {
        Some(token) => Ok(state.sessions.authenticate(&token).await?),
        None => Ok(None),
    }
}

/// Whether a browser flow belongs to this browser: its stored token must match the CSRF cookie.
pub fn flow_matches_cookie(state: &AppState, headers: &HeaderMap, flow: &Flow) -> bool {
    match csrf_of_request(state, headers) {
        Some(real) => real.verify_masked(&flow.csrf_token),
        None => false,
    }
}

/// Headers web hooks may see (`ctx.request_headers`), as Kratos allow-lists them.
const HOOK_HEADERS: &[&str] = &[
    "accept",
    "accept-encoding",
    "accept-language",
    "content-length",
    "content-type",
    "origin",
    "priority",
    "referer",
    "sec-ch-ua",
    "sec-ch-ua-mobile",
    "sec-ch-ua-platform",
    "sec-fetch-dest",
    "sec-fetch-mode",
    "sec-fetch-site",
    "sec-fetch-user",
    "true-client-ip",
    "user-agent",
    "x-forwarded-for",
    "cf-ipcountry",
    "cf-ipcity",
];

/// The request as web hooks see it: allow-listed headers and the cookies other than our own credentials.
pub fn hook_request(
    state: &AppState,
    headers: &HeaderMap,
    method: &str,
    url: String,
) -> HookRequest {
    let mut hs = Map::new();
    for name in HOOK_HEADERS {
        if let Some(v) = headers.get(*name).and_then(|v| v.to_str().ok()) {
            hs.insert((*name).to_owned(), json!(v));
        }
    }
    let mut cookies = Map::new();
    for pair in headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
    {
        if let Some((k, v)) = pair.trim().split_once('=') {
            if k != state.config.session.cookie.name && k != state.csrf_cookie {
                cookies.insert(k.to_owned(), json!(v));
            }
        }
    }
    HookRequest {
        headers: hs,
        method: method.to_owned(),
        url,
        cookies,
    }
}

/// The flow `GET /self-service/<kind>/flows?id=` shows: a missing or malformed id is 404 (as in Kratos), a flow
/// this request may not see (`visible`) is the foreign-flow error, an expired one the expired-flow error.
pub async fn flow_to_show(
    state: &AppState,
    kind: FlowKind,
    raw: Option<&str>,
    visible: impl FnOnce(&Flow) -> bool,
) -> Result<Flow, ApiError> {
    let pairs = query_pairs(raw);
    let flow = state
        .flow_repo
        .load(kind, super::flow_id_param(&pairs))
        .await
        .map_err(flow_error)?;
    if !visible(&flow) {
        return Err(super::foreign_flow());
    }
    if flow.is_expired(state.clock.now()) {
        return Err(super::expired_flow(state, &flow));
    }
    Ok(flow)
}

/// `?refresh=`: absent, empty or `false`, or `true`.
pub fn refresh_param(pairs: &[(String, String)]) -> Result<bool, ApiError> {
    match query_get(pairs, "refresh") {
        None | Some("") | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(ApiError::bad_request(format!(
            "refresh must be true or false, not {other:?}"
        ))),
    }
}

/// The context of a `POST` from `client_ip` to `url`: device, client address and the hook view of the request
/// (no session, no CSRF token).
pub fn submit_context(
    state: &AppState,
    headers: &HeaderMap,
    client_ip: Option<IpAddr>,
    url: String,
) -> SubmitContext {
    let device = device_info(client_ip, headers);
    SubmitContext {
        client_ip: device.ip_address.as_deref().and_then(|ip| ip.parse().ok()),
        device,
        request: hook_request(state, headers, "POST", url),
        session: None,
        csrf_token: String::new(),
    }
}

/// A flow submit, read once: the flow (loaded once), how to answer, the body and the submit context.
pub struct Submission {
    /// How to answer (API flows always get JSON).
    pub client: Client,
    /// The flow, as stored.
    pub flow: Flow,
    /// The decoded body (JSON, or a form with dotted names).
    pub body: Value,
    /// Device, address, session and hook view of the request.
    pub ctx: SubmitContext,
    /// The request's headers.
    pub headers: HeaderMap,
}

impl Submission {
    /// Reads a `POST /self-service/<kind>?flow=` request. Browser flows must pass the CSRF check; API flows must
    /// not come from a browser (their flow gets a message and comes back with 400). Anything else that goes wrong
    /// is already the response.
    pub async fn read(
        state: &AppState,
        kind: FlowKind,
        client_ip: Option<IpAddr>,
        raw: Option<&str>,
        req: Request,
    ) -> Result<Self, Response> {
        let headers = req.headers().clone();
        let url = request_url(state, &req);
        let mut client = submit_client(&headers);
        let read = async {
            let pairs = query_pairs(raw);
            let id = query_get(&pairs, "flow")
                .ok_or_else(|| ApiError::bad_request("the flow query parameter is required"))?;
            let flow = state
                .flow_repo
                .load(kind, uuid(id)?)
                .await
                .map_err(flow_error)?;
            Ok::<_, ApiError>(flow)
        };
        let flow = match read.await {
            Ok(f) => f,
            Err(e) => return Err(fail(state, client, e).await),
        };
        if flow.flow_type == FlowType::Api {
            client = Client::Json;
        }
        let checked = async {
            let body = body_of(state, req).await?;
            if flow.flow_type == FlowType::Browser {
                check_csrf(state, &headers, &body)?;
            }
            let session = current_session(state, &headers).await?;
            Ok::<_, ApiError>((body, session))
        };
        let (body, session) = match checked.await {
            Ok(v) => v,
            Err(e) => return Err(fail(state, client, e).await),
        };
        if flow.flow_type == FlowType::Api && browser_on_api_flow(&headers) {
            let message = identity::text::validation_generic(
                "The request carried a cookie or an Origin header, so it comes from a browser; browsers must use \
                 the browser flow (…/browser) instead of the API flow.",
            );
            return Err(match state.flow_repo.with_message(flow, message).await {
                Ok(flow) => retry(state, client, &flow),
                Err(e) => fail(state, client, flow_error(e)).await,
            });
        }
        let mut ctx = submit_context(state, &headers, client_ip, url);
        ctx.session = session.map(|s| (s.session_id, s.identity_id));
        Ok(Self {
            client,
            flow,
            body,
            ctx,
            headers,
        })
    }
}
