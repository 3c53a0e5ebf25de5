//! A raw sync socket for tests that speak the protocol by hand (crafted, malformed or
//! hostile messages), where [`crate::device::NativeDevice`] would be too well behaved.

use crate::server::TestServer;
use casebook_shared::ids::{DeviceId, DocumentId};
use casebook_shared::protocol::{ClientMessage, ServerMessage};
use futures_util::{SinkExt, StreamExt};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

/// A client WebSocket.
pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens the sync socket with a session cookie (panics if the server refuses).
pub async fn connect(server: &TestServer, cookie: &str) -> Socket {
    let mut request = server.ws_url().into_client_request().unwrap();
    request
        .headers_mut()
        .insert("cookie", cookie.parse().unwrap());
    tokio_tungstenite::connect_async(request)
        .await
        .expect("the sync socket opens")
        .0
}

/// Sends one protocol message.
pub async fn send(socket: &mut Socket, message: &ClientMessage) {
    socket
        .send(Message::Binary(message.encode().into()))
        .await
        .unwrap();
}

/// The next protocol message, or `None` once the server closed the connection.
pub async fn next(socket: &mut Socket) -> Option<ServerMessage> {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("the server answers")
        {
            Some(Ok(Message::Binary(b))) => return Some(ServerMessage::decode(&b).unwrap()),
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
            Some(Ok(_)) => continue,
        }
    }
}

/// Says hello as a new device with one fresh actor; returns the welcomed documents.
pub async fn hello(socket: &mut Socket) -> Vec<DocumentId> {
    let hello = ClientMessage::Hello {
        device: DeviceId(uuid::Uuid::new_v4()),
        actors: vec![uuid::Uuid::new_v4().as_bytes().to_vec()],
    };
    send(socket, &hello).await;
    match next(socket).await {
        Some(ServerMessage::Welcome { documents }) => documents,
        other => panic!("expected a welcome, got {other:?}"),
    }
}

/// An empty `automerge::sync` message (asks the server for its state of a document).
pub fn empty_sync_message() -> Vec<u8> {
    automerge::sync::Message {
        heads: vec![],
        need: vec![],
        have: vec![],
        changes: Vec::<Vec<u8>>::new().into(),
        flags: None,
        version: automerge::sync::MessageVersion::V1,
    }
    .encode()
}
