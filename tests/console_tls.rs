//! The console over TLS (`[console] tls = true`, with the DoT/DoH certificate): a
//! self-signed certificate made at test time (rcgen) served by a real `kidsafe-dns serve`;
//! headless Chromium, trusting exactly that certificate's key, goes through the first-run
//! setup, logs out and in; the session cookie's attributes are read both from the browser
//! and, with a real HTTP client trusting the certificate, from `Set-Cookie`; plain HTTP on
//! the TLS port gets no page.
//!
//! Without chromium and chromedriver the browser part says it skipped, unless
//! `KIDSAFE_REQUIRE_BROWSER=1` (CI), where it fails.

mod common;

use std::path::Path;
use std::time::Duration;

use common::browser::{Child, browser_programs, browser_with, fill, free_port, submit, wait_text};
use data_encoding::BASE64;
use rcgen::PublicKeyData;
use sha2::{Digest, Sha256};

const ADMIN_PASSWORD: &str = "mật khẩu quản trị 1";

/// A self-signed certificate for `localhost` and 127.0.0.1 in `dir` (`cert.pem`,
/// `key.pem`): its PEM (the clients' only root) and the base64 SHA-256 of its public key
/// (what Chromium is told to trust).
fn write_cert(dir: &Path) -> (String, String) {
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), signing_key.serialize_pem()).unwrap();
    let spki = BASE64.encode(&Sha256::digest(signing_key.subject_public_key_info()));
    (cert.pem(), spki)
}

/// A client that trusts only `root`, keeps no cookies and follows no redirects.
fn https_client(root_pem: &str) -> reqwest::Client {
    kidsafe_dns::feed::http::install_crypto_provider();
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(root_pem.as_bytes()).unwrap()])
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_console_over_tls_in_a_browser_with_secure_session_cookies() {
    kidsafe_dns::feed::http::install_crypto_provider();
    let dir = common::list_dir();
    let (cert_pem, spki) = write_cert(dir.path());
    let (dns, doh, console) = (free_port(), free_port(), free_port());
    let config = dir.path().join("kidsafe.toml");
    std::fs::write(
        &config,
        format!(
            r#"[server]
listen = ["127.0.0.1:{dns}"]
doh_listen = ["127.0.0.1:{doh}"]
tls_cert = "cert.pem"
tls_key = "key.pem"
[upstream]
servers = ["127.0.0.1:9"]
timeout_ms = 500
{lists}
[console]
listen = ["127.0.0.1:{console}"]
tls = true
"#,
            lists = common::STANDARD_LISTS
        ),
    )
    .unwrap();
    let mut serve = Child::spawn(
        std::process::Command::new(env!("CARGO_BIN_EXE_kidsafe-dns"))
            .args(["serve", "--config"])
            .arg(&config)
            .current_dir(dir.path())
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1"),
    );
    let log = serve.wait_for("setup?token=");
    serve.wait_for("console listening");
    let base = format!("https://127.0.0.1:{console}");
    let link = log
        .split_whitespace()
        .find(|w| w.contains("/setup?token="))
        .unwrap()
        .trim_matches(|c: char| c == '"' || c == '\'')
        .to_owned();
    assert!(link.starts_with(&base), "the setup link is https: {link}");

    // Plain HTTP on the TLS port gets no page (and the listener lives on).
    let plain = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
        .get(format!("http://127.0.0.1:{console}/login"))
        .send()
        .await;
    assert!(plain.is_err(), "plain HTTP answered: {plain:?}");
    // A client that does not trust the certificate is refused by its own TLS check.
    let elsewhere = tempfile::tempdir().unwrap();
    let (other, _) = write_cert(elsewhere.path());
    let untrusted = https_client(&other)
        .get(format!("{base}/login"))
        .send()
        .await;
    assert!(untrusted.is_err(), "an untrusted certificate was accepted");
    let https = https_client(&cert_pem);
    let login_page = https.get(format!("{base}/login")).send().await.unwrap();
    assert_eq!(login_page.status(), 200);
    assert!(login_page.text().await.unwrap().contains("Đăng nhập"));

    if let Some((chromium, driver)) = browser_programs() {
        // Chromium trusts this certificate's key only (not every certificate error).
        let profile = tempfile::tempdir().unwrap();
        let (_driver, c) = browser_with(
            &chromium,
            &driver,
            &[
                format!("--ignore-certificate-errors-spki-list={spki}"),
                format!("--user-data-dir={}", profile.path().display()),
            ],
        )
        .await;
        c.goto(&link).await.unwrap();
        wait_text(&c, "h1", "Thiết lập lần đầu").await;
        fill(&c, "#name", "quantri").await;
        fill(&c, "#password", ADMIN_PASSWORD).await;
        submit(&c, "form[action='/setup'] button").await;
        wait_text(&c, "h1", "Hồ sơ của gia đình").await;
        let secure = c
            .execute(
                "return [location.protocol, window.isSecureContext, document.cookie]",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(secure[0], "https:");
        assert_eq!(secure[1], true, "a secure context");
        assert!(
            !secure[2].as_str().unwrap_or("").contains("ks_session"),
            "the page's scripts cannot read the session: {secure}"
        );
        let check_session = |cookies: Vec<fantoccini::cookies::Cookie<'static>>| {
            let s = cookies
                .iter()
                .find(|k| k.name() == "ks_session")
                .expect("a session cookie");
            assert_eq!(s.secure(), Some(true), "{s}");
            assert_eq!(s.http_only(), Some(true), "{s}");
            assert_eq!(
                s.same_site().map(|v| v.to_string()).as_deref(),
                Some("Strict"),
                "{s}"
            );
        };
        check_session(c.get_all_cookies().await.unwrap());

        // Log out and in again, over TLS.
        submit(&c, "form[action='/logout'] button").await;
        wait_text(&c, "h1", "Đăng nhập").await;
        fill(&c, "#name", "quantri").await;
        fill(&c, "#password", ADMIN_PASSWORD).await;
        submit(&c, "form[action='/login'] button").await;
        wait_text(&c, "h1", "Hồ sơ của gia đình").await;
        check_session(c.get_all_cookies().await.unwrap());
        // The language cookie is Secure too.
        c.goto(&format!("{base}/?lang=en")).await.unwrap();
        wait_text(&c, "h1", "Your profiles").await;
        let lang = c.get_named_cookie("ks_lang").await.unwrap();
        assert_eq!((lang.value(), lang.secure()), ("en", Some(true)));
        let _ = c.close().await;
    } else {
        // Without a browser, the administrator is made through the setup form directly.
        let token = link.split("token=").nth(1).unwrap();
        let r = https
            .post(format!("{base}/setup"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&[
                ("token", token),
                ("name", "quantri"),
                ("password", ADMIN_PASSWORD),
            ]))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303);
    }

    // Set-Cookie as a real HTTP client reads it: Secure, HttpOnly, SameSite=Strict.
    let r = https
        .post(format!("{base}/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("name", "quantri"), ("password", ADMIN_PASSWORD)]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let set = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    let attributes: Vec<&str> = set.split(';').map(str::trim).collect();
    assert!(attributes[0].starts_with("ks_session="), "{set}");
    for wanted in ["Secure", "HttpOnly", "SameSite=Strict"] {
        assert!(attributes.contains(&wanted), "{wanted} missing: {set}");
    }
    let cookie = attributes[0];
    let home = https
        .get(format!("{base}/"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(home.status(), 200);
    assert!(home.text().await.unwrap().contains("Hồ sơ của gia đình"));

    drop(serve);
}

/// A form body.
fn form(fields: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish()
}
