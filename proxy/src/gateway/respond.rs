//! Responses the gateway writes itself: `Decision::Respond` and error envelopes.

use bytes::Bytes;
use http::{HeaderName, HeaderValue, StatusCode};
use pingora::http::ResponseHeader;
use pingora::proxy::Session;
use pingora::{Error, ErrorSource, ErrorType};

const JSON: &str = "application/json; charset=utf-8";

/// The error envelope: `{"error":{"code","status","message","reason"}}`.
pub fn error_body(status: StatusCode, message: &str, reason: &str) -> Bytes {
    let body = serde_json::json!({
        "error": {
            "code": status.as_u16(),
            "status": status.canonical_reason().unwrap_or("Error"),
            "message": message,
            "reason": reason,
        }
    });
    Bytes::from(body.to_string())
}

/// Writes a complete response; the client connection stays reusable.
pub async fn write(
    session: &mut Session,
    status: StatusCode,
    headers: &[(HeaderName, HeaderValue)],
    body: Bytes,
    request_id: &str,
) -> pingora::Result<()> {
    let mut resp = ResponseHeader::build(status, Some(headers.len() + 2))?;
    for (name, value) in headers {
        // Framing is ours to decide.
        if name == http::header::CONTENT_LENGTH
            || super::headers::HOP_BY_HOP.contains(&name.as_str())
        {
            continue;
        }
        resp.append_header(name.clone(), value.clone())?;
    }
    resp.insert_header(super::headers::X_REQUEST_ID, request_id)?;
    let bodiless = status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    if !bodiless {
        resp.set_content_length(body.len())?;
    }
    let empty = bodiless || body.is_empty() || session.req_header().method == http::Method::HEAD;
    session.write_response_header(Box::new(resp), empty).await?;
    if !empty {
        session.write_response_body(Some(body), true).await?;
    }
    Ok(())
}

/// Writes an error envelope and closes the client connection afterwards.
pub async fn write_error(
    session: &mut Session,
    status: StatusCode,
    reason: &str,
    request_id: &str,
) -> pingora::Result<()> {
    let message = default_message(status);
    let body = error_body(status, message, reason);
    let mut resp = ResponseHeader::build(status, Some(3))?;
    resp.insert_header(http::header::CONTENT_TYPE, JSON)?;
    resp.insert_header(http::header::CACHE_CONTROL, "private, no-store")?;
    if !request_id.is_empty() {
        resp.insert_header(super::headers::X_REQUEST_ID, request_id)?;
    }
    resp.set_content_length(body.len())?;
    // Skips writing when a response has already started (failure mid-body).
    session
        .as_downstream_mut()
        .write_error_response(resp, body)
        .await
}

