//! A minimal browser for tests: keeps cookies (by name, honouring `Max-Age=0`), never follows redirects, and
//! says whether it wants HTML or JSON.

use reqwest::header::{HeaderMap, ACCEPT, COOKIE, LOCATION, SET_COOKIE};
use serde_json::Value;
use std::collections::BTreeMap;

/// What a browser got back.
#[derive(Debug)]
pub struct Page {
    /// HTTP status.
    pub status: u16,
    /// Response headers.
    pub headers: HeaderMap,
    /// Body text.
    pub text: String,
}

impl Page {
    /// The `Location` header.
    pub fn location(&self) -> &str {
        self.headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    /// The body as JSON (panics with the body when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.text))
    }

    /// The `Set-Cookie` headers.
    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }
}

/// A cookie-keeping client.
#[derive(Debug, Clone)]
pub struct Browser {
    http: reqwest::Client,
    /// Cookies by name.
    pub jar: BTreeMap<String, String>,
    /// `Accept: application/json` on every request (an SPA) instead of a browser's HTML preference.
    pub json: bool,
}

const HTML_ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

impl Browser {
    /// A browser that wants HTML.
    pub fn html() -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            jar: BTreeMap::new(),
            json: false,
        }
    }

    /// A single-page app: `Accept: application/json`.
    pub fn spa() -> Self {
        Self {
            json: true,
            ..Self::html()
        }
    }

    fn cookie_header(&self) -> Option<String> {
        (!self.jar.is_empty()).then(|| {
            self.jar
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ")
        })
    }

    /// The value of a cookie whose name starts with `prefix`.
    pub fn cookie(&self, prefix: &str) -> Option<String> {
        self.jar
            .iter()
            .find(|(k, _)| k.starts_with(prefix))
            .map(|(_, v)| v.clone())
    }

    fn absorb(&mut self, headers: &HeaderMap) {
        for v in headers.get_all(SET_COOKIE) {
            let v = v.to_str().unwrap();
            let (pair, attrs) = v.split_once(';').unwrap_or((v, ""));
            let (name, value) = pair.split_once('=').unwrap();
            let expired = attrs
                .split(';')
                .any(|a| a.trim().eq_ignore_ascii_case("max-age=0"));
            if expired || value.is_empty() {
                self.jar.remove(name.trim());
            } else {
                self.jar.insert(name.trim().to_owned(), value.to_owned());
            }
        }
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> Page {
        let mut req = req.header(
            ACCEPT,
            if self.json {
                "application/json"
            } else {
                HTML_ACCEPT
            },
        );
        if let Some(c) = self.cookie_header() {
            req = req.header(COOKIE, c);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        self.absorb(&headers);
        Page {
            status,
            headers,
            text: res.text().await.unwrap(),
        }
    }

    /// `GET url`.
    pub async fn get(&mut self, url: &str) -> Page {
        let req = self.http.get(url);
        self.send(req).await
    }

    /// `GET url` with extra headers.
    pub async fn get_with(&mut self, url: &str, headers: &[(&str, &str)]) -> Page {
        let mut req = self.http.get(url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        self.send(req).await
    }

    /// `POST url` with a form body.
    pub async fn post_form(&mut self, url: &str, form: &[(&str, &str)]) -> Page {
        let req = self.http.post(url).form(form);
        self.send(req).await
    }

    /// `POST url` with a JSON body.
    pub async fn post_json(&mut self, url: &str, body: &Value) -> Page {
        let req = self.http.post(url).json(body);
        self.send(req).await
    }

    /// `POST url` with a JSON body and extra headers.
    pub async fn post_json_with(
        &mut self,
        url: &str,
        body: &Value,
        headers: &[(&str, &str)],
    ) -> Page {
        let mut req = self.http.post(url).json(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        self.send(req).await
    }
}

/// The `csrf_token` node's value of a flow.
pub fn csrf_of(flow: &Value) -> String {
    flow["ui"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["attributes"]["name"] == "csrf_token")
        .map(|n| n["attributes"]["value"].as_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// Every message id of a flow (form and nodes).
pub fn message_ids(flow: &Value) -> Vec<u64> {
    let mut ids: Vec<u64> = flow["ui"]["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|m| m["id"].as_u64().unwrap())
        .collect();
    for n in flow["ui"]["nodes"].as_array().unwrap() {
        ids.extend(
            n["messages"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["id"].as_u64().unwrap()),
        );
    }
    ids
}
