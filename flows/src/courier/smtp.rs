//! Delivery over SMTP with `lettre`, configured like Kratos' `courier.smtp.*`.

use super::model::Message;
use async_trait::async_trait;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Identity, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use std::collections::BTreeMap;
use std::path::PathBuf;
use time::OffsetDateTime;

/// A delivery attempt failed; the text is for the dispatch record and the log (never contains the password).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SendError(pub String);

/// Something that delivers one message.
#[async_trait]
pub trait Sender: Send + Sync {
    /// Delivers `m`; `now` dates it.
    async fn send(&self, m: &Message, now: OffsetDateTime) -> Result<(), SendError>;
}

/// The settings the proxy maps `courier.smtp.*` into.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpSettings {
    /// `smtp://[user:pass@]host[:port]/[?disable_starttls=true][&skip_ssl_verify=true][&server_name=…]` (STARTTLS
    /// required unless disabled) or `smtps://…` (implicit TLS).
    pub connection_uri: String,
    /// Envelope and `From:` address.
    pub from_address: String,
    /// `From:` display name.
    pub from_name: Option<String>,
    /// Extra headers on every mail.
    pub headers: BTreeMap<String, String>,
    /// The EHLO name.
    pub local_name: String,
    /// A client certificate (PEM) for TLS.
    pub client_cert_path: Option<PathBuf>,
    /// Its key (PEM).
    pub client_key_path: Option<PathBuf>,
    /// Timeout of each SMTP command.
    pub timeout: std::time::Duration,
}

impl std::fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("connection_uri", &redact(&self.connection_uri))
            .field("from_address", &self.from_address)
            .field("from_name", &self.from_name)
            .field("headers", &self.headers)
            .field("local_name", &self.local_name)
            .field("client_cert_path", &self.client_cert_path)
            .field("client_key_path", &self.client_key_path)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Default for SmtpSettings {
    fn default() -> Self {
        Self {
            connection_uri: "smtp://localhost:25/".into(),
            from_address: "no-reply@ory.kratos.sh".into(),
            from_name: None,
            headers: BTreeMap::new(),
            local_name: "localhost".into(),
            client_cert_path: None,
            client_key_path: None,
            timeout: std::time::Duration::from_secs(30),
        }
    }
}

fn redact(uri: &str) -> String {
    match url::Url::parse(uri) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) => "<invalid uri>".into(),
    }
}

/// The SMTP settings are unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("courier.smtp: {0}")]
pub struct SmtpConfigError(pub String);

/// How the connection is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// Plain text (`smtp://…?disable_starttls=true`).
    None,
    /// STARTTLS, required (`smtp://…`).
    StartTls,
    /// TLS from the first byte (`smtps://…`).
    Implicit,
}

/// The parts of a connection URI.
#[derive(Clone, PartialEq, Eq)]
pub struct ConnectionUri {
    /// Host.
    pub host: String,
    /// Port (25 for `smtp`, 465 for `smtps` when absent).
    pub port: u16,
    /// TLS mode.
    pub security: Security,
    /// Accept any certificate (`skip_ssl_verify=true`).
    pub skip_ssl_verify: bool,
    /// The TLS server name (`server_name=`, default the host).
    pub server_name: String,
    /// Percent-decoded user and password.
    pub credentials: Option<(String, String)>,
}

impl std::fmt::Debug for ConnectionUri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionUri")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("skip_ssl_verify", &self.skip_ssl_verify)
            .field("server_name", &self.server_name)
            .field("user", &self.credentials.as_ref().map(|(u, _)| u))
            .finish()
    }
}

impl ConnectionUri {
    /// Parses a Kratos `courier.smtp.connection_uri`.
    pub fn parse(uri: &str) -> Result<Self, SmtpConfigError> {
        let u = url::Url::parse(uri)
            .map_err(|e| SmtpConfigError(format!("invalid connection_uri: {e}")))?;
        let flag = |name: &str| {
            u.query_pairs()
                .any(|(k, v)| k == name && v.eq_ignore_ascii_case("true"))
        };
        let security = match u.scheme() {
            "smtp" if flag("disable_starttls") => Security::None,
            "smtp" => Security::StartTls,
            "smtps" => Security::Implicit,
            other => {
                return Err(SmtpConfigError(format!(
                    "unsupported connection_uri scheme {other:?}: use smtp:// or smtps://"
                )))
            }
        };
        let host = u
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or_else(|| SmtpConfigError("connection_uri has no host".into()))?
            .trim_matches(['[', ']'])
            .to_owned();
        let port = u.port().unwrap_or(match security {
            Security::Implicit => 465,
            _ => 25,
        });
        let decode = |s: &str| {
            url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        let credentials = (!u.username().is_empty()).then(|| {
            (
                decode(u.username()),
                decode(u.password().unwrap_or_default()),
            )
        });
        let server_name = u
            .query_pairs()
            .find(|(k, _)| k == "server_name")
            .map(|(_, v)| v.into_owned())
            .unwrap_or_else(|| host.clone());
        Ok(Self {
            host,
            port,
            security,
            skip_ssl_verify: flag("skip_ssl_verify"),
            server_name,
            credentials,
        })
    }
}

/// Delivers messages over SMTP; one connection per message.
#[derive(Clone)]
pub struct SmtpSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    headers: Vec<(HeaderName, String)>,
}

