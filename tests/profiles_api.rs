//! The profiles API over real HTTP against a running server: create, read, update and
//! delete with ETag/If-Match (412, 428), racing writers, config profiles read-only (409),
//! bad input named by field, duplicate identities (409), bulk subscriber uploads that are
//! all-or-nothing, the audit log, and persistence across a restart.

mod common;

use std::net::SocketAddr;

use common::admin_api::{Api, Reply};
use common::*;
use serde_json::{Value, json};

const TOKEN: &str = "s3cret-admin-token";

fn config(upstream: SocketAddr) -> String {
    format!(
        r#"
[server]
listen = ["127.0.0.1:0"]
[upstream]
servers = ["{upstream}"]
timeout_ms = 500
{STANDARD_LISTS}
[[groups]]
name = "kids"
clients = ["127.0.0.2/32"]
categories = ["adult", "gambling"]
[admin]
listen = ["127.0.0.1:0"]
token = "{TOKEN}"
"#
    )
}

fn assert_field(r: &Reply, status: u16, field: &str) {
    assert_eq!(r.status, status, "{}", r.body);
    assert_eq!(r.body["field"], json!(field), "{}", r.body);
    assert!(r.body["error"].is_string(), "{}", r.body);
}

#[tokio::test]
async fn profiles_crud_etags_conflicts_bulk_audit_and_restart() {
    let up = Upstream::start(Zone::standard()).await;
    let text = config(up.addr);
    let k = start_from_text(list_dir(), &text, None).await;
    let api = Api::new(k.running.admin_addrs[0], TOKEN);

    // The token is required, as on every /v1 route.
    let r = api
        .c
        .get(format!("{}/v1/profiles", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // The config's groups are listed, read-only.
    let r = api.get("/v1/profiles").await;
    assert_eq!(r.status, 200, "{}", r.body);
    let ids: Vec<&str> = r.body["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&"config:kids"), "{ids:?}");
    let r = api.get("/v1/profiles/config:kids").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["read_only"], true);
    assert_eq!(r.body["clients"], json!(["127.0.0.2/32"]));
    let r = api
        .write(
            "PUT",
            "/v1/profiles/config:kids",
            Some(json!({"name": "kids"})),
            "\"0\"",
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.body["error"].as_str().unwrap().contains("config file"));
    let r = api
        .write("DELETE", "/v1/profiles/config:kids", None, "\"0\"")
        .await;
    assert_eq!(r.status, 409);

    // Blocked services must be the catalog's: 400 names the field and the known ones.
    let r = api
        .post(
            "/v1/profiles",
            json!({"name": "x", "services": ["tikstok"]}),
        )
        .await;
    assert_field(&r, 400, "services[0]");
    assert!(r.body["error"].as_str().unwrap().contains("tiktok"));
    let r = api
        .post(
            "/v1/profiles",
            json!({"name": "x", "services": ["tiktok"], "service_groups": ["gamez"]}),
        )
        .await;
    assert_field(&r, 400, "service_groups[0]");

    // Create.
    let r = api
        .post(
            "/v1/profiles",
            json!({"name": "teens", "categories": ["adult"], "deny": ["TikTok.com."],
                   "safesearch": true, "youtube": "moderate", "mode": "null",
                   "services": ["tiktok"], "service_groups": ["games"],
                   "schedule": {"days": ["mon", "tue"], "start": "08:00", "end": "15:00",
                                "timezone": "Europe/Paris", "categories": ["gambling"]}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.etag.as_deref(), Some("\"1\""));
    let id = r.body["id"].as_str().unwrap().to_owned();
    assert_eq!(r.body["deny"], json!(["tiktok.com"]));
    assert_eq!(r.body["services"], json!(["tiktok"]));
    assert_eq!(r.body["service_groups"], json!(["games"]));
    let path = format!("/v1/profiles/{id}");

    // Read.
    let r = api.get(&path).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.etag.as_deref(), Some("\"1\""));
    assert_eq!(r.body["name"], "teens");
    assert_eq!(r.body["version"], 1);

    // Writes need If-Match (428), a stale one fails (412) and changes nothing.
    let r = api
        .send(
            "PATCH",
            &path,
            Some(json!({"safesearch": false}).to_string()),
            &[],
        )
        .await;
    assert_eq!(r.status, 428, "{}", r.body);
    let r = api
        .write("PATCH", &path, Some(json!({"safesearch": false})), "\"7\"")
        .await;
    assert_eq!(r.status, 412, "{}", r.body);
    assert_eq!(api.get(&path).await.body["safesearch"], true);

    // PATCH (merge patch) and PUT with the current ETag.
    let r = api
        .write(
            "PATCH",
            &path,
            Some(json!({"safesearch": false, "schedule": null})),
            "\"1\"",
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.etag.as_deref(), Some("\"2\""));
    assert_eq!(r.body["safesearch"], false);
    assert!(
        r.body.get("schedule").is_none_or(Value::is_null),
        "{}",
        r.body
    );
    assert_eq!(
        r.body["deny"],
        json!(["tiktok.com"]),
        "untouched by the patch"
    );
    let mut whole = api.get(&path).await.body;
    whole["allow"] = json!(["khanacademy.org"]);
    let r = api.write("PUT", &path, Some(whole), "\"2\"").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["version"], 3);

    // Two racing writers with the same ETag: one wins, the other gets 412.
    let (a, b) = tokio::join!(
        api.write(
            "PATCH",
            &path,
            Some(json!({"deny": ["a.example"]})),
            "\"3\""
        ),
        api.write(
            "PATCH",
            &path,
            Some(json!({"deny": ["b.example"]})),
            "\"3\""
        ),
    );
    let mut statuses = [a.status, b.status];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 412], "{} / {}", a.body, b.body);
    let winner = if a.status == 200 { &a } else { &b };
    assert_eq!(api.get(&path).await.body["deny"], winner.body["deny"]);

    // Every bad input names its field; nothing changes.
    let bad = [
        (
            json!({"name": "x", "categories": ["nope"]}),
            "categories[0]",
        ),
        (json!({"name": ""}), "name"),
        (json!({"name": "x", "colour": "red"}), "colour"),
        (json!({"name": "x", "deny": ["not a name"]}), "deny[0]"),
        (json!({"name": "x", "youtube": "lax"}), "youtube"),
        (
            json!({"name": "x", "schedule": {"days": ["someday"], "start": "08:00",
                   "end": "15:00", "timezone": "UTC", "categories": ["adult"]}}),
            "schedule.days",
        ),
        (
            json!({"name": "x", "schedule": {"days": ["mon"], "start": "08:00",
                   "end": "15:00", "timezone": "Mars/Olympus", "categories": ["adult"]}}),
            "schedule.timezone",
        ),
    ];
    for (body, field) in bad {
        let r = api.post("/v1/profiles", body.clone()).await;
        assert_field(&r, 400, field);
    }
    let r = api.post("/v1/profiles", json!({"name": "kids"})).await;
    assert_field(&r, 409, "name");
    let r = api.post("/v1/profiles", json!({"name": "teens"})).await;
    assert_field(&r, 409, "name");
    let r = api.get("/v1/profiles/p999").await;
    assert_eq!(r.status, 404);
    let r = api
        .write("DELETE", "/v1/profiles/p999", None, "\"1\"")
        .await;
    assert_eq!(r.status, 404);

    // Identities: validated, duplicates refused naming the other profile.
    let other = api.post("/v1/profiles", json!({"name": "little"})).await;
    assert_eq!(other.status, 201);
    let other_id = other.body["id"].as_str().unwrap().to_owned();
    let ident = format!("/v1/profiles/{id}/identities");
    for (kind, value) in [
        ("ip", "192.0.2.7"),
        ("cidr", "10.9.0.0/16"),
        ("client_id", "kid-tablet"),
        ("mac", "AA:BB:CC:DD:EE:FF"),
    ] {
        let r = api
            .post(&ident, json!({"kind": kind, "value": value}))
            .await;
        assert_eq!(r.status, 201, "{kind} {value}: {}", r.body);
    }
    let r = api.get(&ident).await;
    let list = r.body["identities"].as_array().unwrap().clone();
    assert_eq!(list.len(), 4);
    assert!(list.iter().any(|i| i["value"] == "aa:bb:cc:dd:ee:ff"));
    for (kind, value) in [
        ("ip", "192.0.2.300"),
        ("cidr", "10.9.1.0/8"),
        ("mac", "aa:bb:cc:dd:ee"),
        ("client_id", "-kid"),
        ("client_id", "kid.tablet"),
    ] {
        let r = api
            .post(&ident, json!({"kind": kind, "value": value}))
            .await;
        assert_field(&r, 400, "value");
    }
    let r = api
        .post(&ident, json!({"kind": "imei", "value": "1"}))
        .await;
    assert_field(&r, 400, "kind");
    let r = api
        .post(
            &format!("/v1/profiles/{other_id}/identities"),
            json!({"kind": "client_id", "value": "Kid-Tablet"}),
        )
        .await;
    assert_field(&r, 409, "value");
    assert!(
        r.body["error"].as_str().unwrap().contains(&id),
        "{}",
        r.body
    );
    let r = api
        .post(
            "/v1/profiles/p999/identities",
            json!({"kind": "ip", "value": "192.0.2.1"}),
        )
        .await;
    assert_eq!(r.status, 404);
    let r = api
        .post(
            "/v1/profiles/config:kids/identities",
            json!({"kind": "ip", "value": "192.0.2.1"}),
        )
        .await;
    assert_eq!(r.status, 409);
    let doomed = list.iter().find(|i| i["kind"] == "ip").unwrap()["id"].clone();
    let r = api
        .send("DELETE", &format!("/v1/identities/{doomed}"), None, &[])
        .await;
    assert_eq!(r.status, 204);
    let r = api
        .send("DELETE", &format!("/v1/identities/{doomed}"), None, &[])
        .await;
    assert_eq!(r.status, 404);

    // Subscribers: one at a time (the prefix's '/' as %2F, or ?prefix=).
    let r = api
        .send(
            "PUT",
            "/v1/subscribers/198.51.100.0%2F24",
            Some(json!({"profile": id}).to_string()),
            &[],
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["prefix"], "198.51.100.0/24");
    let r = api
        .send(
            "PUT",
            "/v1/subscribers?prefix=2001:db8::/56",
            Some(json!({"profile": "config:kids"}).to_string()),
            &[],
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let r = api
        .send(
            "PUT",
            "/v1/subscribers/198.51.100.9",
            Some(json!({"profile": "p999"}).to_string()),
            &[],
        )
        .await;
    assert_field(&r, 404, "profile");
    let r = api
        .send(
            "PUT",
            "/v1/subscribers/300.1.1.1",
            Some(json!({"profile": id}).to_string()),
            &[],
        )
        .await;
    assert_field(&r, 400, "prefix");
    let r = api
        .send("DELETE", "/v1/subscribers?prefix=2001:db8::/56", None, &[])
        .await;
    assert_eq!(r.status, 204);

    // Bulk: all or nothing, the failing line named.
    let csv = format!("prefix,profile\n203.0.113.1,{id}\n203.0.113.2,{id}\n203.0.113.0/33,{id}\n");
    let r = api
        .send(
            "POST",
            "/v1/subscribers/bulk",
            Some(csv),
            &[("content-type", "text/csv")],
        )
        .await;
    assert_field(&r, 400, "line 4.prefix");
    let ndjson = format!(
        "{{\"prefix\":\"203.0.113.1\",\"profile\":\"{id}\"}}\n{{\"prefix\":\"203.0.113.2\",\"profile\":\"p999\"}}\n"
    );
    let r = api
        .send(
            "POST",
            "/v1/subscribers/bulk",
            Some(ndjson),
            &[("content-type", "application/x-ndjson")],
        )
        .await;
    assert_field(&r, 404, "line 2.profile");
    let r = api.get("/v1/subscribers").await;
    assert_eq!(
        r.body["subscribers"].as_array().unwrap().len(),
        1,
        "{}",
        r.body
    );
    let csv = format!(
        "203.0.113.1,{id}\n203.0.113.2,{other_id}\n\n# comment\n203.0.113.128/25,config:kids\n"
    );
    let r = api
        .send(
            "POST",
            "/v1/subscribers/bulk",
            Some(csv),
            &[("content-type", "text/csv")],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["set"], 3);
    let r = api.get("/v1/subscribers").await;
    assert_eq!(
        r.body["subscribers"].as_array().unwrap().len(),
        4,
        "{}",
        r.body
    );

    // Delete with If-Match removes the profile, its identities and its subscribers.
    let r = api.get(&format!("/v1/profiles/{other_id}")).await;
    let tag = r.etag.unwrap();
    let r = api
        .write(
            "DELETE",
            &format!("/v1/profiles/{other_id}"),
            None,
            "\"42\"",
        )
        .await;
    assert_eq!(r.status, 412);
    let r = api
        .write("DELETE", &format!("/v1/profiles/{other_id}"), None, &tag)
        .await;
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(
        api.get(&format!("/v1/profiles/{other_id}")).await.status,
        404
    );
    let r = api.get("/v1/subscribers").await;
    assert_eq!(
        r.body["subscribers"].as_array().unwrap().len(),
        3,
        "{}",
        r.body
    );

    // The audit log: who, what, before and after; never the token.
    let r = api.get("/v1/audit?limit=500").await;
    assert_eq!(r.status, 200);
    let entries = r.body["entries"].as_array().unwrap().clone();
    let update = entries
        .iter()
        .find(|e| e["action"] == "update" && e["entity"] == format!("profile:{id}"))
        .expect("a profile update is logged");
    assert_eq!(update["actor"], "admin");
    assert!(update["before"]["version"].is_i64() && update["after"]["version"].is_i64());
    assert!(entries.iter().any(|e| e["action"] == "delete"
        && e["entity"] == format!("profile:{other_id}")
        && e["after"].is_null()
        && e["before"]["name"] == "little"));
    assert!(
        entries
            .iter()
            .any(|e| e["entity"] == "subscriber:203.0.113.1/32")
    );
    assert!(
        !r.body.to_string().contains(TOKEN),
        "no secrets in the audit log"
    );
    let failed_writes = entries.iter().filter(|e| e["after"]["name"] == "x").count();
    assert_eq!(failed_writes, 0, "refused writes leave no trace");
    let r = api.get("/v1/audit?limit=2").await;
    assert_eq!(r.body["entries"].as_array().unwrap().len(), 2);

    // Restart on the same state directory: everything is still there.
    let before = api.get(&path).await.body;
    let Kidsafe { dir, running, .. } = k;
    running.stop().await;
    let k = start_from_text(dir, &text, None).await;
    let api = Api::new(k.running.admin_addrs[0], TOKEN);
    let r = api.get(&path).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, before);
    assert_eq!(
        api.get(&ident).await.body["identities"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        api.get("/v1/subscribers").await.body["subscribers"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    // A new profile after the restart gets a new id, never a deleted one's.
    let r = api.post("/v1/profiles", json!({"name": "again"})).await;
    assert_eq!(r.status, 201);
    assert_ne!(r.body["id"], json!(other_id));
    k.running.stop().await;
    up.stop().await;
}
