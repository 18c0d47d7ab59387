//! Kratos' two pagination styles and their `Link` headers.
//!
//! Keyset (`page_size`, `page_token`): `rel="first"` and, unless on the last page, `rel="next"`.
//! Migration style (`page`/`per_page` or `page_token`/`page_size` as numbers): `first`, `next`, `prev`, `last`
//! with both spellings on every link, plus `X-Total-Count`.

use crate::error::ApiError;
use crate::extract::{query_get, query_u32};
use axum::http::{header, HeaderMap, HeaderValue};

const PAGING_KEYS: [&str; 4] = ["page", "per_page", "page_size", "page_token"];

/// A page of the migration style.
#[derive(Debug, Clone, Copy)]
pub struct OffsetPage {
    /// 0-based page.
    pub page: u64,
    /// Items per page.
    pub per_page: u32,
}

impl OffsetPage {
    /// Reads `page`/`per_page` (or numeric `page_token`/`page_size`).
    pub fn from_query(
        pairs: &[(String, String)],
        default: u32,
        max: u32,
    ) -> Result<Self, ApiError> {
        let per_page = query_u32(pairs, "per_page")?
            .or(query_u32(pairs, "page_size")?)
            .unwrap_or(default)
            .clamp(1, max);
        let page = match query_u32(pairs, "page")? {
            Some(p) => u64::from(p),
            None => match query_get(pairs, "page_token").filter(|t| !t.is_empty()) {
                Some(t) => t
                    .parse()
                    .map_err(|_| ApiError::bad_request("the page_token is invalid"))?,
                None => 0,
            },
        };
        Ok(Self { page, per_page })
    }

    /// Rows to skip.
    pub fn offset(&self) -> u64 {
        self.page.saturating_mul(u64::from(self.per_page))
    }

    /// `Link` and `X-Total-Count` for this page of `total` items under `url` (absolute, without query), keeping
    /// the non-paging parameters of `pairs`.
    pub fn headers(&self, url: &str, pairs: &[(String, String)], total: u64) -> HeaderMap {
        let last = total.saturating_sub(1) / u64::from(self.per_page);
        let pp = self.per_page.to_string();
        let at = |n: u64| {
            let n = n.to_string();
            link(
                url,
                pairs,
                &[
                    ("page", &n),
                    ("per_page", &pp),
                    ("page_token", &n),
                    ("page_size", &pp),
                ],
            )
        };
        let mut links = vec![format!("{}; rel=\"first\"", at(0))];
        if self.page < last {
            links.push(format!("{}; rel=\"next\"", at(self.page + 1)));
        }
        if self.page > 0 {
            links.push(format!("{}; rel=\"prev\"", at(self.page - 1)));
        }
        links.push(format!("{}; rel=\"last\"", at(last)));
        let mut headers = link_header(&links);
        headers.insert("x-total-count", HeaderValue::from(total));
        headers
    }
}

/// `Link` for a keyset page: `first`, and `next` pointing after `next_token` when there is a next page.
pub fn keyset_headers(
    url: &str,
    pairs: &[(String, String)],
    size: u32,
    next_token: Option<String>,
) -> HeaderMap {
    let size = size.to_string();
    let mut links = vec![format!(
        "{}; rel=\"first\"",
        link(url, pairs, &[("page_size", &size)])
    )];
    if let Some(token) = next_token {
        links.push(format!(
            "{}; rel=\"next\"",
            link(url, pairs, &[("page_size", &size), ("page_token", &token)])
        ));
    }
    link_header(&links)
}

fn link(url: &str, pairs: &[(String, String)], paging: &[(&str, &str)]) -> String {
    let mut ser = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs
        .iter()
        .filter(|(k, _)| !PAGING_KEYS.contains(&k.as_str()))
    {
        ser.append_pair(k, v);
    }
    for (k, v) in paging {
        ser.append_pair(k, v);
    }
    format!("<{url}?{}>", ser.finish())
}

fn link_header(links: &[String]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&links.join(",")) {
        headers.insert(header::LINK, v);
    }
    headers
}
