//! A real browser for the page tests: headless Chromium driven through
//! WebDriver (Debian's `chromium` and `chromium-driver`; `.ci/run` installs
//! them). One chromedriver serves the whole test binary, started on first
//! use as the mail tests start their SMTP server; each test opens its own
//! browser session, one at a time, so that two cores are not shared by
//! several browsers.

use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

struct Driver {
    port: u16,
    _process: Mutex<Child>,
}

static DRIVER: OnceLock<Driver> = OnceLock::new();
/// One browser at a time across the binary's test threads.
static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn driver() -> &'static Driver {
    DRIVER.get_or_init(|| {
        assert!(
            std::path::Path::new(CHROMEDRIVER).exists() && std::path::Path::new(CHROMIUM).exists(),
            "the page tests need {CHROMIUM} and {CHROMEDRIVER} \
             (apt-get install chromium chromium-driver; .ci/run does it)"
        );
        let port = free_port();
        // Started from a thread that lives as long as the test binary, and
        // told to stop when that thread (so the binary) ends: no driver is
        // left behind, whatever the tests do.
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::os::unix::process::CommandExt;
            let mut command = Command::new(CHROMEDRIVER);
            command
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            // SAFETY: prctl is async-signal-safe; nothing else runs between
            // fork and exec.
            unsafe {
                command.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                    Ok(())
                });
            }
            sender
                .send(command.spawn().expect("chromedriver starts"))
                .expect("the test waits");
            loop {
                std::thread::park();
            }
        });
        let process = receiver.recv().expect("chromedriver started");
        // Wait until it listens.
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Driver {
            port,
            _process: Mutex::new(process),
        }
    })
}

