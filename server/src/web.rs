//! Static files of the app (sent as the brotli or gzip the release build wrote beside each,
//! when the browser accepts one), the security headers every response carries, and the
//! same-origin check on state-changing requests and the sync socket.

use crate::{AppState, Settings};
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower_http::services::{ServeDir, ServeFile};
use tower_http::set_header::SetResponseHeaderLayer;

/// Content Security Policy: scripts only from this origin (the wasm loader is a file, not
/// inline), WebAssembly compilation allowed, no framing.
pub const CSP: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; \
img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// Whether a request's `Origin` (if any) is the server's own or an allowed one. Browsers send
/// `Origin` on WebSocket upgrades and on every non-GET request, so a page on another site can
/// neither open the sync socket with the user's cookie (cross-site WebSocket hijacking) nor
/// change anything (CSRF). Requests without `Origin` come from non-browser clients, which
/// still need a session cookie.
pub fn origin_allowed(headers: &HeaderMap, allowed: &[String]) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) else {
        return true;
    };
    if allowed.iter().any(|a| a.trim_end_matches('/') == origin) {
        return true;
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let origin_host = origin.split_once("://").map(|(_, rest)| rest);
    matches!((origin_host, host), (Some(o), Some(h)) if o == h)
}

/// Refuses (403) state-changing API requests and sync-socket upgrades from another origin.
pub async fn same_origin(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let checked = request.method() != Method::GET
        || request.uri().path() == "/api/sync"
        || request.headers().contains_key(header::UPGRADE);
    if checked && !origin_allowed(request.headers(), &state.settings.allowed_origins) {
        tracing::warn!(
            path = request.uri().path(),
            "refused a request from another origin"
        );
        return crate::http_error::Error::Forbidden.into_response();
    }
    next.run(request).await
}

/// `Cache-Control: no-store` for every API response: nothing about a case may be kept in a
/// browser or proxy cache.
pub fn no_store() -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::overriding(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))
}

/// Adds the app's static files (when configured) and the security headers.
pub fn with_static_files(api: Router<AppState>, settings: &Settings) -> Router<AppState> {
    let router = match &settings.static_dir {
        Some(dir) => {
            // Unknown paths get index.html, so deep links open the app. The release build
            // writes a brotli and a gzip of each file beside it (xtask `compress`); a browser
            // gets the smallest it accepts, and the file itself when it accepts neither.
            let index = ServeFile::new(dir.join("index.html"))
                .precompressed_br()
                .precompressed_gzip();
            let files = ServeDir::new(dir)
                .precompressed_br()
                .precompressed_gzip()
                .fallback(index);
            api.fallback_service(files)
        }
        None => api,
    };
    // Served over TLS: tell browsers to use nothing else from now on.
    let router = if settings.secure_cookies {
        router.layer(SetResponseHeaderLayer::overriding(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        ))
    } else {
        router
    };
    router
        // The app's files: a browser's HTTP cache checks with the server before using one
        // again. The service worker keeps the app for offline use; a file the HTTP cache
        // held on to could mix an older build into a newer one. (API answers are `no-store`.)
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-cache"),
        ))
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
