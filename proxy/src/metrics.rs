//! Prometheus text exposition at `/admin/metrics/prometheus`.

use crate::AppState;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use std::fmt::Write;

/// Renders every counter in the Prometheus text format.
pub fn render(state: &AppState) -> String {
    let mut out = String::new();
    for (name, value) in state.sessions.cache().metrics().snapshot() {
        let metric = format!("portcullis_session_cache_{name}_total");
        let _ = writeln!(out, "# TYPE {metric} counter");
        let _ = writeln!(out, "{metric} {value}");
    }
    out
}

/// `GET /admin/metrics/prometheus`.
pub async fn prometheus(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        render(&state),
    )
}
