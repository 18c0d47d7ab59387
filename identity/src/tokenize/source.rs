//! Loading of the JWKS and claims-mapper documents named by a template's URLs.

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;

/// Standard alphabet, padding optional.
const STANDARD_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// URL-safe alphabet, padding optional.
pub(crate) const URL_SAFE_LENIENT: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Reads the document behind `url`.
///
/// Supported forms:
/// * `file:///absolute/path.json` and `file://relative/path.json` (relative to the working
///   directory);
/// * `base64://<data>` with the data in standard or URL-safe base64, padded or not.
///
/// `http(s)://` is not supported: templates are loaded once at startup and must be local.
pub(crate) fn load(url: &str) -> Result<Vec<u8>, String> {
    let url = url.trim();
    if let Some(data) = url.strip_prefix("base64://") {
        let data: String = data.chars().filter(|c| !c.is_ascii_whitespace()).collect();
        return STANDARD_LENIENT
            .decode(&data)
            .or_else(|_| URL_SAFE_LENIENT.decode(&data))
            .map_err(|e| format!("the base64:// URL does not hold valid base64 data: {e}"));
    }
    if let Some(path) = url.strip_prefix("file://") {
        if path.is_empty() {
            return Err("the file:// URL names no file".to_owned());
        }
        return std::fs::read(path).map_err(|e| format!("unable to read {path:?}: {e}"));
    }
    if url.starts_with("http://") || url.starts_with("https://") {
        return Err(format!(
            "{url:?}: fetching over HTTP is not supported; use a file:// or base64:// URL"
        ));
    }
    if url.is_empty() {
        return Err("the URL is empty".to_owned());
    }
    Err(format!(
        "{url:?} is not a supported URL; use file:///absolute/path, file://relative/path or base64://..."
    ))
}