/// Status and client-facing reason for a proxying failure. `None`: the client is gone, write
/// nothing. The reason never includes addresses or internal error text.
pub fn classify(e: &Error) -> Option<(StatusCode, &'static str)> {
    use ErrorType as T;
    if let T::HTTPStatus(code) = e.etype() {
        let status = StatusCode::from_u16(*code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return Some((status, "The request was refused by the gateway."));
    }
    match e.esource() {
        ErrorSource::Upstream => Some(match e.etype() {
            T::ConnectTimedout | T::TLSHandshakeTimedout => (
                StatusCode::GATEWAY_TIMEOUT,
                "The upstream did not accept the connection in time.",
            ),
            T::ReadTimedout | T::WriteTimedout => (
                StatusCode::GATEWAY_TIMEOUT,
                "The upstream did not respond in time.",
            ),
            T::ConnectRefused => (
                StatusCode::BAD_GATEWAY,
                "The upstream refused the connection.",
            ),
            T::ConnectNoRoute => (StatusCode::BAD_GATEWAY, "The upstream is unreachable."),
            T::Custom(UPSTREAM_UNRESOLVED) => (
                StatusCode::BAD_GATEWAY,
                "The upstream host name could not be resolved.",
            ),
            T::Custom(UPSTREAM_BAD_URL) => {
                (StatusCode::BAD_GATEWAY, "The upstream URL cannot be used.")
            }
            T::Custom(UPSTREAM_TLS_UNSUPPORTED) => (
                StatusCode::BAD_GATEWAY,
                "This gateway was built without TLS for upstreams.",
            ),
            T::TLSWantX509Lookup | T::TLSHandshakeFailure | T::InvalidCert | T::HandshakeError => (
                StatusCode::BAD_GATEWAY,
                "The TLS handshake with the upstream failed.",
            ),
            T::ConnectionClosed | T::ReadError | T::WriteError => (
                StatusCode::BAD_GATEWAY,
                "The upstream closed the connection.",
            ),
            T::InvalidHTTPHeader | T::H1Error | T::H2Error | T::InvalidH2 | T::H2Downgrade => (
                StatusCode::BAD_GATEWAY,
                "The upstream sent an invalid response.",
            ),
            _ => (
                StatusCode::BAD_GATEWAY,
                "The upstream could not be reached.",
            ),
        }),
        ErrorSource::Downstream => match e.etype() {
            T::ReadError | T::WriteError | T::ConnectionClosed => None,
            T::ReadTimedout | T::WriteTimedout => Some((
                StatusCode::REQUEST_TIMEOUT,
                "The request was not received in time.",
            )),
            _ => Some((StatusCode::BAD_REQUEST, "The request is not valid HTTP.")),
        },
        ErrorSource::Internal | ErrorSource::Unset => Some((
            StatusCode::INTERNAL_SERVER_ERROR,
            "The gateway failed to handle the request.",
        )),
    }
}

/// `ErrorType::Custom` name for an upstream host that does not resolve.
pub const UPSTREAM_UNRESOLVED: &str = "UpstreamUnresolved";
/// `ErrorType::Custom` name for an upstream URL without host or with an unknown scheme.
pub const UPSTREAM_BAD_URL: &str = "UpstreamBadUrl";
/// `ErrorType::Custom` name for an `https` upstream on a build without TLS.
pub const UPSTREAM_TLS_UNSUPPORTED: &str = "UpstreamTlsUnsupported";

/// herodot's default messages, as the identity API uses them.
pub fn default_message(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "The request was malformed or contained invalid parameters",
        401 => "The request could not be authorized",
        403 => "The requested action was forbidden",
        404 => "The requested resource could not be found",
        408 => "The request timed out",
        502 => "The upstream service is unavailable",
        503 => "The service is not ready",
        504 => "The upstream service timed out",
        _ => "An internal server error occurred, please contact the system administrator",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_shape() {
        let b = error_body(StatusCode::BAD_GATEWAY, "m", "r \"quoted\"");
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["error"]["code"], 502);
        assert_eq!(v["error"]["status"], "Bad Gateway");
        assert_eq!(v["error"]["message"], "m");
        assert_eq!(v["error"]["reason"], "r \"quoted\"");
    }

    #[test]
    fn classification() {
        let e = Error::new_up(ErrorType::ConnectRefused);
        assert_eq!(classify(&e).unwrap().0, StatusCode::BAD_GATEWAY);
        let e = Error::new_up(ErrorType::ReadTimedout);
        assert_eq!(classify(&e).unwrap().0, StatusCode::GATEWAY_TIMEOUT);
        let e = Error::new_down(ErrorType::ConnectionClosed);
        assert!(classify(&e).is_none());
        let e = Error::new_down(ErrorType::InvalidHTTPHeader);
        assert_eq!(classify(&e).unwrap().0, StatusCode::BAD_REQUEST);
        let e = Error::new_in(ErrorType::InternalError);
        assert_eq!(classify(&e).unwrap().0, StatusCode::INTERNAL_SERVER_ERROR);
        let e = Error::new(ErrorType::HTTPStatus(429));
        assert_eq!(classify(&e).unwrap().0, StatusCode::TOO_MANY_REQUESTS);
    }
}
