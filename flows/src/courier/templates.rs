//! E-mail templates: Kratos-like built-in defaults, overrides from `courier.template_override_path` and from
//! per-template URIs (`file://`, `base64://`), rendered with Go's template language as Kratos' are: fields
//! (`{{ .Identity.traits.email }}`), `if`/`range`/`with`, `define`/`template` for per-language variants, and the
//! common built-in and Sprig functions (see [`gotmpl::kratos`]). Values print as Go prints them (strings bare,
//! other JSON compactly; a missing key renders empty). The HTML body escapes every value.

use super::model::{TemplateType, Variant};
use base64::Engine;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// A template failed to load or parse.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// A URI that is not `file://` or `base64://`.
    #[error("unsupported template URI scheme in {0:?} (use file:// or base64://)")]
    UnsupportedUri(String),
    /// A file could not be read.
    #[error("cannot read template {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// `base64://` content that is not base64 or not UTF-8.
    #[error("template {0:?} is not valid base64 UTF-8")]
    Base64(String),
    /// A syntax error.
    #[error("template {name}: {message}")]
    Syntax {
        /// Which template.
        name: String,
        /// What is wrong.
        message: String,
    },
}

/// URIs of one e-mail template's parts (`courier.templates.<name>.<valid|invalid>.email.*`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EmailTemplateUris {
    /// `email.subject`.
    pub subject: Option<String>,
    /// `email.body.html`.
    pub body_html: Option<String>,
    /// `email.body.plaintext`.
    pub body_plaintext: Option<String>,
}

/// The template settings the proxy maps `courier.*` into.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TemplateSettings {
    /// `courier.template_override_path`: a directory with
    /// `<template>/<valid|invalid>/email.{subject,body,body.plaintext}.gotmpl`.
    pub override_path: Option<PathBuf>,
    /// `courier.templates`: by template name (`recovery_code`, `verification`, …) and variant.
    pub templates: BTreeMap<(String, VariantName), EmailTemplateUris>,
}

/// `valid` / `invalid` as a settings key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum VariantName {
    /// `valid`.
    Valid,
    /// `invalid`.
    Invalid,
}

impl From<Variant> for VariantName {
    fn from(v: Variant) -> Self {
        match v {
            Variant::Valid => Self::Valid,
            Variant::Invalid => Self::Invalid,
        }
    }
}

/// A rendered e-mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedEmail {
    /// Subject line (trimmed).
    pub subject: String,
    /// HTML body.
    pub body_html: String,
    /// Plaintext body.
    pub body_plaintext: String,
}

#[derive(Debug, Clone)]
struct EmailTemplate {
    subject: Template,
    html: Template,
    plaintext: Template,
}

/// Every template, parsed once.
#[derive(Debug, Clone)]
pub struct Templates {
    by_type: HashMap<TemplateType, EmailTemplate>,
}

impl Templates {
    /// The built-in templates only.
    pub fn builtin() -> Self {
        Self::load(&TemplateSettings::default()).unwrap_or_else(|_| Self {
            by_type: HashMap::new(),
        })
    }

    /// Loads the templates: a per-template URI wins over a file in the override directory, which wins over the
    /// built-in default. Each part (subject, HTML, plaintext) is resolved on its own.
    pub fn load(settings: &TemplateSettings) -> Result<Self, TemplateError> {
        let mut by_type = HashMap::new();
        for &tt in TemplateType::ALL {
            let (dir, variant) = tt.dir_and_variant();
            let (d_subject, d_html, d_plain) = builtin(tt);
            let uris = settings.templates.get(&(dir.to_owned(), variant.into()));
            let base = settings
                .override_path
                .as_ref()
                .map(|p| p.join(dir).join(variant.as_str()));
            let part = |uri: Option<&String>,
                        file: &str,
                        default: &str|
             -> Result<Template, TemplateError> {
                let name = format!("{dir}/{}/{file}", variant.as_str());
                let text = match uri {
                    Some(uri) => load_uri(uri)?,
                    None => match base.as_ref().map(|b| b.join(file)) {
                        Some(path) if path.is_file() => read(&path)?,
                        _ => default.to_owned(),
                    },
                };
                Template::parse(&name, &text)
            };
            by_type.insert(
                tt,
                EmailTemplate {
                    subject: part(
                        uris.and_then(|u| u.subject.as_ref()),
                        "email.subject.gotmpl",
                        d_subject,
                    )?,
                    html: part(
                        uris.and_then(|u| u.body_html.as_ref()),
                        "email.body.gotmpl",
                        d_html,
                    )?,
                    plaintext: part(
                        uris.and_then(|u| u.body_plaintext.as_ref()),
                        "email.body.plaintext.gotmpl",
                        d_plain,
                    )?,
                },
            );
        }
        Ok(Self { by_type })
    }

