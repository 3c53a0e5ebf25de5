//! Devices and sessions: a device reported lost wipes itself on its live connection and
//! whenever it connects again; only its owner, a manager or an admin may report it; each
//! person sees their sessions and can end any of them.

use casebook_server::devices::{DeviceInfo, SessionInfo};
use casebook_tests::device::NativeDevice;
use casebook_tests::http::Session;
use casebook_tests::server::TestServer;
use std::time::Duration;

async fn report_lost(server: &TestServer, who: &Session, device: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("{}/api/devices/{device}/lost", server.base))
        .header("cookie", &who.cookie)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn get<T: serde::de::DeserializeOwned>(server: &TestServer, who: &Session, path: &str) -> T {
    reqwest::Client::new()
        .get(format!("{}{path}", server.base))
        .header("cookie", &who.cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_device_reported_lost_wipes_itself_now_and_on_every_reconnection() {
    let server = TestServer::start().await.unwrap();
    let jo = server.sign_in("worker.north1").await;
    let mut tablet = NativeDevice::new(jo.me.clone());
    tablet.connect(&server.ws_url(), &jo.cookie).await.unwrap();
    tablet.sync().await.unwrap();
    assert!(!tablet.storage.is_empty());
    let device = tablet.core.device().to_string();
    let listed: Vec<DeviceInfo> = get(&server, &jo, "/api/devices").await;
    assert!(
        listed
            .iter()
            .any(|d| d.id == device && d.revoked_at.is_none())
    );

    // A colleague cannot report it; its owner can.
    let lee = server.sign_in("worker.north2").await;
    assert_eq!(report_lost(&server, &lee, &device).await, 403);
    assert_eq!(report_lost(&server, &jo, &device).await, 200);
    let _ = tablet.pump_until(Duration::from_secs(2), |d| d.wiped).await;
    assert!(
        tablet.wiped,
        "told to wipe on its live connection within 2 s"
    );
    assert!(tablet.storage.is_empty() && tablet.core.documents().next().is_none());

    // Connecting again (even after signing in again) gets the same answer.
    let jo_again = server.sign_in("worker.north1").await;
    let mut same_tablet = tablet.restart().unwrap();
    same_tablet.wiped = false;
    let _ = same_tablet
        .connect(&server.ws_url(), &jo_again.cookie)
        .await;
    assert!(
        same_tablet.wiped,
        "a revoked device is refused and wiped on connection"
    );
    let listed: Vec<DeviceInfo> = get(&server, &jo_again, "/api/devices").await;
    assert!(
        listed
            .iter()
            .any(|d| d.id == device && d.revoked_at.is_some())
    );
}

#[tokio::test]
async fn a_manager_may_report_any_device_lost() {
    let server = TestServer::start().await.unwrap();
    let jo = server.sign_in("worker.north1").await;
    let mut tablet = NativeDevice::new(jo.me.clone());
    tablet.connect(&server.ws_url(), &jo.cookie).await.unwrap();
    // The manager finds Jo's devices (a colleague cannot) and reports the tablet lost.
    let manager = server.sign_in("manager").await;
    let lee = server.sign_in("worker.north2").await;
    let status = reqwest::Client::new()
        .get(format!("{}/api/staff/worker.north1/devices", server.base))
        .header("cookie", &lee.cookie)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 403);
    let jos: Vec<DeviceInfo> = get(&server, &manager, "/api/staff/worker.north1/devices").await;
    let device = tablet.core.device().to_string();
    assert!(jos.iter().any(|d| d.id == device));
    assert_eq!(report_lost(&server, &manager, &device).await, 200);
    let _ = tablet.pump_until(Duration::from_secs(2), |d| d.wiped).await;
    assert!(tablet.wiped);
}

#[tokio::test]
async fn a_person_sees_their_sessions_and_can_end_one() {
    let server = TestServer::start().await.unwrap();
    let tablet = server.sign_in("worker.north1").await;
    let laptop = server.sign_in("worker.north1").await;
    let sessions: Vec<SessionInfo> = get(&server, &laptop, "/api/sessions").await;
    assert_eq!(sessions.len(), 2);
    assert_eq!(sessions.iter().filter(|s| s.current).count(), 1);
    let other = sessions.iter().find(|s| !s.current).unwrap();
    let ended = reqwest::Client::new()
        .delete(format!("{}/api/sessions/{}", server.base, other.id))
        .header("cookie", &laptop.cookie)
        .send()
        .await
        .unwrap();
    assert!(ended.status().is_success());
    assert!(tablet.cases().await.is_err(), "the tablet's session ended");
    assert!(laptop.cases().await.is_ok(), "the laptop's carries on");
}

async fn release_key(server: &TestServer, who: Option<&Session>, device: &str) -> (u16, Vec<u8>) {
    let mut request =
        reqwest::Client::new().post(format!("{}/api/devices/{device}/key", server.base));
    if let Some(who) = who {
        request = request.header("cookie", &who.cookie);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let key = response
        .json::<casebook_shared::api::DeviceKey>()
        .await
        .map(|k| k.key)
        .unwrap_or_default();
    (status, key)
}

#[tokio::test]
async fn the_device_key_is_released_only_to_its_owner_and_never_after_it_is_reported_lost() {
    let server = TestServer::start().await.unwrap();
    let jo = server.sign_in("worker.north1").await;
    let device = casebook_shared::ids::DeviceId::from_random_bytes(rand::random()).to_string();

    let (status, key) = release_key(&server, Some(&jo), &device).await;
    assert_eq!(status, 200);
    assert_eq!(key.len(), 32);
    // The same key every time, for any of the owner's sessions.
    let jo_laptop = server.sign_in("worker.north1").await;
    assert_eq!(
        release_key(&server, Some(&jo_laptop), &device).await,
        (200, key.clone())
    );
    // Nobody else, and nobody signed out.
    let lee = server.sign_in("worker.north2").await;
    assert_eq!(release_key(&server, Some(&lee), &device).await.0, 403);
    assert_eq!(release_key(&server, None, &device).await.0, 401);
    assert_eq!(release_key(&server, Some(&jo), "not-a-device").await.0, 422);
    // Another device gets another key.
    let other = casebook_shared::ids::DeviceId::from_random_bytes(rand::random()).to_string();
    let (_, other_key) = release_key(&server, Some(&jo), &other).await;
    assert_ne!(other_key, key);

    // Reported lost: refused with 410 (the app wipes itself) and the key is gone for good.
    assert_eq!(report_lost(&server, &jo, &device).await, 200);
    assert_eq!(release_key(&server, Some(&jo), &device).await.0, 410);
    let (stored,): (Option<Vec<u8>>,) = casebook_server::on_pool!(&server.db, pool =>
        sqlx::query_as("select wrap_key from devices where id = $1")
            .bind(&device).fetch_one(pool).await)
    .unwrap();
    assert_eq!(stored, None, "the wrapping key is erased from the server");
}
