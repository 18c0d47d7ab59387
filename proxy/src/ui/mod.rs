//! The built-in pages under `/ui/`: login, registration, error, "signed in as" and logout confirmation. They read
//! flows in-process and render them generically from their UI nodes, so they need no JavaScript and no second
//! service.

pub mod render;

use crate::extract::{query_get, query_pairs};
use crate::selfservice::logout::logout_token;
use crate::selfservice::request::flow_matches_cookie;
use crate::selfservice::{see_other, with_query};
use crate::sessions::request_token;
use crate::AppState;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use flows::security::CsrfToken;
use flows::ui::CSRF_TOKEN;
use flows::{Flow, FlowKind, FlowType};
use render::{Branding, Link, Page};
use serde_json::{json, Value};

/// The `/ui/` routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/ui", get(index))
        .route("/ui/style.css", get(stylesheet))
        .route("/ui/login", get(login))
        .route("/ui/registration", get(registration))
        .route("/ui/settings", get(settings))
        .route("/ui/recovery", get(recovery))
        .route("/ui/verification", get(verification))
        .route("/ui/error", get(error))
        .route("/ui/welcome", get(welcome))
        .route("/ui/logout", get(logout))
}

fn branding(state: &AppState) -> Branding {
    let ui = &state.config.ui;
    Branding {
        product_name: ui.product_name.clone(),
        logo_url: ui.logo_url.clone(),
        stylesheet_url: ui
            .stylesheet_url
            .clone()
            .unwrap_or_else(|| format!("{}ui/style.css", state.public_base)),
    }
}

/// An HTML page with headers that keep it out of frames and caches and forbid scripts.
fn html(status: StatusCode, body: String) -> Response {
    let mut res = (status, body).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data: https:; style-src 'self' https:; script-src 'none'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    res
}

async fn index(State(state): State<AppState>) -> Response {
    see_other(&format!("{}ui/welcome", state.public_base), &[])
}

async fn stylesheet() -> Response {
    let mut res = render::STYLESHEET.into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    res
}

/// The init URL of a flow kind, keeping `return_to`.
fn init_url(state: &AppState, kind: FlowKind, return_to: Option<&str>) -> String {
    let url = format!(
        "{}self-service/{}/browser",
        state.public_base,
        kind.as_str()
    );
    match return_to {
        Some(r) => with_query(&url, "return_to", r),
        None => url,
    }
}

/// Starts a new flow of this kind: the page was asked for a flow it cannot show.
fn restart(state: &AppState, kind: FlowKind, return_to: Option<&str>) -> Response {
    see_other(&init_url(state, kind, return_to), &[])
}

async fn flow_page(
    state: AppState,
    headers: HeaderMap,
    raw: Option<String>,
    kind: FlowKind,
) -> Response {
    let pairs = query_pairs(raw.as_deref());
    let Some(id) = query_get(&pairs, "flow").and_then(|f| uuid::Uuid::parse_str(f).ok()) else {
        return restart(&state, kind, query_get(&pairs, "return_to"));
    };
    let Some(mut flow) = load_flow(&state, kind, id).await else {
        return restart(&state, kind, None);
    };
    let Some(csrf) = page_csrf(&state, &headers, kind, &flow) else {
        return cookies_needed(&state, kind, &flow);
    };
    // An expired flow, or one started in another browser, is replaced by a fresh one.
    if flow.is_expired(state.clock.now()) || !is_own(&state, &headers, kind, &flow) {
        return restart(&state, kind, flow.return_to.as_deref());
    }
    if kind == FlowKind::Settings && !is_signed_in_owner(&state, &headers, &flow).await {
        return restart(&state, kind, None);
    }
    if let Some(token) = &csrf.form_token {
        flow.ui.set_value(CSRF_TOKEN, Value::from(token.masked()));
    }
    let (title, links) = title_and_links(&state, kind, &flow);
    let page = Page::Flow {
        title,
        flow: &flow,
        links,
    };
    let res = html(StatusCode::OK, render::render(&page, &branding(&state)));
    crate::selfservice::with_cookies(res, &[csrf.set_cookie])
}

async fn load_flow(state: &AppState, kind: FlowKind, id: uuid::Uuid) -> Option<Flow> {
    match state.flow_repo.load(kind, id).await {
        Ok(f) => Some(f),
        Err(flows::FlowError::NotFound) => None,
        Err(e) => {
            tracing::warn!(error = %e, "cannot load a flow for the built-in UI");
            None
        }
    }
}

