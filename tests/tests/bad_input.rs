//! Bad input on the sync socket: each case gets a clear answer on its own connection, nothing
//! of it is stored, and the server keeps serving everyone else.

use casebook_shared::ids::DocumentId;
use casebook_shared::protocol::{
    ClientMessage, DenyReason, ErrorCode, MAX_FRAME_BYTES, ServerMessage,
};
use casebook_tests::device::{NativeDevice, draft};
use casebook_tests::http::Session;
use casebook_tests::server::TestServer;
use futures_util::{SinkExt, StreamExt};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use casebook_tests::raw::{self, Socket};

/// The close code the server ends the connection with.
async fn close_code(socket: &mut Socket) -> Option<CloseCode> {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("the server closes")
        {
            Some(Ok(Message::Close(frame))) => return frame.map(|f| f.code),
            None | Some(Err(_)) => return None,
            Some(Ok(_)) => continue,
        }
    }
}

/// Proves the server still serves: another device writes and reads back an entry.
async fn still_serving(server: &TestServer, session: &Session) {
    let doc = session.cases().await.unwrap()[0].chronology;
    let mut device = NativeDevice::new(session.me.clone());
    device
        .connect(&server.ws_url(), &session.cookie)
        .await
        .unwrap();
    device.sync().await.unwrap();
    let id = device
        .add_entry(doc, &draft("still serving"))
        .await
        .unwrap();
    device.sync().await.unwrap();
    assert!(device.acknowledged_entries(doc).unwrap().contains(&id));
}

async fn total_changes(server: &TestServer) -> i64 {
    let (n,): (i64,) = casebook_server::on_pool!(&server.db, pool =>
        sqlx::query_as("select count(*) from change_ledger").fetch_one(pool).await)
    .unwrap();
    n
}

#[tokio::test]
async fn an_unauthenticated_upgrade_is_refused() {
    let server = TestServer::start().await.unwrap();
    let request = server.ws_url().into_client_request().unwrap();
    let err = tokio_tungstenite::connect_async(request).await.unwrap_err();
    match err {
        tokio_tungstenite::tungstenite::Error::Http(response) => assert_eq!(response.status(), 401),
        other => panic!("expected HTTP 401, got {other}"),
    }
    let mut forged = server.ws_url().into_client_request().unwrap();
    forged
        .headers_mut()
        .insert("cookie", "casebook_session=00ff".parse().unwrap());
    assert!(
        tokio_tungstenite::connect_async(forged).await.is_err(),
        "a made-up session is refused"
    );
}

#[tokio::test]
async fn a_malformed_frame_gets_an_error_and_a_close() {
    let server = TestServer::start().await.unwrap();
    let jo = server.sign_in("worker.north1").await;
    let before = total_changes(&server).await;
    let mut socket = raw::connect(&server, &jo.cookie).await;
    raw::hello(&mut socket).await;
    socket
        .send(Message::Binary(vec![1, 1, 0xff, 0xff, 0xff].into()))
        .await
        .unwrap();
    assert!(matches!(
        raw::next(&mut socket).await,
        Some(ServerMessage::Error {
            code: ErrorCode::Malformed,
            ..
        })
    ));
    assert_eq!(close_code(&mut socket).await, Some(CloseCode::Policy));
    assert_eq!(total_changes(&server).await, before);
    still_serving(&server, &jo).await;
}

#[tokio::test]
async fn an_unknown_message_type_or_version_is_named() {
    let server = TestServer::start().await.unwrap();
    let jo = server.sign_in("worker.north1").await;
    for (frame, expected) in [
        (
            Message::Binary(vec![1, 42].into()),
            ErrorCode::UnknownMessage,
        ),
        (
            Message::Binary(vec![7, 0].into()),
            ErrorCode::UnsupportedVersion,
        ),
        // Version 2 is deflated: bytes that do not inflate are malformed.
        (
            Message::Binary(vec![2, 0xff, 0x13, 0x07].into()),
            ErrorCode::Malformed,
        ),
        (Message::Text("hello".into()), ErrorCode::Malformed),
    ] {
        let mut socket = raw::connect(&server, &jo.cookie).await;
        socket.send(frame).await.unwrap();
        let answer = raw::next(&mut socket).await;
        assert!(
            matches!(answer, Some(ServerMessage::Error { code, .. }) if code == expected),
            "expected {expected:?}, got {answer:?}"
        );
    }
    still_serving(&server, &jo).await;
}

#[tokio::test]
async fn sync_before_hello_is_out_of_order() {
    let server = TestServer::start().await.unwrap();
    let jo = server.sign_in("worker.north1").await;
    let doc = jo.cases().await.unwrap()[0].chronology;
    let mut socket = raw::connect(&server, &jo.cookie).await;
    let sync = ClientMessage::Sync {
        doc,
        session: 1,
        data: vec![],
    };
    socket
        .send(Message::Binary(sync.encode().into()))
        .await
        .unwrap();
    assert!(matches!(
        raw::next(&mut socket).await,
        Some(ServerMessage::Error {
            code: ErrorCode::OutOfOrder,
            ..
        })
    ));
}