    /// Renders a template with its data (an object with `To`, `RecoveryCode`, `Identity`, …).
    pub fn render(&self, tt: TemplateType, data: &Value) -> RenderedEmail {
        match self.by_type.get(&tt) {
            Some(t) => RenderedEmail {
                subject: t.subject.render(data, false).trim().to_owned(),
                body_html: t.html.render(data, true),
                body_plaintext: t.plaintext.render(data, false),
            },
            None => RenderedEmail {
                subject: String::new(),
                body_html: String::new(),
                body_plaintext: String::new(),
            },
        }
    }
}

fn read(path: &Path) -> Result<String, TemplateError> {
    std::fs::read_to_string(path).map_err(|source| TemplateError::Read {
        path: path.display().to_string(),
        source,
    })
}

fn load_uri(uri: &str) -> Result<String, TemplateError> {
    if let Some(rest) = uri.strip_prefix("file://") {
        read(Path::new(rest))
    } else if let Some(rest) = uri.strip_prefix("base64://") {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(rest.trim())
            .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(rest.trim()))
            .map_err(|_| TemplateError::Base64(uri.chars().take(40).collect()))?;
        String::from_utf8(bytes).map_err(|_| TemplateError::Base64(uri.chars().take(40).collect()))
    } else {
        let scheme = uri.split("://").next().unwrap_or_default();
        Err(TemplateError::UnsupportedUri(format!("{scheme}://")))
    }
}

/// A parsed template in Go's template language (see [`gotmpl::kratos`] for what it supports).
#[derive(Debug, Clone, PartialEq)]
pub struct Template(gotmpl::kratos::Template);

impl Template {
    /// Parses `text`; `name` appears in errors.
    pub fn parse(name: &str, text: &str) -> Result<Self, TemplateError> {
        gotmpl::kratos::Template::parse(text)
            .map(Self)
            .map_err(|message| TemplateError::Syntax {
                name: name.to_owned(),
                message,
            })
    }

    /// Renders with `data`; `html` escapes every printed value.
    pub fn render(&self, data: &Value, html: bool) -> String {
        self.0.render(data, html)
    }
}

