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
    /// loaded: the old page's root is gone and the new one is complete (a
    /// click does not wait for the navigation it starts).
    pub async fn click_through(&self, css: &str) {
        let old_root = self
            .client
            .find(Locator::Css("html"))
            .await
            .expect("a page");
        self.click(css).await;
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
        panic!("the page after clicking {css} did not load");
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

    /// Saves a screenshot under `target/screenshots/` (for people to look at).
    pub async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("screenshot");
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots");
        std::fs::create_dir_all(&dir).expect("screenshot folder");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("screenshot written");
    }

    pub async fn close(self) {
        let _ = self.client.close().await;
    }
}
