//! Reading an identity schema from its configured URL.

use std::io::Read;
use std::path::PathBuf;

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use serde_json::Value;

/// Identity schemas larger than this are refused.
pub(crate) const MAX_SCHEMA_BYTES: u64 = 16 * 1024 * 1024;

const INDIFFERENT: GeneralPurposeConfig =
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
const STANDARD_ANY_PAD: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, INDIFFERENT);
const URL_SAFE_ANY_PAD: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, INDIFFERENT);

/// Decodes standard or URL-safe base64, padded or not.
pub(crate) fn decode_base64_any(text: &str) -> Option<Vec<u8>> {
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    STANDARD_ANY_PAD
        .decode(compact.as_bytes())
        .or_else(|_| URL_SAFE_ANY_PAD.decode(compact.as_bytes()))
        .ok()
}

/// A short, single-line rendering of a URL for error messages (inline
/// schemas can be long).
pub(crate) fn describe_url(url: &str) -> String {
    let one_line: String = url
        .trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if one_line.chars().count() > 80 {
        let head: String = one_line.chars().take(77).collect();
        format!("{head}...")
    } else {
        one_line
    }
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) {
        text.get(prefix.len()..)
    } else {
        None
    }
}

fn file_path(url: &str, rest: &str) -> PathBuf {
    if rest.starts_with('/') {
        // `file:///abs/path`: let `url` percent-decode it.
        if let Ok(parsed) = url::Url::parse(url) {
            if let Ok(path) = parsed.to_file_path() {
                return path;
            }
        }
    }
    // `file://relative/path`, relative to the working directory.
    PathBuf::from(rest)
}

fn read_file(path: &PathBuf) -> Result<Vec<u8>, String> {
    let file = std::fs::File::open(path)
        .map_err(|e| format!("cannot read file {}: {e}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(MAX_SCHEMA_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read file {}: {e}", path.display()))?;
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > MAX_SCHEMA_BYTES {
        return Err(format!(
            "file {} is larger than {MAX_SCHEMA_BYTES} bytes",
            path.display()
        ));
    }
    Ok(bytes)
}

/// Reads and parses the JSON a schema URL points to. Errors are reasons for
/// [`super::SchemaError::Load`].
pub(crate) fn load(url: &str) -> Result<Value, String> {
    let trimmed = url.trim();
    let bytes: Vec<u8> = if trimmed.starts_with('{') {
        trimmed.as_bytes().to_vec()
    } else if let Some(rest) = strip_prefix_ignore_case(trimmed, "base64://") {
        decode_base64_any(rest).ok_or_else(|| "the base64:// URL is not valid base64".to_owned())?
    } else if let Some(rest) = strip_prefix_ignore_case(trimmed, "file://") {
        if rest.is_empty() {
            return Err("the file:// URL has no path".to_owned());
        }
        read_file(&file_path(trimmed, rest))?
    } else if strip_prefix_ignore_case(trimmed, "http://").is_some()
        || strip_prefix_ignore_case(trimmed, "https://").is_some()
    {
        return Err(format!(
            "remote schema URL {} is not supported (no network access); use file://, base64:// or inline JSON",
            describe_url(url)
        ));
    } else {
        return Err(format!(
            "unsupported schema URL {}: expected file://, base64:// or inline JSON",
            describe_url(url)
        ));
    };
    serde_json::from_slice(&bytes).map_err(|e| format!("the schema is not valid JSON: {e}"))
}
