//! The web console on `[console] listen`: what parents, teachers and reviewers see, in
//! Vietnamese first and English. Server-rendered HTML ([`maud`] escapes everything by
//! default) with a little vanilla JS, all assets embedded ([`assets`]).
//!
//! It drives the same stores the admin API does, in process: profiles and identities
//! ([`crate::profiles::ProfileStore`]), temporary exceptions
//! ([`crate::admin::exceptions::ExceptionsApi::grant`]), the safety check
//! ([`crate::admin::check::check`]) and the reports queue ([`crate::admin::reports`]).
//!
//! - [`accounts`]: users (Argon2id), roles, owned profiles, sessions (`console.sqlite`);
//! - [`sessions`]: cookies, language, login limits; [`csrf`]: the per-session form token;
//! - [`i18n`]: every string, category and service group in both languages;
//! - [`pages`]: login and first-run setup, dashboard, profile, accounts, reports; for
//!   administrators, the node's status and the audit log.
//!
//! The first start with no account logs a one-time setup link; visiting it creates the
//! administrator. An owner sees and changes only their profiles (403 otherwise).

pub mod accounts;
pub mod assets;
pub mod csrf;
pub mod i18n;
pub mod pages;
pub mod sessions;

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::admin::Admin;
use accounts::{AccountError, Accounts};
use sessions::LoginLimits;

/// The accounts file's name in `lists.state_dir`.
pub const FILE_NAME: &str = "console.sqlite";
/// Largest form body (the services form has one field per catalog service).
const MAX_BODY: usize = 64 * 1024;

/// Everything the pages read and write.
pub struct Console {
    /// Accounts and sessions.
    pub accounts: Arc<Mutex<Accounts>>,
    /// The stores the admin API serves (profiles, exceptions, reports, policy, lists).
    pub admin: Arc<Admin>,
    /// The one-time setup token, while no account exists.
    setup: Mutex<Option<String>>,
    /// Cookies get `Secure` (the console is served over TLS).
    pub secure: bool,
    /// Failed logins per address and per account.
    pub limits: LoginLimits,
    /// DNS addresses a router is pointed at (`server.listen`, loopback ones included).
    pub dns_addrs: Vec<SocketAddr>,
    /// The DoT host name devices' ClientIDs go in front of, when DoT serves with one.
    pub dot_name: Option<String>,
    /// Where devices reach DNS over HTTPS by name, when DoH serves with one (the
    /// `.mobileconfig` and the Windows template need it).
    pub doh: Option<DohEndpoint>,
}

/// Our DNS-over-HTTPS service as a device names it: `https://{name}[:{port}]/dns-query/{id}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DohEndpoint {
    /// The certificate's name (`server.ddr_name`, else `server.client_id_domain`).
    pub name: String,
    /// The port DoH is served on (the first `server.doh_listen`, as bound).
    pub port: u16,
    /// The addresses DoH listens on (unspecified ones included: callers filter).
    pub addrs: Vec<IpAddr>,
}

impl DohEndpoint {
    /// The URL a device with `client_id` queries (the port left out when it is 443).
    pub fn url(&self, client_id: &str) -> String {
        match self.port {
            443 => format!("https://{}/dns-query/{client_id}", self.name),
            port => format!("https://{}:{port}/dns-query/{client_id}", self.name),
        }
    }

    /// The addresses a phone or PC can be told to use: no unspecified (`0.0.0.0`) or
    /// loopback one (they would point the device at itself).
    pub fn public_addrs(&self) -> Vec<IpAddr> {
        let mut out: Vec<IpAddr> = self
            .addrs
            .iter()
            .copied()
            .filter(|a| !a.is_unspecified() && !a.is_loopback())
            .collect();
        out.dedup();
        out
    }
}

impl Console {
    /// The console over `admin`'s stores, with its accounts at `state_dir/console.sqlite`.
    /// With no account yet, a setup token is made and the link logged once.
    ///
    /// # Errors
    /// The accounts database cannot be opened.
    pub fn new(
        admin: Arc<Admin>,
        state_dir: &std::path::Path,
        secure: bool,
        dns_addrs: Vec<SocketAddr>,
        dot_name: Option<String>,
    ) -> Result<Console, AccountError> {
        let accounts = Accounts::open(&state_dir.join(FILE_NAME))?;
        let setup = (accounts.count()? == 0).then(accounts::random_token);
        Ok(Console {
            accounts: Arc::new(Mutex::new(accounts)),
            admin,
            setup: Mutex::new(setup),
            secure,
            limits: LoginLimits::default(),
            dns_addrs,
            dot_name,
            doh: None,
        })
    }

    /// The console with DoH setup offered through `doh` (none: the pages say why not).
    pub fn with_doh(mut self, doh: Option<DohEndpoint>) -> Console {
        self.doh = doh;
        self
    }

