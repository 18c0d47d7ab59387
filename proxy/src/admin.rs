//! The admin listener: `/admin/identities`, health and version. Handlers adapt HTTP to `identity` and back.

use crate::error::ApiError;
use crate::extract::{query_get, query_pairs, uuid, uuid_or_not_found, JsonBody};
use crate::pagination;
use crate::sessions;
use crate::AppState;
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Json, Router};
use identity::manager::{CreateIdentity, UpdateIdentity};
use identity::store::{ListIdentities, Page};
use identity::view::{self, CredentialsView};
use identity::{CredentialType, Identity};
use serde_json::{json, Value};
use std::str::FromStr;

/// The admin router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route(
            "/admin/identities",
            get(list_identities)
                .post(create_identity)
                .patch(batch_identities),
        )
        .route(
            "/admin/identities/{id}",
            get(get_identity)
                .put(update_identity)
                .patch(patch_identity)
                .delete(delete_identity),
        )
        .route(
            "/admin/identities/by/external/{id}",
            get(get_by_external_id),
        )
        .route(
            "/admin/identities/{id}/credentials/{kind}",
            axum::routing::delete(delete_credential),
        )
        .route("/admin/sessions", get(sessions::admin_list))
        .route("/admin/sessions/whoami", axum::routing::any(fallback))
        .route(
            "/admin/sessions/{id}",
            get(sessions::admin_get).delete(sessions::admin_revoke),
        )
        .route(
            "/admin/sessions/{id}/extend",
            axum::routing::patch(sessions::admin_extend),
        )
        .route(
            "/admin/identities/{id}/sessions",
            get(sessions::admin_identity_sessions).delete(sessions::admin_delete_identity_sessions),
        )
        .route("/admin/health/alive", get(crate::public::alive))
        .route("/admin/health/ready", get(ready))
        .route("/admin/version", get(version))
        .route("/admin/metrics/prometheus", get(crate::metrics::prometheus))
        .route(
            "/admin/recovery/code",
            axum::routing::post(crate::selfservice::challenge::admin_code),
        )
        .route(
            "/admin/recovery/link",
            axum::routing::post(crate::selfservice::challenge::admin_link),
        )
        .route("/admin/courier/messages", get(crate::courier::list))
        .route("/admin/courier/messages/{id}", get(crate::courier::get))
        .fallback(fallback)
        .layer(DefaultBodyLimit::max(crate::extract::MAX_BODY))
        .with_state(state)
}

/// Kratos answers admin paths without the `/admin` prefix with a 307 to the prefixed path, and public paths
/// under `/admin` with a 307 to the public listener.
async fn fallback(State(state): State<AppState>, uri: Uri) -> Response {
    let path = uri.path();
    let query = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
    if !path.starts_with("/admin") {
        return Redirect::temporary(&format!("/admin{path}{query}")).into_response();
    }
    let rest = &path["/admin".len()..];
    if rest.starts_with("/self-service")
        || rest.starts_with("/schemas")
        || rest == "/sessions/whoami"
    {
        let target = format!("{}{}{query}", state.public_base.trim_end_matches('/'), rest);
        return Redirect::temporary(&target).into_response();
    }
    ApiError::new(StatusCode::NOT_FOUND).into_response()
}

async fn ready(State(state): State<AppState>) -> Response {
    crate::public::readiness(&state, true).await
}

async fn version() -> Json<Value> {
    Json(json!({ "version": concat!("v", env!("CARGO_PKG_VERSION")) }))
}

fn include_credentials(pairs: &[(String, String)]) -> Result<Vec<CredentialType>, ApiError> {
    pairs
        .iter()
        .filter(|(k, _)| k == "include_credential")
        .map(|(_, v)| {
            CredentialType::from_str(v).map_err(|_| {
                ApiError::bad_request(format!(
                    "unknown credential type {v:?} in include_credential"
                ))
            })
        })
        .collect()
}

fn admin_view(
    state: &AppState,
    identity: &Identity,
    with_config: Option<&[CredentialType]>,
) -> Value {
    let creds = match with_config {
        Some(types) => CredentialsView::WithConfigFor(types),
        None => CredentialsView::Omit,
    };
    view::admin_identity(identity, &state.public_base, creds)
}

const MAX_IDS: usize = 500;
const MAX_PAGE_SIZE: u32 = 500;
const DEFAULT_PAGE_SIZE: u32 = 250;
/// Kratos' `x.PagePaginationLimit`: legacy `page`/`per_page` only reach the first 1000 identities.
const LEGACY_PAGINATION_LIMIT: u64 = 1000;

