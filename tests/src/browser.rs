//! Headless Chromium through WebDriver (chromedriver + fantoccini), and a TCP proxy that can
//! cut a browser off the network (a real offline: connections dropped and refused).

use anyhow::{Context, bail};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::database::TempDir;

/// A chromedriver process on a free port. It leads a process group of its own, which every
/// Chromium it starts joins: dropping it (a test that panics never reaches `stop`) kills the
/// whole group, so a failed test leaves no browsers running to take the CPU from the tests
/// after it.
pub struct ChromeDriver {
    child: tokio::process::Child,
    group: Option<u32>,
    port: u16,
    profiles: Vec<TempDir>,
}

impl Drop for ChromeDriver {
    fn drop(&mut self) {
        self.kill_group();
    }
}

impl ChromeDriver {
    /// Starts chromedriver (from PATH).
    pub async fn start() -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = tokio::process::Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .context(
                "starting chromedriver (install the Debian packages chromium and chromium-driver)",
            )?;
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            if Instant::now() > deadline {
                bail!("chromedriver did not start");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(Self {
            group: child.id(),
            child,
            port,
            profiles: Vec::new(),
        })
    }

    /// A new headless Chromium with a fresh profile.
    pub async fn browser(&mut self) -> anyhow::Result<Client> {
        let profile = TempDir::new("casebook-chromium");
        let args = vec![
            "--headless=new".to_owned(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--window-size=768,1024".into(),
            format!("--user-data-dir={}", profile.0.display()),
        ];
        self.profiles.push(profile);
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": { "binary": chromium_binary(), "args": args },
        });
        let serde_json::Value::Object(caps) = caps else {
            unreachable!()
        };
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .context("opening a Chromium session")?;
        Ok(client)
    }

    /// The profile folder of the `n`th browser started (0 first).
    pub fn profile(&self, n: usize) -> &std::path::Path {
        &self.profiles[n].0
    }

    /// Stops chromedriver.
    pub async fn stop(mut self) {
        self.kill_group();
        let _ = self.child.kill().await;
    }

    /// Kills chromedriver and every browser it started (once). The group's id stays its own
    /// while any of them runs; only if all had exited on their own could it have been taken
    /// by a new group, which on a test machine is not a practical risk.
    fn kill_group(&mut self) {
        if let Some(group) = self
            .group
            .take()
            .and_then(|g| libc::pid_t::try_from(g).ok())
        {
            // SAFETY: killpg only sends a signal, to the group made for chromedriver at spawn.
            unsafe {
                libc::killpg(group, libc::SIGKILL);
            }
        }
    }
}

fn chromium_binary() -> String {
    std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into())
}

/// Opens the app at `base` and signs in as `username` with the demo password.
pub async fn sign_in(browser: &Client, base: &str, username: &str) {
    browser.goto(base).await.unwrap();
    wait_for(browser, Locator::Id("username")).await;
    submit_sign_in(browser, username).await;
    wait_for(browser, Locator::Id("sign-out")).await;
}

/// On the sign-in page: fills in `username` and the demo password and taps "Sign in".
pub async fn submit_sign_in(browser: &Client, username: &str) {
    type_into(browser, "username", username).await;
    type_into(browser, "password", crate::http::PASSWORD).await;
    click(browser, Locator::Id("sign-in")).await;
}

/// Waits until `check` returns true, polling.
pub async fn eventually<F, Fut>(what: &str, timeout: Duration, mut check: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        match check().await {
            Ok(true) => return Ok(()),
            Ok(false) | Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(150)).await
            }
            Ok(false) => bail!("timed out waiting for: {what}"),
            Err(e) => return Err(e.context(format!("waiting for: {what}"))),
        }
    }
}

/// Waits until `check` holds on `browser`'s page, polling; if it does not within
/// [`STEP_TIMEOUT`], panics naming `what`, with what the page shows.
pub async fn until<F, Fut>(browser: &Client, what: &str, check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    if let Err(e) = eventually(what, STEP_TIMEOUT, check).await {
        panic!("{e:#}\n{}", page_state(browser).await);
    }
}

/// Whether the case list's progress line ("N of M cases ready offline") says all are ready.
fn all_ready(progress: &str) -> bool {
    let words: Vec<&str> = progress.split_whitespace().collect();
    matches!(words.as_slice(), [done, "of", total, ..] if done == total && *total != "0")
}

/// Waits until the case list says every case is ready offline: only then has the device
/// stored every record, as a worker checks before going out of signal.
pub async fn all_ready_within(
    browser: &Client,
    what: &str,
    timeout: Duration,
) -> anyhow::Result<()> {
    let waited = eventually(&format!("{what} to be ready offline"), timeout, || async {
        Ok(all_ready(&text_of(browser, "#offline-progress").await))
    })
    .await;
    match waited {
        Ok(()) => Ok(()),
        Err(e) => bail!("{e:#}\n{}", page_state(browser).await),
    }
}

/// Waits until the page's service worker is ready and has stored the app (it opens offline
/// only then).
pub async fn service_worker_ready(browser: &Client) -> anyhow::Result<()> {
    let ready = browser
        .execute_async(
            "const done = arguments[arguments.length - 1];
             navigator.serviceWorker.ready.then(() => caches.keys())
                 .then((k) => done(k.length > 0)).catch(() => done(false));",
            vec![],
        )
        .await?;
    anyhow::ensure!(
        ready == json!(true),
        "the service worker is not ready or stored nothing"
    );
    Ok(())
}

/// How long browser steps may take before a test fails.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(45);

