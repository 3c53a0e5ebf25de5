//! The JSON API over `fetch`, with the session cookie sent automatically (same origin).

use serde::Serialize;
use serde::de::DeserializeOwned;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Request, RequestCredentials, RequestInit, Response};

/// Why an API call failed.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiFailure {
    /// No answer: offline or the server is down.
    Offline,
    /// The session is missing or ended (401).
    SignedOut,
    /// The device was reported lost or revoked (410): wipe it.
    Revoked,
    /// Any other refusal, with the server's message for the person.
    Refused(String),
}

async fn call(method: &str, path: &str, body: Option<String>) -> Result<Response, ApiFailure> {
    let init = RequestInit::new();
    init.set_method(method);
    init.set_credentials(RequestCredentials::SameOrigin);
    if let Some(body) = &body {
        init.set_body(&wasm_bindgen::JsValue::from_str(body));
    }
    let request = Request::new_with_str_and_init(path, &init).map_err(|_| ApiFailure::Offline)?;
    if body.is_some() {
        let _ = request.headers().set("content-type", "application/json");
    }
    let window = web_sys::window().ok_or(ApiFailure::Offline)?;
    let response: Response = JsFuture::from(window.fetch_with_request(&request))
        .await
        .map_err(|_| ApiFailure::Offline)?
        .dyn_into()
        .map_err(|_| ApiFailure::Offline)?;
    match response.status() {
        200..=299 => Ok(response),
        401 => Err(ApiFailure::SignedOut),
        410 => Err(ApiFailure::Revoked),
        _ => {
            let text = text_of(&response).await.unwrap_or_default();
            let message = serde_json::from_str::<casebook_shared::api::ApiError>(&text)
                .map(|e| e.message)
                .unwrap_or_else(|_| {
                    format!("The server refused the request ({}).", response.status())
                });
            Err(ApiFailure::Refused(message))
        }
    }
}

async fn text_of(response: &Response) -> Option<String> {
    JsFuture::from(response.text().ok()?)
        .await
        .ok()?
        .as_string()
}

async fn json_of<T: DeserializeOwned>(response: Response) -> Result<T, ApiFailure> {
    let text = text_of(&response).await.ok_or(ApiFailure::Offline)?;
    serde_json::from_str(&text).map_err(|_| {
        ApiFailure::Refused(
            "The server sent something this app does not understand; reload the page.".into(),
        )
    })
}

/// `GET` a JSON resource.
pub async fn get<T: DeserializeOwned>(path: &str) -> Result<T, ApiFailure> {
    json_of(call("GET", path, None).await?).await
}

/// `POST` JSON and read JSON back.
pub async fn post<B: Serialize, T: DeserializeOwned>(
    path: &str,
    body: &B,
) -> Result<T, ApiFailure> {
    let body = serde_json::to_string(body)
        .map_err(|_| ApiFailure::Refused("Could not prepare the request.".into()))?;
    json_of(call("POST", path, Some(body)).await?).await
}

/// `DELETE` a resource.
pub async fn delete(path: &str) -> Result<(), ApiFailure> {
    call("DELETE", path, None).await.map(|_| ())
}
