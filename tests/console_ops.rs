//! Issue 17, the operator's pages: a real `kidsafe-dns serve` with a real upstream on
//! loopback and a list file; the administrator, logged in over HTTP, reads `/status`
//! (the list's entries and serial from the live process, a bigger list after a reload, a
//! refused shrink and a refused empty list counted while the old count stays, the
//! upstream failing once it is stopped) and `/audit` (a change made through the admin API
//! with its actor, escaped, paged by keyset). An owner and a reviewer get 403 on both.

mod common;

use std::time::Instant;

use common::central::{free_port, local, serve};
use common::console::{csrf_of, get_page, http, post_form, session_of};
use common::{Upstream, Zone};
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

const ADMIN_PASSWORD: &str = "mật khẩu quản trị 1";

/// The text of the element with `id` (its first text, up to the next tag).
fn by_id(page: &str, id: &str) -> String {
    page.split(&format!("id=\"{id}\""))
        .nth(1)
        .and_then(|s| s.split_once('>'))
        .and_then(|(_, s)| s.split('<').next())
        .unwrap_or_else(|| panic!("no #{id} in:\n{page}"))
        .to_owned()
}

/// The element with `id` and what follows it up to its section's end.
fn section<'a>(page: &'a str, id: &str) -> &'a str {
    let start = page
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in:\n{page}"));
    let rest = &page[start..];
    &rest[..rest.find("</section>").unwrap_or(rest.len())]
}

/// `n` names `<prefix>-<i>.test`, one a line.
fn list(prefix: &str, n: usize) -> String {
    (0..n).map(|i| format!("{prefix}-{i}.test\n")).collect()
}

/// Asks `name` over UDP; the reply's RCODE.
async fn ask(dns: std::net::SocketAddr, name: &str) -> ResponseCode {
    let q = common::query_msg(name, RecordType::A, false);
    let reply = common::raw_udp(dns, &q.to_vec().unwrap()).await;
    reply.expect("an answer").metadata.response_code
}

