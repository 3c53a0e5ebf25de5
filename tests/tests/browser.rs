//! The real app in headless Chromium: two signed-in co-workers on one case, one of them
//! offline; both add entries; after reconnecting both pages show every entry. A reload with
//! no network still opens the app and the chronology (service worker + IndexedDB).
//!
//! Needs the built app: `CASEBOOK_DIST` names the folder (`cargo xtask test` builds it).

use casebook_tests::browser::{
    ChromeDriver, NetworkSwitch, STEP_TIMEOUT, all_ready_within, click, eventually,
    service_worker_ready, set_value, sign_in, submit_sign_in, text_of, type_into, until, wait_for,
};
use casebook_tests::http::{PASSWORD, Session};
use casebook_tests::server::TestServer;
use fantoccini::{Client, Locator};
use serde_json::json;
use std::path::PathBuf;
use std::time::Duration;

const WAIT: Duration = STEP_TIMEOUT;

fn dist() -> PathBuf {
    let dist = std::env::var("CASEBOOK_DIST")
        .expect("CASEBOOK_DIST must name the built app (run `cargo xtask test`)");
    let dist = PathBuf::from(dist);
    assert!(
        dist.join("index.html").exists(),
        "no built app in {}",
        dist.display()
    );
    dist
}

async fn open_case(browser: &Client, case: &str) {
    let link = format!("a[data-case='{case}']");
    wait_for(browser, Locator::Css(&link)).await;
    click(browser, Locator::Css(&link)).await;
    wait_for(browser, Locator::Css("#chronology li")).await;
}

async fn add_entry(browser: &Client, what: &str) {
    add_entry_marked(browser, what, false).await;
}

async fn add_entry_marked(browser: &Client, what: &str, withheld: bool) {
    click(browser, Locator::Id("add-entry")).await;
    wait_for(browser, Locator::Id("new-entry-what")).await;
    set_value(browser, "new-entry-date", "2026-11-20")
        .await
        .unwrap();
    type_into(browser, "new-entry-what", what).await;
    type_into(browser, "new-entry-source", "Home visit").await;
    set_value(browser, "new-entry-category", "Supervision contact")
        .await
        .unwrap();
    if withheld {
        click(browser, Locator::Id("new-entry-withheld")).await;
    }
    click(browser, Locator::Css(".entry-form .save-entry")).await;
    let what = what.to_owned();
    until(browser, "the new entry to show", || {
        let what = what.clone();
        async move { Ok(text_of(browser, "#chronology").await.contains(&what)) }
    })
    .await;
}

async fn badge(browser: &Client) -> String {
    text_of(browser, "#sync-status").await
}

async fn wait_for_badge(browser: &Client, part: &str) {
    let part = part.to_owned();
    until(browser, &format!("the sync badge to say '{part}'"), || {
        let part = part.clone();
        async move { Ok(badge(browser).await.contains(&part)) }
    })
    .await;
}

/// Reloads the page and opens the records on the device with the password, as a worker does
/// with no network.
async fn reload_and_unlock(browser: &Client) {
    browser.refresh().await.unwrap();
    wait_for(browser, Locator::Id("unlock-password")).await;
    type_into(browser, "unlock-password", PASSWORD).await;
    click(browser, Locator::Id("unlock")).await;
}

/// How the app's module came over the network to this page, from its resource timing:
/// (bytes on the wire, bytes after decoding).
async fn module_transfer(browser: &Client) -> (f64, f64) {
    let sizes = browser
        .execute(
            "const e = performance.getEntriesByType('resource')
                 .find((r) => r.name.endsWith('/casebook_app_bg.wasm'));
             return e ? [e.encodedBodySize, e.decodedBodySize] : null;",
            vec![],
        )
        .await
        .unwrap();
    let sizes: Option<(f64, f64)> = serde_json::from_value(sizes).unwrap();
    sizes.expect("the page fetched the module")
}

async fn screenshot(browser: &Client, name: &str) {
    if let Ok(folder) = std::env::var("CASEBOOK_SCREENSHOTS")
        && let Ok(png) = browser.screenshot().await
    {
        let _ = std::fs::write(PathBuf::from(folder).join(format!("{name}.png")), png);
    }
}

/// What the tests that take a tablet offline start from: the server, the demo's co-workers
/// Jo (this session) and Lee on one case, a network switch in front of the server, and
/// Chromium.
struct Offline {
    server: TestServer,
    jo: Session,
    /// The shared case's id, as the page names it.
    case: String,
    chronology: casebook_shared::ids::DocumentId,
    network: NetworkSwitch,
    driver: ChromeDriver,
}

async fn co_workers_behind_a_switch() -> Offline {
    co_workers_behind_a_switch_serving(dist()).await
}

/// As [`co_workers_behind_a_switch`], the server sending the app in `app`.
async fn co_workers_behind_a_switch_serving(app: PathBuf) -> Offline {
    let server = TestServer::start_with(Some(app)).await.unwrap();
    let (jo, _, case) = Session::co_workers(&server.base).await.unwrap();
    let target: std::net::SocketAddr = server.base.trim_start_matches("http://").parse().unwrap();
    let network = NetworkSwitch::start(target).await.unwrap();
    let driver = ChromeDriver::start().await.unwrap();
    Offline {
        server,
        jo,
        case: case.id.to_string(),
        chronology: case.chronology,
        network,
        driver,
    }
}

#[tokio::test]
async fn co_workers_one_offline_both_see_every_entry_and_an_offline_reload_still_opens_the_case() {
    let Offline {
        server,
        jo,
        case,
        network,
        mut driver,
        ..
    } = co_workers_behind_a_switch().await;
    let a = driver.browser().await.unwrap(); // Jo, through the switchable network
    let b = driver.browser().await.unwrap(); // Lee, directly

    sign_in(&a, &network.url(), "worker.north1").await;
    sign_in(&b, &server.base, "worker.north2").await;
    // A release build (what `cargo xtask test` builds) writes the module compressed, and the
    // browser gets it so: less than half its size on the wire.
    if dist().join("casebook_app_bg.wasm.gz").exists() {
        let (wire, decoded) = module_transfer(&b).await;
        assert!(
            wire > 0.0 && wire * 2.0 < decoded,
            "the module came compressed: {wire} bytes on the wire for {decoded}"
        );
    }
    open_case(&a, &case).await;
    open_case(&b, &case).await;
    wait_for_badge(&a, "Online").await;
    wait_for_badge(&b, "Online").await;
    service_worker_ready(&a).await.unwrap();
    screenshot(&a, "1-case-online").await;

    network.set_online(false);
    wait_for_badge(&a, "Offline").await;
    add_entry(&a, "Jo wrote this with no signal").await;
    wait_for_badge(&a, "1 change waiting").await;
    add_entry(&b, "Lee wrote this at the office <img src=x id=injected>").await;
    // Text from a record is shown as text, never run as markup.
    assert!(
        b.find(Locator::Id("injected")).await.is_err(),
        "no element was created from an entry's text"
    );
    wait_for_badge(&b, "all changes saved").await;

    // Reload with no network: the service worker serves the app; the password opens the
    // encrypted records on the device; IndexedDB has the chronology.
    a.refresh().await.unwrap();
    wait_for(&a, Locator::Id("unlock-password")).await;
    type_into(&a, "unlock-password", "not the password").await;
    click(&a, Locator::Id("unlock")).await;
    wait_for(&a, Locator::Id("unlock-error")).await;
    type_into(&a, "unlock-password", PASSWORD).await;
    click(&a, Locator::Id("unlock")).await;
    wait_for(&a, Locator::Css("#chronology li")).await;
    let offline_page = text_of(&a, "#chronology").await;
    assert!(
        offline_page.contains("Jo wrote this with no signal"),
        "the offline entry survives a reload"
    );
    wait_for_badge(&a, "1 change waiting").await;
    screenshot(&a, "2-reloaded-offline").await;

    network.set_online(true);
    for (browser, who) in [(&a, "Jo"), (&b, "Lee")] {
        eventually(
            &format!("{who}'s page to show both entries"),
            WAIT,
            || async move {
                let text = text_of(browser, "#chronology").await;
                Ok(text.contains("Jo wrote this with no signal")
                    && text.contains("Lee wrote this at the office"))
            },
        )
        .await
        .unwrap();
    }
    wait_for_badge(&a, "all changes saved").await;
    screenshot(&a, "3-merged").await;
    // Lee's page names Jo as the author of Jo's entry, from the server's verified list.
    let jos_entry = "//ol[@id='chronology']/li[contains(., 'Jo wrote this with no signal')]";
    let expected = format!("Recorded by {}", jo.me.name);
    eventually(
        "Jo to be named as the author on Lee's page",
        WAIT,
        || async {
            let entry = b.find(Locator::XPath(jos_entry)).await?;
            Ok(entry.text().await?.contains(&expected))
        },
    )
    .await
    .unwrap();
    let a_entries = a
        .find_all(Locator::Css("#chronology li"))
        .await
        .unwrap()
        .len();
    let b_entries = b
        .find_all(Locator::Css("#chronology li"))
        .await
        .unwrap()
        .len();
    assert_eq!(
        a_entries, b_entries,
        "both pages show the same number of entries"
    );

    a.close().await.unwrap();
    b.close().await.unwrap();
    driver.stop().await;
}

