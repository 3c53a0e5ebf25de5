//! Attributable edits: a change is stored only if its Automerge actor is registered to the
//! device and user sending it. A forged actor, or another user's actor, is refused and leaves
//! nothing stored.

use automerge::sync::SyncDoc;
use automerge::{ActorId, AutoCommit};
use casebook_shared::api::ActorAuthor;
use casebook_shared::chronology::{self, Recorder};
use casebook_shared::ids::{DeviceId, DocumentId};
use casebook_shared::protocol::{ClientMessage, DenyReason, ErrorCode, ServerMessage};
use casebook_tests::device::{NativeDevice, draft};
use casebook_tests::http::Session;
use casebook_tests::server::TestServer;

use casebook_tests::raw::{self, Socket};

/// A sync message that carries one new entry written by `actor` onto the server's copy of `doc`.
async fn change_by(
    server: &TestServer,
    session: &Session,
    doc: DocumentId,
    actor: &[u8],
) -> Vec<u8> {
    // Fetch the document as it is on the server, through an honest device.
    let mut honest = NativeDevice::new(session.me.clone());
    honest
        .connect(&server.ws_url(), &session.cookie)
        .await
        .unwrap();
    honest.sync().await.unwrap();
    let mut am: AutoCommit = honest
        .document(doc)
        .unwrap()
        .clone()
        .with_actor(ActorId::from(actor));
    let recorder = Recorder {
        staff: session.me.id,
        name: "Someone".into(),
        now_ms: 1,
    };
    chronology::add_entry(
        &mut am,
        "forged-entry",
        &draft("written under a borrowed name"),
        &recorder,
    )
    .unwrap();
    // A sync session from scratch: the server's first reply tells us what it lacks, but a
    // message carrying the change straight away is what an attacker would send.
    let mut state = automerge::sync::State::new();
    let mut server_copy = honest.document(doc).unwrap().clone();
    let mut server_state = automerge::sync::State::new();
    let hello = am.sync().generate_sync_message(&mut state).unwrap();
    server_copy
        .sync()
        .receive_sync_message(&mut server_state, hello)
        .unwrap();
    let reply = server_copy
        .sync()
        .generate_sync_message(&mut server_state)
        .unwrap();
    am.sync().receive_sync_message(&mut state, reply).unwrap();
    am.sync()
        .generate_sync_message(&mut state)
        .unwrap()
        .encode()
}