    /// The setup token while it is unused (to log the link).
    pub fn setup_token(&self) -> Option<String> {
        self.setup.lock().ok().and_then(|t| t.clone())
    }

    /// Uses up the setup token if `given` is it (constant-time); true once.
    pub fn take_setup(&self, given: &str) -> bool {
        let Ok(mut slot) = self.setup.lock() else {
            return false;
        };
        let ok = slot
            .as_ref()
            .is_some_and(|t| crate::admin::same(t.as_bytes(), given.as_bytes()));
        if ok {
            *slot = None;
        }
        ok
    }

    /// Whether `given` is the unused setup token (constant-time), without using it.
    pub fn is_setup(&self, given: &str) -> bool {
        self.setup.lock().is_ok_and(|slot| {
            slot.as_ref()
                .is_some_and(|t| crate::admin::same(t.as_bytes(), given.as_bytes()))
        })
    }

    /// Runs `op` on the accounts database on a blocking thread.
    pub async fn on_accounts<T: Send + 'static>(
        &self,
        op: impl FnOnce(&mut Accounts) -> Result<T, AccountError> + Send + 'static,
    ) -> Result<T, AccountError> {
        let accounts = Arc::clone(&self.accounts);
        tokio::task::spawn_blocking(move || {
            let mut a = accounts
                .lock()
                .map_err(|_| AccountError::Hash("accounts lock poisoned".into()))?;
            op(&mut a)
        })
        .await
        .map_err(|e| AccountError::Hash(e.to_string()))?
    }
}

/// Headers every console response carries: no framing, no sniffing, no referrer (the
/// setup link's token must not leak), scripts and styles from the console only.
async fn security_headers(request: axum::extract::Request, next: Next) -> Response {
    let mut r = next.run(request).await;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    r
}

/// The console's routes.
pub fn router(console: Arc<Console>) -> axum::Router {
    use pages::{admin_users, audit, dashboard, login, profile, published, reviews, status};
    axum::Router::new()
        .route("/", get(dashboard::show))
        .route("/login", get(login::show).post(login::submit))
        .route("/logout", post(login::logout))
        .route("/setup", get(login::setup_show).post(login::setup_submit))
        .route("/profiles", post(dashboard::create))
        .route("/profiles/{id}", get(profile::show))
        .route("/profiles/{id}/categories", post(profile::categories))
        .route("/profiles/{id}/services", post(profile::services))
        .route("/profiles/{id}/names", post(profile::names))
        .route("/profiles/{id}/devices", post(profile::add_device))
        .route(
            "/profiles/{id}/devices/{iid}/delete",
            post(profile::remove_device),
        )
        .route("/profiles/{id}/schedule", post(profile::add_window))
        .route(
            "/profiles/{id}/schedule/{n}/delete",
            post(profile::remove_window),
        )
        .route("/profiles/{id}/unblock", post(profile::unblock))
        .route("/users", get(admin_users::show).post(admin_users::create))
        .route("/users/assign", post(admin_users::assign))
        .route("/reviews", get(reviews::show))
        .route("/reviews/{id}", post(reviews::decide))
        .route("/published", get(published::show))
        .route("/published/{id}/revert", post(published::revert))
        // Device setup (issue 17): the iOS/macOS DoH profile of a ClientID device.
        .route(
            "/profiles/{id}/devices/{iid}/mobileconfig",
            get(profile::mobileconfig),
        )
        .route("/status", get(status::show))
        .route("/audit", get(audit::show))
        .route("/assets/console.css", get(assets::css))
        .route("/assets/console.js", get(assets::js))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(middleware::from_fn(security_headers))
        .with_state(console)
}

/// Serves the console on each listener until `stop`; over TLS when `tls` is given.
pub fn spawn(
    listeners: Vec<TcpListener>,
    console: Arc<Console>,
    tls: Option<Arc<rustls::ServerConfig>>,
    stop: CancellationToken,
) {
    if let Some(token) = console.setup_token() {
        let base = listeners
            .first()
            .and_then(|l| l.local_addr().ok())
            .map(|a| format!("{}://{a}", if tls.is_some() { "https" } else { "http" }))
            .unwrap_or_default();
        // Logged once, at info, so the operator sees it; it is used up by the first visit
        // that creates the administrator.
        tracing::info!(
            "console setup: open {base}/setup?token={token} to create the administrator"
        );
    }
    let app = router(console);
    for listener in listeners {
        match &tls {
            None => {
                crate::web::serve_http(listener, app.clone(), stop.clone(), "console");
            }
            Some(config) => {
                crate::web::serve_https(
                    listener,
                    app.clone(),
                    config.clone(),
                    stop.clone(),
                    "console",
                );
            }
        }
    }
}
