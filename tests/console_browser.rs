//! The web console in a real browser: headless Chromium driven through WebDriver
//! (`chromedriver`, with the `fantoccini` crate) against a real `kidsafe-dns serve` child
//! with a loopback upstream, and what it changes checked with `dig`.
//!
//! Without chromium and chromedriver the test says it skipped, unless
//! `KIDSAFE_REQUIRE_BROWSER=1` (CI), where it fails.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::browser::{
    Child, browser, browser_programs, click, fill, free_port, submit, wait_text,
};
use common::console::{csrf_of, get_page, http, login, post_form, setup_admin};
use common::dig::dig;
use common::{Upstream, Zone, name};
use fantoccini::{Client, Locator};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{RData, Record};

const ANSWER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 80);
const ADMIN_PASSWORD: &str = "mật khẩu quản trị 1";
const PARENT_PASSWORD: &str = "mật khẩu phụ huynh 2";
const XSS: &str = "<script>window.__xss=1</script><b>Bé</b>";

/// The config: DNS, admin API and console on free loopback ports, one upstream, the test
/// lists.
fn write_config(dir: &Path, upstream: SocketAddr) -> (PathBuf, SocketAddr, SocketAddr, SocketAddr) {
    let (dns, admin, console) = (free_port(), free_port(), free_port());
    let text = format!(
        r#"[server]
listen = ["127.0.0.1:{dns}"]
{}
[admin]
listen = ["127.0.0.1:{admin}"]
[console]
listen = ["127.0.0.1:{console}"]
"#,
        common::upstream_and_lists(upstream)
    );
    let path = dir.join("kidsafe.toml");
    std::fs::write(&path, text).unwrap();
    let at = |p| SocketAddr::from(([127, 0, 0, 1], p));
    (path, at(dns), at(admin), at(console))
}

/// The answer dig shows: "NXDOMAIN <EDE text>" or "NOERROR".
async fn ask(dns: SocketAddr, from: &str, n: &str) -> String {
    let out = dig(dns, from, &[n, "A"]).await;
    if out.contains("status: NXDOMAIN") {
        let ede = out.lines().find(|l| l.contains("EDE:")).unwrap_or("");
        format!("NXDOMAIN {ede}")
    } else if out.contains("status: NOERROR") && out.contains("192.0.2.80") {
        "NOERROR".into()
    } else {
        out
    }
}