impl std::fmt::Debug for SmtpSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSender")
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

impl SmtpSender {
    /// Builds a sender (no connection is made yet).
    pub fn new(s: &SmtpSettings) -> Result<Self, SmtpConfigError> {
        let uri = ConnectionUri::parse(&s.connection_uri)?;
        let tls = if uri.security == Security::None {
            Tls::None
        } else {
            let mut params = TlsParameters::builder(uri.server_name.clone())
                .dangerous_accept_invalid_certs(uri.skip_ssl_verify)
                .dangerous_accept_invalid_hostnames(uri.skip_ssl_verify);
            if let (Some(cert), Some(key)) = (&s.client_cert_path, &s.client_key_path) {
                let read = |p: &PathBuf| {
                    std::fs::read(p)
                        .map_err(|e| SmtpConfigError(format!("cannot read {}: {e}", p.display())))
                };
                let identity = Identity::from_pem(&read(cert)?, &read(key)?)
                    .map_err(|e| SmtpConfigError(format!("client certificate: {e}")))?;
                params = params.identify_with(identity);
            }
            let params = params
                .build_native()
                .map_err(|e| SmtpConfigError(format!("TLS: {e}")))?;
            match uri.security {
                Security::Implicit => Tls::Wrapper(params),
                _ => Tls::Required(params),
            }
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(uri.host)
            .port(uri.port)
            .tls(tls)
            .hello_name(ClientId::Domain(s.local_name.clone()))
            .timeout(Some(s.timeout));
        if let Some((user, pass)) = uri.credentials {
            builder = builder.credentials(Credentials::new(user, pass));
        }
        let address = s
            .from_address
            .parse()
            .map_err(|e| SmtpConfigError(format!("from_address: {e}")))?;
        let from = Mailbox::new(s.from_name.clone().filter(|n| !n.is_empty()), address);
        let headers = s
            .headers
            .iter()
            .map(|(k, v)| {
                HeaderName::new_from_ascii(k.clone())
                    .map(|n| (n, v.clone()))
                    .map_err(|_| SmtpConfigError(format!("invalid header name {k:?}")))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self {
            transport: builder.build(),
            from,
            headers,
        })
    }

    /// The MIME message for `m`: multipart/alternative with the plaintext and HTML bodies.
    pub fn build(&self, m: &Message, now: OffsetDateTime) -> Result<lettre::Message, SendError> {
        let to: Mailbox = m
            .recipient
            .parse()
            .map_err(|e| SendError(format!("invalid recipient address: {e}")))?;
        let mut b = lettre::Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(m.subject.clone())
            .date(std::time::SystemTime::from(now));
        for (name, value) in &self.headers {
            b = b.raw_header(HeaderValue::new(name.clone(), value.clone()));
        }
        let built = if m.body_plaintext.is_empty() {
            b.singlepart(SinglePart::html(m.body.clone()))
        } else if m.body.is_empty() {
            b.singlepart(SinglePart::plain(m.body_plaintext.clone()))
        } else {
            b.multipart(MultiPart::alternative_plain_html(
                m.body_plaintext.clone(),
                m.body.clone(),
            ))
        };
        built.map_err(|e| SendError(format!("cannot build the message: {e}")))
    }
}

#[async_trait]
impl Sender for SmtpSender {
    async fn send(&self, m: &Message, now: OffsetDateTime) -> Result<(), SendError> {
        let email = self.build(m, now)?;
        self.transport
            .send(email)
            .await
            .map(|_| ())
            .map_err(|e| SendError(format!("smtp: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_uris_follow_kratos() {
        let u = ConnectionUri::parse(
            "smtps://us%40er:p%2Fa%20ss@mail.example:2465/?skip_ssl_verify=true",
        )
        .unwrap();
        assert_eq!(u.security, Security::Implicit);
        assert_eq!((u.host.as_str(), u.port), ("mail.example", 2465));
        assert!(u.skip_ssl_verify);
        assert_eq!(
            u.credentials,
            Some(("us@er".to_owned(), "p/a ss".to_owned()))
        );
        assert!(!format!("{u:?}").contains("p/a"), "password not in Debug");

        let u = ConnectionUri::parse("smtp://mail.example/").unwrap();
        assert_eq!((u.security, u.port), (Security::StartTls, 25));
        assert!(!u.skip_ssl_verify);
        assert_eq!(u.credentials, None);
        let u = ConnectionUri::parse("smtp://h:1025/?disable_starttls=true&server_name=x.test")
            .unwrap();
        assert_eq!(u.security, Security::None);
        assert_eq!(u.server_name, "x.test");
        assert_eq!(ConnectionUri::parse("smtps://h").unwrap().port, 465);
        assert!(ConnectionUri::parse("http://h").is_err());
        assert!(ConnectionUri::parse("nonsense").is_err());

        let s = SmtpSettings {
            connection_uri: "smtp://u:secret@h/".into(),
            ..Default::default()
        };
        assert!(!format!("{s:?}").contains("secret"));
    }
}
