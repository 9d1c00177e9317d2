//! The admin HTTP API on `[admin] listen` (default 127.0.0.1:9153), with axum:
//!
//! - `GET /healthz`: the process answers;
//! - `GET /readyz`: a list is loaded and an upstream answers (503 otherwise);
//! - `GET /metrics`: Prometheus text exposition ([`crate::metrics`]);
//! - `GET /v1/check?name=...`: is this site safe for children (per group);
//! - `POST /v1/reports`, `GET /v1/reports`: reports of harmful sites (or of sites blocked
//!   by mistake) from the public, stored in SQLite under the state directory ([`reports`]),
//!   limited per source address per hour (a report portal, by `admin.portal_clients` or
//!   `admin.portal_token`, has its own larger limit; an invalid report uses up no quota);
//!   on a central, also edges' batched deliveries with their tokens ([`intake`]); with
//!   `[reports] forward_to`, every report is spooled for the central ([`desk`]);
//! - `GET /v1/reports?status=open&sort=count`, `POST /v1/reports/{id}/decision`,
//!   `POST /v1/reports/{id}/revert`: the review ([`review`]): a decision is recorded with
//!   who, when and why, and on a central (`[publish]`) an accepted name is published;
//! - `GET /v1/published/{list}.txt` and `.txt.minisig`: a central's signed lists
//!   ([`published`]), without the token, limited per address;
//! - `/v1/profiles`, `/v1/identities`, `/v1/subscribers`, `/v1/audit`: profiles (named
//!   policies), who they apply to, and the log of changes ([`profiles`]);
//! - `/v1/profiles/{id}/exceptions`, `/v1/profiles/{id}/pause`: temporary exceptions and
//!   pauses of a profile ([`exceptions`]);
//! - `GET /v1/status`: the serving list, each source's and the compile stage's status
//!   (entries, versions, last success, refusals per guard), each upstream server's health,
//!   the node (version, uptime, listeners, profiles, query totals) ([`status`]);
//! - `POST /v1/reload[?force=true]`: what SIGHUP does (reread the config file and apply
//!   it live, see `app::reload`; then recompile changed sources and groups' lists through
//!   the feed guards, swap them in); `force` skips the shrink guard. An invalid config is
//!   a 422 naming file, line and key, and the old one keeps serving.
//!
//! With `admin.token` set, every route but `/healthz`, `/readyz` and the published lists
//! needs `Authorization: Bearer <token>`; the config refuses a non-loopback address without
//! one. `POST /v1/reports` also takes the portal token, which opens nothing else. With
//! `admin.public_check = true`, `/v1/check` without the token gets the short public
//! answer ([`public`]), limited per address.
//! Errors are JSON `{"error": "..."}` with a 4xx status for bad input.

pub mod check;
pub mod desk;
pub mod exceptions;
pub mod intake;
pub mod limit;
pub mod profiles;
pub mod public;
pub mod published;
pub mod reports;
pub mod review;
pub mod status;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::Json;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::feed::pipeline::Pipeline;
use crate::lists::swap::LiveBlocklist;
use crate::metrics::Metrics;
use crate::policy::access::AccessList;
use crate::policy::decide::Policy;
use crate::profiles::{ProfileError, ProfileStore};
use crate::upstream::resolve::Resolver;
use limit::ReportLimiter;
use profiles::ProfilesApi;
use reports::{ReportError, ReportStore};

/// Largest request body (a report is a name, a category and a short note).
const MAX_BODY: usize = 4096;
/// An upstream answer this recent makes `/readyz` skip its probe.
const RECENT_UPSTREAM: Duration = Duration::from_secs(30);

