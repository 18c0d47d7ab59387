//! String formats as Kratos (ory/jsonschema v3) checks them.

/// `hostname` as ory/jsonschema's `isHostname` checks it (including its
/// quirk of testing only the first label for a leading hyphen).
pub(crate) fn is_hostname(value: &str) -> bool {
    let s = value.strip_suffix('.').unwrap_or(value);
    if s.len() > 253 {
        return false;
    }
    if s.starts_with('-') {
        return false;
    }
    s.split('.').all(|label| {
        (1..=63).contains(&label.len())
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-')
    })
}

/// `email` as ory/jsonschema's `isEmail` checks it: at most 254 bytes, a
/// local part of at most 64 bytes before the last `@`, a domain that is a
/// hostname, and an address Go's `net/mail.ParseAddress` accepts (a dot-atom
/// or quoted-string local part; comments are not supported here).
pub(crate) fn is_email(value: &str) -> bool {
    if value.len() > 254 {
        return false;
    }
    let Some(at) = value.rfind('@') else {
        return false;
    };
    let (local, domain) = (&value[..at], &value[at + 1..]);
    if local.len() > 64 || !is_hostname(domain) {
        return false;
    }
    // `net/mail` skips leading white space before the address.
    let local = local.trim_start_matches([' ', '\t']);
    // The domain is a dot-atom: a hostname without a trailing dot.
    if domain.ends_with('.') {
        return false;
    }
    if let Some(quoted) = local.strip_prefix('"') {
        is_quoted_local(quoted)
    } else {
        is_dot_atom(local)
    }
}

fn is_atext(c: char) -> bool {
    match c {
        '(' | ')' | '[' | ']' | ';' | '@' | '\\' | ',' | '<' | '>' | '"' | ':' | '.' => false,
        c if c.is_ascii() => c.is_ascii_graphic(),
        _ => true,
    }
}

fn is_dot_atom(local: &str) -> bool {
    !local.is_empty()
        && local
            .split('.')
            .all(|part| !part.is_empty() && part.chars().all(is_atext))
}

/// `quoted` is the local part after its opening quote.
fn is_quoted_local(quoted: &str) -> bool {
    let mut chars = quoted.chars();
    let mut content = 0usize;
    while let Some(c) = chars.next() {
        match c {
            '"' => return content > 0 && chars.next().is_none(),
            '\\' => match chars.next() {
                Some(escaped) if is_vchar(escaped) || escaped == ' ' || escaped == '\t' => {
                    content += 1;
                }
                _ => return false,
            },
            c if is_vchar(c) || c == ' ' || c == '\t' => content += 1,
            _ => return false,
        }
    }
    false
}

fn is_vchar(c: char) -> bool {
    if c.is_ascii() {
        c.is_ascii_graphic()
    } else {
        !c.is_control()
    }
}

/// Digits of a phone number in international form (`+<country code><number>`),
/// or `None`. An approximation of libphonenumber's `Parse(v, "")` +
/// `IsValidNumber`: a leading `+`, 7 to 15 digits not starting with 0, and only
/// spaces, dashes, dots and parentheses as separators.
fn phone_digits(value: &str) -> Option<String> {
    let rest = value.trim().strip_prefix('+')?;
    let mut digits = String::with_capacity(rest.len());
    for c in rest.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '-' | '.' | '(' | ')' | '\u{a0}' => {}
            _ => return None,
        }
    }
    if !(7..=15).contains(&digits.len()) || digits.starts_with('0') {
        return None;
    }
    Some(digits)
}

/// `tel`: see [`phone_digits`].
pub(crate) fn is_tel(value: &str) -> bool {
    phone_digits(value).is_some()
}

/// The E.164 form (`+4915112345678`) of a phone number, or an error text in
/// libphonenumber's words.
pub(crate) fn normalize_phone(value: &str) -> Result<String, &'static str> {
    if !value.trim().starts_with('+') {
        return Err("invalid country code");
    }
    phone_digits(value)
        .map(|digits| format!("+{digits}"))
        .ok_or("the provided number is not a valid phone number")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        for ok in [
            "foo@bar.com",
            "foo.bar+baz@example.co.uk",
            "FOO@EXAMPLE.COM",
            "a@b",
            "\"john doe\"@example.com",
            "jöhn@example.com",
            " foo@bar.com",
            "x@a-b.c",
        ] {
            assert!(is_email(ok), "{ok} should be valid");
        }
        for bad in [
            "",
            "foo",
            "foo@",
            "@bar.com",
            "foo@bar.com.",
            "foo@bar..com",
            "foo@-bar.com",
            "foo@bar-.com",
            "foo..bar@baz.com",
            ".foo@baz.com",
            "foo.@baz.com",
            "foo bar@baz.com",
            "foo@bar.com ",
            "foo@bär.com",
            "foo@[127.0.0.1]",
            "Foo <foo@bar.com>",
            "\"\"@bar.com",
            "a\"b@bar.com",
        ] {
            assert!(!is_email(bad), "{bad} should be invalid");
        }
        let long_local = format!("{}@example.com", "a".repeat(65));
        assert!(!is_email(&long_local));
        let long = format!("a@{}.com", "b".repeat(260));
        assert!(!is_email(&long));
    }

    #[test]
    fn phones() {
        assert!(is_tel("+4915112345678"));
        assert!(is_tel("+1 (555) 123-4567"));
        assert!(!is_tel("015112345678"));
        assert!(!is_tel("+0123456789"));
        assert!(!is_tel("+12"));
        assert!(!is_tel("+1234567890123456"));
        assert!(!is_tel("+49abc"));
        assert_eq!(
            normalize_phone(" +1 (555) 123-4567").as_deref(),
            Ok("+15551234567")
        );
        assert_eq!(normalize_phone("555"), Err("invalid country code"));
        assert_eq!(
            normalize_phone("+1"),
            Err("the provided number is not a valid phone number")
        );
    }
}
