//! Request extractors whose rejections are Kratos error envelopes.

use crate::error::ApiError;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use uuid::Uuid;

/// Largest accepted request body (Kratos: 5 MiB).
pub const MAX_BODY: usize = 5 * 1024 * 1024;

/// A JSON body. Malformed JSON, unknown fields and wrong types are 400s that name the field; bodies over
/// [`MAX_BODY`] are 413.
pub struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        // Refuse from the declared length before reading anything.
        let declared = req
            .headers()
            .get(axum::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > MAX_BODY as u64) {
            return Err(too_large());
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    too_large()
                } else {
                    ApiError::bad_request(format!("unable to read the request body: {rejection}"))
                }
            })?;
        parse_json(&bytes).map(JsonBody)
    }
}

fn too_large() -> ApiError {
    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE)
        .with_reason(format!("request bodies are limited to {MAX_BODY} bytes"))
}

/// Parses JSON, naming the offending field on error.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let reason = if path == "." || inner.is_eof() || inner.is_syntax() {
            format!("unable to decode the JSON body: {inner}")
        } else {
            format!("unable to decode the JSON body at `{path}`: {inner}")
        };
        ApiError::bad_request(reason)
    })
}

/// Parses a UUID path segment; a malformed one is a 400 (Kratos' sessions and courier messages).
pub fn uuid(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::bad_request(format!("{raw:?} is not a valid UUID")))
}

/// Parses the id of a resource that Kratos looks up with `x.ParseUUID` (identities, self-service flows): a
/// malformed id names nothing, so it is a 404 as for an unknown one.
pub fn uuid_or_not_found(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw).map_err(|_| ApiError::not_found())
}

/// Query parameters in order, with repeats (`ids=a&ids=b`).
pub fn query_pairs(raw: Option<&str>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The last value of a query parameter.
pub fn query_get<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}
