//! A parent adds a device in the console and gets its exact setup steps (issue 17), against
//! a real `kidsafe-dns serve` child over HTTP: the iOS/macOS `.mobileconfig` is downloaded
//! and parsed (plist), and the DoH URL it names is then used for real (reqwest over HTTP/2,
//! and `kdig +https` where installed): the profile's blocked service is blocked through it,
//! not without the ClientID. The page's QR codes are read back (rqrr) and carry the exact
//! link and Android host name; the Windows template and PowerShell line are exact; another
//! parent gets 403; the schedule form makes allow-only and block windows that land in the
//! profile (admin API) and in DNS.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::central::free_port;
use common::console::{
    Child, create_owner, csrf_of, get_page, http, login, post_form, setup_admin,
};
use common::{Upstream, Zone, name};
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{RData, Record, RecordType};
use rustls::pki_types::CertificateDer;

const ANSWER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 80);
const ADMIN_PASSWORD: &str = "mật khẩu quản trị 1";
const PARENT_PASSWORD: &str = "mật khẩu phụ huynh 2";
const OTHER_PASSWORD: &str = "mật khẩu của bố 3";
/// The DoT/DoH certificate's name.
const DNS_NAME: &str = "dns.test";
const CLIENT_ID: &str = "be-an-phone";

/// Ports of the child's listeners.
struct Ports {
    doh: u16,
    admin: u16,
    console: u16,
}

/// A certificate for `dns.test` and `*.dns.test` (its own root), written beside the config.
fn write_cert(dir: &Path) -> CertificateDer<'static> {
    let names = [DNS_NAME, "*.dns.test"].map(str::to_owned);
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(names.to_vec()).unwrap();
    std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), signing_key.serialize_pem()).unwrap();
    cert.der().clone()
}

/// DNS, DoT and DoH (named `dns.test`), the admin API and the console on free ports.
fn write_config(dir: &Path, upstream: SocketAddr) -> (std::path::PathBuf, Ports) {
    let dns = free_port();
    let ports = Ports {
        doh: free_port(),
        admin: free_port(),
        console: free_port(),
    };
    let dot = free_port();
    let text = format!(
        r#"[server]
listen = ["127.0.0.1:{dns}"]
dot_listen = ["127.0.0.1:{dot}"]
doh_listen = ["127.0.0.1:{doh}"]
tls_cert = "cert.pem"
tls_key = "key.pem"
ddr_name = "{DNS_NAME}"
{lists}
[cache]
max_entries = 0
[admin]
listen = ["127.0.0.1:{admin}"]
[console]
listen = ["127.0.0.1:{console}"]
"#,
        doh = ports.doh,
        admin = ports.admin,
        console = ports.console,
        lists = common::upstream_and_lists(upstream)
    );
    let path = dir.join("kidsafe.toml");
    std::fs::write(&path, text).unwrap();
    (path, ports)
}

/// A DoH client trusting `root` that reaches `dns.test` at `doh` (the name resolves
/// nowhere else).
fn doh_client(root: &CertificateDer<'static>, doh: SocketAddr) -> reqwest::Client {
    kidsafe_dns::feed::http::install_crypto_provider();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"h2".to_vec()];
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .resolve(DNS_NAME, doh)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap()
}

/// The reply to an `A` query for `n` POSTed to `url` (RFC 8484).
async fn doh_ask(client: &reqwest::Client, url: &str, n: &str) -> Message {
    let q = common::query_msg(n, RecordType::A, true).to_vec().unwrap();
    let r = client
        .post(url)
        .header("content-type", "application/dns-message")
        .header("accept", "application/dns-message")
        .body(q)
        .send()
        .await
        .expect("DoH POST");
    assert_eq!(r.status(), 200, "{url}: {r:?}");
    Message::from_vec(&r.bytes().await.unwrap()).unwrap()
}

/// "blocked" (NXDOMAIN) or "allowed" (the upstream's answer) for `n` through `url`.
async fn verdict(client: &reqwest::Client, url: &str, n: &str) -> &'static str {
    let m = doh_ask(client, url, n).await;
    if m.response_code == ResponseCode::NXDomain {
        "blocked"
    } else if common::a_records(&m).contains(&ANSWER) {
        "allowed"
    } else {
        panic!("{n} via {url}: {m:?}")
    }
}

