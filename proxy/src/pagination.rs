//! Kratos' two pagination styles and their `Link` headers.
//!
//! Keyset (`page_size`, `page_token`): `rel="first"` and, unless on the last page, `rel="next"`.
//! Migration style (`page`/`per_page` or `page_token`/`page_size` as numbers): `first`, `next`, `prev`, `last`
//! with both spellings on every link, plus `X-Total-Count`.

use crate::error::ApiError;
use crate::extract::query_get;
use axum::http::{header, HeaderMap, HeaderValue};

const PAGING_KEYS: [&str; 4] = ["page", "per_page", "page_size", "page_token"];

/// The `page` of Kratos' page pagination (`pagepagination`): a negative or unparsable page is page 0.
pub fn legacy_page(pairs: &[(String, String)]) -> u64 {
    query_get(pairs, "page")
        .and_then(|v| v.trim().parse::<i64>().ok())
        .and_then(|p| u64::try_from(p).ok())
        .unwrap_or(0)
}

/// An items-per-page parameter of Kratos' page pagination (`per_page`, or `page_size` of its token pagination): an
/// unparsable value is `default`, anything else is clamped to `1..=max`.
pub fn legacy_per_page(pairs: &[(String, String)], key: &str, default: u32, max: u32) -> u32 {
    match query_get(pairs, key).map(|v| v.trim().parse::<i64>()) {
        None | Some(Err(_)) => default.min(max),
        Some(Ok(n)) => u32::try_from(n.clamp(1, i64::from(max))).unwrap_or(max),
    }
}

/// The `page_size` of Kratos' keyset pagination (the value of `key`): not a number is a 400, zero or negative is
/// `default`, more than `max` is `max`.
pub fn keyset_size(
    pairs: &[(String, String)],
    key: &str,
    default: u32,
    max: u32,
) -> Result<u32, ApiError> {
    let Some(raw) = query_get(pairs, key).filter(|v| !v.is_empty()) else {
        return Ok(default.min(max));
    };
    let n: i64 = raw
        .parse()
        .map_err(|_| ApiError::bad_request(format!("{key} must be an integer, got {raw:?}")))?;
    Ok(if n <= 0 {
        default.min(max)
    } else {
        u32::try_from(n.min(i64::from(max))).unwrap_or(max)
    })
}

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
        // As Kratos' page and token pagination: a negative page is page 0, per_page is clamped to 1..=max and an
        // unparsable number is its default.
        let per_page = if query_get(pairs, "per_page").is_some() {
            legacy_per_page(pairs, "per_page", default, max)
        } else {
            legacy_per_page(pairs, "page_size", default, max)
        };
        let page = match query_get(pairs, "page") {
            Some(_) => legacy_page(pairs),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Vec<(String, String)> {
        crate::extract::query_pairs(Some(s))
    }

    #[test]
    fn page_parameters_are_read_as_kratos_reads_them() {
        assert_eq!(legacy_page(&q("page=-3")), 0);
        assert_eq!(legacy_page(&q("page=abc")), 0);
        assert_eq!(legacy_page(&q("page=2")), 2);
        assert_eq!(legacy_page(&q("")), 0);
        assert_eq!(legacy_per_page(&q("per_page=-5"), "per_page", 250, 1000), 1);
        assert_eq!(legacy_per_page(&q("per_page=0"), "per_page", 250, 1000), 1);
        assert_eq!(
            legacy_per_page(&q("per_page=x"), "per_page", 250, 1000),
            250
        );
        assert_eq!(
            legacy_per_page(&q("per_page=5000"), "per_page", 250, 1000),
            1000
        );
        assert_eq!(
            legacy_per_page(&q("per_page=99999999999999999999"), "per_page", 250, 1000),
            250
        );
        assert_eq!(
            keyset_size(&q("page_size=-1"), "page_size", 250, 500).unwrap(),
            250
        );
        assert_eq!(
            keyset_size(&q("page_size=0"), "page_size", 250, 500).unwrap(),
            250
        );
        assert_eq!(
            keyset_size(&q("page_size=9000"), "page_size", 250, 500).unwrap(),
            500
        );
        assert_eq!(
            keyset_size(&q("page_size=7"), "page_size", 250, 500).unwrap(),
            7
        );
        assert_eq!(keyset_size(&q(""), "page_size", 250, 500).unwrap(), 250);
        assert_eq!(
            keyset_size(&q("page_size=ten"), "page_size", 250, 500)
                .unwrap_err()
                .status,
            400
        );
        let p = OffsetPage::from_query(&q("page=-1&per_page=-1"), 250, 1000).unwrap();
        assert_eq!((p.page, p.per_page), (0, 1));
    }
}