/// The CSRF token of a flow page.
struct PageCsrf {
    /// The browser's token, for the form to carry instead of the flow's own (`None`: the flow's own stays).
    form_token: Option<CsrfToken>,
    /// Stores a new token in a browser that had none.
    set_cookie: Option<HeaderValue>,
}

/// The CSRF token the page's form carries; `None` when the browser sends no CSRF cookie and cannot get one here.
fn page_csrf(
    state: &AppState,
    headers: &HeaderMap,
    kind: FlowKind,
    flow: &Flow,
) -> Option<PageCsrf> {
    // A flow that any browser may complete (an administrator's recovery link, a verification link opened on
    // another device) can reach a browser that has no CSRF cookie yet: give it one, and its token in the form.
    let unbound = matches!(kind, FlowKind::Recovery | FlowKind::Verification)
        && crate::selfservice::challenge::unbound(flow);
    let sent = crate::selfservice::csrf_of_request(state, headers);
    let cookie_sent = sent.is_some();
    let (token, set_cookie) = match sent {
        None if unbound => {
            let (token, cookie) = crate::selfservice::ensure_csrf(state, headers);
            (Some(token), cookie)
        }
        sent => (sent, None),
    };
    // Without the CSRF cookie the browser refuses cookies: restarting would loop, so say what is wrong.
    if set_cookie.is_none() && !cookie_sent {
        return None;
    }
    // A settings flow shown to its own session carries the token of this browser's current cookie: a refresh
    // sign-in in the middle of the flow rotates the cookie, and the flow must stay usable afterwards.
    let current = kind == FlowKind::Settings && flow.flow_type == FlowType::Browser;
    Some(PageCsrf {
        form_token: token.filter(|_| unbound || current),
        set_cookie,
    })
}

/// The error page for a browser that sends no cookies.
fn cookies_needed(state: &AppState, kind: FlowKind, flow: &Flow) -> Response {
    let error = json!({
        "code": 400,
        "status": "Bad Request",
        "message": "Your browser did not send the cookies this page needs.",
        "reason": "Signing in needs cookies. Allow cookies for this site and try again.",
    });
    let page = Page::Error {
        error: &error,
        links: vec![link(
            "Try again",
            init_url(state, kind, flow.return_to.as_deref()),
        )],
    };
    html(
        StatusCode::BAD_REQUEST,
        render::render(&page, &branding(state)),
    )
}

/// Whether this browser may see the flow.
fn is_own(state: &AppState, headers: &HeaderMap, kind: FlowKind, flow: &Flow) -> bool {
    match kind {
        // Settings are checked against the session instead (see `is_signed_in_owner`).
        FlowKind::Settings => true,
        FlowKind::Recovery | FlowKind::Verification => {
            crate::selfservice::challenge::flow_matches(state, headers, flow)
        }
        FlowKind::Login | FlowKind::Registration => flow_matches_cookie(state, headers, flow),
    }
}

/// Settings belong to the signed-in identity only, and that identity must still exist.
async fn is_signed_in_owner(state: &AppState, headers: &HeaderMap, flow: &Flow) -> bool {
    let signed_in = match request_token(state, headers) {
        Some(t) => state.sessions.authenticate(&t).await.ok().flatten(),
        None => None,
    };
    if signed_in.is_none_or(|s| Some(s.identity_id) != flow.identity_id) {
        return false;
    }
    state.settings_flows.identity_of(flow).await.is_ok()
}

fn link(text: &str, href: String) -> Link {
    Link {
        text: text.into(),
        href,
    }
}

/// The page title of a flow and the links under its form.
fn title_and_links(state: &AppState, kind: FlowKind, flow: &Flow) -> (&'static str, Vec<Link>) {
    let return_to = flow.return_to.as_deref();
    let sign_in = || {
        link(
            "Back to sign in",
            init_url(state, FlowKind::Login, return_to),
        )
    };
    match kind {
        FlowKind::Registration => (
            "Create an account",
            vec![link(
                "Already have an account? Sign in",
                init_url(state, FlowKind::Login, return_to),
            )],
        ),
        FlowKind::Settings => (
            "Account settings",
            vec![link("Back", format!("{}ui/welcome", state.public_base))],
        ),
        FlowKind::Recovery => ("Recover your account", vec![sign_in()]),
        FlowKind::Verification => ("Verify your email address", vec![sign_in()]),
        FlowKind::Login if flow.refresh => ("Confirm it's you", Vec::new()),
        FlowKind::Login => ("Sign in", login_links(state, return_to)),
    }
}

