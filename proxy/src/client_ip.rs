//! The client address on the public, admin and api listeners: one definition, the edge's.
//!
//! - A request from our own edge carries the address the edge determined ([`headers::client_ip`]) in
//!   `X-Portcullis-Client-Ip`, with the edge's per-process [`EdgeSecret`] in `X-Portcullis-Edge`. The secret
//!   (compared in constant time) is what makes it the edge: any process on the host can connect from loopback.
//! - Otherwise the same rule the edge applies: the peer, or, when the peer is in the listener's
//!   `trusted_proxies`, the right-most `X-Forwarded-For` address that is not itself a trusted proxy.
//!   `True-Client-IP`, `X-Real-IP` and the left-most `X-Forwarded-For` entry are never believed.
//!
//! [`layer`] resolves the address once per request, stores it as a [`ClientIp`] extension for handlers
//! (session devices, the login throttle), and removes every `X-Portcullis-*` field so that no handler, hook or
//! log sees the secret.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use rand::RngCore as _;
use subtle::ConstantTimeEq as _;

use crate::gateway::headers::{self, PRIVATE_PREFIX, X_PORTCULLIS_CLIENT_IP, X_PORTCULLIS_EDGE};
use crate::gateway::Cidr;

/// A random secret made per process that the edge sends to the identity module with the client address.
#[derive(Clone)]
pub struct EdgeSecret(HeaderValue);

impl EdgeSecret {
    /// 32 random bytes from the operating system, hex-encoded.
    pub fn random() -> Self {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self::from_bytes(&bytes)
    }

    fn from_bytes(bytes: &[u8]) -> Self {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let hex: Vec<u8> = bytes
            .iter()
            .flat_map(|b| [HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]])
            .collect();
        let mut value = HeaderValue::from_maybe_shared(bytes::Bytes::from(hex))
            .unwrap_or_else(|_| HeaderValue::from_static("invalid"));
        value.set_sensitive(true);
        Self(value)
    }

    /// The value of `X-Portcullis-Edge` (marked sensitive).
    pub fn header_value(&self) -> HeaderValue {
        self.0.clone()
    }

    fn matches(&self, candidate: &HeaderValue) -> bool {
        self.0.as_bytes().ct_eq(candidate.as_bytes()).into()
    }
}

impl std::fmt::Debug for EdgeSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EdgeSecret(..)")
    }
}

/// Whom one listener believes about the client address.
#[derive(Debug, Clone, Default)]
pub struct ClientIpPolicy {
    /// The edge's secret, on the listener the edge forwards to.
    pub edge: Option<EdgeSecret>,
    /// `serve.<listener>.trusted_proxies`.
    pub trusted: Vec<Cidr>,
}

impl ClientIpPolicy {
    /// The policy of `serve.<listener>`: `trusted_proxies` parsed (errors name the key).
    pub fn new(
        listener: &str,
        trusted: &[String],
        edge: Option<EdgeSecret>,
    ) -> anyhow::Result<Self> {
        let trusted = crate::cidrs(&format!("serve.{listener}.trusted_proxies"), trusted)?;
        Ok(Self { edge, trusted })
    }

    /// The client address of a request from `peer`.
    pub fn resolve(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let from_edge = self.edge.as_ref().is_some_and(|secret| {
            headers
                .get(X_PORTCULLIS_EDGE)
                .is_some_and(|v| secret.matches(v))
        });
        if from_edge {
            let named = headers
                .get(X_PORTCULLIS_CLIENT_IP)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<IpAddr>().ok());
            if let Some(ip) = named {
                return ip.to_canonical();
            }
        }
        headers::client_ip(peer, headers, &self.trusted)
    }
}

/// The client address of a request, as [`layer`] resolved it (`None` only without a peer address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Infallible> {
        // Without the layer (a router used on its own) the peer is the only thing known for sure.
        Ok(parts
            .extensions
            .get::<ClientIp>()
            .copied()
            .unwrap_or_else(|| {
                ClientIp(
                    parts
                        .extensions
                        .get::<ConnectInfo<SocketAddr>>()
                        .map(|c| c.0.ip().to_canonical()),
                )
            }))
    }
}

/// The middleware, for `axum::middleware::from_fn_with_state(Arc<ClientIpPolicy>, layer)`.
pub async fn layer(
    State(policy): State<Arc<ClientIpPolicy>>,
    mut req: Request,
    next: Next,
) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let ip = peer.map(|p| policy.resolve(p, req.headers()));
    let private: Vec<_> = req
        .headers()
        .keys()
        .filter(|k| headers::starts_with_folded(k.as_str(), PRIVATE_PREFIX))
        .cloned()
        .collect();
    for name in private {
        req.headers_mut().remove(name);
    }
    req.extensions_mut().insert(ClientIp(ip));
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn only_the_edge_secret_makes_the_private_field_believed() {
        let secret = EdgeSecret::from_bytes(&[7; 32]);
        let good = secret.header_value();
        let policy = ClientIpPolicy {
            edge: Some(secret),
            trusted: Vec::new(),
        };
        let loopback = ip("127.0.0.1");
        let from_edge = headers(&[
            ("x-portcullis-client-ip", "203.0.113.7"),
            ("x-portcullis-edge", good.to_str().unwrap()),
            ("x-forwarded-for", "6.6.6.6, 127.0.0.1"),
        ]);
        assert_eq!(policy.resolve(loopback, &from_edge), ip("203.0.113.7"));
        let forged = headers(&[
            ("x-portcullis-client-ip", "203.0.113.7"),
            ("x-portcullis-edge", "0707070707"),
            ("true-client-ip", "6.6.6.6"),
            ("x-real-ip", "6.6.6.6"),
            ("x-forwarded-for", "6.6.6.6"),
        ]);
        assert_eq!(policy.resolve(loopback, &forged), loopback);
        let no_secret = headers(&[("x-portcullis-client-ip", "203.0.113.7")]);
        assert_eq!(policy.resolve(loopback, &no_secret), loopback);
        // Without an edge secret configured nothing is believed from the private field.
        let plain = ClientIpPolicy::default();
        assert_eq!(plain.resolve(loopback, &from_edge), loopback);
    }

    #[test]
    fn trusted_proxies_give_the_right_most_untrusted_hop() {
        let policy = ClientIpPolicy::new(
            "public",
            &["10.0.0.0/8".to_owned(), "127.0.0.1".to_owned()],
            None,
        )
        .unwrap();
        let h = headers(&[
            ("x-forwarded-for", "6.6.6.6, 198.51.100.7, 10.1.2.3"),
            ("true-client-ip", "6.6.6.6"),
            ("x-real-ip", "6.6.6.6"),
        ]);
        assert_eq!(policy.resolve(ip("127.0.0.1"), &h), ip("198.51.100.7"));
        assert_eq!(policy.resolve(ip("192.0.2.1"), &h), ip("192.0.2.1"));
        let err = ClientIpPolicy::new("admin", &["nonsense".to_owned()], None).unwrap_err();
        assert!(
            err.to_string().contains("serve.admin.trusted_proxies"),
            "{err}"
        );
    }

    #[test]
    fn the_secret_is_random_and_never_printed() {
        let (a, b) = (EdgeSecret::random(), EdgeSecret::random());
        assert_eq!(a.header_value().len(), 64);
        assert!(!a.matches(&b.header_value()));
        assert!(a.matches(&a.header_value()));
        assert_eq!(format!("{a:?}"), "EdgeSecret(..)");
        assert!(!format!("{:?}", a.header_value()).contains(a.header_value().to_str().unwrap()));
    }
}