/// How many records Casebook's IndexedDB database holds in this browser.
async fn stored_records(browser: &Client) -> i64 {
    browser
        .execute_async(
            "const done = arguments[arguments.length - 1];
             const req = indexedDB.open('casebook');
             req.onerror = () => done(-1);
             req.onsuccess = () => {
               const db = req.result;
               const names = Array.from(db.objectStoreNames);
               if (names.length === 0) { db.close(); done(0); return; }
               const tx = db.transaction(names, 'readonly');
               let total = 0, pending = names.length;
               names.forEach((n) => {
                 const c = tx.objectStore(n).count();
                 c.onsuccess = () => { total += c.result; if (--pending === 0) { db.close(); done(total); } };
               });
             };",
            vec![],
        )
        .await
        .unwrap()
        .as_i64()
        .unwrap()
}

/// The device id the app stored.
async fn device_id(browser: &Client) -> String {
    let value = browser
        .execute_async(
            "const done = arguments[arguments.length - 1];
             const req = indexedDB.open('casebook');
             req.onsuccess = () => {
               const get = req.result.transaction(['plain'], 'readonly').objectStore('plain').get('device');
               get.onsuccess = () => { req.result.close(); done(JSON.parse(new TextDecoder().decode(get.result))); };
             };",
            vec![],
        )
        .await
        .unwrap();
    value.as_str().unwrap().to_owned()
}

/// A server with the app, and a co-worker signed in in Chromium on one of their cases,
/// open, with everything saved: (server, the case, chromedriver, the browser).
async fn signed_in_on_a_case() -> (TestServer, String, ChromeDriver, Client) {
    let server = TestServer::start_with(Some(dist())).await.unwrap();
    let (_, _, case) = Session::co_workers(&server.base).await.unwrap();
    let case = case.id.to_string();
    let mut driver = ChromeDriver::start().await.unwrap();
    let browser = driver.browser().await.unwrap();
    sign_in(&browser, &server.base, "worker.north1").await;
    open_case(&browser, &case).await;
    wait_for_badge(&browser, "all changes saved").await;
    (server, case, driver, browser)
}

#[tokio::test]
async fn sign_out_leaves_no_case_data_and_a_device_reported_lost_wipes_itself() {
    let (server, case, mut driver, browser) = signed_in_on_a_case().await;
    assert!(
        stored_records(&browser).await > 0,
        "the case is on the device"
    );

    // Sign out with everything synced: nothing of the case remains.
    click(&browser, Locator::Id("sign-out")).await;
    wait_for(&browser, Locator::Id("username")).await;
    eventually("the device's records to be wiped", WAIT, || async {
        Ok(stored_records(&browser).await == 0)
    })
    .await
    .unwrap();

    // Sign in again, then the device is reported lost from elsewhere: it wipes itself.
    sign_in(&browser, &server.base, "worker.north1").await;
    open_case(&browser, &case).await;
    wait_for_badge(&browser, "all changes saved").await;
    let device = device_id(&browser).await;
    // The manager reports it lost from the Staff screen.
    let manager = driver.browser().await.unwrap();
    sign_in(&manager, &server.base, "manager").await;
    click(&manager, Locator::Id("staff")).await;
    let row = "li[data-username='worker.north1']";
    wait_for(&manager, Locator::Css(row)).await;
    click(&manager, Locator::Css(&format!("{row} .show-devices"))).await;
    wait_for(&manager, Locator::Css(&format!("{row} .report-lost"))).await;
    assert!(
        text_of(&manager, row).await.contains(&device[..8]),
        "the device is listed"
    );
    click(&manager, Locator::Css(&format!("{row} .report-lost"))).await;
    wait_for(&browser, Locator::Id("username")).await;
    assert!(
        text_of(&browser, "main").await.contains("reported lost"),
        "the person is told why"
    );
    eventually("the lost device to be wiped", WAIT, || async {
        Ok(stored_records(&browser).await == 0)
    })
    .await
    .unwrap();

    // A senior of another team opens the case on duty; the manager's oversight page (one of
    // the pages split off the first download) lists it with the reason given.
    let duty = server.sign_in("senior.south").await;
    let opened = server
        .post(
            &duty,
            &format!("/api/cases/{case}/duty-access"),
            &casebook_shared::api::DutyAccessRequest {
                reason: "Breach reported at 2am".into(),
            },
        )
        .await;
    assert!(opened.status().is_success());
    click(&manager, Locator::Id("oversight")).await;
    wait_for_text(&manager, "#duty-access", "Breach reported at 2am").await;
    assert!(text_of(&manager, "#duty-access").await.contains("Pat Boyd"));

    browser.close().await.unwrap();
    manager.close().await.unwrap();
    driver.stop().await;
}