async fn list_identities(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let pairs = query_pairs(raw.as_deref());
    let include = include_credentials(&pairs)?;
    let ids: Vec<uuid::Uuid> = pairs
        .iter()
        .filter(|(k, _)| k == "ids")
        .map(|(_, v)| uuid(v))
        .collect::<Result<_, _>>()?;
    if ids.len() > MAX_IDS {
        return Err(ApiError::bad_request(format!(
            "at most {MAX_IDS} ids may be given"
        )));
    }
    let exact = query_get(&pairs, "credentials_identifier").filter(|s| !s.is_empty());
    let similar =
        query_get(&pairs, "preview_credentials_identifier_similar").filter(|s| !s.is_empty());
    let filters = usize::from(!ids.is_empty())
        + usize::from(exact.is_some())
        + usize::from(similar.is_some());
    if filters > 1 {
        return Err(ApiError::bad_request(
            "ids, credentials_identifier and preview_credentials_identifier_similar cannot be combined",
        ));
    }
    match query_get(&pairs, "consistency") {
        None | Some("") | Some("strong") | Some("eventual") => {}
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "consistency must be strong or eventual, got {other:?}"
            )))
        }
    }
    if query_get(&pairs, "organization_id").is_some_and(|s| !s.is_empty()) {
        return Err(ApiError::bad_request(
            "filtering by organization_id is not supported",
        ));
    }
    // As Kratos (`x.ParseKeysetOrPagePagination`): `page_token` or `page_size` mean keyset pagination; else `page`
    // means the legacy page pagination, limited to the first 1000 identities; else keyset, where a bare
    // `per_page` is the page size.
    let has = |key: &str| pairs.iter().any(|(k, _)| k == key);
    let page = if !has("page_token") && !has("page_size") && has("page") {
        let page = pagination::legacy_page(&pairs);
        let per_page =
            pagination::legacy_per_page(&pairs, "per_page", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE);
        if page.saturating_mul(u64::from(per_page)) > LEGACY_PAGINATION_LIMIT {
            return Err(ApiError::bad_request(format!(
                "Legacy pagination is not supported for enumerating over {LEGACY_PAGINATION_LIMIT} items. Please \
                 switch to using page_token and page_size."
            )));
        }
        // `page * per_page` is at most 1000, so the page fits.
        let page = u32::try_from(page).unwrap_or(u32::MAX);
        Page::Offset { page, per_page }
    } else {
        let key = if has("page_size") {
            "page_size"
        } else {
            "per_page"
        };
        let size = pagination::keyset_size(&pairs, key, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)?;
        let after = query_get(&pairs, "page_token")
            .filter(|t| !t.is_empty())
            .map(|t| uuid(t).map_err(|_| ApiError::bad_request("the page_token is invalid")))
            .transpose()?;
        // One extra row tells whether a next page exists.
        Page::Keyset {
            after,
            size: size + 1,
        }
    };
    let with_credentials = !include.is_empty() || exact.is_some() || similar.is_some();
    let params = ListIdentities {
        page: page.clone(),
        ids,
        credentials_identifier: exact.map(str::to_owned),
        credentials_identifier_similar: similar.map(str::to_owned),
        with_credentials,
    };
    let (mut list, mut total) = state.identities.pool().list_identities(&params).await?;
    // Password and code identifiers are stored trimmed and lower-cased; find `Ada@Example.com ` too.
    if let (true, Some(raw)) = (list.is_empty(), params.credentials_identifier.as_deref()) {
        let normalized = raw.trim().to_lowercase();
        if normalized != raw {
            let retry = ListIdentities {
                credentials_identifier: Some(normalized),
                ..params.clone()
            };
            (list, total) = state.identities.pool().list_identities(&retry).await?;
        }
    }

    let url = format!("{}admin/identities", state.admin_base);
    let headers = match page {
        Page::Keyset { size, .. } => {
            let size = size - 1;
            let has_next = list.len() > size as usize;
            list.truncate(size as usize);
            let next = list.last().filter(|_| has_next).map(|i| i.id.to_string());
            pagination::keyset_headers(&url, &pairs, size, next)
        }
        Page::Offset { page, per_page } => pagination::OffsetPage {
            page: u64::from(page),
            per_page,
        }
        .headers(&url, &pairs, total.unwrap_or(0)),
    };
    let body: Vec<Value> = list
        .iter()
        .map(|i| admin_view(&state, i, with_credentials.then_some(include.as_slice())))
        .collect();
    Ok((headers, Json(body)).into_response())
}