/// A headless browser session; `close` ends it.
pub struct Browser {
    pub client: Client,
    base: String,
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

impl Browser {
    /// A new browser whose preferred language is `language` ("ja" or "en").
    pub async fn open(base: &str, language: &str) -> Browser {
        let turn = ONE_BROWSER.lock().await;
        // The driver is on loopback (plain HTTP), but the client insists on
        // a TLS provider, and two are linked into the tests.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let driver = driver();
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1200,1000",
                         format!("--lang={language}")],
                "prefs": {"intl.accept_languages": language},
            }),
        );
        let client = ClientBuilder::rustls()
            .expect("rustls connector")
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", driver.port))
            .await
            .expect("a chromedriver session");
        Browser {
            client,
            base: base.trim_end_matches('/').to_owned(),
            _turn: turn,
        }
    }

    pub async fn goto(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .expect("navigation");
    }

    pub async fn path(&self) -> String {
        self.client
            .current_url()
            .await
            .expect("url")
            .path()
            .to_owned()
    }

    pub async fn text(&self, css: &str) -> String {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .text()
            .await
            .expect("text")
    }

    pub async fn page_text(&self) -> String {
        self.text("body").await
    }

    pub async fn fill(&self, css: &str, value: &str) {
        let field = self
            .client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"));
        field.clear().await.expect("clear");
        field.send_keys(value).await.expect("typing");
    }

    pub async fn value(&self, css: &str) -> String {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .prop("value")
            .await
            .expect("value")
            .unwrap_or_default()
    }

    /// Clicks something that does not leave the page (a radio, a box).
    pub async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    /// Clicks a link or a submit button and waits until the next page has
    /// loaded (a click does not wait for the navigation it starts).
    pub async fn click_through(&self, css: &str) {
        let old_root = self.root().await;
        self.click(css).await;
        self.wait_for_next_page(old_root, css).await;
    }

    /// Types `keys` into the focused element (`fantoccini::key::Key` for
    /// Tab, Enter, arrows…).
    pub async fn press(&self, keys: &str) {
        self.client
            .active_element()
            .await
            .expect("a focused element")
            .send_keys(keys)
            .await
            .unwrap_or_else(|e| panic!("typing {keys:?}: {e}"));
    }

    /// Presses keys that leave the page (Enter in a form) and waits for the
    /// next page.
    pub async fn press_through(&self, keys: &str) {
        let old_root = self.root().await;
        self.press(keys).await;
        self.wait_for_next_page(old_root, keys).await;
    }

    /// Presses Tab until the element `css` has the focus (at most 60 times),
    /// and checks that the focus is visible: an outline is drawn.
    pub async fn tab_to(&self, css: &str) {
        let matches = format!(
            "return document.activeElement && document.activeElement.matches({})",
            serde_json::Value::from(css)
        );
        for _ in 0..60 {
            self.press(&fantoccini::key::Key::Tab.to_string()).await;
            if self.run(&matches).await == true {
                let outline = self
                    .run(
                        "const s = getComputedStyle(document.activeElement);
                         return [s.outlineStyle, s.outlineWidth];",
                    )
                    .await;
                assert!(
                    outline[0] != "none" && outline[1] != "0px",
                    "{css} has the focus but shows no outline: {outline}"
                );
                return;
            }
        }
        panic!("{css} cannot be reached with Tab");
    }

    /// Waits (up to a minute, however slow the machine) until the text of
    /// `css` contains `text`, without navigating.
    pub async fn wait_for_text(&self, css: &str, text: &str) {
        for _ in 0..600 {
            if let Ok(element) = self.client.find(Locator::Css(css)).await
                && element.text().await.is_ok_and(|t| t.contains(text))
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{css} never showed {text:?}");
    }

    /// Reaches `css` with Tab (see [`Browser::tab_to`]) and types `keys`.
    pub async fn tab_and_type(&self, css: &str, keys: &str) {
        self.tab_to(css).await;
        self.press(keys).await;
    }

    async fn root(&self) -> fantoccini::elements::Element {
        self.client
            .find(Locator::Css("html"))
            .await
            .expect("a page")
    }

    /// Waits until `old_root`'s page is gone and the next one is complete.
    async fn wait_for_next_page(&self, old_root: fantoccini::elements::Element, after: &str) {
        for _ in 0..400 {
            if old_root.tag_name().await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        for _ in 0..400 {
            let state = self
                .client
                .execute("return document.readyState", vec![])
                .await;
            if matches!(state, Ok(serde_json::Value::String(ref s)) if s == "complete") {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("the page after {after:?} did not load");
    }

    pub async fn select(&self, css: &str, value: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .select_by_value(value)
            .await
            .expect("select");
    }

    /// Saves a screenshot under `target/screenshots/` (for people to look
    /// at); with `MEDESK_DOCS_SCREENSHOTS=1` also under `docs/screenshots/`,
    /// so that running the browser tests refreshes the docs' pictures.
    pub async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("screenshot");
        save_screenshot(name, &png);
    }

    /// A screenshot of the element `css` alone (a window's screenshot shows
    /// only the page's head), stored as [`Browser::screenshot`] stores it.
    pub async fn screenshot_of(&self, css: &str, name: &str) {
        let element = self
            .client
            .find(fantoccini::Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"));
        let png = element.screenshot().await.expect("screenshot");
        save_screenshot(name, &png);
    }

    /// Resizes the window (headless: the viewport), e.g. to a phone's
    /// 390×844.
    pub async fn resize(&self, width: u32, height: u32) {
        self.client
            .set_window_size(width, height)
            .await
            .expect("window size");
    }

    /// Runs a script in the page (WebDriver's execute is not subject to the
    /// page's Content-Security-Policy).
    pub async fn run(&self, script: &str) -> serde_json::Value {
        self.client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("{script}: {e}"))
    }

    /// Checks the page with axe-core (`tests/browser/axe.min.js`, injected
    /// for the check only: medesk never serves it) and fails listing every
    /// violation of impact "serious" or "critical": rule, elements, help.
    pub async fn assert_accessible(&self) {
        const AXE: &str = include_str!("../browser/axe.min.js");
        if self.run("return typeof window.axe").await != "object" {
            self.run(&format!("{AXE}\n;return true;")).await;
        }
        let result = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, { resultTypes: ['violations'] })
                   .then(r => done(JSON.stringify({ rules: r.passes.length + r.violations.length,
                                                    violations: r.violations })))
                   .catch(e => done(JSON.stringify({ error: String(e) })));",
                vec![],
            )
            .await
            .expect("axe runs");
        let text = result.as_str().expect("axe's answer");
        let answer: serde_json::Value = serde_json::from_str(text).expect("axe's JSON");
        let (Some(rules), Some(violations)) =
            (answer["rules"].as_u64(), answer["violations"].as_array())
        else {
            panic!("axe failed: {answer}");
        };
        assert!(rules > 10, "axe checked only {rules} rules: {answer}");
        let path = self.path().await;
        for minor in violations
            .iter()
            .filter(|v| !matches!(v["impact"].as_str(), Some("serious" | "critical")))
        {
            // Reported for people to read, not failing the test.
            eprintln!("{path}: axe ({}): {}", minor["impact"], minor["help"]);
        }
        let serious: Vec<String> = violations
            .iter()
            .filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical")))
            .map(|v| {
                let targets: Vec<String> = v["nodes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|n| n["target"].to_string())
                    .collect();
                format!(
                    "{} ({}): {} — {}",
                    v["id"].as_str().unwrap_or("?"),
                    v["impact"].as_str().unwrap_or("?"),
                    v["help"].as_str().unwrap_or(""),
                    targets.join(", ")
                )
            })
            .collect();
        assert!(
            serious.is_empty(),
            "{path}: accessibility violations:\n{}",
            serious.join("\n")
        );
    }

    pub async fn close(self) {
        let _ = self.client.close().await;
    }
}

/// Writes a screenshot as `target/screenshots/NAME.png`; with
/// `MEDESK_DOCS_SCREENSHOTS=1`, the SQLite run's pictures also go to
/// `docs/screenshots/` without the backend's prefix (`Sqlite-queue` →
/// `queue.png`: both backends show the same page).
fn save_screenshot(name: &str, png: &[u8]) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut places = vec![(root.join("target/screenshots"), name)];
    if std::env::var("MEDESK_DOCS_SCREENSHOTS").is_ok_and(|v| v == "1")
        && let Some(page) = name.strip_prefix("Sqlite-")
    {
        places.push((root.join("docs/screenshots"), page));
    }
    for (dir, file) in places {
        std::fs::create_dir_all(&dir).expect("screenshot folder");
        std::fs::write(dir.join(format!("{file}.png")), png).expect("screenshot written");
    }
}
