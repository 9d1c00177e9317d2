//! The console at national scale: a state directory with 100,000 profiles (one device
//! each), 50,000 reports (a note each; half gambling, half adult, 1 in 100 violence) and a
//! school account owning 5,000 of the profiles is generated in a temp dir, a real
//! `kidsafe-dns serve` is started on it, and the pages an administrator, a reviewer and
//! a parent open are fetched over HTTP on loopback: each page `ROUNDS` times, the median,
//! 95th percentile and worst time to the last byte printed. On loopback with a keep-alive
//! connection that is the server's time (the issue's budget: < 300 ms).
//!
//! `cargo bench --bench console_scale`; figures in BENCHMARKS.md ("Console at national
//! scale"). `KIDSAFE_BENCH_PROFILES` and `KIDSAFE_BENCH_REPORTS` change the sizes.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use kidsafe_dns::admin::reports::{KeyedReport, NewReport, ReportStore};
use kidsafe_dns::console::accounts::{Accounts, Role};
use kidsafe_dns::profiles::{ProfileSpec, ProfileStore};

const ROUNDS: usize = 30;
const PASSWORD: &str = "bench password 1";

fn size(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// `n` profiles named `family-<i>`, each with device `10.x.y.z`, written in one
/// transaction into the store's own schema (the store makes the file; one API write per
/// profile would spend the bench on 100,000 syncs).
fn fill_profiles(state: &Path, n: usize) {
    let path = state.join(kidsafe_dns::profiles::FILE_NAME);
    drop(ProfileStore::open(&path).expect("a profile store"));
    let mut conn = rusqlite::Connection::open(&path).expect("the profile file");
    let tx = conn.transaction().expect("a transaction");
    {
        let mut profile = tx
            .prepare("INSERT INTO profiles (id, name, settings, version) VALUES (?1, ?2, ?3, 1)")
            .expect("insert profile");
        let mut device = tx
            .prepare("INSERT INTO identities (profile_id, kind, value) VALUES (?1, 'ip', ?2)")
            .expect("insert identity");
        for i in 1..=n {
            let spec = ProfileSpec {
                name: format!("family-{i}"),
                services: if i % 4 == 0 {
                    vec!["tiktok".into()]
                } else {
                    Vec::new()
                },
                ..ProfileSpec::default()
            };
            let settings = serde_json::to_string(&spec).expect("settings JSON");
            profile
                .execute(rusqlite::params![i as i64, spec.name, settings])
                .expect("a profile row");
            let ip = std::net::Ipv4Addr::from(0x0a00_0000 | i as u32);
            device
                .execute(rusqlite::params![i as i64, ip.to_string()])
                .expect("an identity row");
        }
    }
    tx.commit().expect("commit");
}

/// `n` reports of distinct names, through the store's batch intake (1,000 a batch).
fn fill_reports(state: &Path, n: usize) {
    let mut store = ReportStore::open(&state.join("reports.sqlite")).expect("a report store");
    let items: Vec<KeyedReport> = (0..n)
        .map(|i| KeyedReport {
            key: format!("k{i}"),
            serial: None,
            report: NewReport {
                name: format!("site-{i}.example"),
                category: if i % 100 == 0 {
                    "violence"
                } else if i % 2 == 0 {
                    "gambling"
                } else {
                    "adult"
                }
                .into(),
                note: Some(format!("reported from school {}", i % 97)),
                ..NewReport::default()
            },
        })
        .collect();
    for chunk in items.chunks(kidsafe_dns::admin::reports::MAX_BATCH) {
        let done = store
            .submit_batch("bench", chunk, SystemTime::now())
            .expect("a batch");
        assert!(done.invalid.is_empty(), "{:?}", done.invalid);
    }
}

/// The profiles the school owns: every `step`-th, `SCHOOL` of them (fewer when the bench
/// has fewer profiles).
const SCHOOL: usize = 5_000;

fn school_step(profiles: usize) -> usize {
    (profiles / SCHOOL).max(1)
}

/// The administrator, a reviewer, a parent owning three profiles near the end, and a
/// school owning every `school_step`-th profile (written in one transaction into the
/// accounts' own table: 5,000 synced writes would be the bench's whole setup).
fn accounts(state: &Path, profiles: usize) {
    let path = state.join(kidsafe_dns::console::FILE_NAME);
    let mut a = Accounts::open(&path).expect("accounts");
    a.create("admin", PASSWORD, Role::Admin).expect("admin");
    a.create("reviewer", PASSWORD, Role::Reviewer)
        .expect("reviewer");
    let parent = a.create("parent", PASSWORD, Role::Owner).expect("parent");
    for i in [profiles, profiles / 2, 1] {
        a.assign(parent.id, &format!("p{i}")).expect("assign");
    }
    let school = a.create("school", PASSWORD, Role::Owner).expect("school");
    drop(a);
    let step = school_step(profiles);
    let mut conn = rusqlite::Connection::open(&path).expect("the accounts file");
    let tx = conn.transaction().expect("a transaction");
    {
        let mut own = tx
            .prepare("INSERT INTO user_profiles (user_id, profile) VALUES (?1, ?2)")
            .expect("insert ownership");
        for k in 1..=(profiles / step).min(SCHOOL) {
            own.execute(rusqlite::params![school.id, format!("p{}", k * step)])
                .expect("an ownership row");
        }
    }
    tx.commit().expect("commit");
}

struct Serve(Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn login(http: &reqwest::Client, base: &str, user: &str) -> String {
    let r = http
        .post(format!("{base}/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "name={user}&password={}",
            PASSWORD.replace(' ', "+")
        ))
        .send()
        .await
        .expect("login");
    assert_eq!(r.status(), 303, "login as {user}");
    r.headers()["set-cookie"]
        .to_str()
        .expect("a cookie")
        .split(';')
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// `ROUNDS` GETs of `path`: (median, p95, max) in ms; checks 200 and `want` in the body.
async fn time(
    http: &reqwest::Client,
    base: &str,
    cookie: &str,
    path: &str,
    want: &str,
) -> (f64, f64, f64) {
    let mut ms = Vec::with_capacity(ROUNDS);
    for round in 0..=ROUNDS {
        let start = Instant::now();
        let r = http
            .get(format!("{base}{path}"))
            .header("cookie", cookie)
            .send()
            .await
            .expect("a page");
        let status = r.status();
        let body = r.text().await.expect("the body");
        let took = start.elapsed().as_secs_f64() * 1000.0;
        assert_eq!(status, 200, "{path}: {body}");
        assert!(body.contains(want), "{path}: no {want:?} in {body}");
        if round > 0 {
            ms.push(took); // round 0 warms the caches
        }
    }
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.95), at(1.0))
}

#[tokio::main]
async fn main() {
    kidsafe_dns::feed::http::install_crypto_provider();
    let (profiles, reports) = (
        size("KIDSAFE_BENCH_PROFILES", 100_000),
        size("KIDSAFE_BENCH_REPORTS", 50_000),
    );
    let dir = tempfile::tempdir().expect("a temp dir");
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).expect("state dir");
    let start = Instant::now();
    fill_profiles(&state, profiles);
    fill_reports(&state, reports);
    accounts(&state, profiles);
    println!(
        "generated {profiles} profiles and {reports} reports in {:.1} s",
        start.elapsed().as_secs_f64()
    );

    std::fs::write(dir.path().join("adult.txt"), "adult.example\n").expect("list");
    std::fs::write(dir.path().join("gambling.txt"), "casino.example\n").expect("list");
    std::fs::write(dir.path().join("violence.txt"), "gore.example\n").expect("list");
    let (dns, admin, console) = (free_port(), free_port(), free_port());
    let config = dir.path().join("kidsafe.toml");
    std::fs::write(
        &config,
        format!(
            r#"[server]
listen = ["127.0.0.1:{dns}"]
[upstream]
servers = ["127.0.0.1:9"]
timeout_ms = 500
[lists]
compiled = "var/bench.fst"
state_dir = "state"
[[lists.source]]
category = "adult"
path = "adult.txt"
[[lists.source]]
category = "gambling"
path = "gambling.txt"
[[lists.source]]
category = "violence"
path = "violence.txt"
[admin]
listen = ["127.0.0.1:{admin}"]
[console]
listen = ["127.0.0.1:{console}"]
"#
        ),
    )
    .expect("config");
    let log = std::fs::File::create(dir.path().join("serve.log")).expect("log");
    let _serve = Serve(
        Command::new(env!("CARGO_BIN_EXE_kidsafe-dns"))
            .args(["serve", "--config"])
            .arg(&config)
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("kidsafe-dns serve"),
    );
    let console = SocketAddr::from(([127, 0, 0, 1], console));
    let start = Instant::now();
    while std::net::TcpStream::connect(console).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the console never listened: {}",
            std::fs::read_to_string(dir.path().join("serve.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    println!(
        "serve listening after {:.1} s",
        start.elapsed().as_secs_f64()
    );

    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a client");
    let base = format!("http://{console}");
    let admin = login(&http, &base, "admin").await;
    let reviewer = login(&http, &base, "reviewer").await;
    let parent = login(&http, &base, "parent").await;
    let school = login(&http, &base, "school").await;
    let step = school_step(profiles);
    let owned = (profiles / step).min(SCHOOL);
    let school_deep = format!("/?after=p{}", step * (owned / 2));
    let school_back = format!("/?before=p{}", step * (owned / 2));
    let deep = format!("/?after=p{}", profiles.saturating_sub(60));
    let deep_back = format!("/?before=p{}", profiles.saturating_sub(60));
    let queue_deep = format!("/reviews?status=open&after={}", reports / 50);
    let pages: Vec<(&str, &String, String, String)> = vec![
        (
            "admin: profiles, first page",
            &admin,
            "/".into(),
            "family-1<".into(),
        ),
        (
            "admin: profiles, page after p{N-60}",
            &admin,
            deep.clone(),
            format!("family-{}<", profiles.saturating_sub(59)),
        ),
        (
            "admin: profiles, page before p{N-60}",
            &admin,
            deep_back,
            format!("family-{}<", profiles.saturating_sub(61)),
        ),
        (
            "admin: accounts (500 profile suggestions)",
            &admin,
            "/users".into(),
            "family-500<".into(),
        ),
        (
            "reviewer: open queue, newest",
            &reviewer,
            "/reviews".into(),
            format!("site-{}.example", reports - 1),
        ),
        (
            "reviewer: open queue, deep page",
            &reviewer,
            queue_deep,
            "site-".into(),
        ),
        (
            "reviewer: open queue, most reported first",
            &reviewer,
            "/reviews?status=open&sort=count".into(),
            "site-".into(),
        ),
        (
            "reviewer: most reported first, page 500 (offset 25,000)",
            &reviewer,
            "/reviews?status=open&sort=count&page=500".into(),
            "site-".into(),
        ),
        (
            "reviewer: open queue, recently reported first",
            &reviewer,
            "/reviews?status=open&sort=last_seen".into(),
            "site-".into(),
        ),
        (
            "reviewer: all reports",
            &reviewer,
            "/reviews?status=all".into(),
            "site-".into(),
        ),
        (
            "reviewer: open queue, gambling only (half), newest",
            &reviewer,
            "/reviews?status=open&sort=newest&category=gambling".into(),
            "site-".into(),
        ),
        (
            "reviewer: open queue, violence only (1 in 100), newest",
            &reviewer,
            "/reviews?status=open&sort=newest&category=violence".into(),
            format!("site-{}.example", (reports - 1) / 100 * 100),
        ),
        (
            "reviewer: violence only, deep page",
            &reviewer,
            format!(
                "/reviews?status=open&sort=newest&category=violence&after={}",
                reports / 2
            ),
            "site-".into(),
        ),
        (
            "reviewer: violence only, most reported first",
            &reviewer,
            "/reviews?status=open&sort=count&category=violence".into(),
            "site-".into(),
        ),
        (
            "reviewer: violence only, most reported first, page 5",
            &reviewer,
            "/reviews?status=open&sort=count&category=violence&page=5".into(),
            "site-".into(),
        ),
        (
            "reviewer: violence only, recently reported first",
            &reviewer,
            "/reviews?status=open&sort=last_seen&category=violence".into(),
            "site-".into(),
        ),
        (
            "reviewer: every status, violence only",
            &reviewer,
            "/reviews?status=all&category=violence".into(),
            "site-".into(),
        ),
        (
            "parent: own dashboard (3 of N profiles)",
            &parent,
            "/".into(),
            format!("family-{profiles}<"),
        ),
        (
            "parent: own profile page",
            &parent,
            format!("/profiles/p{profiles}"),
            format!("family-{profiles}"),
        ),
        (
            "owner with 5,000 profiles (a school): dashboard, first page",
            &school,
            "/".into(),
            format!("family-{step}<"),
        ),
        (
            "owner with 5,000 profiles: dashboard, page after the 2,500th",
            &school,
            school_deep,
            format!("family-{}<", step * (owned / 2 + 1)),
        ),
        (
            "owner with 5,000 profiles: dashboard, page before the 2,500th",
            &school,
            school_back,
            format!("family-{}<", step * (owned / 2 - 1)),
        ),
        (
            "owner with 5,000 profiles: one of its profiles",
            &school,
            format!("/profiles/p{}", step * (owned * 4 / 5)),
            format!("family-{}", step * (owned * 4 / 5)),
        ),
    ];
    println!("| page | median ms | p95 ms | max ms |");
    println!("|---|---|---|---|");
    for (what, cookie, path, want) in &pages {
        let (median, p95, max) = time(&http, &base, cookie, path, want).await;
        println!("| {what} (`{path}`) | {median:.1} | {p95:.1} | {max:.1} |");
    }
}