async fn reload(admin: std::net::SocketAddr) -> u16 {
    http()
        .post(format!("http://{admin}/v1/reload"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_administrator_reads_the_nodes_status_and_the_audit_log() {
    let up = Upstream::start(Zone::standard()).await;
    let dir = tempfile::tempdir().unwrap();
    let list_path = dir.path().join("adult.txt");
    std::fs::write(&list_path, list("first", 10)).unwrap();
    let (dns, admin, console) = (local(free_port()), local(free_port()), local(free_port()));
    let config = format!(
        r#"[server]
listen = ["{dns}"]
[upstream]
servers = ["{up}"]
timeout_ms = 1000
[blocking]
mode = "nxdomain"
[lists]
compiled = "var/blocklist.fst"
# Changes are taken by `POST /v1/reload` only, so each one is judged once.
watch = false
[[lists.source]]
name = "adult"
category = "adult"
path = "adult.txt"
[admin]
listen = ["{admin}"]
[console]
listen = ["{console}"]
"#,
        up = up.addr
    );
    let serving = serve(dir.path(), "ops", &config, admin).await;
    let base = format!("http://{console}");

    // The administrator, from the one-time setup link in the log.
    let log = serving.log();
    let link = log
        .split_whitespace()
        .find(|w| w.contains("/setup?token="))
        .expect("the setup link is logged");
    let token = link.split("token=").nth(1).unwrap().trim_matches('"');
    let r = post_form(
        &base,
        "/setup",
        None,
        &[
            ("token", token),
            ("name", "quantri"),
            ("password", ADMIN_PASSWORD),
        ],
    )
    .await;
    assert_eq!(r.status(), 303, "setup");
    let admin_cookie = session_of(&r);

    // Queries through the resolver: one answered by the upstream, one blocked.
    assert_eq!(ask(dns, "allowed.test").await, ResponseCode::NoError);
    assert_eq!(ask(dns, "first-3.test").await, ResponseCode::NXDomain);

    // The status page: the list as the process serves it, from /readyz's own numbers.
    let ready: serde_json::Value = http()
        .get(format!("http://{admin}/readyz"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .map(|t| serde_json::from_str(&t).unwrap())
        .unwrap();
    let serial = ready["list"]["serial"].as_u64().unwrap();
    let (status, page) = get_page(&base, "/status", &admin_cookie).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(by_id(&page, "serving-entries"), "10");
    assert_eq!(by_id(&page, "serving-serial"), serial.to_string());
    assert_eq!(by_id(&page, "src-adult-entries"), "10");
    assert!(page.contains("Trạng thái máy chủ"), "Vietnamese first");
    assert!(page.contains("href=\"/status\"") && page.contains("href=\"/audit\""));
    let upstream = section(&page, "upstream");
    assert!(upstream.contains(&up.addr.to_string()), "{upstream}");
    assert!(upstream.contains("data-state=\"answering\""), "{upstream}");
    assert!(by_id(&page, "q-received").parse::<u64>().unwrap() >= 2);
    assert!(by_id(&page, "q-blocked").parse::<u64>().unwrap() >= 1);
    let node = section(&page, "node");
    assert!(node.contains(env!("CARGO_PKG_VERSION")), "{node}");
    assert!(node.contains(&dns.to_string()) && node.contains(&console.to_string()));
    assert!(page.contains("không có"), "no refusal yet:\n{page}");
    // The same reading as JSON on the admin API.
    let json: serde_json::Value = http()
        .get(format!("http://{admin}/v1/status"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .map(|t| serde_json::from_str(&t).unwrap())
        .unwrap();
    assert_eq!(json["serving"]["entries"], 10);
    assert_eq!(json["sources"][0]["name"], "adult");

    // A bigger list, reloaded: the new count and a larger serial.
    std::fs::write(&list_path, list("second", 20)).unwrap();
    assert_eq!(reload(admin).await, 200);
    let (_, page) = get_page(&base, "/status", &admin_cookie).await;
    assert_eq!(by_id(&page, "serving-entries"), "20");
    assert_eq!(by_id(&page, "src-adult-entries"), "20");
    let bigger: u64 = by_id(&page, "serving-serial").parse().unwrap();
    assert!(bigger > serial, "{bigger} after {serial}");

    // A list that shrank implausibly: refused, counted, the old count stays.
    std::fs::write(&list_path, list("third", 2)).unwrap();
    assert_eq!(reload(admin).await, 409);
    let (_, page) = get_page(&base, "/status?lang=en", &admin_cookie).await;
    assert_eq!(by_id(&page, "serving-entries"), "20");
    assert_eq!(by_id(&page, "serving-serial"), bigger.to_string());
    let serving_card = section(&page, "serving");
    assert!(
        serving_card.contains("data-guard=\"shrink\">shrank implausibly × 1"),
        "{serving_card}"
    );
    assert!(
        serving_card.contains("id=\"compile-error\"><strong>Last error</strong>"),
        "{serving_card}"
    );
    assert!(
        page.contains("would shrink from 20 to 2 entries"),
        "the guard's message:\n{page}"
    );
    // A list with no valid entry: refused too, counted, still 20.
    std::fs::write(&list_path, "# nothing here\n").unwrap();
    assert_eq!(reload(admin).await, 409);
    let (_, page) = get_page(&base, "/status?lang=en", &admin_cookie).await;
    assert_eq!(by_id(&page, "serving-entries"), "20");
    let serving_card = section(&page, "serving");
    assert!(
        serving_card.contains("shrank implausibly × 1"),
        "{serving_card}"
    );
    assert!(
        serving_card.contains("compile failed × 1") && serving_card.contains("no valid entries"),
        "{serving_card}"
    );

    // The upstream stopped: a query for a name not cached fails, and the page says which
    // server failed and how.
    up.stop().await;
    assert_eq!(ask(dns, "innocent.test").await, ResponseCode::ServFail);
    let (_, page) = get_page(&base, "/status?lang=en", &admin_cookie).await;
    let upstream = section(&page, "upstream");
    assert!(upstream.contains("data-state=\"failing\""), "{upstream}");
    assert!(upstream.contains("Last failure"), "{upstream}");
    let failures: u64 = upstream
        .split("class=\"recent-failures\">")
        .nth(1)
        .and_then(|s| s.split('<').next())
        .unwrap()
        .parse()
        .unwrap();
    assert!(failures >= 1, "{upstream}");

    // The audit log: a profile made through the admin API, with its actor; its name
    // (typed by a person) shown escaped.
    let api = common::admin_api::Api::new(admin, "");
    let r = api
        .post(
            "/v1/profiles",
            serde_json::json!({ "name": "<b>Lớp 5A</b>" }),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let (status, page) = get_page(&base, "/audit", &admin_cookie).await;
    assert_eq!(status, 200);
    let first = page
        .split("class=\"card audit-entry\"")
        .nth(1)
        .expect("an entry");
    assert!(
        first.contains("<strong class=\"actor\">admin</strong>"),
        "{first}"
    );
    assert!(first.contains(&format!("profile:{id}")), "{first}");
    assert!(first.contains("tạo"), "{first}");
    assert!(
        page.contains("&lt;b&gt;Lớp 5A&lt;/b&gt;") && !page.contains("<b>Lớp"),
        "escaped"
    );
    assert!(
        page.contains("chưa được ghi nhật ký"),
        "account changes: not logged"
    );

    // Keyset pages: 60 more changes make two pages, newest first, none lost or repeated.
    for i in 0..60 {
        let r = api
            .post(
                "/v1/profiles",
                serde_json::json!({ "name": format!("P{i:02}") }),
            )
            .await;
        assert_eq!(r.status, 201);
    }
    let ids_on = |page: &str| -> Vec<i64> {
        page.split("id=\"a-")
            .skip(1)
            .map(|s| s.split('"').next().unwrap().parse().unwrap())
            .collect()
    };
    let (_, one) = get_page(&base, "/audit", &admin_cookie).await;
    let first_ids = ids_on(&one);
    assert_eq!(first_ids.len(), 50);
    assert!(first_ids.windows(2).all(|w| w[0] > w[1]), "newest first");
    let next = one
        .split("rel=\"next\" href=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("an older page")
        .to_owned();
    let (_, two) = get_page(&base, &next, &admin_cookie).await;
    let second_ids = ids_on(&two);
    assert_eq!(second_ids.len(), 11, "61 entries: 50 + 11");
    assert!(second_ids[0] < *first_ids.last().unwrap());
    assert!(
        two.contains(&format!("profile:{id}")),
        "the first change is on page 2"
    );
    // A cursor that is no entry id: 400, escaped.
    let (status, bad) = get_page(&base, "/audit?before=%3Cscript%3E", &admin_cookie).await;
    assert_eq!(status, 400);
    assert!(bad.contains("&lt;script&gt;") && !bad.contains("<script>"));

    // An owner (parent) and a reviewer: 403 on both pages; no session: to the login.
    let (_, users) = get_page(&base, "/users", &admin_cookie).await;
    let csrf = csrf_of(&users);
    for (name, role) in [("bo", "owner"), ("duyet", "reviewer")] {
        let password = format!("mật khẩu của {name} 9");
        let r = post_form(
            &base,
            "/users",
            Some(&admin_cookie),
            &[
                ("csrf", &csrf),
                ("name", name),
                ("password", &password),
                ("role", role),
            ],
        )
        .await;
        assert_eq!(r.status(), 303);
        let r = post_form(
            &base,
            "/login",
            None,
            &[("name", name), ("password", &password)],
        )
        .await;
        assert_eq!(r.status(), 303, "login as {name}");
        let cookie = session_of(&r);
        for path in ["/status", "/audit"] {
            let (status, page) = get_page(&base, path, &cookie).await;
            assert_eq!(status, 403, "{name} {path}");
            assert!(!page.contains("href=\"/status\""), "no link for {name}");
        }
    }
    for path in ["/status", "/audit"] {
        let r = http().get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 303, "{path} without a session");
    }

    // Timing: a page of the audit log with 61 entries, and the status page.
    let started = Instant::now();
    for _ in 0..20 {
        get_page(&base, &next, &admin_cookie).await;
    }
    eprintln!("audit page (older): {:?} each", started.elapsed() / 20);
    drop(serving);
}
