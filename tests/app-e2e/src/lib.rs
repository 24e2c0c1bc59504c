//! Support for the app's end-to-end tests: tauri-driver as a child process, a WebDriver
//! session on the real app binary, screenshots as test artifacts.
//!
//! `cargo xtask test` builds the app with its UI embedded and runs these tests with
//! `FIELDLOG_APP_BIN`, `FIELDLOG_BUREAU_BIN`, `FIELDLOG_CLI_BIN`, `FIELDLOG_E2E_ARTIFACTS`
//! and `DISPLAY` (a private Xvfb when there is no display) set.

use anyhow::{Context, Result, bail};
use fantoccini::{Client, ClientBuilder, Locator};
use sha2::Digest;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a step may take before the test gives up (not an assertion on speed).
pub const PATIENCE: Duration = Duration::from_secs(60);

/// A path from the environment that `cargo xtask test` sets.
pub fn env_path(name: &str) -> Result<PathBuf> {
    let value = std::env::var_os(name)
        .with_context(|| format!("{name} is not set; run these tests with `cargo xtask test`"))?;
    Ok(PathBuf::from(value))
}

/// A running `tauri-driver`, stopped with SIGTERM so it also stops WebKitWebDriver.
#[derive(Debug)]
pub struct Driver {
    child: Child,
    pub url: String,
}

impl Driver {
    /// Starts tauri-driver on free loopback ports; the app it launches gets `env`.
    pub fn start(env: &[(&str, &Path)]) -> Result<Driver> {
        let port = free_port()?;
        let native_port = free_port()?;
        let mut command = Command::new("tauri-driver");
        command
            .args(["--port", &port.to_string()])
            .args(["--native-port", &native_port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command
            .spawn()
            .context("starting tauri-driver (cargo xtask test installs it)")?;
        let driver = Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        // Readiness: both tauri-driver and the WebKitWebDriver it starts accept connections.
        // Neither prints anything when ready.
        let deadline = Instant::now() + PATIENCE;
        for ready in [port, native_port] {
            while TcpStream::connect(("127.0.0.1", ready)).is_err() {
                if Instant::now() > deadline {
                    bail!("tauri-driver did not listen on port {ready}");
                }
                std::thread::yield_now();
            }
        }
        Ok(driver)
    }

    /// A WebDriver session on the app binary: this launches the app.
    pub async fn session(&self, app: &Path) -> Result<Client> {
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), "wry".into());
        caps.insert(
            "tauri:options".into(),
            serde_json::json!({ "application": app }),
        );
        // tauri-driver speaks plain HTTP on loopback: no TLS needed.
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&self.url)
            .await
            .context("starting a WebDriver session on the app")?;
        Ok(client)
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Opens the new-visit editor: clicks `#new-visit` until the editor's school search shows (a
/// click that lands while the screen is re-rendering, on a slow machine, is lost).
pub async fn open_editor(client: &Client) -> Result<()> {
    for _ in 0..3 {
        click(client, "#new-visit").await?;
        let opened = client
            .wait()
            .at_most(PATIENCE / 6)
            .for_element(Locator::Css("#school-search"))
            .await;
        if opened.is_ok() {
            return Ok(());
        }
    }
    bail!("the editor did not open after three clicks on `#new-visit`")
}

/// Waits for an element matching `css` and returns it.
pub async fn wait_for(client: &Client, css: &str) -> Result<fantoccini::elements::Element> {
    client
        .wait()
        .at_most(PATIENCE)
        .for_element(Locator::Css(css))
        .await
        .with_context(|| format!("waiting for `{css}`"))
}

/// Clicks an element after scrolling it to the middle of the window, clear of the fixed
/// save and navigation bars at phone widths.
pub async fn click(client: &Client, css: &str) -> Result<()> {
    let element = wait_for(client, css).await?;
    client
        .execute(
            "arguments[0].scrollIntoView({block: 'center'})",
            vec![serde_json::to_value(&element)?],
        )
        .await
        .with_context(|| format!("scrolling to `{css}`"))?;
    element
        .click()
        .await
        .map_err(|e| anyhow::anyhow!("clicking `{css}`: {e:?}"))
}

pub async fn type_into(client: &Client, css: &str, text: &str) -> Result<()> {
    let element = wait_for(client, css).await?;
    element.clear().await?;
    element
        .send_keys(text)
        .await
        .with_context(|| format!("typing into `{css}`"))
}

pub async fn text_of(client: &Client, css: &str) -> Result<String> {
    Ok(wait_for(client, css).await?.text().await?)
}

/// Saves a PNG of the window as `<dir>/<name>.png`, once the page has painted its latest
/// changes (two animation frames).
pub async fn screenshot(client: &Client, dir: &Path, name: &str) -> Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    client
        .execute_async(
            "const done = arguments[arguments.length - 1];\n\
             requestAnimationFrame(() => requestAnimationFrame(() => done()));",
            Vec::new(),
        )
        .await
        .context("waiting for the page to paint")?;
    let png = client.screenshot().await.context("taking a screenshot")?;
    let path = dir.join(format!("{name}.png"));
    std::fs::write(&path, png)?;
    Ok(path)
}

/// A 1200×900 PNG photo with some structure, as a phone camera might give; each `variant`
/// is a different picture.
pub fn write_test_photo(path: &Path, variant: u8) -> Result<()> {
    let image = image::RgbImage::from_fn(1200, 900, |x, y| {
        image::Rgb([(x / 5) as u8 ^ variant, (y / 4) as u8, ((x + y) / 9) as u8])
    });
    image.save(path).context("writing the test photo")
}

/// The lowercase hex sha256 of `bytes`, as photo files are named.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}