/// Everything the routes read.
pub struct Admin {
    /// The serving list.
    pub lists: Arc<LiveBlocklist>,
    /// Groups and their policies (swapped whole by a config reload).
    pub policy: Arc<ArcSwap<Policy>>,
    /// The resolver's metrics.
    pub metrics: Arc<Metrics>,
    /// For the `/readyz` upstream probe.
    pub resolver: Resolver,
    /// The running config (feeds' state files, categories), replaced by a config reload.
    pub config: ArcSwap<Config>,
    /// Where reloads are sent: the feed pipeline, the one writer of the lists.
    pub pipeline: Pipeline,
    /// The config reload `POST /v1/reload` runs first, when the resolver set one.
    reloader: std::sync::OnceLock<ConfigReload>,
    reports: Arc<Mutex<ReportStore>>,
    /// Takes reports in: the store and, when forwarding, the spool for the central.
    desk: Arc<desk::ReportDesk>,
    /// Edges' deliveries: taken and refused.
    intake: intake::IntakeStats,
    /// Profiles, identities, subscribers and the audit log (`/v1/profiles`, ...).
    profiles: Arc<ProfilesApi>,
    /// Tokens, portals and report quotas: `[admin]` as last (re)loaded.
    access: ArcSwap<Access>,
    /// Temporary exceptions and pauses (`/v1/profiles/{id}/exceptions`), when set.
    exceptions: Option<Arc<exceptions::ExceptionsApi>>,
    /// The categories decisions may name (refreshed by a config reload).
    categories: Arc<ArcSwap<Vec<String>>>,
    /// The review routes.
    review: Arc<review::ReviewApi>,
    /// The public `/v1/check`.
    public: Arc<public::PublicCheck>,
    /// A central's published lists and their feed (`[publish]`).
    published: Option<(Arc<crate::publish::PublishedStore>, Arc<published::FeedApi>)>,
    /// A central's RPZ primary counters (`[publish] xfr_listen`), for `/metrics`.
    rpz: Option<Arc<crate::publish::rpz::RpzStats>>,
    /// When the API was made (the process's start, near enough), and as Unix seconds:
    /// the status page's uptime.
    started: (std::time::Instant, u64),
}

/// The `[admin]` settings a config reload swaps.
struct Access {
    limiter: Arc<ReportLimiter>,
    token: Option<String>,
    /// Report portals by address.
    portal_clients: AccessList,
    /// The portal's bearer token.
    portal_token: Option<String>,
    /// Per portal address, with the portals' larger quota.
    portal_limiter: Arc<ReportLimiter>,
    /// `admin.public_check`: `/v1/check` answers without the token.
    public_check: bool,
    /// The quotas the limiters were made with (kept, with their counts, while unchanged).
    quotas: (u32, u32),
    /// The edges that may deliver report batches (`[reports] edges`).
    edges: Vec<crate::config::EdgeToken>,
}

impl Access {
    /// `[admin]` of `config`, keeping `old`'s limiters (and their counts) where the quota
    /// is the same.
    fn of(config: &Config, old: Option<&Access>) -> Access {
        let admin = config.admin.as_ref();
        let quotas = (
            admin.map_or(10, |a| a.reports_per_hour),
            admin.map_or(0, |a| a.portal_reports_per_hour),
        );
        let limiter = match old {
            Some(o) if o.quotas.0 == quotas.0 => o.limiter.clone(),
            _ => Arc::new(ReportLimiter::new(quotas.0)),
        };
        let portal_limiter = match old {
            Some(o) if o.quotas.1 == quotas.1 => o.portal_limiter.clone(),
            _ => Arc::new(ReportLimiter::new(quotas.1)),
        };
        Access {
            limiter,
            token: admin.and_then(|a| a.token.clone()),
            portal_clients: AccessList::new(admin.map_or(&[], |a| &a.portal_clients[..])),
            portal_token: admin.and_then(|a| a.portal_token.clone()),
            portal_limiter,
            public_check: admin.is_some_and(|a| a.public_check),
            quotas,
            edges: config.reports.edges.clone(),
        }
    }
}

/// What `POST /v1/reload` runs before the list reload: rereads and applies the config
/// file; resolves with the JSON to report (`"config"`) and, for an invalid file, the error
/// (`Err`: the old config keeps serving).
pub type ConfigReload = Arc<dyn Fn() -> ReloadFuture + Send + Sync>;

/// What a [`ConfigReload`] resolves with: the `"config"` report, or why it failed.
pub type ReloadFuture = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<serde_json::Value, ReloadFailed>> + Send>,
>;

