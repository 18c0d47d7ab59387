//! The Kratos error envelope and the one place where domain errors become HTTP answers.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};

/// An error answer: `{"error": {"id","code","status","reason","message","details"}}` plus an `Ory-Error-Id` header.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine id (`session_inactive`, …); many Kratos errors have none.
    pub id: Option<&'static str>,
    /// Short message; defaults to the herodot text of the status.
    pub message: Option<String>,
    /// Human-readable detail.
    pub reason: Option<String>,
    /// Structured detail.
    pub details: Option<Box<Value>>,
    /// Top-level `redirect_browser_to` (AAL and refresh errors).
    pub redirect_browser_to: Option<String>,
    /// Other top-level siblings of `error` (`use_flow_id`, `expired_at`, …).
    pub extra: Option<Box<serde_json::Map<String, Value>>>,
}

impl ApiError {
    /// An error with the default message of its status.
    pub fn new(status: StatusCode) -> Self {
        Self {
            status,
            id: None,
            message: None,
            reason: None,
            details: None,
            redirect_browser_to: None,
            extra: None,
        }
    }

    /// 400 with a reason.
    pub fn bad_request(reason: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST).with_reason(reason)
    }

    /// 404 as Kratos answers unknown ids.
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND).with_message("Unable to locate the resource")
    }

    /// 500 whose cause is logged, never shown.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// Sets the reason.
    pub fn with_reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    /// Sets the message.
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = Some(message.into());
        self
    }

    /// Sets the id.
    pub fn with_id(mut self, id: &'static str) -> Self {
        self.id = Some(id);
        self
    }

    /// Sets the details.
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(Box::new(details));
        self
    }

    /// Sets the top-level `redirect_browser_to`.
    pub fn with_redirect(mut self, url: impl Into<String>) -> Self {
        self.redirect_browser_to = Some(url.into());
        self
    }

    /// Adds a top-level sibling of `error`.
    pub fn with_extra(mut self, key: &str, value: Value) -> Self {
        self.extra
            .get_or_insert_with(Default::default)
            .insert(key.to_owned(), value);
        self
    }

    /// The whole body: `{"error": {...}}` plus top-level siblings.
    pub fn body(&self) -> Value {
        let mut body = json!({ "error": self.error_object() });
        for (k, v) in self.extra.iter().flat_map(|m| m.iter()) {
            body[k.as_str()] = v.clone();
        }
        if let Some(r) = &self.redirect_browser_to {
            body["redirect_browser_to"] = json!(r);
        }
        body
    }

    /// The `error` object.
    pub fn error_object(&self) -> Value {
        let mut e = Map::new();
        if let Some(id) = self.id {
            e.insert("id".into(), json!(id));
        }
        e.insert("code".into(), json!(self.status.as_u16()));
        e.insert(
            "status".into(),
            json!(self.status.canonical_reason().unwrap_or("Error")),
        );
        if let Some(r) = &self.reason {
            e.insert("reason".into(), json!(r));
        }
        if let Some(d) = &self.details {
            e.insert("details".into(), (**d).clone());
        }
        e.insert(
            "message".into(),
            json!(self
                .message
                .clone()
                .unwrap_or_else(|| default_message(self.status).to_owned())),
        );
        Value::Object(e)
    }
}

/// herodot's default messages.
fn default_message(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "The request was malformed or contained invalid parameters",
        401 => "The request could not be authorized",
        403 => "The requested action was forbidden",
        404 => "The requested resource could not be found",
        409 => "The resource could not be created due to a conflict",
        410 => "The requested resource is no longer available because it has expired or is otherwise invalid.",
        413 => "The request body is too large",
        415 => "The request's content type is not supported",
        503 => "The service is not ready",
        _ => "An internal server error occurred, please contact the system administrator",
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = self.body();
        let mut res = (self.status, axum::Json(body)).into_response();
        res.headers_mut().insert(
            "ory-error-id",
            HeaderValue::from_static(self.id.unwrap_or("")),
        );
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        res
    }
}

impl From<identity::Error> for ApiError {
    fn from(e: identity::Error) -> Self {
        use identity::Error as E;
        match e {
            E::NotFound => ApiError::not_found(),
            E::NoCredential(reason) => ApiError::new(StatusCode::NOT_FOUND).with_reason(reason),
            E::Conflict => ApiError::new(StatusCode::CONFLICT)
                .with_message("Unable to insert or update resource because a resource with that value exists already")
                .with_reason("This identity conflicts with another identity that already exists."),
            E::BadRequest(reason) => ApiError::bad_request(reason),
            // Kratos sends only the reason (no `details`); it names every failing field and why.
            E::Validation(messages) => {
                let reason = messages
                    .iter()
                    .map(|m| {
                        if m.node.is_empty() {
                            m.message.text.clone()
                        } else {
                            format!("{}: {}", m.node, m.message.text)
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("; ");
                ApiError::bad_request(reason)
            }
            E::UnknownSchema(id) => {
                ApiError::bad_request(format!("Unable to find JSON Schema ID: {id}"))
            }
            E::Hash(h) => {
                use identity::hash::HashError as H;
                match h {
                    H::UnknownFormat | H::Malformed(_) => ApiError::bad_request(h.to_string()),
                    H::InvalidConfig(_) | H::Failed(_) => ApiError::internal(&h),
                }
            }
            E::Store(s) => store_error(s),
        }
    }
}

impl From<identity::StoreError> for ApiError {
    fn from(e: identity::StoreError) -> Self {
        identity::Error::from(e).into()
    }
}

fn store_error(e: identity::StoreError) -> ApiError {
    use identity::StoreError as S;
    match e {
        S::NotFound => ApiError::not_found(),
        S::Conflict(_) => identity::Error::Conflict.into(),
        S::Backend(_) | S::Migrate(_) | S::Dsn(_) => ApiError::internal(&e),
    }
}