#[tokio::test]
async fn an_oversized_frame_closes_only_that_connection() {
    let server = TestServer::start().await.unwrap();
    let jo = server.sign_in("worker.north1").await;
    let before = total_changes(&server).await;
    let mut socket = raw::connect(&server, &jo.cookie).await;
    raw::hello(&mut socket).await;
    let huge = vec![1u8; MAX_FRAME_BYTES + 1024];
    let _ = socket.send(Message::Binary(huge.into())).await;
    assert_eq!(close_code(&mut socket).await, Some(CloseCode::Size));
    assert_eq!(total_changes(&server).await, before);
    still_serving(&server, &jo).await;
}

#[tokio::test]
async fn a_document_outside_the_users_cases_is_denied_and_nothing_is_stored() {
    let server = TestServer::start().await.unwrap();
    let jo = server.sign_in("worker.north1").await;
    let other = server.sign_in("worker.south1").await;
    let theirs = other.cases().await.unwrap()[0].chronology;
    assert!(
        jo.cases()
            .await
            .unwrap()
            .iter()
            .all(|c| c.chronology != theirs)
    );
    let before = server.stored_changes(theirs).await.unwrap();

    // A real change, sent for a document Jo has no case for. (Jo's app would never send
    // it: a device drops documents the welcome does not list. This is a crafted client.)
    let mut am = automerge::AutoCommit::new();
    let recorder = casebook_shared::chronology::Recorder {
        staff: jo.me.id,
        name: jo.me.name.clone(),
        now_ms: 1,
    };
    casebook_shared::chronology::add_entry(
        &mut am,
        "intruder",
        &draft("should never be stored"),
        &recorder,
    )
    .unwrap();
    let mut state = automerge::sync::State::new();
    let data = automerge::sync::SyncDoc::generate_sync_message(&am.sync(), &mut state)
        .unwrap()
        .encode();
    let mut socket = raw::connect(&server, &jo.cookie).await;
    raw::hello(&mut socket).await;
    socket
        .send(Message::Binary(
            ClientMessage::Sync {
                doc: theirs,
                session: 1,
                data,
            }
            .encode()
            .into(),
        ))
        .await
        .unwrap();
    assert_eq!(
        raw::next(&mut socket).await,
        Some(ServerMessage::Denied {
            doc: theirs,
            reason: DenyReason::NoAccess
        })
    );
    assert_eq!(server.stored_changes(theirs).await.unwrap(), before);

    // A made-up document id is denied the same way.
    let mut socket = raw::connect(&server, &jo.cookie).await;
    raw::hello(&mut socket).await;
    let made_up = DocumentId(uuid::Uuid::new_v4());
    let sync = ClientMessage::Sync {
        doc: made_up,
        session: 1,
        data: vec![0x42, 0, 0, 0],
    };
    socket
        .send(Message::Binary(sync.encode().into()))
        .await
        .unwrap();
    assert_eq!(
        raw::next(&mut socket).await,
        Some(ServerMessage::Denied {
            doc: made_up,
            reason: DenyReason::NoAccess
        })
    );
    still_serving(&server, &jo).await;
}

#[tokio::test]
async fn a_sync_message_that_is_not_automerge_is_rejected_and_the_connection_goes_on() {
    let server = TestServer::start().await.unwrap();
    let jo = server.sign_in("worker.north1").await;
    let doc = jo.cases().await.unwrap()[0].chronology;
    let before = total_changes(&server).await;
    let mut socket = raw::connect(&server, &jo.cookie).await;
    raw::hello(&mut socket).await;
    let sync = ClientMessage::Sync {
        doc,
        session: 1,
        data: vec![0x42, 0xde, 0xad, 0xbe, 0xef],
    };
    socket
        .send(Message::Binary(sync.encode().into()))
        .await
        .unwrap();
    assert_eq!(
        raw::next(&mut socket).await,
        Some(ServerMessage::Denied {
            doc,
            reason: DenyReason::Rejected
        })
    );
    // The same connection still works.
    let ping = ClientMessage::Sync {
        doc,
        session: 2,
        data: raw::empty_sync_message(),
    };
    socket
        .send(Message::Binary(ping.encode().into()))
        .await
        .unwrap();
    let mut answered = false;
    while let Some(m) = raw::next(&mut socket).await {
        if matches!(m, ServerMessage::Persisted { .. }) {
            answered = true;
            break;
        }
    }
    assert!(
        answered,
        "the connection keeps working after a refused message"
    );
    assert_eq!(total_changes(&server).await, before);
}

