//! The Have I Been Pwned range API client behind `flows::password_policy::BreachRange`.

use async_trait::async_trait;
use flows::password_policy::{BreachError, BreachRange};
use std::time::Duration;

/// Asks `GET <base>/range/<prefix>` (k-anonymity: only 5 hex chars of the SHA-1 leave the machine).
#[derive(Debug, Clone)]
pub struct HibpClient {
    base: String,
    http: reqwest::Client,
}

impl HibpClient {
    /// `host` is Kratos' `haveibeenpwned_host` (`api.pwnedpasswords.com`, spoken to over HTTPS); a value with a
    /// scheme (`http://127.0.0.1:8080`) is used as given, which is how tests point it at a local range server.
    pub fn new(host: &str, timeout: Duration) -> Self {
        let base = if host.contains("://") {
            host.trim_end_matches('/').to_owned()
        } else {
            format!("https://{}", host.trim_end_matches('/'))
        };
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .unwrap_or_default();
        Self { base, http }
    }
}

#[async_trait]
impl BreachRange for HibpClient {
    async fn range(&self, prefix: &str) -> Result<String, BreachError> {
        let res = self
            .http
            .get(format!("{}/range/{prefix}", self.base))
            .header("add-padding", "true")
            .send()
            .await
            .map_err(|e| BreachError::Network(e.to_string()))?;
        if res.status() != reqwest::StatusCode::OK {
            return Err(BreachError::Status(res.status().as_u16()));
        }
        res.text()
            .await
            .map_err(|e| BreachError::Network(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::extract::Path;
    use axum::routing::get;
    use flows::password_policy::{check, sha1_prefix_suffix, PolicyConfig, Violation};

    #[tokio::test]
    async fn breached_passwords_are_found_through_a_range_server() {
        let (prefix, suffix) = sha1_prefix_suffix("password123");
        let body = format!("0000000000000000000000000000000000A:0\r\n{suffix}:42\r\n");
        let app = axum::Router::new().route(
            "/range/{prefix}",
            get(move |Path(p): Path<String>| {
                let body = body.clone();
                let wanted = prefix.clone();
                async move {
                    if p == wanted {
                        (axum::http::StatusCode::OK, body)
                    } else {
                        (axum::http::StatusCode::OK, String::new())
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let client = HibpClient::new(&format!("http://{addr}"), Duration::from_secs(5));
        let config = PolicyConfig::default();
        let res = check(&config, "someone@example.com", "password123", Some(&client)).await;
        assert!(
            matches!(res, Err(Violation::Breached { count: 42 })),
            "{res:?}"
        );
        check(
            &config,
            "someone@example.com",
            "a-long-unbreached-phrase",
            Some(&client),
        )
        .await
        .unwrap();

        // An unreachable service is ignored by default and refused when configured so.
        let dead = HibpClient::new("http://127.0.0.1:9", Duration::from_secs(2));
        check(
            &config,
            "someone@example.com",
            "a-long-unbreached-phrase",
            Some(&dead),
        )
        .await
        .unwrap();
        let strict = PolicyConfig {
            ignore_network_errors: false,
            ..PolicyConfig::default()
        };
        let res = check(
            &strict,
            "someone@example.com",
            "a-long-unbreached-phrase",
            Some(&dead),
        )
        .await;
        assert!(matches!(res, Err(Violation::Unchecked)), "{res:?}");
    }
}