/// A write the browser refuses (its transaction aborted at commit, as a full disk or a
/// storage quota makes it) is reported to the person, never counted as stored; the next
/// writes, once the browser stores again, are stored.
#[tokio::test]
async fn a_write_the_browser_refuses_to_store_is_reported_not_taken_as_saved() {
    let (_server, _, driver, browser) = signed_in_on_a_case().await;
    let before = stored_records(&browser).await;

    // From now on every read-write transaction of this page is aborted where it would
    // have committed.
    browser
        .execute(
            "window.__commit = IDBTransaction.prototype.commit;
             IDBTransaction.prototype.commit = function () { this.abort(); };",
            vec![],
        )
        .await
        .unwrap();
    add_entry(&browser, "Entry the device cannot store").await;
    wait_for_text(&browser, ".notice", "could not save your work locally").await;
    assert_eq!(stored_records(&browser).await, before, "nothing was stored");

    // Storage works again: the next entry is stored.
    browser
        .execute("IDBTransaction.prototype.commit = window.__commit;", vec![])
        .await
        .unwrap();
    click(&browser, Locator::Css(".notice button")).await;
    add_entry(&browser, "Entry stored once storage works").await;
    eventually("the next entry to be stored", WAIT, || async {
        Ok(stored_records(&browser).await > before)
    })
    .await
    .unwrap();
    wait_for_badge(&browser, "all changes saved").await;

    browser.close().await.unwrap();
    driver.stop().await;
}

/// Whether the service worker's caches hold any API response.
async fn cached_api_responses(browser: &Client) -> i64 {
    browser
        .execute_async(
            "const done = arguments[arguments.length - 1];
             caches.keys()
               .then((names) => Promise.all(names.map((n) => caches.open(n).then((c) => c.keys()))))
               .then((lists) => done(lists.flat().filter((r) => new URL(r.url).pathname.startsWith('/api')).length))
               .catch(() => done(-1));",
            vec![],
        )
        .await
        .unwrap()
        .as_i64()
        .unwrap()
}