/// A config reload that kept the old config: what to tell the caller.
#[derive(Debug)]
pub struct ReloadFailed {
    /// The error (file, line, key).
    pub error: String,
    /// The same report as on success (`"result": "invalid"`).
    pub report: serde_json::Value,
}

/// Why the admin API could not start: one of its stores did not open.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The report store.
    #[error(transparent)]
    Reports(#[from] ReportError),
    /// The profile store.
    #[error(transparent)]
    Profiles(#[from] ProfileError),
    /// The report desk (its store, or the spool for the central).
    #[error(transparent)]
    Desk(#[from] desk::DeskError),
}

impl Admin {
    /// The API over these parts, the profile store the resolver opened (see
    /// `app::profiles::open_store`) and the report desk (see [`open_desk`]).
    ///
    /// # Errors
    /// None today; kept for the stores the API may open itself.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        lists: Arc<LiveBlocklist>,
        policy: Arc<ArcSwap<Policy>>,
        metrics: Arc<Metrics>,
        resolver: Resolver,
        config: Config,
        pipeline: Pipeline,
        profiles: Arc<Mutex<ProfileStore>>,
        desk: Arc<desk::ReportDesk>,
    ) -> Result<Self, AdminError> {
        let reports = desk.store();
        let known = Arc::new(ArcSwap::from_pointee(categories(&config, &lists.current())));
        let review = review_api(&reports, &known, None);
        let public = Arc::new(public::PublicCheck {
            limiter: ReportLimiter::new(
                config.admin.as_ref().map_or(0, |a| a.public_check_per_hour),
            ),
            lists: lists.clone(),
            policy: policy.clone(),
            reports: reports.clone(),
            published: None,
        });
        Ok(Admin {
            access: ArcSwap::from_pointee(Access::of(&config, None)),
            categories: known,
            review,
            public,
            published: None,
            rpz: None,
            reports,
            desk,
            intake: intake::IntakeStats::default(),
            profiles: Arc::new(ProfilesApi::new(profiles)),
            lists,
            policy,
            metrics,
            resolver,
            config: ArcSwap::from_pointee(config),
            pipeline,
            reloader: std::sync::OnceLock::new(),
            exceptions: None,
            started: (std::time::Instant::now(), crate::clock::now_unix()),
        })
    }

    /// Serves `/v1/profiles/{id}/exceptions` and `/pause` over `store`.
    pub fn with_exceptions(mut self, store: Arc<crate::exceptions::ExceptionStore>) -> Self {
        self.exceptions = Some(Arc::new(exceptions::ExceptionsApi {
            store,
            policy: Arc::clone(&self.policy),
            profiles: self.profiles.store(),
        }));
        self
    }

    /// Makes this a central's API: decisions publish to `store`, and its lists are served,
    /// signed by `feed`, at `/v1/published/{list}.txt` (with `feed_requests_per_hour`).
    pub fn with_publish(
        mut self,
        store: Arc<crate::publish::PublishedStore>,
        feed: Arc<crate::publish::SignedFeed>,
    ) -> Self {
        self.review = review_api(&self.reports, &self.categories, Some(store.clone()));
        self.public = Arc::new(public::PublicCheck {
            limiter: ReportLimiter::new(self.public.limiter.per_hour()),
            lists: self.lists.clone(),
            policy: self.policy.clone(),
            reports: self.reports.clone(),
            published: Some(store.clone()),
        });
        let per_hour = self
            .config
            .load()
            .admin
            .as_ref()
            .map_or(0, |a| a.feed_requests_per_hour);
        let api = published::FeedApi {
            feed,
            limiter: ReportLimiter::new(per_hour),
        };
        self.published = Some((store, Arc::new(api)));
        self
    }

    /// Exports the RPZ primary's counters (transfers, refusals, NOTIFY) on `/metrics`.
    pub fn with_rpz_stats(mut self, stats: Arc<crate::publish::rpz::RpzStats>) -> Self {
        self.rpz = Some(stats);
        self
    }

    /// Runs `reload` (the config reload) first on `POST /v1/reload`; set once (later
    /// calls are ignored).
    pub fn set_reloader(&self, reload: ConfigReload) {
        let _ = self.reloader.set(reload);
    }

    /// Takes a reloaded config: its `[admin]` tokens, portals and quotas (a quota that did
    /// not change keeps its counts), and its feeds for `/metrics`. `listen` needs a restart.
    pub fn apply(&self, config: &Config) {
        let access = Access::of(config, Some(&self.access.load()));
        self.access.store(Arc::new(access));
        let known = categories(config, &self.lists.current());
        if let Ok(mut reports) = self.reports.lock() {
            reports.set_categories(Some(known.clone()));
        }
        if let Some((store, _)) = &self.published {
            let mut lists = known.clone();
            lists.push(crate::publish::ALLOW_LIST.to_owned());
            if let Err(error) = store.ensure_lists(&lists) {
                tracing::error!(%error, "published lists: the new categories were not added");
            }
        }
        self.categories.store(Arc::new(known));
        if let Ok(mut store) = self.profiles.store().lock() {
            store.set_config_profiles(config.policy.groups.clone());
            store.set_services(Arc::clone(&config.policy.services));
        }
        self.config.store(Arc::new(config.clone()));
    }
}

impl Admin {
    /// The profile store the API writes, for the query path: take
    /// [`ProfileStore::snapshot`] after each change its
    /// [`subscribe`](ProfileStore::subscribe) receiver sees.
    pub fn profiles(&self) -> Arc<Mutex<ProfileStore>> {
        self.profiles.store()
    }

    /// The report store (the console's reviewer queue reads and decides through it).
    pub fn reports(&self) -> Arc<Mutex<ReportStore>> {
        Arc::clone(&self.reports)
    }

    /// The review (the queue's decisions and reverts, publishing on a central): the
    /// console decides through it, the one decision path.
    pub fn review(&self) -> Arc<review::ReviewApi> {
        Arc::clone(&self.review)
    }

    /// A central's published store (`[publish]`), for the console's "published" page.
    pub fn published_store(&self) -> Option<Arc<crate::publish::PublishedStore>> {
        self.published.as_ref().map(|(store, _)| Arc::clone(store))
    }

    /// Temporary exceptions and pauses, when the resolver set them.
    pub fn exceptions_api(&self) -> Option<Arc<exceptions::ExceptionsApi>> {
        self.exceptions.clone()
    }

    /// The categories a profile may name now: the configured sources' and the serving
    /// list's.
    pub fn categories_now(&self) -> Vec<String> {
        categories(&self.config.load(), &self.lists.current())
    }
}

/// The review routes over `reports`, deciding with `known` categories, publishing to
/// `published`.
fn review_api(
    reports: &Arc<Mutex<ReportStore>>,
    known: &Arc<ArcSwap<Vec<String>>>,
    published: Option<Arc<crate::publish::PublishedStore>>,
) -> Arc<review::ReviewApi> {
    let known = known.clone();
    Arc::new(review::ReviewApi {
        reports: reports.clone(),
        published,
        categories: Arc::new(move || known.load().to_vec()),
    })
}

/// The categories a report or a profile may name: those of the configured sources and of
/// the serving `list`.
pub fn categories(config: &Config, list: &crate::lists::load::Blocklist) -> Vec<String> {
    let mut categories: Vec<String> = config
        .lists
        .sources
        .iter()
        .filter_map(|s| s.category.clone())
        .collect();
    categories.extend(list.manifest().categories.iter().cloned());
    categories.sort();
    categories.dedup();
    categories
}

/// Where the profile database lives.
pub fn profiles_path(config: &Config) -> std::path::PathBuf {
    config
        .lists
        .feeds
        .state_dir
        .join(crate::profiles::FILE_NAME)
}

/// Where a PostgreSQL profile store keeps its last-good copy.
pub fn last_good_path(config: &Config) -> std::path::PathBuf {
    config
        .lists
        .feeds
        .state_dir
        .join(crate::profiles::LAST_GOOD_FILE_NAME)
}

/// Where the report database lives.
pub fn reports_path(config: &Config) -> std::path::PathBuf {
    config.lists.feeds.state_dir.join("reports.sqlite")
}

/// The report desk `config` describes over the serving `lists`: the store at
/// [`reports_path`] taking the configured categories, and the spool when forwarding.
/// Shared by the admin API and the block page's forms.
///
/// # Errors
/// The store or the spool cannot be opened (named in the error).
pub fn open_desk(
    config: &Config,
    lists: Arc<LiveBlocklist>,
) -> Result<desk::ReportDesk, desk::DeskError> {
    let categories = categories(config, &lists.current());
    desk::ReportDesk::open(&reports_path(config), categories, &config.reports, lists)
}

/// Serves the API on each listener until `stop`.
pub fn spawn(listeners: Vec<TcpListener>, admin: Arc<Admin>, stop: CancellationToken) {
    let upkeep = (admin.metrics.clone(), stop.clone());
    tokio::spawn(async move {
        // Histogram samples are drained into buckets here, not on the query path.
        let (metrics, stop) = upkeep;
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                _ = tick.tick() => metrics.upkeep(),
            }
        }
    });
    let app = axum::Router::new()
        .route("/metrics", get(metrics))
        .route("/v1/check", get(check_name))
        .route(
            "/v1/reports",
            post(intake::post_reports).layer(DefaultBodyLimit::max(intake::MAX_BATCH_BODY)),
        )
        .route("/v1/reload", post(reload))
        .route("/v1/profiles/{id}/activity", get(activity))
        .route("/v1/status", get(status::get))
        .merge(review::router(admin.review.clone()))
        .merge(profiles::router(admin.profiles.clone()))
        .merge(match &admin.exceptions {
            Some(api) => exceptions::router(api.clone()),
            None => axum::Router::new(),
        })
        .route_layer(middleware::from_fn_with_state(admin.clone(), require_token))
        .merge(match &admin.published {
            Some((_, feed)) => published::router(feed.clone()),
            None => axum::Router::new(),
        })
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(admin);
    for listener in listeners {
        crate::web::serve_http(listener, app.clone(), stop.clone(), "admin API");
    }
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

