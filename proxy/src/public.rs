//! The public listener: identity schemas, sessions, self-service flows, the built-in UI and health.

use crate::error::ApiError;
use crate::extract::query_pairs;
use crate::pagination::OffsetPage;
use crate::AppState;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

/// The public router.
pub fn router(state: AppState) -> Router {
    let ui_on = state.config.ui.enabled;
    Router::new()
        .route("/schemas", get(list_schemas))
        .route("/schemas/{id}", get(get_schema))
        .route("/admin/schemas", get(list_schemas))
        .route("/admin/schemas/{id}", get(get_schema))
        .route(
            "/sessions/whoami",
            axum::routing::any(crate::sessions::whoami),
        )
        .route(
            "/sessions",
            get(crate::sessions::list_mine).delete(crate::sessions::revoke_mine),
        )
        .route(
            "/sessions/token-exchange",
            // `DELETE` still means `DELETE /sessions/{id}` with this (malformed) id.
            get(crate::sessions::token_exchange).delete(
                |state: State<AppState>, headers: axum::http::HeaderMap| {
                    crate::sessions::revoke_one_of_mine(
                        state,
                        headers,
                        Path("token-exchange".to_owned()),
                    )
                },
            ),
        )
        .route(
            "/sessions/{id}",
            axum::routing::delete(crate::sessions::revoke_one_of_mine),
        )
        .nest(
            "/self-service/login",
            entry_routes().layer(axum::Extension(flows::FlowKind::Login)),
        )
        .nest(
            "/self-service/registration",
            entry_routes().layer(axum::Extension(flows::FlowKind::Registration)),
        )
        .route(
            "/self-service/settings/api",
            get(crate::selfservice::settings::init_api),
        )
        .route(
            "/self-service/settings/browser",
            get(crate::selfservice::settings::init_browser),
        )
        .route(
            "/self-service/settings/flows",
            get(crate::selfservice::settings::get_flow),
        )
        .route(
            "/self-service/settings",
            get(crate::selfservice::settings::submit).post(crate::selfservice::settings::submit),
        )
        .nest(
            "/self-service/recovery",
            challenge_routes().layer(axum::Extension(flows::FlowKind::Recovery)),
        )
        .nest(
            "/self-service/verification",
            challenge_routes().layer(axum::Extension(flows::FlowKind::Verification)),
        )
        .route(
            "/self-service/logout/api",
            axum::routing::delete(crate::selfservice::logout::logout_api),
        )
        .route(
            "/self-service/logout/browser",
            get(crate::selfservice::logout::logout_browser),
        )
        .route(
            "/self-service/logout",
            get(crate::selfservice::logout::logout),
        )
        .route(
            "/self-service/errors",
            get(crate::selfservice::errors::get_error),
        )
        .route("/health/alive", get(alive))
        .route("/health/ready", get(ready))
        .merge(if ui_on {
            crate::ui::routes()
        } else {
            Router::new()
        })
        .fallback(fallback)
        .layer(DefaultBodyLimit::max(crate::extract::MAX_BODY))
        .with_state(state)
}

/// Admin-only paths asked of the public listener get a 307 to the admin listener, as in Kratos.
async fn fallback(State(state): State<AppState>, uri: Uri) -> Response {
    let path = uri.path();
    let query = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
    let admin_path = if path.starts_with("/admin/identities") || path.starts_with("/admin/courier")
    {
        Some(path.to_owned())
    } else if path.starts_with("/identities")
        || path.starts_with("/recovery/code")
        || path.starts_with("/recovery/link")
    {
        Some(format!("/admin{path}"))
    } else {
        None
    };
    match admin_path {
        Some(p) => Redirect::temporary(&format!(
            "{}{}{query}",
            state.admin_base.trim_end_matches('/'),
            p
        ))
        .into_response(),
        None => ApiError::new(StatusCode::NOT_FOUND).into_response(),
    }
}

/// `GET /health/alive`: the process is up.
pub async fn alive() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// `GET /health/ready`.
async fn ready(State(state): State<AppState>) -> Response {
    readiness(&state, false).await
}

/// 200 when the database answers, every migration is applied and, with `cache.redis.url`, Redis has answered once;
/// else 503. Only the admin listener says why (`explain`), as in Kratos. A Redis outage after start-up does not make
/// a replica unready: it falls back to SQL, and failing every replica at once would turn a degraded cache into an
/// outage.
pub async fn readiness(state: &AppState, explain: bool) -> Response {
    use std::sync::atomic::Ordering;
    let mut problems: Vec<String> = Vec::new();
    match identity::IdentityPool::ping(&state.db).await {
        Err(e) => problems.push(format!("the database is not reachable: {e}")),
        Ok(()) if !state.readiness.migrated.load(Ordering::Relaxed) => {
            match state.db.pending_migrations().await {
                Ok(p) if p.is_empty() => state.readiness.migrated.store(true, Ordering::Relaxed),
                Ok(p) => problems.push(format!(
                    "{} database migration(s) are pending: run `portcullis migrate sql --yes`",
                    p.len()
                )),
                Err(e) => problems.push(format!("cannot read the migration state: {e}")),
            }
        }
        Ok(()) => {}
    }
    if state.config.cache.redis.url.is_some() && !state.readiness.redis_seen.load(Ordering::Relaxed)
    {
        if state.sessions.cache().redis_subscribed() {
            state.readiness.redis_seen.store(true, Ordering::Relaxed);
        } else {
            problems.push("Redis (cache.redis.url) has not answered yet".to_owned());
        }
    }
    if problems.is_empty() {
        return Json(json!({"status": "ok"})).into_response();
    }
    let reason = problems.join("; ");
    tracing::warn!(%reason, "readiness check failed");
    let err = ApiError::new(StatusCode::SERVICE_UNAVAILABLE);
    if explain {
        err.with_reason(reason)
    } else {
        err
    }
    .into_response()
}

async fn list_schemas(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let pairs = query_pairs(raw.as_deref());
    let page = OffsetPage::from_query(&pairs, 250, 1000)?;
    let all: Vec<Value> = state
        .identities
        .schemas()
        .iter()
        .map(|s| json!({"id": s.id(), "schema": s.raw()}))
        .collect();
    let total = all.len() as u64;
    let start = usize::try_from(page.offset().min(total)).unwrap_or(all.len());
    let end = (start + page.per_page as usize).min(all.len());
    let headers = page.headers(&format!("{}schemas", state.public_base), &pairs, total);
    Ok((headers, Json(Value::Array(all[start..end].to_vec()))).into_response())
}

async fn get_schema(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    state
        .identities
        .schemas()
        .resolve(&id)
        .map(|s| Json(s.raw().clone()))
        .ok_or_else(ApiError::not_found)
}

/// The routes of a login or registration flow under `/self-service/<kind>`; the kind comes from the `Extension`
/// the caller layers on them.
fn entry_routes() -> Router<AppState> {
    use crate::selfservice::init;
    Router::new()
        .route("/api", get(init::init_api))
        .route("/browser", get(init::init_browser))
        .route("/flows", get(init::get_flow))
        .route("/", get(init::submit).post(init::submit))
}

/// The routes of a recovery or verification flow under `/self-service/<kind>`; the kind comes from the
/// `Extension` the caller layers on them.
fn challenge_routes() -> Router<AppState> {
    use crate::selfservice::challenge;
    Router::new()
        .route("/api", get(challenge::init_api))
        .route("/browser", get(challenge::init_browser))
        .route("/flows", get(challenge::get_flow))
        .route("/", get(challenge::submit).post(challenge::submit))
}
