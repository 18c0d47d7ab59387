//! Upstream address resolution with a small TTL cache.
//!
//! `HttpPeer::new("name:port", ..)` resolves with blocking `ToSocketAddrs` and panics when the
//! name does not resolve (pingora issue #570), so peers are always built from a `SocketAddr`.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use url::{Host, Url};

/// How long a resolved name is reused.
const TTL: Duration = Duration::from_secs(30);
/// Entries kept at most; the cache is cleared when full (upstreams are few).
const CAPACITY: usize = 1024;

#[derive(Default)]
pub struct Resolver {
    cache: Mutex<HashMap<(String, u16), (SocketAddr, Instant)>>,
}

/// Why an upstream URL has no address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolveError {
    /// The URL has no host or no port for its scheme.
    BadUrl,
    /// The name did not resolve.
    NotFound,
}

impl Resolver {
    /// The socket address of `url`'s host and port (the scheme's default port when absent).
    pub async fn resolve(&self, url: &Url) -> Result<SocketAddr, ResolveError> {
        let port = url.port_or_known_default().ok_or(ResolveError::BadUrl)?;
        let name = match url.host() {
            Some(Host::Ipv4(ip)) => return Ok(SocketAddr::new(IpAddr::V4(ip), port)),
            Some(Host::Ipv6(ip)) => return Ok(SocketAddr::new(IpAddr::V6(ip), port)),
            Some(Host::Domain(name)) => name,
            None => return Err(ResolveError::BadUrl),
        };
        let key = (name.to_owned(), port);
        if let Some(addr) = self.cached(&key) {
            return Ok(addr);
        }
        let addr = tokio::net::lookup_host((name, port))
            .await
            .ok()
            .and_then(|mut addrs| addrs.next())
            .ok_or(ResolveError::NotFound)?;
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= CAPACITY {
                cache.clear();
            }
            cache.insert(key, (addr, Instant::now()));
        }
        Ok(addr)
    }

    fn cached(&self, key: &(String, u16)) -> Option<SocketAddr> {
        let cache = self.cache.lock().ok()?;
        let (addr, at) = cache.get(key)?;
        (at.elapsed() < TTL).then_some(*addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn literals_and_names() {
        let r = Resolver::default();
        let u = Url::parse("http://127.0.0.1:81/x").unwrap();
        assert_eq!(
            r.resolve(&u).await.unwrap(),
            "127.0.0.1:81".parse().unwrap()
        );
        let u = Url::parse("https://[::1]/").unwrap();
        assert_eq!(r.resolve(&u).await.unwrap(), "[::1]:443".parse().unwrap());
        let u = Url::parse("http://localhost:9").unwrap();
        assert_eq!(r.resolve(&u).await.unwrap().port(), 9);
        let u = Url::parse("http://does-not-exist.invalid:80").unwrap();
        assert_eq!(r.resolve(&u).await, Err(ResolveError::NotFound));
        let u = Url::parse("unix:/tmp/sock").unwrap();
        assert_eq!(r.resolve(&u).await, Err(ResolveError::BadUrl));
    }
}