/// Asks until the answer contains `want` (the policy is rebuilt after a change, shortly).
async fn until(dns: SocketAddr, from: &str, n: &str, want: &str) -> String {
    let start = Instant::now();
    loop {
        let got = ask(dns, from, n).await;
        if got.contains(want) || start.elapsed() > Duration::from_secs(15) {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Saves a PNG of the whole page at `width` px under docs/screenshots/.
async fn shot(c: &Client, file: &str, width: u32) {
    c.set_window_size(width, 900).await.unwrap();
    let height = c
        .execute("return document.documentElement.scrollHeight", vec![])
        .await
        .unwrap()
        .as_u64()
        .unwrap_or(900) as u32;
    // The window's outer height holds the browser's chrome as well: a little more.
    c.set_window_size(width, (height + 140).min(8000))
        .await
        .unwrap();
    let png = c.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{file}-{width}.png")), png).unwrap();
    c.set_window_size(1280, 900).await.unwrap();
}

async fn shots(c: &Client, file: &str) {
    shot(c, file, 390).await;
    shot(c, file, 1280).await;
}

/// The page says "Đã lưu." (saved) after a form.
async fn saved(c: &Client) {
    wait_text(c, "p.msg", "Đã lưu.").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_parent_sets_up_a_profile_in_the_browser_and_dns_follows() {
    let Some((chromium, driver)) = browser_programs() else {
        return;
    };
    let mut zone = Zone::standard();
    for n in [
        "tiktok.com.",
        "www.tiktok.com.",
        "youtube.com.",
        "roblox.com.",
    ] {
        zone.add(Record::from_rdata(name(n), 300, RData::A(A(ANSWER))));
    }
    let up = Upstream::start(zone).await;
    let dir = common::list_dir();
    let (config, dns, admin_api, console) = write_config(dir.path(), up.addr);
    let mut serve = Child::spawn(
        std::process::Command::new(env!("CARGO_BIN_EXE_kidsafe-dns"))
            .args(["serve", "--config"])
            .arg(&config)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1"),
    );
    let log = serve.wait_for("setup?token=");
    serve.wait_for("listening on UDP and TCP");
    let link = log
        .split_whitespace()
        .find(|w| w.contains("/setup?token="))
        .unwrap()
        .trim_matches(|c: char| c == '"' || c == '\'')
        .to_owned();
    let base = format!("http://{console}");
    assert!(link.starts_with(&base), "{link}");
    let (_driver, c) = browser(&chromium, &driver).await;

    // First run: the setup link creates the administrator (once).
    c.goto(&link).await.unwrap();
    assert_eq!(
        c.find(Locator::Css("h1"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "Thiết lập lần đầu"
    );
    shots(&c, "setup").await;
    fill(&c, "#name", "quantri").await;
    fill(&c, "#password", ADMIN_PASSWORD).await;
    submit(&c, "form[action='/setup'] button").await;
    wait_text(&c, "h1", "Hồ sơ của gia đình").await;
    let again = http().get(&link).send().await.unwrap();
    assert_eq!(again.status(), 403, "the setup link works once");

    // Log out and in again.
    submit(&c, "form[action='/logout'] button").await;
    wait_text(&c, "h1", "Đăng nhập").await;
    shots(&c, "login").await;
    fill(&c, "#name", "quantri").await;
    fill(&c, "#password", "not the password").await;
    submit(&c, "form[action='/login'] button").await;
    wait_text(&c, "p.msg.error", "Sai tên đăng nhập hoặc mật khẩu.").await;
    fill(&c, "#name", "quantri").await;
    fill(&c, "#password", ADMIN_PASSWORD).await;
    submit(&c, "form[action='/login'] button").await;
    wait_text(&c, "h1", "Hồ sơ của gia đình").await;

    // Profile "Kids", device 127.0.0.2, TikTok blocked.
    fill(&c, "#pname", "Kids").await;
    submit(&c, "form[action='/profiles'] button").await;
    saved(&c).await;
    let profile_url = c.current_url().await.unwrap();
    let pid = profile_url
        .path()
        .trim_start_matches("/profiles/")
        .to_owned();
    assert_eq!(
        c.find(Locator::Css("h1"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "Kids"
    );
    fill(&c, "#dev-ip", "127.0.0.2").await;
    submit(&c, "form[action$='/devices'] button").await;
    saved(&c).await;
    // The services are folded by group, closed while nothing in them is blocked.
    let shown = c
        .find(Locator::Css("input[name='service'][value='tiktok']"))
        .await
        .unwrap()
        .is_displayed()
        .await
        .unwrap();
    assert!(!shown, "the video group starts folded");
    click(&c, "details[data-group='video'] > summary").await;
    click(&c, "input[name='service'][value='tiktok']").await;
    submit(&c, "form[action$='/services'] button[type='submit']").await;
    saved(&c).await;
    let got = until(dns, "127.0.0.2", "tiktok.com", "NXDOMAIN").await;
    assert!(
        got.contains("NXDOMAIN") && got.contains("service tiktok"),
        "{got}"
    );
    assert_eq!(ask(dns, "127.0.0.3", "tiktok.com").await, "NOERROR");
    assert!(
        ask(dns, "127.0.0.2", "www.tiktok.com")
            .await
            .contains("service tiktok")
    );

    // YouTube blocked, then "unblock for 60 minutes" from the page.
    click(&c, "input[name='service'][value='youtube']").await;
    submit(&c, "form[action$='/services'] button[type='submit']").await;
    saved(&c).await;
    let got = until(dns, "127.0.0.2", "youtube.com", "NXDOMAIN").await;
    assert!(got.contains("service youtube"), "{got}");
    c.execute(
        "document.getElementById('unb-svc').value = 'youtube'",
        vec![],
    )
    .await
    .unwrap();
    submit(&c, "form[action$='/unblock'] button").await;
    saved(&c).await;
    assert_eq!(
        until(dns, "127.0.0.2", "youtube.com", "NOERROR").await,
        "NOERROR"
    );
    assert!(
        ask(dns, "127.0.0.2", "tiktok.com")
            .await
            .contains("service tiktok"),
        "only YouTube"
    );
    let listed = c
        .find(Locator::Css("section[aria-labelledby='unb'] li"))
        .await
        .unwrap();
    assert!(
        listed.text().await.unwrap().starts_with("YouTube đến "),
        "{}",
        listed.text().await.unwrap()
    );

    // A schedule window (every day, all day) blocking games: Roblox is blocked by it.
    assert_eq!(ask(dns, "127.0.0.2", "roblox.com").await, "NOERROR");
    for d in ["mon", "tue", "wed", "thu", "fri", "sat", "sun"] {
        click(&c, &format!("input[name='day'][value='{d}']")).await;
    }
    c.execute(
        "document.getElementById('w-start').value = '00:00'; document.getElementById('w-end').value = '23:59';",
        vec![],
    )
    .await
    .unwrap();
    click(&c, "input[name='group'][value='games']").await;
    submit(&c, "form[action$='/schedule'] button[type='submit']").await;
    saved(&c).await;
    let got = until(dns, "127.0.0.2", "roblox.com", "NXDOMAIN").await;
    assert!(got.contains("roblox"), "{got}");

    // "Is this site safe?"
    fill(&c, "#chk-name", "tiktok.com").await;
    submit(&c, "form[method='get'] button").await;
    wait_text(&c, "p.verdict", "tiktok.com: Bị chặn cho hồ sơ này").await;
    c.goto(&format!("{base}/profiles/{pid}")).await.unwrap();
    shots(&c, "profile").await;

    // The dashboard counts.
    c.goto(&format!("{base}/")).await.unwrap();
    let mut card = String::new();
    for e in c.find_all(Locator::Css(".profile-card")).await.unwrap() {
        let text = e.text().await.unwrap();
        if text.starts_with("Kids\n") {
            card = text;
        }
    }
    assert!(
        card.contains("1\nThiết bị") && card.contains("2\nDịch vụ bị chặn"),
        "{card}"
    );
    // Its activity: the TikTok queries asked above from 127.0.0.2, counted (never listed),
    // in the fold by kind once opened.
    assert!(
        card.contains("Hoạt động") && card.contains("Cố vượt bộ lọc"),
        "{card}"
    );
    for e in c.find_all(Locator::Css(".profile-card")).await.unwrap() {
        if e.text().await.unwrap().starts_with("Kids\n") {
            e.find(Locator::Css(".activity summary"))
                .await
                .unwrap()
                .click()
                .await
                .unwrap();
            let text = e.text().await.unwrap();
            assert!(text.contains("TikTok"), "{text}");
            assert!(!text.contains("tiktok.com"), "no name asked: {text}");
        }
    }
    shots(&c, "dashboard").await;

    // An XSS payload as a profile name and a device name is shown as text.
    fill(&c, "#pname", XSS).await;
    submit(&c, "form[action='/profiles'] button").await;
    saved(&c).await;
    assert_eq!(
        c.find(Locator::Css("h1"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        XSS
    );
    let ran = c
        .execute("return typeof window.__xss", vec![])
        .await
        .unwrap();
    assert_eq!(ran, "undefined");
    assert!(
        c.find_all(Locator::Css("main h1 b"))
            .await
            .unwrap()
            .is_empty(),
        "no <b> element was made"
    );
    fill(&c, "#dev-ip", "<img src=x onerror=alert(1)>").await;
    submit(&c, "form[action$='/devices'] button").await;
    wait_text(&c, "p.msg.error", "Dữ liệu không hợp lệ").await;
    assert!(
        c.find_all(Locator::Css("main img"))
            .await
            .unwrap()
            .is_empty()
    );

    // A second parent account, created by the administrator.
    c.goto(&format!("{base}/users")).await.unwrap();
    fill(&c, "#u-name", "bo").await;
    fill(&c, "#u-pass", PARENT_PASSWORD).await;
    submit(&c, "form[action='/users'] button").await;
    saved(&c).await;
    shots(&c, "users").await;

    // The operator's pages: the node's status and the audit log of the changes above.
    c.goto(&format!("{base}/status")).await.unwrap();
    wait_text(&c, "h1", "Trạng thái máy chủ").await;
    shots(&c, "status").await;
    c.goto(&format!("{base}/audit")).await.unwrap();
    wait_text(&c, "h1", "Nhật ký thay đổi").await;
    let text = c
        .find(Locator::Css("main"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("console:"),
        "the console's changes, by account: {text}"
    );
    shots(&c, "audit").await;

    // A report in the reviewer's queue (posted to the admin API like the block page does),
    // accepted from the page.
    let r = http()
        .post(format!("http://{admin_api}/v1/reports"))
        .header("content-type", "application/json")
        .body(r#"{"name":"casino-moi.example","category":"gambling","note":"<i>quảng cáo</i> trên trang trẻ em"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    c.goto(&format!("{base}/reviews")).await.unwrap();
    let text = c
        .find(Locator::Css("main"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("casino-moi.example") && text.contains("cờ bạc"),
        "{text}"
    );
    shots(&c, "reviews").await;
    fill(&c, "input[name='note']", "trang cờ bạc").await;
    submit(&c, "button[value='accepted']").await;
    saved(&c).await;
    c.goto(&format!("{base}/reviews?status=accepted"))
        .await
        .unwrap();
    let text = c
        .find(Locator::Css("main"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("casino-moi.example") && text.contains("Đã chấp nhận"),
        "{text}"
    );

    // English on request, kept in a cookie.
    c.goto(&format!("{base}/?lang=en")).await.unwrap();
    assert_eq!(
        c.find(Locator::Css("h1"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "Your profiles"
    );
    c.goto(&format!("{base}/")).await.unwrap();
    assert_eq!(
        c.find(Locator::Css("h1"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
        "Your profiles"
    );
    c.goto(&format!("{base}/?lang=vi")).await.unwrap();
    c.close().await.unwrap();

    // The second parent: 403 on the first family's profile, for reading and for writing.
    let bo = login(&base, "bo", PARENT_PASSWORD).await;
    let page = http()
        .get(format!("{base}/profiles/{pid}"))
        .header("cookie", &bo)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 403);
    let own = http()
        .get(format!("{base}/"))
        .header("cookie", &bo)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !own.contains("Kids"),
        "bo's dashboard lists none of the first family's profiles"
    );
    let csrf = own
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_owned();
    let r = post_form(
        &base,
        &format!("/profiles/{pid}/services"),
        Some(&bo),
        &[("csrf", &csrf), ("service", "roblox")],
    )
    .await;
    assert_eq!(r.status(), 403, "a write on another family's profile");
    assert!(
        ask(dns, "127.0.0.2", "tiktok.com")
            .await
            .contains("service tiktok"),
        "TikTok still blocked"
    );

    // A forged POST (no CSRF token, or another session's) changes nothing; the real
    // token works.
    let r = post_form(&base, "/profiles", Some(&bo), &[("name", "Forged")]).await;
    assert_eq!(r.status(), 403);
    let r = post_form(
        &base,
        "/profiles",
        Some(&bo),
        &[("name", "Forged"), ("csrf", "0000")],
    )
    .await;
    assert_eq!(r.status(), 403);
    let r = post_form(
        &base,
        "/profiles",
        Some(&bo),
        &[("name", "Con của Bố"), ("csrf", &csrf)],
    )
    .await;
    assert_eq!(r.status(), 303);
    let own = http()
        .get(format!("{base}/"))
        .header("cookie", &bo)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        own.contains("Con của Bố") && !own.contains("Forged"),
        "{own}"
    );

    // Logins are limited per account.
    let mut limited = false;
    for _ in 0..12 {
        let r = post_form(
            &base,
            "/login",
            None,
            &[("name", "quantri"), ("password", "wrong password")],
        )
        .await;
        if r.status() == 429 {
            limited = true;
            break;
        }
        assert_eq!(r.status(), 401);
    }
    assert!(limited, "the 11th failed login for one account is refused");

    drop(serve);
    up.stop().await;
}

/// The profile names a dashboard shows (its cards' links).
fn names_on(page: &str) -> Vec<String> {
    page.split("<h2 id=\"p-")
        .skip(1)
        .filter_map(|card| card.split("\">").nth(2)?.split('<').next())
        .map(str::to_owned)
        .collect()
}

/// The page links' targets: (previous, next).
fn pager(page: &str) -> (Option<String>, Option<String>) {
    let link = |rel: &str| {
        page.split(&format!("rel=\"{rel}\" href=\""))
            .nth(1)
            .and_then(|s| s.split('"').next())
            .map(|s| s.replace("&amp;", "&"))
    };
    (link("prev"), link("next"))
}

#[tokio::test(flavor = "multi_thread")]
async fn pages_of_profiles_go_forward_and_back_and_an_owner_sees_only_their_own() {
    kidsafe_dns::feed::http::install_crypto_provider();
    let up = Upstream::start(Zone::standard()).await;
    let dir = common::list_dir();
    let (config, _dns, admin_api, console) = write_config(dir.path(), up.addr);
    let mut serve = Child::spawn(
        std::process::Command::new(env!("CARGO_BIN_EXE_kidsafe-dns"))
            .args(["serve", "--config"])
            .arg(&config)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1"),
    );
    let log = serve.wait_for("setup?token=");
    serve.wait_for("listening on UDP and TCP");
    let base = format!("http://{console}");
    let admin = setup_admin(&base, &log, ADMIN_PASSWORD).await;

    // 120 profiles by the admin API: 55 of family A, 5 of family B, 60 nobody's.
    let api = common::admin_api::Api::new(admin_api, "");
    let mut ids = Vec::new();
    let name_of = |i: usize| match i {
        0..55 => format!("A-{i:03}"),
        55..60 => format!("B-{i:03}"),
        _ => format!("Z-{i:03}"),
    };
    for i in 0..120 {
        let r = api
            .post("/v1/profiles", serde_json::json!({ "name": name_of(i) }))
            .await;
        assert_eq!(r.status, 201, "{}", r.body);
        ids.push(r.body["id"].as_str().unwrap().to_owned());
    }

    // Two parents; A's and B's profiles given to them.
    let (_, home) = get_page(&base, "/users", &admin).await;
    let csrf = csrf_of(&home);
    for (user, password) in [("me", PARENT_PASSWORD), ("bo", "mật khẩu của bố 3")] {
        let r = post_form(
            &base,
            "/users",
            Some(&admin),
            &[
                ("csrf", &csrf),
                ("name", user),
                ("password", password),
                ("role", "owner"),
            ],
        )
        .await;
        assert_eq!(r.status(), 303);
    }
    let (_, users) = get_page(&base, "/users", &admin).await;
    let user_id = |name: &str| {
        users
            .split(&format!(">{name}</option>"))
            .next()
            .and_then(|s| s.rsplit("value=\"").next())
            .and_then(|s| s.split('"').next())
            .unwrap()
            .to_owned()
    };
    let (me, bo) = (user_id("me"), user_id("bo"));
    for (i, id) in ids.iter().enumerate().take(60) {
        let owner = if i < 55 { &me } else { &bo };
        let r = post_form(
            &base,
            "/users/assign",
            Some(&admin),
            &[("csrf", &csrf), ("user", owner), ("profile", id)],
        )
        .await;
        assert_eq!(r.status(), 303);
        let to = r.headers()["location"].to_str().unwrap();
        assert!(to.contains("msg=saved"), "{to}");
    }
    // An unknown profile id is refused.
    let r = post_form(
        &base,
        "/users/assign",
        Some(&admin),
        &[("csrf", &csrf), ("user", &me), ("profile", "p99999")],
    )
    .await;
    assert!(
        r.headers()["location"]
            .to_str()
            .unwrap()
            .contains("err_not_found")
    );

    // The administrator: 50 a page, in id order, forward and back.
    let expect = |range: std::ops::Range<usize>| range.map(name_of).collect::<Vec<_>>();
    // The first page leads with the config file's catch-all profile (named in Vietnamese).
    let first = [
        vec!["Mặc định (các thiết bị khác)".to_owned()],
        expect(0..50),
    ]
    .concat();
    let (status, one) = get_page(&base, "/", &admin).await;
    assert_eq!(status, 200);
    assert_eq!(names_on(&one), first);
    let (prev, next) = pager(&one);
    assert_eq!(prev, None);
    let next = next.expect("a next page");
    assert_eq!(next, format!("/?after={}", ids[49]));
    let (_, two) = get_page(&base, &next, &admin).await;
    assert_eq!(names_on(&two), expect(50..100), "page 2");
    let (prev, next) = pager(&two);
    let (_, back_one) = get_page(&base, &prev.expect("a previous page"), &admin).await;
    assert_eq!(names_on(&back_one), first, "back to page 1");
    assert_eq!(pager(&back_one).0, None);
    let (_, three) = get_page(&base, &next.expect("a third page"), &admin).await;
    assert_eq!(names_on(&three), expect(100..120));
    assert_eq!(pager(&three).1, None, "the last page");

    // A cursor that is no profile id: 400, shown escaped.
    let (status, bad) = get_page(&base, "/?after=%3Cscript%3Ex", &admin).await;
    assert_eq!(status, 400);
    assert!(bad.contains("&lt;script&gt;x") && !bad.contains("<script>x"));

    // The parents: every page holds only their own profiles, and all of them.
    for (user, password, own) in [
        ("me", PARENT_PASSWORD, expect(0..55)),
        ("bo", "mật khẩu của bố 3", expect(55..60)),
    ] {
        let cookie = login(&base, user, password).await;
        let mut seen = Vec::new();
        let mut path = "/".to_owned();
        for _ in 0..5 {
            let (status, page) = get_page(&base, &path, &cookie).await;
            assert_eq!(status, 200);
            seen.extend(names_on(&page));
            match pager(&page).1 {
                Some(next) => path = next,
                None => break,
            }
        }
        seen.sort();
        assert_eq!(seen, own, "{user}'s pages");
        // The administrator's cursors change nothing for a parent; a page past the end
        // is empty.
        for path in [format!("/?after={}", ids[99]), "/?page=7".to_owned()] {
            let (_, page) = get_page(&base, &path, &cookie).await;
            assert!(
                names_on(&page).iter().all(|n| own.contains(n)),
                "{user} {path}"
            );
        }
        let (status, _) = get_page(&base, &format!("/profiles/{}", ids[110]), &cookie).await;
        assert_eq!(status, 403, "another family's profile");
        for page in ["/reviews", "/published"] {
            assert_eq!(get_page(&base, page, &cookie).await.0, 403, "{user} {page}");
        }
    }
    // Not a central: the published page says so.
    let (status, page) = get_page(&base, "/published", &admin).await;
    assert_eq!(status, 200);
    assert!(page.contains("chưa cấu hình [publish]"), "{page}");

    // The reviewer's queue: newest first, or most reported first.
    for (n, times) in [("once.test", 1), ("thrice.test", 3), ("twice.test", 2)] {
        for _ in 0..times {
            let r = api
                .post(
                    "/v1/reports",
                    serde_json::json!({ "name": n, "category": "gambling" }),
                )
                .await;
            assert!(r.status == 201 || r.status == 200, "{}", r.body); // 200: counted again
        }
    }
    let order = |page: &str| -> Vec<String> {
        page.split("<h2 id=\"r-")
            .skip(1)
            .filter_map(|card| card.split("<code>").nth(1)?.split('<').next())
            .map(str::to_owned)
            .collect()
    };
    let (_, newest) = get_page(&base, "/reviews", &admin).await;
    assert_eq!(order(&newest), ["twice.test", "thrice.test", "once.test"]);
    let (_, most) = get_page(&base, "/reviews?status=open&sort=count", &admin).await;
    assert_eq!(order(&most), ["thrice.test", "twice.test", "once.test"]);
    let (_, past) = get_page(&base, "/reviews?status=open&sort=count&page=1", &admin).await;
    assert!(order(&past).is_empty(), "one page of three");

    // The queue by category: 60 adult reports written into the running server's report
    // store (the admin API limits reports per address), beside the three gambling ones.
    let mut reports = kidsafe_dns::admin::reports::ReportStore::open(
        &dir.path().join("var").join("reports.sqlite"),
    )
    .unwrap();
    for i in 0..60 {
        let adult = kidsafe_dns::admin::reports::NewReport {
            name: format!("adult-{i:02}.test"),
            category: "adult".into(),
            ..Default::default()
        };
        reports
            .submit(&adult, std::time::SystemTime::now())
            .unwrap();
    }
    let categories_on = |page: &str| -> Vec<String> {
        page.split("<h2 id=\"r-")
            .skip(1)
            .filter_map(|card| card.split("<li><strong>").nth(1)?.split('<').next())
            .map(str::to_owned)
            .collect()
    };
    let (status, one) = get_page(&base, "/reviews?status=open&category=adult", &admin).await;
    assert_eq!(status, 200);
    let first = order(&one);
    assert_eq!(first.len(), 50);
    assert_eq!(first[0], "adult-59.test", "newest first");
    assert!(
        categories_on(&one).iter().all(|c| c == "người lớn"),
        "{one}"
    );
    assert!(
        one.contains("<option value=\"adult\" selected>người lớn</option>"),
        "{one}"
    );
    let (prev, next) = pager(&one);
    assert_eq!(prev, None);
    let next = next.expect("a second page of adult reports");
    assert!(
        next.contains("status=open") && next.contains("category=adult"),
        "{next}"
    );
    let (_, two) = get_page(&base, &next, &admin).await;
    let rest = order(&two);
    assert_eq!(rest.len(), 10);
    assert!(rest.iter().all(|n| n.starts_with("adult-")), "{rest:?}");
    let back = pager(&two).0.expect("back to the first page");
    assert!(back.contains("category=adult"), "{back}");
    // The tabs keep the category; within it, most reported first is gambling's own order.
    assert!(one.contains("sort=count&amp;category=adult"), "{one}");
    let (_, most) = get_page(
        &base,
        "/reviews?status=open&sort=count&category=gambling",
        &admin,
    )
    .await;
    assert_eq!(order(&most), ["thrice.test", "twice.test", "once.test"]);
    let (_, every) = get_page(&base, "/reviews?status=all&category=gambling", &admin).await;
    assert_eq!(order(&every).len(), 3);
    // An unknown category is refused, shown escaped; an empty one is every category.
    let (status, bad) = get_page(&base, "/reviews?category=%3Cscript%3Ex", &admin).await;
    assert_eq!(status, 400);
    assert!(
        bad.contains("&lt;script&gt;x") && !bad.contains("<script>x"),
        "{bad}"
    );
    let (_, all) = get_page(&base, "/reviews?status=open&category=", &admin).await;
    assert_eq!(order(&all).len(), 50);
    // A decision from the second adult page returns to it.
    let id = two
        .split("action=\"/reviews/")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let r = post_form(
        &base,
        &format!("/reviews/{id}"),
        Some(&admin),
        &[
            ("csrf", &csrf_of(&two)),
            ("decision", "rejected"),
            ("back", &next),
        ],
    )
    .await;
    assert_eq!(r.status(), 303);
    let to = r.headers()["location"].to_str().unwrap();
    assert!(to.starts_with(&format!("{next}&msg=saved")), "{to}");

    drop(serve);
    up.stop().await;
}

/// `minisign -G -W`: an unencrypted key pair in `dir`; the public key line.
fn minisign_keys(dir: &Path) -> String {
    let out = std::process::Command::new("minisign")
        .args(["-G", "-W", "-p"])
        .arg(dir.join("central.pub"))
        .arg("-s")
        .arg(dir.join("central.key"))
        .output()
        .expect("the minisign CLI (apt-get install minisign)");
    assert!(out.status.success(), "{out:?}");
    let public = std::fs::read_to_string(dir.join("central.pub")).unwrap();
    public.lines().nth(1).unwrap().trim().to_owned()
}

/// Issue 17's browser test 3: on a central (`[publish]`), a reviewer accepts a report in
/// the console's queue; the name is published to the gambling list, and an edge
/// following the central's signed feed blocks it (dig); the "published" page shows the
/// decision, and reverting it there unblocks the name again.
#[tokio::test(flavor = "multi_thread")]
async fn a_reviewer_accepts_a_report_in_the_console_and_an_edge_blocks_the_name() {
    kidsafe_dns::feed::http::install_crypto_provider();
    let Some((chromium, driver)) = browser_programs() else {
        return;
    };
    let mut zone = Zone::standard();
    zone.add(Record::from_rdata(
        name("casino-moi.test."),
        300,
        RData::A(A(ANSWER)),
    ));
    let up = Upstream::start(zone).await;

    // The central: lists, admin API, console, and [publish] with a minisign key.
    let dir = common::list_dir();
    let pubkey = minisign_keys(dir.path());
    let (config, _dns, admin_api, console) = write_config(dir.path(), up.addr);
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("[publish]\nminisign_key_file = \"central.key\"\n");
    std::fs::write(&config, text).unwrap();
    let mut central = Child::spawn(
        std::process::Command::new(env!("CARGO_BIN_EXE_kidsafe-dns"))
            .args(["serve", "--config"])
            .arg(&config)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1"),
    );
    let log = central.wait_for("setup?token=");
    central.wait_for("listening on UDP and TCP");

    // The edge: follows the central's gambling list over its signed HTTP feed.
    let edge_dir = tempfile::tempdir().unwrap();
    std::fs::write(edge_dir.path().join("local.txt"), "local-only.test\n").unwrap();
    let (e_dns, e_admin) = (free_port(), free_port());
    let edge_config = edge_dir.path().join("edge.toml");
    std::fs::write(
        &edge_config,
        format!(
            r#"[server]
listen = ["127.0.0.1:{e_dns}"]
[upstream]
servers = ["{upstream}"]
timeout_ms = 1000
[blocking]
mode = "nxdomain"
ttl = 1
[lists]
compiled = "var/edge.fst"
[[lists.source]]
category = "adult"
path = "local.txt"
[[lists.source]]
name = "central-gambling"
category = "gambling"
url = "http://{admin_api}/v1/published/gambling.txt"
minisign_pubkey = "{pubkey}"
refresh = "1s"
[admin]
listen = ["127.0.0.1:{e_admin}"]
"#,
            upstream = up.addr
        ),
    )
    .unwrap();
    let mut edge = Child::spawn(
        std::process::Command::new(env!("CARGO_BIN_EXE_kidsafe-dns"))
            .args(["serve", "--config"])
            .arg(&edge_config)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1"),
    );
    edge.wait_for("listening on UDP and TCP");
    let edge_dns = SocketAddr::from(([127, 0, 0, 1], e_dns));
    assert_eq!(
        ask(edge_dns, "127.0.0.1", "casino-moi.test").await,
        "NOERROR"
    );

    // A reviewer account, made by the administrator.
    let base = format!("http://{console}");
    let admin = setup_admin(&base, &log, ADMIN_PASSWORD).await;
    let (_, users) = get_page(&base, "/users", &admin).await;
    let r = post_form(
        &base,
        "/users",
        Some(&admin),
        &[
            ("csrf", &csrf_of(&users)),
            ("name", "duyet"),
            ("password", PARENT_PASSWORD),
            ("role", "reviewer"),
        ],
    )
    .await;
    assert_eq!(r.status(), 303);

    // A report, posted as the block page does.
    let r = http()
        .post(format!("http://{admin_api}/v1/reports"))
        .header("content-type", "application/json")
        .body(r#"{"name":"casino-moi.test","category":"gambling","note":"cá cược trên trang trẻ em"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    // The reviewer accepts it in the browser.
    let (_driver, c) = browser(&chromium, &driver).await;
    c.goto(&format!("{base}/login")).await.unwrap();
    fill(&c, "#name", "duyet").await;
    fill(&c, "#password", PARENT_PASSWORD).await;
    submit(&c, "form[action='/login'] button").await;
    wait_text(&c, "h1", "Báo cáo chờ duyệt").await;
    let queue = c
        .find(Locator::Css("main"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(queue.contains("casino-moi.test"), "{queue}");
    fill(&c, "input[name='note']", "trang cá cược").await;
    let decided = Instant::now();
    submit(&c, "button[value='accepted']").await;
    wait_text(&c, "p.msg", "Đã chấp nhận và công bố.").await;

    // The edge blocks it within its poll.
    let got = until(edge_dns, "127.0.0.1", "casino-moi.test", "NXDOMAIN").await;
    assert!(got.starts_with("NXDOMAIN"), "{got}");
    println!("console accept -> edge blocks: {:?}", decided.elapsed());

    // What was published, and when: the decision with its list, serial and reviewer.
    c.goto(&format!("{base}/published")).await.unwrap();
    wait_text(&c, "h1", "Danh sách đã công bố").await;
    let published = c
        .find(Locator::Css("main"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        published.contains("casino-moi.test")
            && published.contains("cờ bạc")
            && published.contains("console:duyet")
            && published.contains("trang cá cược"),
        "{published}"
    );
    shots(&c, "published").await;

    // The review API's audit shows the same decision: one path.
    let audit = common::admin_api::Api::new(admin_api, "")
        .get("/v1/reports?status=accepted")
        .await
        .body;
    assert_eq!(audit["reports"][0]["name"], "casino-moi.test", "{audit}");

    // A revert from the page takes the name off the list: the edge answers again.
    fill(&c, "form[action$='/revert'] input[name='note']", "nhầm").await;
    submit(&c, "form[action$='/revert'] button").await;
    wait_text(&c, "p.msg", "Đã hoàn tác.").await;
    let got = until(edge_dns, "127.0.0.1", "casino-moi.test", "NOERROR").await;
    assert_eq!(got, "NOERROR");
    c.goto(&format!("{base}/reviews")).await.unwrap();
    let queue = c
        .find(Locator::Css("main"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(queue.contains("casino-moi.test"), "open again: {queue}");

    let _ = c.close().await;
    drop(edge);
    drop(central);
    up.stop().await;
}