async fn refused(server: &TestServer, socket: &mut Socket, doc: DocumentId, data: Vec<u8>) {
    let before = server.stored_changes(doc).await.unwrap();
    raw::send(
        socket,
        &ClientMessage::Sync {
            doc,
            session: 1,
            data,
        },
    )
    .await;
    let mut denied = false;
    while let Some(m) = raw::next(socket).await {
        match m {
            ServerMessage::Denied {
                doc: d,
                reason: DenyReason::Rejected,
            } if d == doc => {
                denied = true;
                break;
            }
            ServerMessage::Persisted { .. } | ServerMessage::Sync { .. } => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(denied, "the change was refused");
    assert_eq!(
        server.stored_changes(doc).await.unwrap(),
        before,
        "nothing of it was stored"
    );
}

#[tokio::test]
async fn a_change_from_an_actor_the_device_never_registered_is_refused() {
    let server = TestServer::start().await.unwrap();
    let jo = server.sign_in("worker.north1").await;
    let doc = jo.cases().await.unwrap()[0].chronology;
    let forged = change_by(&server, &jo, doc, &[0xf0; 16]).await;
    let mut s = raw::connect(&server, &jo.cookie).await;
    raw::send(
        &mut s,
        &ClientMessage::Hello {
            device: DeviceId(uuid::Uuid::new_v4()),
            actors: vec![vec![0x01; 16]],
        },
    )
    .await;
    assert!(matches!(
        raw::next(&mut s).await,
        Some(ServerMessage::Welcome { .. })
    ));
    refused(&server, &mut s, doc, forged).await;
}

#[tokio::test]
async fn a_change_under_another_users_actor_is_refused() {
    let server = TestServer::start().await.unwrap();
    let (jo, lee, case) = Session::co_workers(&server.base).await.unwrap();
    let doc = case.chronology;
    // Jo's device registers its actor by connecting.
    let mut jos_device = NativeDevice::new(jo.me.clone());
    jos_device
        .connect(&server.ws_url(), &jo.cookie)
        .await
        .unwrap();
    let jos_actor = jos_device.core.actor().to_vec();

    // Lee claims Jo's actor: the hello itself is refused.
    let mut s = raw::connect(&server, &lee.cookie).await;
    raw::send(
        &mut s,
        &ClientMessage::Hello {
            device: DeviceId(uuid::Uuid::new_v4()),
            actors: vec![jos_actor.clone()],
        },
    )
    .await;
    assert!(matches!(
        raw::next(&mut s).await,
        Some(ServerMessage::Error {
            code: ErrorCode::ForeignActor,
            ..
        })
    ));
    assert!(
        raw::next(&mut s).await.is_none(),
        "the connection is closed"
    );

    // Lee writes under Jo's actor without declaring it: the change is refused.
    let forged = change_by(&server, &lee, doc, &jos_actor).await;
    let mut s = raw::connect(&server, &lee.cookie).await;
    raw::send(
        &mut s,
        &ClientMessage::Hello {
            device: DeviceId(uuid::Uuid::new_v4()),
            actors: vec![vec![0x02; 16]],
        },
    )
    .await;
    assert!(matches!(
        raw::next(&mut s).await,
        Some(ServerMessage::Welcome { .. })
    ));
    refused(&server, &mut s, doc, forged).await;

    // Jo's own device still syncs normally.
    let id = jos_device
        .add_entry(doc, &draft("Jo's real entry"))
        .await
        .unwrap();
    jos_device.sync().await.unwrap();
    assert!(jos_device.acknowledged_entries(doc).unwrap().contains(&id));
}

#[tokio::test]
async fn a_device_id_belongs_to_the_user_who_first_used_it() {
    let server = TestServer::start().await.unwrap();
    let (jo, lee, _) = Session::co_workers(&server.base).await.unwrap();
    let device = DeviceId(uuid::Uuid::new_v4());
    let mut s = raw::connect(&server, &jo.cookie).await;
    raw::send(
        &mut s,
        &ClientMessage::Hello {
            device,
            actors: vec![vec![0x03; 16]],
        },
    )
    .await;
    assert!(matches!(
        raw::next(&mut s).await,
        Some(ServerMessage::Welcome { .. })
    ));
    let mut s = raw::connect(&server, &lee.cookie).await;
    raw::send(
        &mut s,
        &ClientMessage::Hello {
            device,
            actors: vec![vec![0x04; 16]],
        },
    )
    .await;
    assert!(matches!(
        raw::next(&mut s).await,
        Some(ServerMessage::Error {
            code: ErrorCode::ForeignDevice,
            ..
        })
    ));

    // Reconnecting at once (the check by reads alone): Jo's device as it was is welcomed;
    // declaring an actor of Lee's device as well is refused.
    let mut s = raw::connect(&server, &lee.cookie).await;
    raw::send(
        &mut s,
        &ClientMessage::Hello {
            device: DeviceId(uuid::Uuid::new_v4()),
            actors: vec![vec![0x05; 16]],
        },
    )
    .await;
    assert!(matches!(
        raw::next(&mut s).await,
        Some(ServerMessage::Welcome { .. })
    ));
    for (actors, welcomed) in [
        (vec![vec![0x03; 16]], true),
        (vec![vec![0x03; 16], vec![0x05; 16]], false),
        (vec![vec![0x03; 16]], true),
    ] {
        let mut s = raw::connect(&server, &jo.cookie).await;
        raw::send(&mut s, &ClientMessage::Hello { device, actors }).await;
        let answer = raw::next(&mut s).await;
        if welcomed {
            assert!(matches!(answer, Some(ServerMessage::Welcome { .. })));
        } else {
            assert!(matches!(
                answer,
                Some(ServerMessage::Error {
                    code: ErrorCode::ForeignActor,
                    ..
                })
            ));
        }
    }
}

#[tokio::test]
async fn the_author_shown_is_the_verified_sender_not_the_name_the_device_wrote() {
    let server = TestServer::start().await.unwrap();
    let (jo, lee, case) = Session::co_workers(&server.base).await.unwrap();
    let doc = case.chronology;
    let mut jos_device = NativeDevice::new(jo.me.clone());
    jos_device
        .connect(&server.ws_url(), &jo.cookie)
        .await
        .unwrap();
    jos_device.sync().await.unwrap();
    // Jo's device writes an entry that claims Lee recorded it.
    let claimed = Recorder {
        staff: lee.me.id,
        name: lee.me.name.clone(),
        now_ms: 1,
    };
    jos_device
        .edit_raw(doc, |am| {
            chronology::add_entry(am, "claimed-by-lee", &draft("Who wrote this?"), &claimed)
                .unwrap()
        })
        .await
        .unwrap();
    jos_device.sync().await.unwrap();
    let entry = jos_device
        .entries(doc)
        .into_iter()
        .find(|e| e.id == "claimed-by-lee")
        .unwrap();
    assert_eq!(
        entry.recorded_by_name, lee.me.name,
        "the claim is in the document"
    );

    let authors = |who: &Session| {
        reqwest::Client::new()
            .get(format!("{}/api/cases/{}/authors", server.base, case.id))
            .header("cookie", who.cookie.clone())
            .send()
    };
    let listed: Vec<ActorAuthor> = authors(&lee).await.unwrap().json().await.unwrap();
    let author = listed
        .iter()
        .find(|a| a.actor == entry.author_actor)
        .expect("the entry's actor is a verified author of the case");
    assert_eq!(
        (author.staff, author.name.as_str()),
        (jo.me.id, jo.me.name.as_str())
    );

    // Only people with access to the case may see who wrote in it.
    let stranger = server.sign_in("worker.south1").await;
    assert_eq!(authors(&stranger).await.unwrap().status().as_u16(), 403);
}