#[tokio::test]
async fn a_sync_socket_from_another_site_is_refused() {
    let server = TestServer::start().await.unwrap();
    let jo = server.sign_in("worker.north1").await;
    let mut request = server.ws_url().into_client_request().unwrap();
    request
        .headers_mut()
        .insert("cookie", jo.cookie.parse().unwrap());
    request
        .headers_mut()
        .insert("origin", "https://evil.example".parse().unwrap());
    match tokio_tungstenite::connect_async(request).await.unwrap_err() {
        tokio_tungstenite::tungstenite::Error::Http(response) => assert_eq!(response.status(), 403),
        other => panic!("expected HTTP 403, got {other}"),
    }
    // The server's own origin is fine.
    let mut request = server.ws_url().into_client_request().unwrap();
    request
        .headers_mut()
        .insert("cookie", jo.cookie.parse().unwrap());
    request
        .headers_mut()
        .insert("origin", server.base.parse().unwrap());
    assert!(tokio_tungstenite::connect_async(request).await.is_ok());
}

#[tokio::test]
async fn a_state_changing_request_from_another_site_is_refused() {
    let server = TestServer::start().await.unwrap();
    let jo = server.sign_in("worker.north1").await;
    let client = reqwest::Client::new();
    let forged = client
        .delete(format!("{}/api/session", server.base))
        .header("cookie", &jo.cookie)
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    assert!(
        jo.cases().await.is_ok(),
        "the session survived the forged sign-out"
    );
}

#[tokio::test]
async fn a_flood_of_messages_closes_that_connection_only() {
    let server = TestServer::start().await.unwrap();
    let jo = server.sign_in("worker.north1").await;
    let mut socket = raw::connect(&server, &jo.cookie).await;
    raw::hello(&mut socket).await;
    let junk = ClientMessage::Sync {
        doc: DocumentId(uuid::Uuid::new_v4()),
        session: 1,
        data: vec![],
    }
    .encode();
    // Read while flooding, as a real client would, so only the rate cap can stop it.
    let (mut sink, mut stream) = socket.split();
    let reader = tokio::spawn(async move {
        while let Some(Ok(frame)) = stream.next().await {
            if let Message::Binary(b) = frame
                && let Ok(ServerMessage::Error {
                    code: ErrorCode::RateLimited,
                    ..
                }) = ServerMessage::decode(&b)
            {
                return true;
            }
        }
        false
    });
    for _ in 0..50_000 {
        if sink
            .send(Message::Binary(junk.clone().into()))
            .await
            .is_err()
        {
            break;
        }
    }
    let limited = tokio::time::timeout(Duration::from_secs(20), reader)
        .await
        .unwrap()
        .unwrap();
    assert!(limited, "the flood was cut off");
    still_serving(&server, &jo).await;
}

#[tokio::test]
async fn changes_that_break_the_chronology_schema_are_refused_and_nothing_is_stored() {
    let server = TestServer::start().await.unwrap();
    let jo = server.sign_in("worker.north1").await;
    let doc = jo.cases().await.unwrap()[0].chronology;
    let before = server.stored_changes(doc).await.unwrap();
    let mut device = NativeDevice::new(jo.me.clone());
    device.connect(&server.ws_url(), &jo.cookie).await.unwrap();
    device.sync().await.unwrap();
    device
        .edit_raw(doc, |am| {
            use automerge::transaction::Transactable;
            am.put(
                automerge::ROOT,
                "not-an-entry",
                "a bare string where an entry belongs",
            )
            .unwrap();
        })
        .await
        .unwrap();
    let _ = device
        .pump_until(Duration::from_secs(3), |d| !d.denied.is_empty())
        .await;
    assert_eq!(device.denied, vec![(doc, DenyReason::Rejected)]);
    assert_eq!(
        server.stored_changes(doc).await.unwrap(),
        before,
        "nothing of it was stored"
    );
    still_serving(&server, &jo).await;
}

#[tokio::test]
async fn presence_on_a_record_outside_the_users_cases_is_denied_and_an_oversized_one_closes_the_connection()
 {
    let server = TestServer::start().await.unwrap();
    let jo = server.sign_in("worker.north1").await;
    let other = server.sign_in("worker.south1").await;
    let theirs = other.cases().await.unwrap()[0].chronology;
    let mine = jo.cases().await.unwrap()[0].chronology;
    let mut socket = raw::connect(&server, &jo.cookie).await;
    raw::hello(&mut socket).await;
    raw::send(
        &mut socket,
        &ClientMessage::Presence {
            doc: theirs,
            section: "Outcome".into(),
        },
    )
    .await;
    assert_eq!(
        raw::next(&mut socket).await,
        Some(ServerMessage::Denied {
            doc: theirs,
            reason: casebook_shared::protocol::DenyReason::NoAccess
        })
    );
    raw::send(
        &mut socket,
        &ClientMessage::Presence {
            doc: mine,
            section: "x".repeat(casebook_shared::protocol::MAX_SECTION_BYTES + 1),
        },
    )
    .await;
    assert!(matches!(
        raw::next(&mut socket).await,
        Some(ServerMessage::Error {
            code: ErrorCode::Malformed,
            ..
        })
    ));
}
