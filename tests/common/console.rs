//! The console driven over plain HTTP (no browser): a `kidsafe-dns serve` child whose log
//! is kept (also the browser tests' child), forms posted with their CSRF token, sessions as cookies.

use std::io::BufRead;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A child process killed on drop, its stderr collected by a thread.
pub struct Child {
    child: std::process::Child,
    log: Arc<Mutex<String>>,
}

impl Child {
    /// Starts `kidsafe-dns serve --config <config>` at info level.
    pub fn serve(config: &std::path::Path) -> Child {
        Child::spawn(
            std::process::Command::new(env!("CARGO_BIN_EXE_kidsafe-dns"))
                .args(["serve", "--config"])
                .arg(config)
                .env("RUST_LOG", "info")
                .env("NO_COLOR", "1"),
        )
    }

    pub fn spawn(cmd: &mut std::process::Command) -> Child {
        let mut child = cmd
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let (stderr, sink) = (child.stderr.take().unwrap(), log.clone());
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        Child { child, log }
    }

    /// The log once it contains `text` (panics after 30 s or if the child exited).
    pub fn wait_for(&mut self, text: &str) -> String {
        let start = Instant::now();
        loop {
            let log = self.log.lock().unwrap().clone();
            if log.contains(text) {
                return log;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30)
                    && self.child.try_wait().unwrap().is_none(),
                "no {text:?} in the log:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A plain HTTP client that keeps no cookies and follows no redirects.
pub fn http() -> reqwest::Client {
    kidsafe_dns::feed::http::install_crypto_provider();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// `fields` as an `application/x-www-form-urlencoded` body.
pub fn form_body(fields: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish()
}

/// POSTs a form to the console, with the session `cookie` if any.
pub async fn post_form(
    base: &str,
    path: &str,
    cookie: Option<&str>,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let mut r = http()
        .post(format!("{base}{path}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_body(fields));
    if let Some(c) = cookie {
        r = r.header("cookie", c);
    }
    r.send().await.unwrap()
}

/// A console page: status and body.
pub async fn get_page(base: &str, path: &str, cookie: &str) -> (u16, String) {
    let r = http()
        .get(format!("{base}{path}"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// The CSRF token in a page's forms.
pub fn csrf_of(page: &str) -> String {
    page.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_owned()
}

/// The session cookie (`ks_session=...`) of a 303 that logged someone in.
pub fn session_of(r: &reqwest::Response) -> String {
    let set = r.headers()["set-cookie"].to_str().unwrap();
    set.split(';').next().unwrap().to_owned()
}

/// Creates the administrator `quantri` through the setup link in `log`: its cookie.
pub async fn setup_admin(base: &str, log: &str, password: &str) -> String {
    let link = log
        .split_whitespace()
        .find(|w| w.contains("/setup?token="))
        .unwrap()
        .trim_matches(|c: char| c == '"' || c == '\'');
    let token = link.split("token=").nth(1).unwrap();
    let r = post_form(
        base,
        "/setup",
        None,
        &[
            ("token", token),
            ("name", "quantri"),
            ("password", password),
        ],
    )
    .await;
    assert_eq!(r.status(), 303, "setup");
    session_of(&r)
}

/// Logs `user` in: the session cookie.
pub async fn login(base: &str, user: &str, password: &str) -> String {
    let r = post_form(
        base,
        "/login",
        None,
        &[("name", user), ("password", password)],
    )
    .await;
    assert_eq!(r.status(), 303, "login as {user}");
    let set = r.headers()["set-cookie"].to_str().unwrap();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    session_of(&r)
}

/// The administrator (cookie `admin`) creates an owner account.
pub async fn create_owner(base: &str, admin: &str, user: &str, password: &str) {
    let (_, users) = get_page(base, "/users", admin).await;
    let r = post_form(
        base,
        "/users",
        Some(admin),
        &[
            ("csrf", &csrf_of(&users)),
            ("name", user),
            ("password", password),
            ("role", "owner"),
        ],
    )
    .await;
    assert_eq!(r.status(), 303);
    let to = r.headers()["location"].to_str().unwrap();
    assert!(to.contains("msg=saved"), "{to}");
}