/// "Forgot your password?" and "Create one", when those flows are on.
fn login_links(state: &AppState, return_to: Option<&str>) -> Vec<Link> {
    let mut links = Vec::new();
    if state.challenges.enabled(FlowKind::Recovery) {
        links.push(link(
            "Forgot your password?",
            init_url(state, FlowKind::Recovery, return_to),
        ));
    }
    let registration_on = state
        .config
        .selfservice
        .flows
        .registration
        .enabled
        .unwrap_or(true);
    if registration_on {
        links.push(link(
            "Don't have an account? Create one",
            init_url(state, FlowKind::Registration, return_to),
        ));
    }
    links
}

async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    flow_page(state, headers, raw, FlowKind::Login).await
}

async fn registration(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    flow_page(state, headers, raw, FlowKind::Registration).await
}

async fn settings(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    flow_page(state, headers, raw, FlowKind::Settings).await
}

async fn recovery(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    flow_page(state, headers, raw, FlowKind::Recovery).await
}

async fn verification(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    flow_page(state, headers, raw, FlowKind::Verification).await
}

async fn error(State(state): State<AppState>, RawQuery(raw): RawQuery) -> Response {
    let pairs = query_pairs(raw.as_deref());
    let stored = match query_get(&pairs, "id").and_then(|i| uuid::Uuid::parse_str(i).ok()) {
        Some(id) => state.errors.read_error(id, state.clock.now()).await.ok(),
        None => None,
    };
    let error = stored.map(|e| e.error).unwrap_or_else(|| {
        json!({"code": 404, "status": "Not Found", "message": "This error is unknown or has been removed."})
    });
    let status = error
        .get("code")
        .and_then(Value::as_u64)
        .and_then(|c| u16::try_from(c).ok())
        .and_then(|c| StatusCode::from_u16(c).ok())
        .filter(|s| s.is_client_error() || s.is_server_error())
        .unwrap_or(StatusCode::BAD_REQUEST);
    let page = Page::Error {
        error: &error,
        links: vec![Link {
            text: "Back to sign in".into(),
            href: format!("{}self-service/login/browser", state.public_base),
        }],
    };
    html(status, render::render(&page, &branding(&state)))
}

/// The signed-in session as JSON, or a redirect to sign in and come back.
async fn session_or_login(
    state: &AppState,
    headers: &HeaderMap,
    back: &str,
) -> Result<(uuid::Uuid, Value), Response> {
    let login = || {
        see_other(
            &init_url(
                state,
                FlowKind::Login,
                Some(&format!("{}{back}", state.public_base)),
            ),
            &[],
        )
    };
    let Some(token) = request_token(state, headers) else {
        return Err(login());
    };
    let snapshot = match state.sessions.authenticate(&token).await {
        Ok(Some(s)) => s,
        Ok(None) => return Err(login()),
        Err(e) => {
            tracing::warn!(error = %e, "session lookup failed");
            return Err(login());
        }
    };
    match serde_json::from_str::<Value>(&snapshot.body) {
        Ok(v) => Ok((snapshot.session_id, v)),
        Err(_) => Err(login()),
    }
}

async fn welcome(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let (_, session) = match session_or_login(&state, &headers, "ui/welcome").await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let logout = format!("{}ui/logout", state.public_base);
    let page = Page::Welcome {
        session: &session,
        logout_url: &logout,
        links: vec![Link {
            text: "Account settings".into(),
            href: format!("{}self-service/settings/browser", state.public_base),
        }],
    };
    html(StatusCode::OK, render::render(&page, &branding(&state)))
}

async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let (session_id, _) = match session_or_login(&state, &headers, "ui/logout").await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let token = logout_token(&state, session_id);
    let action = format!("{}self-service/logout", state.public_base);
    let cancel = format!("{}ui/welcome", state.public_base);
    let page = Page::Logout {
        action: &action,
        token: &token,
        return_to: None,
        cancel_href: &cancel,
    };
    html(StatusCode::OK, render::render(&page, &branding(&state)))
}
