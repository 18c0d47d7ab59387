//! The templates of Oathkeeper's handlers (`header`, `cookie`, `id_token`, `remote`, `remote_json`): the
//! strict mode of the shared [`gotmpl`] engine, which compiles them against the session
//! ([`TemplateContext`]), plus the check every rendered header or cookie value must pass.

pub use gotmpl::strict::{MatchContext, Template, TemplateContext, TemplateError};

/// Whether `s` may be sent as a header or cookie value: no CR, LF, NUL or other control character
/// except tab (the rule of `http::HeaderValue`). Templates escape nothing and traits and claims are
/// user-controlled, so check every rendered value built from user data.
pub fn is_safe_header_value(s: &str) -> bool {
    s.bytes().all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_not_safe() {
        assert!(!is_safe_header_value("v\r\nX-Evil: 1"));
        assert!(
            !is_safe_header_value("a\0b")
                && !is_safe_header_value("a\nb")
                && !is_safe_header_value("\x7f")
        );
        assert!(is_safe_header_value("Bearer abc\tdéf ~!"));
    }
}