async fn create_identity(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<CreateIdentity>,
) -> Result<Response, ApiError> {
    let identity = state.identities.create(body).await?;
    let location = format!("{}admin/identities/{}", state.admin_base, identity.id);
    let mut res = (
        StatusCode::CREATED,
        Json(admin_view(&state, &identity, Some(&[]))),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    Ok(res)
}

const MAX_BATCH: usize = 1000;
const MAX_BATCH_WITH_PASSWORDS: usize = 200;

async fn batch_identities(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<Value>,
) -> Result<Json<Value>, ApiError> {
    // As in Kratos, a body without `identities` (or with `null`) patches nothing: 200 with an empty list.
    let items: &[Value] = match body.get("identities") {
        None | Some(Value::Null) if body.is_object() => &[],
        Some(Value::Array(items)) => items,
        _ => {
            return Err(ApiError::bad_request(
                "the body must be {\"identities\": [...]}",
            ))
        }
    };
    if let Some(other) = body
        .as_object()
        .and_then(|o| o.keys().find(|k| *k != "identities"))
    {
        return Err(ApiError::bad_request(format!(
            "unknown field `{other}` in the body"
        )));
    }
    if items.len() > MAX_BATCH {
        return Err(ApiError::bad_request(format!(
            "at most {MAX_BATCH} identities per request"
        )));
    }
    let plaintext = items
        .iter()
        .filter(|i| {
            i.pointer("/create/credentials/password/config/password")
                .is_some()
        })
        .count();
    if plaintext > 0 && items.len() > MAX_BATCH_WITH_PASSWORDS {
        return Err(ApiError::bad_request(format!(
            "at most {MAX_BATCH_WITH_PASSWORDS} identities per request when plaintext passwords are imported"
        )));
    }
    let mut results = Vec::with_capacity(items.len());
    for item in items {
        let patch_id = item.get("patch_id").cloned();
        let outcome = match item.get("create") {
            None => Err(ApiError::bad_request("each item needs a `create` object")),
            Some(create) => {
                match crate::extract::parse_json::<CreateIdentity>(create.to_string().as_bytes()) {
                    Err(e) => Err(e),
                    Ok(body) => state.identities.create(body).await.map_err(ApiError::from),
                }
            }
        };
        let mut r = match outcome {
            Ok(identity) => json!({"action": "create", "identity": identity.id}),
            Err(e) => json!({"action": "error", "error": e.error_object()}),
        };
        if let Some(p) = patch_id.filter(|p| !p.is_null()) {
            r["patch_id"] = p;
        }
        results.push(r);
    }
    Ok(Json(json!({ "identities": results })))
}

async fn get_identity(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let include = include_credentials(&query_pairs(raw.as_deref()))?;
    let identity = state
        .identities
        .pool()
        .get_identity(uuid_or_not_found(&id)?, true)
        .await?;
    Ok(Json(admin_view(&state, &identity, Some(&include))))
}

async fn get_by_external_id(
    State(state): State<AppState>,
    Path(external_id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let include = include_credentials(&query_pairs(raw.as_deref()))?;
    if external_id.is_empty() {
        return Err(ApiError::bad_request("the external id must not be empty"));
    }
    let identity = state
        .identities
        .pool()
        .get_identity_by_external_id(&external_id, true)
        .await?;
    Ok(Json(admin_view(&state, &identity, Some(&include))))
}

async fn update_identity(
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<UpdateIdentity>,
) -> Result<Json<Value>, ApiError> {
    let identity = state
        .identities
        .update(uuid_or_not_found(&id)?, body)
        .await?;
    // Cached sessions carry the old traits and state.
    state.sessions.identity_changed(&identity).await?;
    Ok(Json(admin_view(&state, &identity, Some(&[]))))
}

async fn patch_identity(
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(patch): JsonBody<Value>,
) -> Result<Json<Value>, ApiError> {
    let identity = state
        .identities
        .patch(uuid_or_not_found(&id)?, patch, &state.public_base)
        .await?;
    state.sessions.identity_changed(&identity).await?;
    Ok(Json(admin_view(&state, &identity, Some(&[]))))
}

async fn delete_identity(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = uuid_or_not_found(&id)?;
    // Deleting the identity deletes its sessions; remember their hashes to evict cached copies.
    let hashes = state.sessions.pool().identity_token_hashes(id).await?;
    state.identities.pool().delete_identity(id).await?;
    state.sessions.evict(&hashes).await;
    Ok(StatusCode::NO_CONTENT)
}

async fn delete_credential(
    State(state): State<AppState>,
    Path((id, kind)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Result<StatusCode, ApiError> {
    let pairs = query_pairs(raw.as_deref());
    state
        .identities
        .delete_credential(
            uuid_or_not_found(&id)?,
            &kind,
            query_get(&pairs, "identifier"),
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