/// The built-in (subject, HTML body, plaintext body) of a template type, worded as Kratos' defaults.
fn builtin(tt: TemplateType) -> (&'static str, &'static str, &'static str) {
    match tt {
        TemplateType::RecoveryInvalid => (
            "Account access attempted",
            "Hi,\n\nyou (or someone else) entered this email address when trying to recover access to an account.\n\n\
However, this email address is not on our database of registered users and therefore the attempt has failed.\n\n\
If this was you, check if you signed up using a different address.\n\nIf this was not you, please ignore this email.\n",
            "Hi,\n\nyou (or someone else) entered this email address when trying to recover access to an account.\n\n\
However, this email address is not on our database of registered users and therefore the attempt has failed.\n\n\
If this was you, check if you signed up using a different address.\n\nIf this was not you, please ignore this email.\n",
        ),
        TemplateType::RecoveryValid => (
            "Recover access to your account",
            "Hi,\n\nplease recover access to your account by clicking the following link:\n\n\
<a href=\"{{ .RecoveryURL }}\">{{ .RecoveryURL }}</a>\n",
            "Hi,\n\nplease recover access to your account by clicking the following link:\n\n{{ .RecoveryURL }}\n",
        ),
        TemplateType::RecoveryCodeInvalid => (
            "Account access attempted",
            "Hi,\n\nyou (or someone else) entered this email address when trying to recover access to an account.\n\n\
However, this email address is not on our database of registered users and therefore the attempt has failed.\n\n\
If this was you, check if you signed up using a different address.\n\nIf this was not you, please ignore this email.\n",
            "Hi,\n\nyou (or someone else) entered this email address when trying to recover access to an account.\n\n\
However, this email address is not on our database of registered users and therefore the attempt has failed.\n\n\
If this was you, check if you signed up using a different address.\n\nIf this was not you, please ignore this email.\n",
        ),
        TemplateType::RecoveryCodeValid => (
            "Recover access to your account",
            "Hi,\n\nplease recover access to your account by entering the following code:\n\n{{ .RecoveryCode }}\n",
            "Hi,\n\nplease recover access to your account by entering the following code:\n\n{{ .RecoveryCode }}\n",
        ),
        TemplateType::VerificationInvalid | TemplateType::VerificationCodeInvalid => (
            "Someone tried to verify this email address",
            "Hi,\n\nsomeone asked to verify this email address, but we were unable to find an account for this address.\n\n\
If this was you, check if you signed up using a different address.\n\nIf this was not you, please ignore this email.\n",
            "Hi,\n\nsomeone asked to verify this email address, but we were unable to find an account for this address.\n\n\
If this was you, check if you signed up using a different address.\n\nIf this was not you, please ignore this email.\n",
        ),
        TemplateType::VerificationValid => (
            "Please verify your email address",
            "Hi, please verify your account by clicking the following link:\n\n\
<a href=\"{{ .VerificationURL }}\">{{ .VerificationURL }}</a>\n",
            "Hi, please verify your account by clicking the following link:\n\n{{ .VerificationURL }}\n",
        ),
        TemplateType::VerificationCodeValid => (
            "Please verify your email address",
            "Hi,\n\nplease verify your account by entering the following code:\n\n{{ .VerificationCode }}\n\n\
or clicking the following link:\n\n<a href=\"{{ .VerificationURL }}\">{{ .VerificationURL }}</a>\n",
            "Hi,\n\nplease verify your account by entering the following code:\n\n{{ .VerificationCode }}\n\n\
or clicking the following link:\n\n{{ .VerificationURL }}\n",
        ),
        TemplateType::LoginCodeValid => (
            "Login to your account",
            "Hi,\n\nplease login to your account by entering the following code:\n\n{{ .LoginCode }}\n",
            "Hi,\n\nplease login to your account by entering the following code:\n\n{{ .LoginCode }}\n",
        ),
        TemplateType::RegistrationCodeValid => (
            "Complete your account registration",
            "Hi,\n\nplease complete your account registration by entering the following code:\n\n{{ .RegistrationCode }}\n",
            "Hi,\n\nplease complete your account registration by entering the following code:\n\n{{ .RegistrationCode }}\n",
        ),
        TemplateType::Stub => ("{{ .Subject }}", "{{ .Body }}", "{{ .Body }}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_paths_trim_markers_and_comments() {
        let t = Template::parse(
            "t",
            "a {{- .X -}} b {{/* c */}}{{ .Identity.traits.email }}!",
        )
        .unwrap();
        let data = json!({"X": 1, "Identity": {"traits": {"email": "a@b.c"}}});
        assert_eq!(t.render(&data, false), "a1b a@b.c!");
        assert!(Template::parse("t", "{{ if .X }}").is_err());
        assert!(Template::parse("t", "{{ if .X }}y{{ end }}").is_ok());
        assert!(Template::parse("t", "{{ .X ").is_err());
        assert_eq!(
            Template::parse("t", "{{ .Missing }}|{{ .X.y }}")
                .unwrap()
                .render(&data, false),
            "|"
        );
    }

    #[test]
    fn html_escapes_values_but_not_the_template() {
        let t = Template::parse("t", "<b>{{ .X }}</b>").unwrap();
        assert_eq!(
            t.render(&json!({"X": "<i>&\"'"}), true),
            "<b>&lt;i&gt;&amp;&#34;&#39;</b>"
        );
    }

    #[test]
    fn every_builtin_parses_and_uses_its_data() {
        let t = Templates::builtin();
        let data = json!({
            "To": "a@b.c", "RecoveryCode": "123456", "RecoveryURL": "http://x/r?a=1&b=2",
            "VerificationCode": "654321", "VerificationURL": "http://x/v", "LoginCode": "111222",
            "RegistrationCode": "333444", "Subject": "S", "Body": "B",
        });
        for &tt in TemplateType::ALL {
            let r = t.render(tt, &data);
            assert!(!r.subject.is_empty(), "{tt}");
            assert!(!r.body_plaintext.is_empty(), "{tt}");
            assert!(!r.body_html.is_empty(), "{tt}");
        }
        let r = t.render(TemplateType::RecoveryValid, &data);
        assert!(
            r.body_html.contains("href=\"http://x/r?a=1&amp;b=2\""),
            "{}",
            r.body_html
        );
        assert!(r.body_plaintext.contains("http://x/r?a=1&b=2"));
        assert!(t
            .render(TemplateType::LoginCodeValid, &data)
            .body_plaintext
            .contains("111222"));
        assert_eq!(t.render(TemplateType::Stub, &data).subject, "S");
    }

    #[test]
    fn overrides_come_from_uris_then_the_override_dir_then_builtins() {
        let dir = tempfile::tempdir().unwrap();
        let valid = dir.path().join("recovery_code").join("valid");
        std::fs::create_dir_all(&valid).unwrap();
        std::fs::write(
            valid.join("email.subject.gotmpl"),
            "Your code {{ .RecoveryCode }}\n",
        )
        .unwrap();
        std::fs::write(
            valid.join("email.body.gotmpl"),
            "<p>Hello {{ .Identity.traits.name }}: {{ .RecoveryCode }}</p>",
        )
        .unwrap();
        let plain = dir.path().join("plain.gotmpl");
        std::fs::write(&plain, "code={{ .RecoveryCode }} to={{ .To }}").unwrap();
        let login_subject =
            base64::engine::general_purpose::STANDARD.encode("Login {{ .LoginCode }}");

        let mut settings = TemplateSettings {
            override_path: Some(dir.path().to_owned()),
            templates: BTreeMap::new(),
        };
        settings.templates.insert(
            ("recovery_code".into(), VariantName::Valid),
            EmailTemplateUris {
                body_plaintext: Some(format!("file://{}", plain.display())),
                ..Default::default()
            },
        );
        settings.templates.insert(
            ("login_code".into(), VariantName::Valid),
            EmailTemplateUris {
                subject: Some(format!("base64://{login_subject}")),
                ..Default::default()
            },
        );
        let t = Templates::load(&settings).unwrap();
        let data = json!({"To": "a@b.c", "RecoveryCode": "987654", "LoginCode": "123123",
            "Identity": {"traits": {"name": "<Ann>"}}});
        let r = t.render(TemplateType::RecoveryCodeValid, &data);
        assert_eq!(r.subject, "Your code 987654");
        assert_eq!(r.body_html, "<p>Hello &lt;Ann&gt;: 987654</p>");
        assert_eq!(r.body_plaintext, "code=987654 to=a@b.c");
        let l = t.render(TemplateType::LoginCodeValid, &data);
        assert_eq!(l.subject, "Login 123123");
        assert!(l.body_plaintext.contains("123123"), "built-in body kept");
        // The invalid variant of the overridden template keeps its defaults.
        assert_eq!(
            t.render(TemplateType::RecoveryCodeInvalid, &data).subject,
            "Account access attempted"
        );

        settings.templates.insert(
            ("verification".into(), VariantName::Valid),
            EmailTemplateUris {
                subject: Some("https://example.com/t".into()),
                ..Default::default()
            },
        );
        assert!(matches!(
            Templates::load(&settings),
            Err(TemplateError::UnsupportedUri(_))
        ));
    }
}
