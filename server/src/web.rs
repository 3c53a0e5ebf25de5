//! Static files of the app, and the security headers every response carries.

use crate::{AppState, Settings};
use axum::Router;
use axum::http::{HeaderValue, header};
use tower_http::services::{ServeDir, ServeFile};
use tower_http::set_header::SetResponseHeaderLayer;

/// Content Security Policy: scripts only from this origin (the wasm loader is a file, not
/// inline), WebAssembly compilation allowed, no framing.
pub const CSP: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; \
img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// `Cache-Control: no-store` for every API response: nothing about a case may be kept in a
/// browser or proxy cache.
pub fn no_store() -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::overriding(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))
}

/// Adds the app's static files (when configured) and the security headers.
pub fn with_static_files(api: Router<AppState>, settings: &Settings) -> Router<AppState> {
    let router = match &settings.static_dir {
        Some(dir) => {
            // Unknown paths get index.html, so deep links open the app.
            let files = ServeDir::new(dir).fallback(ServeFile::new(dir.join("index.html")));
            api.fallback_service(files)
        }
        None => api,
    };
    router
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
}