/// Clicks the element `locator` finds (panics, naming it, if there is none).
pub async fn click(browser: &Client, locator: Locator<'_>) {
    // The app re-renders lists as documents change: an element found a moment ago may have
    // been replaced. Find it again then (a person would simply tap the new one).
    for attempt in 0.. {
        let element = browser
            .find(locator)
            .await
            .unwrap_or_else(|e| panic!("no {locator:?} to click: {e}"));
        // Into the middle of the screen first: the app bar is sticky and would take the click.
        let _ = browser
            .execute(
                "arguments[0].scrollIntoView({block: 'center'});",
                vec![serde_json::to_value(&element).expect("an element serialises")],
            )
            .await;
        match element.click().await {
            Ok(_) => return,
            Err(e) if attempt < 5 && e.to_string().contains("stale element") => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("clicking {locator:?}: {e}"),
        }
    }
}

/// Types `text` into the element with id `id`, as a person would.
pub async fn type_into(browser: &Client, id: &str, text: &str) {
    let element = browser
        .find(Locator::Id(id))
        .await
        .unwrap_or_else(|e| panic!("no #{id} to type into: {e}"));
    element
        .send_keys(text)
        .await
        .unwrap_or_else(|e| panic!("typing into #{id}: {e}"));
}

/// Waits until `locator` finds an element (panics with what the page shows if none comes).
pub async fn wait_for(browser: &Client, locator: Locator<'_>) {
    if let Err(e) = browser
        .wait()
        .at_most(STEP_TIMEOUT)
        .for_element(locator)
        .await
    {
        panic!(
            "waiting for {locator:?}: {e}\n{}",
            page_state(browser).await
        );
    }
}

/// What the page shows, for a failing step's message: where it is, the sync badge, every
/// field's value (passwords left out) and the start of the page's text. Tests use only
/// synthetic data, so this may be printed.
async fn page_state(browser: &Client) -> String {
    let script = "const main = document.querySelector('main') || document.body;
         const fields = [...main.querySelectorAll('input, select, textarea')]
             .filter((e) => e.id && e.type !== 'password')
             .map((e) => e.id + '=' + (e.type === 'checkbox' ? e.checked : JSON.stringify(e.value)));
         const badge = document.getElementById('sync-status');
         return 'page at ' + location.href + '\\nsync badge: ' + (badge ? badge.innerText : '(none)')
             + '\\nfields: ' + fields.join(', ') + '\\ntext: ' + main.innerText.slice(0, 2000);";
    match browser.execute(script, vec![]).await {
        Ok(serde_json::Value::String(state)) => state,
        Ok(other) => format!("page state: {other}"),
        Err(e) => format!("page state could not be read: {e}"),
    }
}

/// Text of the first element matching a CSS selector ("" when absent).
pub async fn text_of(browser: &Client, css: &str) -> String {
    match browser.find(Locator::Css(css)).await {
        Ok(el) => el.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// Sets a form control's value the way a person's input would (input and change events).
pub async fn set_value(browser: &Client, id: &str, value: &str) -> anyhow::Result<()> {
    browser
        .execute(
            "const el = document.getElementById(arguments[0]);
             el.value = arguments[1];
             el.dispatchEvent(new Event('input', { bubbles: true }));
             el.dispatchEvent(new Event('change', { bubbles: true }));",
            vec![json!(id), json!(value)],
        )
        .await
        .with_context(|| format!("setting #{id}"))?;
    Ok(())
}

/// A TCP proxy in front of the server that can take its client offline.
pub struct NetworkSwitch {
    /// Address browsers connect to.
    pub address: SocketAddr,
    online: Arc<AtomicBool>,
    cut: watch::Sender<u64>,
    task: tokio::task::JoinHandle<()>,
}

impl NetworkSwitch {
    /// Proxies `127.0.0.1:<new port>` to `target`.
    pub async fn start(target: SocketAddr) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let online = Arc::new(AtomicBool::new(true));
        let (cut, _) = watch::channel(0u64);
        let task = {
            let online = online.clone();
            let cut = cut.clone();
            tokio::spawn(async move {
                while let Ok((mut inbound, _)) = listener.accept().await {
                    if !online.load(Ordering::SeqCst) {
                        drop(inbound); // no network: the connection dies at once
                        continue;
                    }
                    let mut cut = cut.subscribe();
                    tokio::spawn(async move {
                        let Ok(mut outbound) = TcpStream::connect(target).await else {
                            return;
                        };
                        // No Nagle on either leg, as between the browser and the server.
                        let _ = inbound.set_nodelay(true);
                        let _ = outbound.set_nodelay(true);
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                            _ = cut.changed() => {}
                        }
                    });
                }
            })
        };
        Ok(Self {
            address,
            online,
            cut,
            task,
        })
    }

    /// Cuts every connection and refuses new ones (`false`), or lets them through (`true`).
    pub fn set_online(&self, online: bool) {
        self.online.store(online, Ordering::SeqCst);
        if !online {
            self.cut.send_modify(|n| *n += 1);
        }
    }

    /// `http://` URL of the proxy.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }
}

impl Drop for NetworkSwitch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Whether `needle` appears, as UTF-8 or UTF-16LE bytes, in any file under `folder`.
pub fn folder_contains(folder: &std::path::Path, needle: &str) -> bool {
    let utf8 = needle.as_bytes().to_vec();
    let utf16: Vec<u8> = needle.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let mut pending = vec![folder.to_path_buf()];
    while let Some(path) = pending.pop() {
        if path.is_dir() {
            if let Ok(entries) = std::fs::read_dir(&path) {
                pending.extend(entries.flatten().map(|e| e.path()));
            }
        } else if let Ok(data) = std::fs::read(&path)
            && [&utf8, &utf16]
                .iter()
                .any(|n| data.windows(n.len()).any(|w| w == n.as_slice()))
        {
            return true;
        }
    }
    false
}