/// Asks until the verdict is `want` (the policy is rebuilt shortly after a change).
async fn until(client: &reqwest::Client, url: &str, n: &str, want: &str) -> &'static str {
    let start = Instant::now();
    loop {
        let got = verdict(client, url, n).await;
        if got == want || start.elapsed() > Duration::from_secs(15) {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The text of the QR code in the `<img id="{id}" src="data:image/png;base64,...">` of a
/// page, read back from its pixels.
fn qr_text(page: &str, id: &str) -> String {
    let src = page
        .split(&format!("id=\"{id}\" src=\"data:image/png;base64,"))
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap_or_else(|| panic!("no QR image {id} in the page:\n{page}"));
    let png = data_encoding::BASE64.decode(src.as_bytes()).unwrap();
    let image = image::load_from_memory(&png).unwrap().to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(image);
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in {id}");
    grids[0].decode().unwrap().1
}

/// `kdig +https` with the path and name of `url`: its output.
async fn kdig_https(url: &url::Url, dir: &Path, n: &str) -> String {
    let out = tokio::process::Command::new("kdig")
        .arg("@127.0.0.1")
        .arg("-p")
        .arg(url.port().unwrap().to_string())
        .arg(format!("+https={}", url.path()))
        .arg(format!("+tls-hostname={}", url.host_str().unwrap()))
        .arg(format!("+tls-ca={}", dir.join("cert.pem").display()))
        .args(["+timeout=5", "+retry=0", n, "A"])
        .output()
        .await
        .expect("kdig runs");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_parent_adds_a_phone_and_its_mobileconfig_filters_over_doh() {
    let mut zone = Zone::standard();
    for n in ["tiktok.com.", "roblox.com.", "youtube.com."] {
        zone.add(Record::from_rdata(name(n), 300, RData::A(A(ANSWER))));
    }
    let up = Upstream::start(zone).await;
    let dir = common::list_dir();
    let root = write_cert(dir.path());
    let (config, ports) = write_config(dir.path(), up.addr);
    let mut serve = Child::serve(&config);
    let log = serve.wait_for("setup?token=");
    serve.wait_for("listening for DNS over HTTPS");
    let base = format!("http://127.0.0.1:{}", ports.console);
    let admin = setup_admin(&base, &log, ADMIN_PASSWORD).await;
    create_owner(&base, &admin, "me", PARENT_PASSWORD).await;
    create_owner(&base, &admin, "bo", OTHER_PASSWORD).await;
    let me = login(&base, "me", PARENT_PASSWORD).await;

    // A profile blocking TikTok, and a phone added by its ClientID.
    let (_, home) = get_page(&base, "/", &me).await;
    let csrf = csrf_of(&home);
    let r = post_form(
        &base,
        "/profiles",
        Some(&me),
        &[("csrf", &csrf), ("name", "Bé An")],
    )
    .await;
    assert_eq!(r.status(), 303);
    let page_path = r.headers()["location"]
        .to_str()
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    let pid = page_path.trim_start_matches("/profiles/").to_owned();
    for (path, fields) in [
        ("services", [("csrf", csrf.as_str()), ("service", "tiktok")]),
        ("devices", [("csrf", csrf.as_str()), ("value", CLIENT_ID)]),
    ] {
        let r = post_form(&base, &format!("{page_path}/{path}"), Some(&me), &fields).await;
        let to = r.headers()["location"].to_str().unwrap();
        assert!(to.contains("msg=saved"), "{path}: {to}");
    }

    // The page's steps for the phone: the download link, the Windows template and line.
    let (status, page) = get_page(&base, &page_path, &me).await;
    assert_eq!(status, 200);
    let download = page
        .split("href=\"")
        .filter_map(|s| s.split('"').next())
        .find(|h| h.ends_with("/mobileconfig"))
        .unwrap_or_else(|| panic!("no .mobileconfig link:\n{page}"))
        .to_owned();
    let iid = download
        .trim_start_matches(&format!("{page_path}/devices/"))
        .trim_end_matches("/mobileconfig")
        .to_owned();
    assert!(iid.parse::<i64>().is_ok(), "{download}");
    let template = format!("https://{DNS_NAME}:{}/dns-query/{CLIENT_ID}", ports.doh);
    assert!(page.contains(&format!("<code class=\"template\">{template}</code>")));
    // DoH listens on loopback only: the server address is left for the reader to fill in.
    assert!(
        page.contains(&format!(
            "Add-DnsClientDohServerAddress -ServerAddress &lt;IP&gt; -DohTemplate {template} -AllowFallbackToUdp $False -AutoUpgrade $True"
        )),
        "{page}"
    );

    // The QR codes carry the exact download URL and Android host name.
    assert_eq!(
        qr_text(&page, &format!("qr-ios-{iid}")),
        format!("{base}{download}")
    );
    assert_eq!(
        qr_text(&page, &format!("qr-android-{iid}")),
        format!("{CLIENT_ID}.{DNS_NAME}")
    );
    assert!(page.contains(&format!("alt=\"Mã QR của {CLIENT_ID}.{DNS_NAME}\"")));

    // The profile itself: only for its owner (or an administrator).
    let r = http()
        .get(format!("{base}{download}"))
        .header("cookie", &me)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"],
        "application/x-apple-aspen-config"
    );
    assert_eq!(
        r.headers()["content-disposition"],
        format!("attachment; filename=\"{CLIENT_ID}.mobileconfig\"").as_str()
    );
    let bytes = r.bytes().await.unwrap();
    let bo = login(&base, "bo", OTHER_PASSWORD).await;
    let (status, _) = get_page(&base, &download, &bo).await;
    assert_eq!(status, 403, "another family's parent");
    let (status, _) = get_page(&base, &download, &admin).await;
    assert_eq!(status, 200, "the administrator");
    let r = http()
        .get(format!("{base}{download}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "no session: to the login page");
    // ... which comes back to the download once logged in (the phone that scanned the
    // QR code has no session yet), and never to another site.
    let to_login = r.headers()["location"].to_str().unwrap().to_owned();
    assert_eq!(
        to_login,
        format!("/login?next={}", download.replace('/', "%2F"))
    );
    let (status, page) = get_page(&base, &to_login, "").await;
    assert_eq!(status, 200);
    assert!(
        page.contains(&format!("name=\"next\" value=\"{download}\"")),
        "{page}"
    );
    for (next, want) in [
        (download.as_str(), download.as_str()),
        ("//evil.example/x", "/"),
        ("/\\evil.example/x", "/"),
        ("https://evil.example/", "/"),
    ] {
        let r = post_form(
            &base,
            "/login",
            None,
            &[
                ("name", "me"),
                ("password", PARENT_PASSWORD),
                ("next", next),
            ],
        )
        .await;
        assert_eq!(r.status(), 303, "{next}");
        assert_eq!(r.headers()["location"], want, "{next}");
    }
    let (status, _) = get_page(
        &base,
        &format!("{page_path}/devices/999999/mobileconfig"),
        &me,
    )
    .await;
    assert_eq!(status, 404, "no such device of this profile");

    let plist = plist::Value::from_reader_xml(&bytes[..]).expect("an XML plist");
    let top = plist.as_dictionary().unwrap();
    assert_eq!(top["PayloadType"].as_string(), Some("Configuration"));
    assert_eq!(
        top["PayloadDisplayName"].as_string(),
        Some("Bé An (kidsafe-dns)")
    );
    let payload = top["PayloadContent"].as_array().unwrap()[0]
        .as_dictionary()
        .unwrap();
    assert_eq!(
        payload["PayloadType"].as_string(),
        Some("com.apple.dnsSettings.managed")
    );
    let dns = payload["DNSSettings"].as_dictionary().unwrap();
    assert_eq!(dns["DNSProtocol"].as_string(), Some("HTTPS"));
    let server_url = dns["ServerURL"].as_string().unwrap().to_owned();
    assert_eq!(server_url, template);

    // The URL it names filters as the profile: TikTok blocked with the ClientID, not
    // without it.
    let url = url::Url::parse(&server_url).unwrap();
    let doh = SocketAddr::from(([127, 0, 0, 1], url.port().unwrap()));
    let client = doh_client(&root, doh);
    let plain = format!("https://{DNS_NAME}:{}/dns-query", ports.doh);
    assert_eq!(
        until(&client, &server_url, "tiktok.com", "blocked").await,
        "blocked"
    );
    assert_eq!(verdict(&client, &plain, "tiktok.com").await, "allowed");
    assert_eq!(
        verdict(&client, &server_url, "youtube.com").await,
        "allowed"
    );
    if common::tools::find_tool("kdig").is_some() {
        let out = kdig_https(&url, dir.path(), "tiktok.com").await;
        assert!(out.contains("status: NXDOMAIN"), "kdig:\n{out}");
        let mut bare = url.clone();
        bare.set_path("/dns-query");
        let out = kdig_https(&bare, dir.path(), "tiktok.com").await;
        assert!(
            out.contains("status: NOERROR") && out.contains("192.0.2.80"),
            "kdig:\n{out}"
        );
    } else {
        println!("NOTE: kdig not on PATH, the DoH URL was used with reqwest only");
    }

    // An allow-only window for Roblox that is not open now (it opens in three hours):
    // Roblox is blocked for the phone, not for anyone else.
    let zone = jiff::tz::TimeZone::get("Asia/Ho_Chi_Minh").unwrap();
    let now = jiff::Timestamp::now().to_zoned_datetime(zone);
    let (start, end) = (
        format!("{:02}:00", (now.hour() + 3) % 24),
        format!("{:02}:00", (now.hour() + 4) % 24),
    );
    let days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    // Block windows open five hours later, so the week view has cells of each kind.
    let (later, later_end) = (
        format!("{:02}:00", (now.hour() + 8) % 24),
        format!("{:02}:00", (now.hour() + 9) % 24),
    );
    let window = |action: &'static str, extra: &[(&'static str, &'static str)]| {
        let (from, to) = if action == "block" {
            (later.clone(), later_end.clone())
        } else {
            (start.clone(), end.clone())
        };
        let mut f: Vec<(&'static str, String)> = vec![
            ("csrf", csrf.clone()),
            ("action", action.to_owned()),
            ("start", from),
            ("end", to),
            ("timezone", "Asia/Ho_Chi_Minh".to_owned()),
        ];
        f.extend(days.iter().map(|d| ("day", (*d).to_owned())));
        f.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
        f
    };
    let schedule = format!("{page_path}/schedule");
    let send = |fields: Vec<(&'static str, String)>| {
        let (base, schedule, me) = (base.clone(), schedule.clone(), me.clone());
        async move {
            let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let r = post_form(&base, &schedule, Some(&me), &pairs).await;
            r.headers()["location"].to_str().unwrap().to_owned()
        }
    };
    // Refused with the reason, nothing stored: categories in an allow window, an allow
    // window with nothing to allow, an unknown action.
    let to = send(window(
        "allow",
        &[
            ("window_service", "roblox"),
            ("window_category", "gambling"),
        ],
    ))
    .await;
    assert!(to.contains("msg=err_allow_categories"), "{to}");
    let to = send(window("allow", &[])).await;
    assert!(to.contains("msg=err_allow_empty"), "{to}");
    let to = send(window("sometimes", &[("window_service", "roblox")])).await;
    assert!(to.contains("msg=err_invalid"), "{to}");
    let api = common::admin_api::Api::new(SocketAddr::from(([127, 0, 0, 1], ports.admin)), "");
    let stored = api.get(&format!("/v1/profiles/{pid}")).await;
    assert_eq!(
        stored.body["schedules"],
        serde_json::Value::Null,
        "{}",
        stored.body
    );

    let to = send(window("allow", &[("window_service", "roblox")])).await;
    assert!(to.contains("msg=saved"), "{to}");
    let to = send(window(
        "block",
        &[("window_category", "gambling"), ("group", "social")],
    ))
    .await;
    assert!(to.contains("msg=saved"), "{to}");
    let stored = api.get(&format!("/v1/profiles/{pid}")).await;
    let windows = stored.body["schedules"].as_array().unwrap();
    assert_eq!(windows.len(), 2, "{}", stored.body);
    assert_eq!(windows[0]["action"], "allow");
    assert_eq!(windows[0]["services"], serde_json::json!(["roblox"]));
    assert_eq!(windows[0]["start"], start.as_str());
    assert_eq!(
        windows[1]["action"],
        serde_json::Value::Null,
        "block: the default"
    );
    assert_eq!(windows[1]["categories"], serde_json::json!(["gambling"]));
    assert_eq!(windows[1]["service_groups"], serde_json::json!(["social"]));
    assert_eq!(
        until(&client, &server_url, "roblox.com", "blocked").await,
        "blocked"
    );
    assert_eq!(verdict(&client, &plain, "roblox.com").await, "allowed");

    // The week view shows the allow window apart: green cells with ✓ and words.
    let (_, page) = get_page(&base, &page_path, &me).await;
    assert!(page.contains("<td class=\"allow\">"), "{page}");
    assert!(page.contains("<span class=\"badge allow\">Chỉ cho phép</span>"));
    assert!(page.contains("<span class=\"sr-only\">chỉ cho phép lúc này</span>"));

    // The profile's own lists: a name typed as people type it goes on "always blocked"
    // and DNS follows; refused forms change nothing; another family's parent gets 403;
    // removing it lets the name through again.
    let names = format!("{page_path}/names");
    let own = |fields: Vec<(&'static str, String)>, who: String| {
        let (base, names) = (base.clone(), names.clone());
        async move {
            let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            post_form(&base, &names, Some(&who), &pairs).await
        }
    };
    let form = |list: &str, name: &str, op: &str| {
        vec![
            ("csrf", csrf.clone()),
            ("list", list.to_owned()),
            ("name", name.to_owned()),
            ("op", op.to_owned()),
        ]
    };
    assert_eq!(
        verdict(&client, &server_url, "youtube.com").await,
        "allowed"
    );
    for (list, name) in [
        ("block", "youtube.com"),
        ("deny", "  "),
        ("deny", "you tube.com"),
    ] {
        let r = own(form(list, name, "add"), me.clone()).await;
        let to = r.headers()["location"].to_str().unwrap().to_owned();
        assert!(to.contains("msg=err_invalid"), "{list} {name:?}: {to}");
    }
    let stored = api.get(&format!("/v1/profiles/{pid}")).await;
    assert_eq!(
        stored.body["deny"],
        serde_json::json!([]),
        "{}",
        stored.body
    );
    let (_, bo_home) = get_page(&base, "/", &bo).await;
    let bo_form = vec![
        ("csrf", csrf_of(&bo_home)),
        ("list", "allow".to_owned()),
        ("name", "casino.example".to_owned()),
    ];
    assert_eq!(own(bo_form, bo.clone()).await.status(), 403);
    let r = own(form("deny", " YouTube.com. ", "add"), me.clone()).await;
    assert!(
        r.headers()["location"]
            .to_str()
            .unwrap()
            .contains("msg=saved")
    );
    let stored = api.get(&format!("/v1/profiles/{pid}")).await;
    assert_eq!(stored.body["deny"], serde_json::json!(["youtube.com"]));
    assert_eq!(
        until(&client, &server_url, "youtube.com", "blocked").await,
        "blocked"
    );
    assert_eq!(verdict(&client, &plain, "youtube.com").await, "allowed");
    let (_, page) = get_page(&base, &page_path, &me).await;
    assert!(page.contains("<code>youtube.com</code>"), "{page}");
    let r = own(form("deny", "youtube.com", "remove"), me.clone()).await;
    assert!(
        r.headers()["location"]
            .to_str()
            .unwrap()
            .contains("msg=saved")
    );
    assert_eq!(
        until(&client, &server_url, "youtube.com", "allowed").await,
        "allowed"
    );
    drop(serve);
}
