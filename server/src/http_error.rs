//! The HTTP API's error type. A person sees a clear sentence; the log gets the detail;
//! neither ever gets case content.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use casebook_shared::api::ApiError;

/// Every way an API request can fail.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No valid session.
    #[error("sign in to continue")]
    Unauthorised,
    /// Signed in, but not allowed.
    #[error("you do not have access to this")]
    Forbidden,
    /// Username or password wrong (deliberately not saying which).
    #[error("the username or password is not right")]
    SignInFailed,
    /// The device was reported lost or revoked: it must wipe itself.
    #[error("this device has been reported lost or revoked")]
    DeviceRevoked,
    /// Too many failed sign-ins for this username: wait this many seconds.
    #[error("too many failed attempts; wait {0} seconds and try again")]
    TooManyAttempts(i64),
    /// The request's content is wrong; the message says how.
    #[error("{0}")]
    Invalid(String),
    /// Something failed inside the server.
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        Error::Internal(e.into())
    }
}

impl Error {
    /// The HTTP status for this error.
    pub fn status_code(&self) -> StatusCode {
        match self {
            Error::Unauthorised | Error::SignInFailed => StatusCode::UNAUTHORIZED,
            Error::Forbidden => StatusCode::FORBIDDEN,
            Error::DeviceRevoked => StatusCode::GONE,
            Error::TooManyAttempts(_) => StatusCode::TOO_MANY_REQUESTS,
            Error::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Error::Unauthorised => "unauthorised",
            Error::Forbidden => "forbidden",
            Error::SignInFailed => "sign_in_failed",
            Error::DeviceRevoked => "device_revoked",
            Error::TooManyAttempts(_) => "too_many_attempts",
            Error::Invalid(_) => "invalid",
            Error::Internal(_) => "internal",
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        if let Error::Internal(e) = &self {
            tracing::error!(error = format!("{e:#}"), "request failed");
        }
        let message = match &self {
            Error::Internal(_) => "Something went wrong on the server. Your work on this device is kept; try again shortly.".to_owned(),
            other => {
                let s = other.to_string();
                let mut c = s.chars();
                let sentence: String = c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default();
                if sentence.ends_with(['.', '?', '!']) { sentence } else { sentence + "." }
            }
        };
        (
            self.status_code(),
            Json(ApiError {
                code: self.code().to_owned(),
                message,
            }),
        )
            .into_response()
    }
}

/// Result of an API handler.
pub type Result<T, E = Error> = std::result::Result<T, E>;
