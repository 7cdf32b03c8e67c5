//! The dashboard at `/`: three files embedded in the binary (no CDN, nothing fetched from elsewhere),
//! served with a content security policy that lets the page load only its own script and style and
//! talk only to this ingress. The page holds no data: it asks the admin API, with the token the operator
//! enters once (kept in the browser), so the API's own checks apply to everything it shows and does.

use axum::{
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};

const INDEX: &str = include_str!("../dashboard/index.html");
const APP: &str = include_str!("../dashboard/app.js");
const STYLE: &str = include_str!("../dashboard/style.css");

const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                      img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

fn file(content_type: &'static str, body: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// `GET /`: the page.
pub async fn index() -> Response {
    file("text/html; charset=utf-8", INDEX)
}

/// `GET /dashboard/app.js`.
pub async fn app() -> Response {
    file("text/javascript; charset=utf-8", APP)
}

/// `GET /dashboard/style.css`.
pub async fn style() -> Response {
    file("text/css; charset=utf-8", STYLE)
}