/// Writes `text` into a separate, unencrypted IndexedDB database the way the app writes a
/// chunk (a byte array): the control showing that plain text in IndexedDB would be found.
async fn write_plain_control(browser: &Client, text: &str) {
    browser
        .execute_async(
            "const [text, done] = [arguments[0], arguments[arguments.length - 1]];
             const req = indexedDB.open('control-plain', 1);
             req.onupgradeneeded = () => req.result.createObjectStore('values');
             req.onsuccess = () => {
               const tx = req.result.transaction(['values'], 'readwrite');
               tx.objectStore('values').put(new TextEncoder().encode(text), 'control');
               tx.oncomplete = () => { req.result.close(); done(true); };
             };",
            vec![json!(text)],
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn records_on_the_device_are_encrypted_and_sign_out_keeps_unsynced_work_encrypted() {
    let Offline {
        server,
        case,
        chronology,
        network,
        mut driver,
        ..
    } = co_workers_behind_a_switch().await;
    let browser = driver.browser().await.unwrap();
    let indexed_db = driver.profile(0).join("Default").join("IndexedDB");

    sign_in(&browser, &network.url(), "worker.north1").await;
    open_case(&browser, &case).await;
    let marker = format!("Quillfeather{:08x}", rand::random::<u32>());
    add_entry(&browser, &marker).await;
    wait_for_badge(&browser, "all changes saved").await;
    assert!(
        stored_records(&browser).await > 0,
        "the case is on the device"
    );

    // The control: the same kind of write, unencrypted, is found in the profile's files...
    let control = format!("Plaincontrol{:08x}", rand::random::<u32>());
    write_plain_control(&browser, &control).await;
    eventually(
        "the plain control to reach the IndexedDB files",
        WAIT,
        || async {
            Ok(casebook_tests::browser::folder_contains(
                &indexed_db,
                &control,
            ))
        },
    )
    .await
    .unwrap();
    // ...while the entry typed into the app is not, anywhere.
    assert!(
        !casebook_tests::browser::folder_contains(&indexed_db, &marker),
        "the entry's text is in the IndexedDB files in plain text"
    );

    // Offline, write more, then sign out: the unsynced change is kept (encrypted), not lost.
    network.set_online(false);
    wait_for_badge(&browser, "Offline").await;
    let unsynced = format!("Unsentwork{:08x}", rand::random::<u32>());
    add_entry(&browser, &unsynced).await;
    wait_for_badge(&browser, "1 change waiting").await;
    click(&browser, Locator::Id("sign-out")).await;
    wait_for(&browser, Locator::Id("username")).await;
    assert!(
        text_of(&browser, "main")
            .await
            .contains("could not reach the server"),
        "the person is warned that work is kept"
    );
    assert!(stored_records(&browser).await > 0, "unsynced work is kept");
    assert!(!casebook_tests::browser::folder_contains(
        &indexed_db,
        &unsynced
    ));

    // Back online and signed in again: the kept change reaches the server.
    network.set_online(true);
    sign_in(&browser, &network.url(), "worker.north1").await;
    wait_for_badge(&browser, "all changes saved").await;
    let lee = server.sign_in("worker.north2").await;
    let mut check = casebook_tests::device::NativeDevice::new(lee.me.clone());
    check.connect(&server.ws_url(), &lee.cookie).await.unwrap();
    check.sync().await.unwrap();
    assert!(
        check
            .entries(chronology)
            .iter()
            .any(|e| e.draft.what_happened == unsynced),
        "the change kept at sign-out reached the server"
    );

    // Everything synced: sign-out leaves no case data on the device.
    click(&browser, Locator::Id("sign-out")).await;
    wait_for(&browser, Locator::Id("username")).await;
    eventually("the device's records to be wiped", WAIT, || async {
        Ok(stored_records(&browser).await == 0)
    })
    .await
    .unwrap();
    assert_eq!(
        cached_api_responses(&browser).await,
        0,
        "no API response is cached"
    );
    // A reload does not open anything without signing in.
    browser.refresh().await.unwrap();
    wait_for(&browser, Locator::Id("username")).await;

    browser.close().await.unwrap();
    driver.stop().await;
}

async fn wait_for_text(browser: &Client, css: &str, part: &str) {
    let part = part.to_owned();
    until(browser, &format!("{css} to show '{part}'"), || {
        let part = part.clone();
        async move { Ok(text_of(browser, css).await.contains(&part)) }
    })
    .await;
}

#[tokio::test]
async fn persons_copy_combined_chronology_audit_search_erasure_and_accounts_on_screen() {
    let server = TestServer::start_with(Some(dist())).await.unwrap();
    let jo = server.sign_in("worker.north1").await;
    let cases = jo.cases().await.unwrap();
    let (case, other) = (cases[0].clone(), cases[1].clone());
    let mut driver = ChromeDriver::start().await.unwrap();
    let worker = driver.browser().await.unwrap();
    let manager = driver.browser().await.unwrap();
    let admin = driver.browser().await.unwrap();

    // A worker records an entry to share and one withheld from the person.
    sign_in(&worker, &server.base, "worker.north1").await;
    open_case(&worker, &case.id.to_string()).await;
    add_entry(&worker, "Shared: attended the group").await;
    add_entry_marked(&worker, "Withheld: partner's new address", true).await;
    wait_for_badge(&worker, "all changes saved").await;

    // "Skip to content" (the keyboard's way past the app bar) moves to the page's content;
    // it does not leave the case.
    let skipped = worker
        .execute_async(
            "const done = arguments[arguments.length - 1];
             window.addEventListener('hashchange', () => setTimeout(() => done(location.hash), 0), { once: true });
             document.querySelector('.skip-link').click();",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(skipped, json!("#main"));
    assert!(
        text_of(&worker, "#chronology")
            .await
            .contains("Shared: attended the group"),
        "the case is still showing after the skip link"
    );

    // The person's copy leaves out the withheld entry.
    click(&worker, Locator::Id("open-persons-copy")).await;
    wait_for(&worker, Locator::Id("recipient")).await;
    type_into(&worker, "recipient", "The person, at the office").await;
    click(&worker, Locator::Id("produce-copy")).await;
    wait_for_text(&worker, "#persons-copy", "Shared: attended the group").await;
    assert!(
        !text_of(&worker, "#persons-copy")
            .await
            .contains("partner's new address")
    );
    screenshot(&worker, "persons-copy").await;

    // Two cases combined, for a stated purpose.
    worker
        .goto(&format!("{}/#/combined", server.base))
        .await
        .unwrap();
    wait_for(&worker, Locator::Id("combine-purpose")).await;
    click(&worker, Locator::Id(&format!("combine-{}", case.id))).await;
    click(&worker, Locator::Id(&format!("combine-{}", other.id))).await;
    type_into(&worker, "combine-purpose", "Linked cases: same household").await;
    click(&worker, Locator::Id("combine")).await;
    wait_for_text(&worker, "#combined-chronology", &other.reference).await;
    wait_for_text(&worker, "#combined-chronology", "partner's new address").await;

    // The manager finds both in the audit log, then erases the withheld entry.
    sign_in(&manager, &server.base, "manager").await;
    click(&manager, Locator::Id("audit-log")).await;
    wait_for(&manager, Locator::Id("audit-case")).await;
    set_value(&manager, "audit-case", &case.id.to_string())
        .await
        .unwrap();
    click(&manager, Locator::Id("audit-search")).await;
    wait_for_text(&manager, "#audit-results", "Disclosed").await;
    let results = text_of(&manager, "#audit-results").await;
    assert!(results.contains("Combined") && results.contains("The person, at the office"));
    assert!(
        !results.contains("attended the group"),
        "no content in the audit log"
    );
    screenshot(&manager, "audit-search").await;

    manager
        .goto(&format!("{}/#/case/{}", server.base, case.id))
        .await
        .unwrap();
    let withheld = "//ol[@id='chronology']/li[contains(., 'partner')]";
    wait_for(&manager, Locator::XPath(withheld)).await;
    // One locator for the button, so the click is retried if the list re-renders meanwhile.
    let erase = format!("{withheld}//*[contains(concat(' ', @class, ' '), ' erase-entry ')]");
    click(&manager, Locator::XPath(&erase)).await;
    wait_for(&manager, Locator::Css(".erase-form input")).await;
    manager
        .find(Locator::Css(".erase-form input"))
        .await
        .unwrap()
        .send_keys("Third-party details recorded in error")
        .await
        .unwrap();
    // A colleague's entry arrives while the manager is typing: the half-filled form stays.
    let mut colleague = casebook_tests::device::NativeDevice::new(jo.me.clone());
    colleague
        .connect(&server.ws_url(), &jo.cookie)
        .await
        .unwrap();
    colleague.sync().await.unwrap();
    colleague
        .add_entry(
            case.chronology,
            &casebook_tests::device::draft("Shared: arrived on time"),
        )
        .await
        .unwrap();
    colleague.sync().await.unwrap();
    wait_for_text(&manager, "#chronology", "arrived on time").await;
    let typed = manager
        .find(Locator::Css(".erase-form input"))
        .await
        .expect("the erase form is still open after the list changed")
        .prop("value")
        .await
        .unwrap();
    assert_eq!(
        typed.as_deref(),
        Some("Third-party details recorded in error"),
        "the reason typed so far is kept"
    );
    click(&manager, Locator::Css(".erase-form button[type=submit]")).await;
    wait_for_text(&manager, "main", "The entry was erased").await;
    // The worker's page drops the erased entry; the rest stays.
    eventually(
        "the erased entry to leave the worker's page",
        WAIT,
        || async {
            let text = text_of(&worker, "body").await;
            worker
                .goto(&format!("{}/#/case/{}", server.base, case.id))
                .await?;
            Ok(!text.contains("partner's new address")
                && text.contains("Shared: attended the group"))
        },
    )
    .await
    .unwrap();
    for browser in [&worker, &manager] {
        assert!(
            !text_of(browser, "main").await.contains("could not save"),
            "every document saved on the device"
        );
    }

    // An admin creates an account, which can then sign in.
    sign_in(&admin, &server.base, "admin").await;
    click(&admin, Locator::Id("staff")).await;
    wait_for(&admin, Locator::Id("staff-list")).await;
    click(&admin, Locator::Css("details > summary")).await;
    type_into(&admin, "new-username", "nell.worker").await;
    type_into(&admin, "new-name", "Nell Worker").await;
    set_value(&admin, "new-team", "North").await.unwrap();
    type_into(&admin, "new-password", "a long enough passphrase").await;
    click(&admin, Locator::Id("create-account")).await;
    wait_for_text(&admin, "#staff-status", "created").await;
    wait_for_text(&admin, "#staff-list", "nell.worker").await;
    screenshot(&admin, "staff").await;
    assert!(
        Session::sign_in_with(&server.base, "nell.worker", "a long enough passphrase")
            .await
            .is_ok()
    );

    for browser in [worker, manager, admin] {
        browser.close().await.unwrap();
    }
    driver.stop().await;
}

/// The value of a form control.
async fn value_of(browser: &Client, id: &str) -> String {
    browser
        .execute(
            "const el = document.getElementById(arguments[0]); return el ? el.value : '';",
            vec![json!(id)],
        )
        .await
        .unwrap()
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn a_joint_visit_note_edited_by_two_workers_one_offline_keeps_both_contributions() {
    let Offline {
        server,
        case,
        network,
        mut driver,
        ..
    } = co_workers_behind_a_switch().await;
    let jo = driver.browser().await.unwrap(); // through the switchable network
    let lee = driver.browser().await.unwrap();

    sign_in(&jo, &network.url(), "worker.north1").await;
    sign_in(&lee, &server.base, "worker.north2").await;
    open_case(&jo, &case).await;
    click(
        &jo,
        Locator::Css("button.new-record[data-kind='visit-note']"),
    )
    .await;
    wait_for(&jo, Locator::Id("field-discussed")).await;
    type_into(&jo, "field-discussed", "Jo: housing is settled.").await;
    set_value(&jo, "field-contact_type", "Home visit")
        .await
        .unwrap();
    wait_for_badge(&jo, "all changes saved").await;
    let note_url = jo.current_url().await.unwrap();
    screenshot(&jo, "visit-note").await;

    // Lee opens the same note (it reached Lee's device through the server).
    let note = note_url
        .as_str()
        .rsplit("#/record/")
        .next()
        .unwrap()
        .to_owned();
    let link = format!("#records a[data-record='{note}']");
    open_case(&lee, &case).await;
    wait_for(&lee, Locator::Css(&link)).await;
    click(&lee, Locator::Css(&link)).await;
    wait_for(&lee, Locator::Id("field-discussed")).await;
    eventually("Lee to see Jo's words", WAIT, || async {
        Ok(value_of(&lee, "field-discussed")
            .await
            .contains("Jo: housing"))
    })
    .await
    .unwrap();

    // Presence: each sees the other on the record, and where, within 2 s; none of it is
    // stored.
    let stored = |server: &TestServer| {
        let db = server.db.clone();
        async move {
            let (n,): (i64,) = casebook_server::on_pool!(&db, pool => sqlx::query_as(
                "select (select count(*) from audit_log) + (select count(*) from change_ledger)")
                .fetch_one(pool).await)
            .unwrap();
            n
        }
    };
    wait_for_badge(&lee, "all changes saved").await;
    // Each opened the note once and the log says so once each: a page is built once per
    // tap, not again when the address changes to match it.
    let consultations = || {
        let (db, note) = (server.db.clone(), note.clone());
        async move {
            let counts: Vec<(String, i64)> = casebook_server::on_pool!(&db, pool => sqlx::query_as(
                "select staff_id, count(*) from audit_log where operation = 'consultation' \
                 and document_id = $1 group by staff_id order by staff_id")
                .bind(&note).fetch_all(pool).await)
            .unwrap();
            counts.into_iter().map(|(_, n)| n).collect::<Vec<i64>>()
        }
    };
    eventually("both openings of the note to be logged", WAIT, || async {
        Ok(consultations().await.len() == 2)
    })
    .await
    .unwrap();
    assert_eq!(
        consultations().await,
        vec![1, 1],
        "one consultation logged for each opening of the note"
    );
    let before = stored(&server).await;
    click(&lee, Locator::Id("field-observations")).await;
    click(&jo, Locator::Id("field-location")).await;
    for (browser, other, section) in [
        (
            &jo,
            "Lee Watt",
            "Observations of the home and acute risk factors",
        ),
        (&lee, "Jo Ritchie", "Location"),
    ] {
        let expected = format!("{other} is here too, in “{section}”");
        eventually(
            &format!("presence: {expected}"),
            Duration::from_secs(2),
            || {
                let expected = expected.clone();
                async move { Ok(text_of(browser, "#presence").await.contains(&expected)) }
            },
        )
        .await
        .unwrap();
    }
    assert!(
        text_of(&lee, "[data-field='location']")
            .await
            .contains("Jo Ritchie is working here")
    );
    assert_eq!(
        stored(&server).await,
        before,
        "presence never reaches the database"
    );

    // Jo loses the signal and keeps writing; Lee writes at the same time.
    network.set_online(false);
    wait_for_badge(&jo, "Offline").await;
    type_into(
        &jo,
        "field-observations",
        "Jo offline: two children seen, calm.",
    )
    .await;
    type_into(&lee, "field-discussed", " Lee: new job starts Monday.").await;
    wait_for_badge(&lee, "all changes saved").await;
    wait_for_badge(&jo, "waiting").await;

    network.set_online(true);
    for (browser, who) in [(&jo, "Jo"), (&lee, "Lee")] {
        eventually(
            &format!("{who}'s page to hold both contributions"),
            WAIT,
            || async move {
                let discussed = value_of(browser, "field-discussed").await;
                let observations = value_of(browser, "field-observations").await;
                Ok(discussed.contains("Jo: housing is settled.")
                    && discussed.contains("Lee: new job starts Monday.")
                    && observations.contains("two children seen"))
            },
        )
        .await
        .unwrap();
    }
    wait_for_badge(&jo, "all changes saved").await;
    assert_eq!(jo.current_url().await.unwrap(), note_url);

    jo.close().await.unwrap();
    lee.close().await.unwrap();
    driver.stop().await;
}

#[tokio::test]
async fn a_review_filled_in_offline_reaches_the_seniors_list_and_an_identification_is_approved_on_screen()
 {
    let server = TestServer::start_with(Some(dist())).await.unwrap();
    let jo_session = server.sign_in("worker.north1").await;
    // One of Jo's cases not on the register (the demo registers some).
    let senior_session = server.sign_in("senior.north").await;
    let registered: Vec<casebook_shared::api::RegisterEntry> = reqwest::Client::new()
        .get(format!("{}/api/register", server.base))
        .header("cookie", &senior_session.cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let case = jo_session
        .cases()
        .await
        .unwrap()
        .into_iter()
        .find(|c| registered.iter().all(|r| r.case != c.id))
        .unwrap();
    let target: std::net::SocketAddr = server.base.trim_start_matches("http://").parse().unwrap();
    let network = NetworkSwitch::start(target).await.unwrap();
    let mut driver = ChromeDriver::start().await.unwrap();
    let tablet = driver.browser().await.unwrap();
    let office = driver.browser().await.unwrap();

    sign_in(&tablet, &network.url(), "worker.north1").await;
    open_case(&tablet, &case.id.to_string()).await;
    network.set_online(false);
    wait_for_badge(&tablet, "Offline").await;

    // The whole review, on the tablet with no signal.
    click(
        &tablet,
        Locator::Css("button.new-record[data-kind='review']"),
    )
    .await;
    wait_for(&tablet, Locator::Id("field-persons_view")).await;
    set_value(&tablet, "field-held_on", "2026-11-30")
        .await
        .unwrap();
    type_into(&tablet, "field-attendees", "Jo Ritchie, Sam Kerr (SSW)").await;
    click(&tablet, Locator::Id("field-ssw_present")).await;
    set_value(&tablet, "field-person_present", "Yes")
        .await
        .unwrap();
    type_into(&tablet, "field-action_progress", "All actions on track.").await;
    type_into(
        &tablet,
        "field-persons_view",
        "Supervision helps; buses are a barrier.",
    )
    .await;
    type_into(
        &tablet,
        "field-service_improvement",
        "Evening appointments.",
    )
    .await;
    // The last choice made and "Check it is complete" tapped in the same moment: the check
    // counts that choice (the page shows the record as changed a moment after each change).
    tablet
        .execute(
            "const decision = document.getElementById('field-decision');
             decision.value = 'Continue';
             decision.dispatchEvent(new Event('change', { bubbles: true }));
             document.getElementById('check-record').click();",
            vec![],
        )
        .await
        .unwrap();
    wait_for(&tablet, Locator::Id("record-complete")).await;
    wait_for_badge(&tablet, "waiting").await;

    // Back in signal: the senior's list shows it, ready to complete.
    network.set_online(true);
    wait_for_badge(&tablet, "all changes saved").await;
    // The senior taps "HRO" as soon as the app bar shows, before the case list has come
    // (held back here for two seconds, as on a busy server): the page tapped stays.
    office.goto(&server.base).await.unwrap();
    wait_for(&office, Locator::Id("username")).await;
    office
        .execute(
            "const real = window.fetch;
             window.casesAnswered = false;
             window.fetch = (request, options) => {
               const answer = real(request, options);
               if (!String(request.url || request).includes('/api/cases')) return answer;
               return answer.then((r) => new Promise((done) => setTimeout(() => {
                 window.casesAnswered = true;
                 done(r);
               }, 2000)));
             };",
            vec![],
        )
        .await
        .unwrap();
    submit_sign_in(&office, "senior.north").await;
    wait_for(&office, Locator::Id("hro")).await;
    click(&office, Locator::Id("hro")).await;
    until(&office, "the case list's answer", || async {
        Ok(office
            .execute("return window.casesAnswered;", vec![])
            .await?
            == json!(true))
    })
    .await;
    wait_for_badge(&office, "all changes saved").await;
    assert_eq!(
        office.current_url().await.unwrap().fragment(),
        Some("/hro"),
        "the page the senior tapped is still showing"
    );
    wait_for_text(&office, "#reviews-ready", &case.reference).await;
    let complete = format!(
        "//ul[@id='reviews-ready']/li[contains(., '{}')]//button",
        case.reference
    );
    click(&office, Locator::XPath(&complete)).await;
    wait_for_text(&office, "#hro-status", "done").await;
    screenshot(&office, "hro-senior").await;

    // An identification form from the tablet, decided in the office.
    tablet
        .goto(&format!("{}/#/case/{}", network.url(), case.id))
        .await
        .unwrap();
    wait_for(
        &tablet,
        Locator::Css("button.new-record[data-kind='identification']"),
    )
    .await;
    click(
        &tablet,
        Locator::Css("button.new-record[data-kind='identification']"),
    )
    .await;
    wait_for(&tablet, Locator::Id("field-index_offence")).await;
    type_into(&tablet, "field-index_offence", "Assault to severe injury").await;
    set_value(&tablet, "field-convicted_on_indictment", "Yes")
        .await
        .unwrap();
    click(&tablet, Locator::Id("field-criterion_a")).await;
    type_into(
        &tablet,
        "field-part1_reasons",
        "Serious violence on indictment.",
    )
    .await;
    click(&tablet, Locator::Id("field-criterion_i")).await;
    type_into(&tablet, "field-part2_evidence", "LS/CMI high.").await;
    type_into(&tablet, "field-at_risk", "Known adult").await;
    set_value(&tablet, "field-proposed_route", "In-house")
        .await
        .unwrap();
    wait_for_badge(&tablet, "all changes saved").await;
    click(&tablet, Locator::Id("submit-identification")).await;
    wait_for_text(&tablet, "#record-action-status", "Submitted").await;

    office.refresh().await.unwrap();
    let approve = format!(
        "//ul[@id='pending-decisions']/li[contains(., '{}')]//button[contains(@class, 'approve')]",
        case.reference
    );
    wait_for(&office, Locator::XPath(&approve)).await;
    type_into(&office, "decision-rationale", "Meets parts 1(a) and 2(i).").await;
    click(&office, Locator::XPath(&approve)).await;
    wait_for_text(&office, "#hro-register", &case.reference).await;
    assert!(text_of(&office, "#hro-register").await.contains("In-house"));

    // The senior's team view: workload, and the team's cases with their next review.
    click(&office, Locator::Id("team")).await;
    wait_for_text(&office, "#workload", "Jo Ritchie").await;
    wait_for_text(&office, "#team-cases", &case.reference).await;
    screenshot(&office, "team").await;

    tablet.close().await.unwrap();
    office.close().await.unwrap();
    driver.stop().await;
}

#[tokio::test]
async fn every_case_is_prefetched_and_the_handover_summary_of_a_demo_hro_case_holds_its_facts_offline()
 {
    let server = TestServer::start_with(Some(dist())).await.unwrap();
    let jo = server.sign_in("worker.north1").await;
    let senior = server.sign_in("senior.north").await;
    let register: Vec<casebook_shared::api::RegisterEntry> = reqwest::Client::new()
        .get(format!("{}/api/register", server.base))
        .header("cookie", &senior.cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let cases = jo.cases().await.unwrap();
    let case = cases
        .iter()
        .find(|c| c.hro.is_some())
        .expect("the demo gives Jo an HRO case")
        .clone();
    let entry = register.iter().find(|r| r.case == case.id).unwrap();
    let target: std::net::SocketAddr = server.base.trim_start_matches("http://").parse().unwrap();
    let network = NetworkSwitch::start(target).await.unwrap();
    let mut driver = ChromeDriver::start().await.unwrap();
    let tablet = driver.browser().await.unwrap();

    // Signs in with every text the sync badge shows recorded from the start, transient
    // ones included.
    tablet.goto(&network.url()).await.unwrap();
    wait_for(&tablet, Locator::Id("username")).await;
    tablet
        .execute(
            "window.badgeTexts = new Set();
             const keep = (t) => { if (t) window.badgeTexts.add(t); };
             new MutationObserver((records) => {
                 for (const r of records) {
                     if (!r.target.parentElement || !r.target.parentElement.closest('#sync-status')) continue;
                     keep(r.oldValue);
                     keep(r.target.textContent);
                     for (const n of r.removedNodes) keep(n.textContent);
                 }
             }).observe(document.body, {subtree: true, childList: true, characterData: true, characterDataOldValue: true});",
            vec![],
        )
        .await
        .unwrap();
    submit_sign_in(&tablet, "worker.north1").await;
    wait_for(&tablet, Locator::Id("sign-out")).await;
    // Every case is fetched in the background; the list says when all are ready offline.
    let all = format!("{n} of {n} cases ready offline", n = cases.len());
    wait_for_text(&tablet, "#offline-progress", &all).await;
    // Ready offline means written to the device's storage, not only taken in: at that moment
    // IndexedDB holds every record of every case.
    let stored: Vec<String> = serde_json::from_value(
        tablet
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 const req = indexedDB.open('casebook');
                 req.onsuccess = () => {
                   const keys = req.result.transaction(['chunks'], 'readonly').objectStore('chunks').getAllKeys();
                   keys.onsuccess = () => { req.result.close(); done(keys.result.map((k) => k.split('/')[0])); };
                 };",
                vec![],
            )
            .await
            .unwrap(),
    )
    .unwrap();
    for listed in &cases {
        for record in &listed.records {
            assert!(
                stored.contains(&record.to_string()),
                "case {} was shown ready offline before its record {record} was stored",
                listed.reference
            );
        }
    }
    // What the server sent was never shown as this worker's changes waiting to be sent.
    let shown: Vec<String> = serde_json::from_value(
        tablet
            .execute("return [...window.badgeTexts];", vec![])
            .await
            .unwrap(),
    )
    .unwrap();
    assert!(
        shown
            .iter()
            .any(|t| t.contains("syncing") || t.contains("saved")),
        "the badge was watched: {shown:?}"
    );
    assert!(
        !shown
            .iter()
            .any(|t| t.contains("waiting") && !t.contains("no changes waiting")),
        "a fresh device taking in its caseload showed changes waiting: {shown:?}"
    );
    // The duty senior of the day, one tap away (the demo fills the rota).
    wait_for_text(&tablet, "#duty-senior", "Duty senior today:").await;
    assert_eq!(
        tablet
            .find_all(Locator::Css(".badge.ready"))
            .await
            .unwrap()
            .len(),
        cases.len()
    );
    open_case(&tablet, &case.id.to_string()).await;
    wait_for_badge(&tablet, "all changes saved").await;
    click(&tablet, Locator::Id("open-handover")).await;
    wait_for_text(&tablet, "#handover-partners", "PC Morven Baird").await;

    // Field by field, against what the demo recorded.
    let check = |section: &'static str, facts: Vec<String>| {
        let tablet = &tablet;
        async move {
            let text = text_of(tablet, section).await;
            for fact in facts {
                assert!(text.contains(&fact), "{section} lacks {fact:?}: {text}");
            }
        }
    };
    check(
        "#handover-why",
        vec![
            format!("On the HRO register since {}", entry.start_date),
            format!(
                "MAPPA category {} level {}",
                entry.mappa_category, entry.mappa_level
            ),
            "Assault to severe injury".into(),
            format!("Next review due: {}", entry.next_review),
        ],
    )
    .await;
    check(
        "#handover-risk",
        vec![
            "Former partner; new partners.".into(),
            "Alcohol, unemployment, contact with the former partner.".into(),
            "Stable work, Caledonian programme, family support.".into(),
        ],
    )
    .await;
    check(
        "#handover-plan",
        vec![
            "Weekly home visits".into(),
            "Liaise with the victim's advocate".into(),
            "If Missed appointment: Same-day home visit and police check (Duty senior)".into(),
        ],
    )
    .await;
    check(
        "#handover-partners",
        vec![
            "Police named person: PC Morven Baird".into(),
            "01234 500 101".into(),
            "NHS SPOC: Dr Lewis Grant".into(),
            "MAPPA coordinator: Fiona Marr".into(),
        ],
    )
    .await;
    check(
        "#handover-visit",
        vec![
            "Home visit · Attended and complied".into(),
            "Work, drinking at weekends, the Caledonian group.".into(),
            "Check with the group facilitator".into(),
        ],
    )
    .await;
    let recent = tablet
        .find_all(Locator::Css("#handover-chronology li"))
        .await
        .unwrap()
        .len();
    assert!(
        (3..=5).contains(&recent),
        "the last entries, at most five: {recent}"
    );
    screenshot(&tablet, "handover").await;

    // No network: a reload opens it from the device (after the password).
    network.set_online(false);
    reload_and_unlock(&tablet).await;
    wait_for_text(&tablet, "#handover-partners", "PC Morven Baird").await;
    wait_for_text(&tablet, "#handover-plan", "Weekly home visits").await;

    tablet.close().await.unwrap();
    driver.stop().await;
}

/// The pages not used on a visit come in a module of their own (`app/src/pages/later.rs`),
/// fetched when one first opens. The service worker stores it with the rest of the app, so
/// they open with no network; when it cannot be had the page says so, the rest of the app
/// carries on, and once the network is back the page opens.
#[tokio::test]
async fn a_page_split_off_the_first_download_opens_offline_and_says_so_when_it_cannot_be_had() {
    // The server is bound (not left in `..`), so it lives to the end of the test.
    let Offline {
        server: _server,
        network,
        case,
        mut driver,
        ..
    } = co_workers_behind_a_switch().await;
    let tablet = jo_ready_offline(&mut driver, &network).await;
    let cached_pieces = "const done = arguments[arguments.length - 1];
         caches.keys()
             .then((names) => Promise.all(names.map((n) => caches.open(n).then((c) => c.keys()))))
             .then((lists) => done(lists.flat().map((r) => r.url).filter((u) => /\\/split_[^/]*\\.wasm$/.test(u))));";
    let pieces: Vec<String> =
        serde_json::from_value(tablet.execute_async(cached_pieces, vec![]).await.unwrap()).unwrap();
    assert!(
        !pieces.is_empty(),
        "the service worker stored the split-off pages with the app"
    );
    let fetched_pieces = "return performance.getEntriesByType('resource')
         .filter((r) => /\\/split_[^/]*\\.wasm$/.test(r.name)).length;";
    assert_eq!(
        tablet.execute(fetched_pieces, vec![]).await.unwrap(),
        json!(0),
        "the page itself fetched no split-off module before one was opened"
    );

    // With no network, from a fresh start: the devices page opens from the device.
    network.set_online(false);
    reload_and_unlock(&tablet).await;
    wait_for(&tablet, Locator::Id("devices")).await;
    click(&tablet, Locator::Id("devices")).await;
    wait_for(&tablet, Locator::Id("devices-heading")).await;

    // The split-off module gone from the device and no network: the page says so.
    let dropped = "const done = arguments[arguments.length - 1];
         caches.keys()
             .then((names) => Promise.all(names.map((n) => caches.open(n).then((c) =>
                 c.keys().then((rs) => Promise.all(rs.filter((r) => /\\/split_[^/]*\\.wasm$/.test(r.url)).map((r) => c.delete(r))))))))
             .then(() => done(true));";
    tablet.execute_async(dropped, vec![]).await.unwrap();
    reload_and_unlock(&tablet).await;
    wait_for(&tablet, Locator::Id("devices")).await;
    click(&tablet, Locator::Id("devices")).await;
    wait_for_text(
        &tablet,
        "main .notice",
        "could not be loaded onto this device",
    )
    .await;
    // Everything else still works: the case opens from the device.
    click(&tablet, Locator::Id("back-to-cases")).await;
    open_case(&tablet, &case).await;
    wait_for(&tablet, Locator::Id("chronology")).await;

    // The network back, the same page opens (a failed fetch is not remembered).
    network.set_online(true);
    wait_for_badge(&tablet, "all changes saved").await;
    wait_for(&tablet, Locator::Id("devices")).await;
    click(&tablet, Locator::Id("devices")).await;
    wait_for(&tablet, Locator::Id("devices-heading")).await;

    tablet.close().await.unwrap();
    driver.stop().await;
}

/// Jo's tablet, signed in through `network`, once the app and the caseload are on it.
async fn jo_ready_offline(driver: &mut ChromeDriver, network: &NetworkSwitch) -> Client {
    let tablet = driver.browser().await.unwrap();
    sign_in(&tablet, &network.url(), "worker.north1").await;
    service_worker_ready(&tablet).await.unwrap();
    all_ready_within(&tablet, "the caseload", WAIT)
        .await
        .unwrap();
    tablet
}

/// A copy of the built app in a folder of its own, removed when dropped: a test that
/// deploys a new build changes its files.
struct AppCopy(PathBuf);

impl AppCopy {
    fn of(dist: &std::path::Path) -> Self {
        let dir = std::env::temp_dir().join(format!("casebook-app-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        for entry in std::fs::read_dir(dist).unwrap() {
            let path = entry.unwrap().path();
            assert!(path.is_file(), "the built app is one folder of files");
            std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
        }
        Self(dir)
    }

    /// Makes the app look like the next build, as a deployment replaces it: the modules
    /// split off the first download get new names (in their loader and in the service
    /// worker's list too), and the service worker a new cache name. The changed files'
    /// precompressed copies are removed (the server then sends the files as they are).
    /// Returns the split-off modules' new names.
    fn deploy_next_build(&self) -> Vec<String> {
        let dir = &self.0;
        let drop_compressed = |name: &str| {
            for ext in ["br", "gz"] {
                let _ = std::fs::remove_file(dir.join(format!("{name}.{ext}")));
            }
        };
        let mut renames = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            if name.starts_with("split_") && name.ends_with(".wasm") {
                let next = name.replace(".wasm", "-next.wasm");
                std::fs::rename(dir.join(&name), dir.join(&next)).unwrap();
                drop_compressed(&name);
                renames.push((name, next));
            }
        }
        assert!(!renames.is_empty(), "the build split pages off");
        for file in ["__wasm_split.js", "sw.js"] {
            let old = std::fs::read_to_string(dir.join(file)).unwrap();
            let mut text = old.clone();
            for (name, next) in &renames {
                text = text.replace(name.as_str(), next);
            }
            if file == "sw.js" {
                let cache = "const CACHE = 'casebook-shell-";
                assert!(text.contains(cache), "sw.js names its cache");
                text = text.replace(cache, "const CACHE = 'casebook-shell-next-");
            }
            assert_ne!(text, old, "{file} names the split-off modules");
            std::fs::write(dir.join(file), text).unwrap();
            drop_compressed(file);
        }
        renames.into_iter().map(|(_, next)| next).collect()
    }
}

impl Drop for AppCopy {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Whether the page offers a reload into a new version.
async fn update_offered(browser: &Client) -> bool {
    !browser
        .find_all(Locator::Id("update-ready"))
        .await
        .unwrap()
        .is_empty()
}

/// Casebook is updated on the server while a tablet has the app open. The service worker
/// takes the new build onto the device (and removes the old one), so the page, still
/// running the old build, cannot open the pages split off it: it says a new version is
/// ready, and reloading into it keeps the entries made before, one of them made offline
/// and refused by the browser's storage (the reload waits for the server to have it). The
/// first install on a device is not announced as an update.
#[tokio::test]
async fn a_new_version_deployed_while_the_app_is_open_is_offered_as_a_reload_that_keeps_everything()
{
    let app = AppCopy::of(&dist());
    // The server is bound (not left in `..`), so it lives to the end of the test.
    let Offline {
        server: _server,
        network,
        case,
        mut driver,
        ..
    } = co_workers_behind_a_switch_serving(app.0.clone()).await;
    let tablet = jo_ready_offline(&mut driver, &network).await;
    open_case(&tablet, &case).await;
    add_entry(&tablet, "Home visit before the update").await;
    wait_for_badge(&tablet, "all changes saved").await;
    assert_eq!(
        tablet
            .execute(
                "return navigator.serviceWorker.controller !== null;",
                vec![]
            )
            .await
            .unwrap(),
        json!(true),
        "the first service worker has taken over the page"
    );
    assert!(
        !update_offered(&tablet).await,
        "the first install is not a new version"
    );

    // The next build is deployed; the tablet finds it when its connection comes back.
    let pieces = app.deploy_next_build();
    network.set_online(false);
    wait_for_badge(&tablet, "Offline").await;
    network.set_online(true);
    wait_for(&tablet, Locator::Id("update-ready")).await;

    // The page still runs the old build. Once the new one has removed the old one from the
    // device (the page is told of the new version as it takes over, a moment before), the
    // old build's split-off module is nowhere to be had, and the page says so.
    until(
        &tablet,
        "the old build's files to leave the device",
        || async {
            let caches = tablet
                .execute_async(
                    "const done = arguments[arguments.length - 1]; caches.keys().then(done);",
                    vec![],
                )
                .await?;
            Ok(serde_json::from_value::<Vec<String>>(caches)?
                .iter()
                .all(|name| name.starts_with("casebook-shell-next-")))
        },
    )
    .await;
    click(&tablet, Locator::Id("devices")).await;
    wait_for_text(&tablet, "#not-here", "could not be loaded onto this device").await;

    // An entry made with no network that the browser refuses to store is only in the page:
    // "Reload now" waits until the server has it, and only then reloads.
    click(&tablet, Locator::Id("back-to-cases")).await;
    open_case(&tablet, &case).await;
    network.set_online(false);
    wait_for_badge(&tablet, "Offline").await;
    tablet
        .execute(
            "window.__samePage = true;
             IDBTransaction.prototype.commit = function () { this.abort(); };",
            vec![],
        )
        .await
        .unwrap();
    add_entry(&tablet, "Entry only in the page").await;
    wait_for_text(
        &tablet,
        "div.notice[role=alert]",
        "could not save your work locally",
    )
    .await;
    click(&tablet, Locator::Id("reload-app")).await;
    wait_for_text(&tablet, "#reload-app", "Saving your changes first").await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        tablet
            .execute("return window.__samePage === true;", vec![])
            .await
            .unwrap(),
        json!(true),
        "no reload while a change is neither on the device nor on the server"
    );
    network.set_online(true);

    // Once the server has it, the page reloads into the new build: its split-off page
    // opens, the notice is gone and both entries are there.
    until(&tablet, "the page to reload", || async {
        Ok(tablet
            .execute("return window.__samePage !== true;", vec![])
            .await?
            == json!(true))
    })
    .await;
    wait_for_text(&tablet, "#chronology", "Entry only in the page").await;
    click(&tablet, Locator::Id("devices")).await;
    wait_for(&tablet, Locator::Id("devices-heading")).await;
    let fetched: Vec<String> = serde_json::from_value(
        tablet
            .execute(
                "return performance.getEntriesByType('resource').map((r) => r.name);",
                vec![],
            )
            .await
            .unwrap(),
    )
    .unwrap();
    assert!(
        pieces
            .iter()
            .any(|p| fetched.iter().any(|f| f.ends_with(&format!("/{p}")))),
        "the reloaded page runs the new build ({pieces:?} among {fetched:?})"
    );
    assert!(
        !update_offered(&tablet).await,
        "the new version, once running, is not announced again"
    );
    click(&tablet, Locator::LinkText("← My cases")).await;
    open_case(&tablet, &case).await;
    wait_for_text(&tablet, "#chronology", "Home visit before the update").await;
    wait_for_text(&tablet, "#chronology", "Entry only in the page").await;

    tablet.close().await.unwrap();
    driver.stop().await;
}

/// A plan action typed and marked "withhold from the person" in the same moment (a busy
/// tablet handles the tap before the page's copy of the record has caught up with the
/// typing): both are kept, in either order. Reading that copy, the tap wrote back the
/// action's old text, or typing wrote back the old withheld flag, which would show the
/// person something marked to be kept from them.
#[tokio::test]
async fn a_plan_action_typed_and_withheld_in_the_same_moment_keeps_both() {
    let (_server, _case, driver, browser) = signed_in_on_a_case().await;
    click(
        &browser,
        Locator::Css("button.new-record[data-kind='risk-plan']"),
    )
    .await;
    wait_for(&browser, Locator::Css("#items-actions .add-item")).await;
    for _ in 0..2 {
        click(&browser, Locator::Css("#items-actions .add-item")).await;
    }
    until(&browser, "two plan actions", || async {
        Ok(browser
            .find_all(Locator::Css("#items-actions .item"))
            .await?
            .len()
            == 2)
    })
    .await;
    // The first is begun, then finished and withheld at once; the second is withheld and
    // then typed at once.
    let helpers = "const items = document.querySelectorAll('#items-actions .item');
         const type = (item, text) => {
           const field = item.querySelector('textarea[id$=\"-action\"]');
           field.value = text;
           field.dispatchEvent(new Event('input', { bubbles: true }));
         };
         const withhold = (item) => item.querySelector('input[id^=\"withhold-actions-\"]').click();";
    let begun = format!("{helpers} type(items[0], 'Weekly contact');");
    browser.execute(&begun, vec![]).await.unwrap();
    wait_for_badge(&browser, "all changes saved").await;
    let at_once = format!(
        "{helpers}
         type(items[0], 'Weekly contact with the police offender manager');
         withhold(items[0]);
         withhold(items[1]);
         type(items[1], 'Address checks by the housing officer');"
    );
    browser.execute(&at_once, vec![]).await.unwrap();
    wait_for_badge(&browser, "all changes saved").await;
    let state = "return [...document.querySelectorAll('#items-actions .item')].map((item) =>
         [item.querySelector('textarea[id$=\"-action\"]').value,
          item.querySelector('input[id^=\"withhold-actions-\"]').checked]);";
    let mut shown: Vec<(String, bool)> =
        serde_json::from_value(browser.execute(state, vec![]).await.unwrap()).unwrap();
    shown.sort();
    assert_eq!(
        shown,
        vec![
            ("Address checks by the housing officer".to_owned(), true),
            (
                "Weekly contact with the police offender manager".to_owned(),
                true
            ),
        ],
        "both actions keep their text and are withheld"
    );

    browser.close().await.unwrap();
    driver.stop().await;
}