/// Constant-time comparison, so the token cannot be guessed byte by byte from timings
/// (the console's CSRF and setup tokens use it too).
pub fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The bearer token of `request`, if any.
fn bearer(request: &axum::http::HeaderMap) -> Option<&str> {
    request
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

/// Whether `request` carries the portal token (compared in constant time).
fn has_portal_token(access: &Access, headers: &axum::http::HeaderMap) -> bool {
    access
        .portal_token
        .as_ref()
        .is_some_and(|t| bearer(headers).is_some_and(|g| same(g.as_bytes(), t.as_bytes())))
}

async fn require_token(State(admin): State<Arc<Admin>>, request: Request, next: Next) -> Response {
    if request.method() == axum::http::Method::POST && request.uri().path() == "/v1/reports" {
        // Posting reports checks its own tokens (admin, portal, or an edge's for a
        // batch): see `intake`.
        return next.run(request).await;
    }
    let access = admin.access.load_full();
    if let Some(token) = &access.token {
        let admin_ok =
            bearer(request.headers()).is_some_and(|g| same(g.as_bytes(), token.as_bytes()));
        if !admin_ok {
            // The programme's public lookup: the short answer, limited per address.
            if access.public_check
                && request.method() == axum::http::Method::GET
                && request.uri().path() == "/v1/check"
            {
                let asked = public_question(&request);
                return match asked {
                    Some((name, peer)) => admin.public.clone().answer(name, peer).await,
                    None => error(StatusCode::INTERNAL_SERVER_ERROR, "no peer address"),
                };
            }
            let mut r = error(StatusCode::UNAUTHORIZED, "missing or wrong bearer token");
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            return r;
        }
    }
    next.run(request).await
}

/// `/v1/check` without the token: the name asked about, and the peer's address (the limit
/// is per address); `None` without a peer address.
fn public_question(request: &Request) -> Option<(Option<String>, std::net::IpAddr)> {
    let ConnectInfo(peer) = request.extensions().get::<ConnectInfo<SocketAddr>>()?;
    #[derive(Deserialize)]
    struct Name {
        name: Option<String>,
    }
    let name = Query::<Name>::try_from_uri(request.uri())
        .ok()
        .and_then(|Query(n)| n.name);
    Some((name, peer.ip()))
}

/// `GET /v1/profiles/{id}/activity`: the profile's counts today and this week, in its
/// time zone ([`crate::activity`]), with category and service names; 404 for a profile
/// the policy does not hold.
async fn activity(State(admin): State<Arc<Admin>>, Path(id): Path<String>) -> Response {
    if admin.policy.load().index_of(&id).is_none() {
        return error(StatusCode::NOT_FOUND, format!("no profile {id}"));
    }
    let snap = admin
        .metrics
        .activity
        .snapshot(&id, crate::clock::now_unix() as i64);
    let list = admin.lists.current();
    let named = |c: &crate::activity::Counts| {
        let categories: serde_json::Map<String, serde_json::Value> = c
            .categories
            .iter()
            .map(|&(bit, n)| {
                let name = list
                    .manifest()
                    .category_name(bit)
                    .map_or_else(|| format!("bit{bit}"), str::to_owned);
                (name, n.into())
            })
            .collect();
        let services: serde_json::Map<String, serde_json::Value> = c
            .services
            .iter()
            .map(|(s, n)| (s.clone(), (*n).into()))
            .collect();
        let bypass: serde_json::Map<String, serde_json::Value> = c
            .bypass
            .iter()
            .map(|&(k, n)| (k.to_owned(), n.into()))
            .collect();
        json!({
            "queries": c.queries,
            "blocked": c.blocked,
            "categories": categories,
            "services": services,
            "own_list": c.own_list,
            "unsafe_search": c.unsafe_search,
            "bypass": bypass,
        })
    };
    Json(json!({ "profile": id, "today": named(&snap.today), "week": named(&snap.week) }))
        .into_response()
}

async fn ready(State(admin): State<Arc<Admin>>) -> Response {
    let list = admin.lists.current();
    let upstream = admin.upstream_reachable().await;
    let body = json!({
        "ready": upstream,
        "list": { "serial": list.manifest().serial, "entries": list.len() },
        "upstream_reachable": upstream,
    });
    let status = if upstream {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

async fn metrics(State(admin): State<Arc<Admin>>) -> Response {
    let m = &admin.metrics;
    let list = admin.lists.current();
    m.gauge("kidsafe_list_serial", &[], list.manifest().serial as f64);
    m.gauge("kidsafe_list_entries", &[], list.len() as f64);
    m.gauge(
        "kidsafe_list_swapped_timestamp_seconds",
        &[],
        admin.lists.loaded_at() as f64,
    );
    m.counter_total("kidsafe_list_loads_total", &[], admin.lists.loads());
    let (refused, limited) = admin.policy.load().refusals();
    m.counter_total(
        crate::metrics::REFUSED,
        &[("reason", "not_allowed")],
        refused,
    );
    m.counter_total(
        crate::metrics::REFUSED,
        &[("reason", "rate_limited")],
        limited,
    );
    if let Some(subs) = admin.policy.load().subscribers() {
        use crate::subscribers::Refused;
        m.gauge("kidsafe_subscribers_rows", &[], subs.rows() as f64);
        for why in Refused::ALL {
            let total = subs.refused_total(why);
            m.counter_total(
                "kidsafe_subscribers_refused_total",
                &[("reason", why.as_str())],
                total,
            );
        }
        m.counter_total(
            "kidsafe_subscribers_unknown_profile_total",
            &[],
            subs.unknown_profile_total(),
        );
    }
    intake::record_metrics(&admin);
    published::record_metrics(&admin);
    if let Some(cache) = admin.resolver.cache() {
        m.gauge("kidsafe_cache_entries", &[], cache.len() as f64);
    }
    let config = admin.config.load();
    let feeds = &config.lists.feeds;
    for source in &feeds.sources {
        let path = crate::feed::state::status_path(&feeds.state_dir, &source.name);
        let state: crate::feed::state::SourceState = crate::feed::state::read_json(&path);
        for (guard, n) in &state.refused {
            let labels = [("source", source.name.as_str()), ("guard", guard.as_str())];
            m.counter_total("kidsafe_feed_refused_total", &labels, *n);
        }
        if let Some(t) = state.last_success_unix {
            let labels = [("source", source.name.as_str())];
            m.gauge(
                "kidsafe_feed_last_success_timestamp_seconds",
                &labels,
                t as f64,
            );
        }
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        m.render(),
    )
        .into_response()
}

#[derive(Deserialize)]
struct CheckParams {
    name: Option<String>,
    /// Whose profile to name: an address, a ClientID, a MAC address (any of them).
    client: Option<std::net::IpAddr>,
    client_id: Option<String>,
    mac: Option<String>,
}

/// The client `/v1/check` is asked about, if any (its address 127.0.0.1 unless given).
fn check_who(
    client: &Option<std::net::IpAddr>,
    client_id: Option<&str>,
    mac: Option<&str>,
) -> Result<Option<crate::policy::Client>, String> {
    use crate::policy::client::{ClientId, Mac};
    if client.is_none() && client_id.is_none() && mac.is_none() {
        return Ok(None);
    }
    let addr = client.unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
    let mut who = crate::policy::Client::from_addr(addr);
    if let Some(id) = client_id {
        who.client_id = Some(ClientId::parse(id).map_err(|e| format!("client_id: {e}"))?);
    }
    if let Some(mac) = mac {
        who.mac = Some(Mac::parse(mac).map_err(|e| format!("mac: {e}"))?);
    }
    Ok(Some(who))
}

async fn check_name(State(admin): State<Arc<Admin>>, Query(p): Query<CheckParams>) -> Response {
    let Some(name) = p.name.filter(|n| !n.trim().is_empty()) else {
        return error(StatusCode::BAD_REQUEST, "give ?name=example.com");
    };
    let who = match check_who(&p.client, p.client_id.as_deref(), p.mac.as_deref()) {
        Ok(who) => who,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    let list = admin.lists.current();
    match check::check(&name, &list, &admin.policy.load(), who.as_ref()) {
        Ok(report) => Json(report).into_response(),
        Err(message) => error(StatusCode::BAD_REQUEST, message),
    }
}

/// The response to a report store error while trying to `what`: 404 for an unknown
/// report, 400 for a request the store refused, 500 (logged) for the store failing.
fn store_error(e: ReportError, what: &str) -> Response {
    match e {
        ReportError::NotFound { .. } => error(StatusCode::NOT_FOUND, e.to_string()),
        e if e.is_client_error() => error(StatusCode::BAD_REQUEST, e.to_string()),
        e => {
            tracing::error!(error = %e, "report store: could not {what}");
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("could not {what}"),
            )
        }
    }
}

#[derive(Deserialize)]
struct ReloadParams {
    force: Option<String>,
}

/// 200 with what was done; 409 with the same report when a guard refused a list (it keeps
/// serving); `?force=true` takes a list past the shrink guard.
async fn reload(State(admin): State<Arc<Admin>>, Query(p): Query<ReloadParams>) -> Response {
    let force = match p.force.as_deref() {
        None | Some("false" | "0") => false,
        Some("true" | "1" | "") => true,
        Some(other) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("force={other}: give force=true or force=false"),
            );
        }
    };
    let why = if force { "API (force)" } else { "API" };
    let config = match admin.reloader.get() {
        Some(reload) => Some(reload().await),
        None => None,
    };
    let Some(report) = admin.pipeline.reload(why, force, true).await else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "shutting down");
    };
    let mut body = serde_json::to_value(&report).unwrap_or_default();
    let status = match config {
        Some(Err(failed)) => {
            body["config"] = failed.report;
            body["error"] = json!(format!(
                "the config was not reloaded and the one before keeps serving: {}",
                failed.error
            ));
            StatusCode::UNPROCESSABLE_ENTITY
        }
        Some(Ok(applied)) => {
            body["config"] = applied;
            StatusCode::OK
        }
        None => StatusCode::OK,
    };
    if status == StatusCode::OK && report.any_refused() {
        body["error"] = json!(
            "a new list was refused by a guard and the current one keeps serving; \
             if the change is intended, POST /v1/reload?force=true"
        );
        return (StatusCode::CONFLICT, Json(body)).into_response();
    }
    (status, Json(body)).into_response()
}
