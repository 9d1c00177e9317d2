//! A real browser for the console's tests: headless Chromium driven through WebDriver
//! (`chromedriver`, with the `fantoccini` crate), found in PATH or skipped with a reason
//! (a failure under `KIDSAFE_REQUIRE_BROWSER=1`), and the few steps a test takes in it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};

pub use super::central::free_port;
pub use super::console::Child;

/// chromium and chromedriver, or why not (fails under `KIDSAFE_REQUIRE_BROWSER=1`).
pub fn browser_programs() -> Option<(PathBuf, PathBuf)> {
    let find = |names: &[&str]| {
        names.iter().find_map(|n| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|d| d.join(n))
                    .find(|p| p.is_file())
            })
        })
    };
    let chromium = find(&["chromium", "chromium-browser", "google-chrome"]);
    let driver = find(&["chromedriver"]);
    match (chromium, driver) {
        (Some(c), Some(d)) => Some((c, d)),
        _ => {
            let why = "chromium and chromedriver are not installed (apt-get install chromium chromium-driver)";
            assert!(
                std::env::var("KIDSAFE_REQUIRE_BROWSER").as_deref() != Ok("1"),
                "KIDSAFE_REQUIRE_BROWSER=1 but {why}"
            );
            eprintln!("SKIPPED: {why}");
            None
        }
    }
}

/// A headless Chromium session through a chromedriver on a free port.
pub async fn browser(chromium: &Path, driver: &Path) -> (Child, Client) {
    browser_with(chromium, driver, &[]).await
}

/// A headless Chromium session with `extra` command-line switches (a certificate to
/// trust, a profile directory).
pub async fn browser_with(chromium: &Path, driver: &Path, extra: &[String]) -> (Child, Client) {
    // fantoccini's HTTP client is built on rustls: the same provider as the resolver's.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let port = free_port();
    let d = Child::spawn(std::process::Command::new(driver).arg(format!("--port={port}")));
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "chromedriver did not listen"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut args: Vec<String> = [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
        "--lang=vi",
        "--hide-scrollbars",
    ]
    .map(String::from)
    .to_vec();
    args.extend(extra.iter().cloned());
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({ "binary": chromium, "args": args }),
    );
    let client = ClientBuilder::rustls()
        .unwrap()
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a WebDriver session");
    (d, client)
}

/// Types `text` into the `css` field (cleared first).
pub async fn fill(c: &Client, css: &str, text: &str) {
    let e = c
        .find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"));
    e.clear().await.unwrap();
    e.send_keys(text).await.unwrap();
}

/// Clicks the `css` element.
pub async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap();
}

/// Clicks the `css` button of a form and waits for the page the form leads to. Without
/// the wait, a check could still read the page before: after "add device" the old page
/// also says "Đã lưu.", and an element found on it goes stale when the new one loads
/// (seen in CI as a `StaleElementReference`).
pub async fn submit(c: &Client, css: &str) {
    c.execute("window.__kidsafe_before_submit = true;", vec![])
        .await
        .unwrap();
    click(c, css).await;
    let start = Instant::now();
    let fresh = "return window.__kidsafe_before_submit === undefined \
                 && document.readyState === 'complete';";
    loop {
        if let Ok(v) = c.execute(fresh, vec![]).await
            && v.as_bool() == Some(true)
        {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "{css}: no new page after 15 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the first `css` element's text is `want` (the page after a form may
/// still be loading); panics with the page after 15 s.
pub async fn wait_text(c: &Client, css: &str, want: &str) {
    let start = Instant::now();
    let script = format!(
        "var e = document.querySelector({}); return e ? e.innerText.trim() : null;",
        serde_json::to_string(css).unwrap()
    );
    loop {
        if let Ok(v) = c.execute(&script, vec![]).await
            && v.as_str() == Some(want)
        {
            return;
        }
        if start.elapsed() > Duration::from_secs(15) {
            panic!(
                "no {css} reading {want:?} in:\n{}",
                c.source().await.unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
