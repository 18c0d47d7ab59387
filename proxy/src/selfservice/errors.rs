//! `GET /self-service/errors?id=`: errors of browser flows, stored for the error UI.

use crate::error::ApiError;
use crate::extract::{query_get, query_pairs};
use crate::AppState;
use axum::extract::{RawQuery, State};
use axum::Json;
use serde_json::{json, Value};

/// `GET /self-service/errors?id=` (`error=` is accepted too and wins; `stub:500` returns a sample).
pub async fn get_error(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let pairs = query_pairs(raw.as_deref());
    // As Kratos: the first non-empty of `error` and `id`; none (like a malformed id) names no error, so 404.
    let id = [query_get(&pairs, "error"), query_get(&pairs, "id")]
        .into_iter()
        .flatten()
        .find(|s| !s.is_empty())
        .ok_or_else(ApiError::not_found)?;
    if id == "stub:500" {
        let now = identity::view::timestamp(state.clock.now());
        return Ok(Json(json!({
            "id": id,
            "error": {"code": 500, "status": "Internal Server Error", "reason": "This is a stub error.", "message": "An internal server error occurred, please contact the system administrator"},
            "created_at": now,
            "updated_at": now,
        })));
    }
    let id = uuid::Uuid::parse_str(id).map_err(|_| ApiError::not_found())?;
    let stored = match state.errors.read_error(id, state.clock.now()).await {
        Ok(e) => e,
        Err(identity::StoreError::NotFound) => return Err(ApiError::not_found()),
        Err(e) => return Err(e.into()),
    };
    Ok(Json(json!({
        "id": stored.id,
        "error": stored.error,
        "created_at": identity::view::timestamp(stored.created_at),
        "updated_at": identity::view::timestamp(stored.updated_at),
    })))
}
