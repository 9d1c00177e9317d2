//! The real thing against `knotd`: AXFR, IXFR, TSIG and NOTIFY.

use super::*;

const ZONE: &str = "rpz.test.";
const TSIG_ZONE: &str = "tsig.test.";
const NOIXFR_ZONE: &str = "noixfr.test.";
const KEY_NAME: &str = "xfr-key.";
const KEY_SECRET: &[u8] = b"kidsafe-dns test tsig secret 32b";
const BIG_ZONE_RULES: usize = 3000;

fn zone_file(origin: &str, serial: u32, rules: usize) -> String {
    let mut z = format!(
        "$ORIGIN {origin}\n$TTL 300\n\
         @ 3600 IN SOA localhost. hostmaster.localhost. {serial} 3600 600 864000 60\n\
         @ NS localhost.\n\
         bad.example CNAME .\n\
         *.bad.example CNAME .\n\
         adult.example CNAME .\n\
         passthru.example CNAME rpz-passthru.\n\
         32.1.2.0.192.rpz-ip CNAME .\n"
    );
    for i in 0..rules {
        z.push_str(&format!("host{i}.blocked-by-kidsafe.example CNAME .\n"));
    }
    z
}

/// Path of a system tool, looking in sbin directories too (not always on a
/// non-root PATH).
fn find_tool(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

/// A knotd on 127.0.0.1:<free port> in a temp dir; killed on drop.
struct Knot {
    child: Child,
    dir: tempfile::TempDir,
    conf: PathBuf,
    knotc: PathBuf,
    addr: SocketAddr,
}

impl Drop for Knot {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Knot {
    /// Starts knotd, or returns `None` (after a notice) if it is not
    /// installed. With `KIDSAFE_REQUIRE_KNOT=1` a missing knotd fails the test.
    async fn start(test: &str, notify_to: Option<SocketAddr>) -> Option<Knot> {
        let (Some(knotd), Some(knotc)) = (find_tool("knotd"), find_tool("knotc")) else {
            if std::env::var_os("KIDSAFE_REQUIRE_KNOT").is_some_and(|v| v == "1") {
                panic!("{test}: knotd/knotc not installed and KIDSAFE_REQUIRE_KNOT=1");
            }
            eprintln!("{test}: SKIPPED, knotd/knotc not installed (apt-get install knot)");
            return None;
        };
        let mut last_log = String::new();
        for _attempt in 0..3 {
            let knot = Self::spawn(&knotd, &knotc, notify_to);
            if knot.wait_ready().await {
                return Some(knot);
            }
            last_log = knot.log();
        }
        panic!("{test}: knotd did not come up; last log:\n{last_log}");
    }

    fn spawn(knotd: &Path, knotc: &Path, notify_to: Option<SocketAddr>) -> Knot {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let port = free_port();
        std::fs::write(d.join("rpz.test.zone"), zone_file(ZONE, 100, 0)).unwrap();
        std::fs::write(
            d.join("tsig.test.zone"),
            zone_file(TSIG_ZONE, 200, BIG_ZONE_RULES),
        )
        .unwrap();
        std::fs::write(d.join("noixfr.test.zone"), zone_file(NOIXFR_ZONE, 300, 0)).unwrap();
        let notify = match notify_to {
            Some(a) => format!(
                "remote:\n  - id: listener\n    address: {}@{}\n",
                a.ip(),
                a.port()
            ),
            None => String::new(),
        };
        let zone_notify = if notify_to.is_some() {
            "    notify: listener\n"
        } else {
            ""
        };
        let conf = format!(
            r#"server:
    rundir: "{d}"
    listen: 127.0.0.1@{port}
    udp-workers: 1
    tcp-workers: 1
    background-workers: 1
control:
    listen: "{d}/knot.sock"
log:
  - target: "{d}/knotd.log"
    any: info
database:
    storage: "{d}"
key:
  - id: {KEY_NAME}
    algorithm: hmac-sha256
    secret: {secret}
{notify}acl:
  - id: open
    address: 127.0.0.0/8
    action: transfer
  - id: signed
    address: 127.0.0.0/8
    key: {KEY_NAME}
    action: transfer
template:
  - id: default
    storage: "{d}"
    zonefile-sync: -1
    zonefile-load: whole
    journal-content: changes
    serial-policy: increment
zone:
  - domain: {ZONE}
    file: rpz.test.zone
    acl: open
{zone_notify}  - domain: {TSIG_ZONE}
    file: tsig.test.zone
    acl: signed
  - domain: {NOIXFR_ZONE}
    file: noixfr.test.zone
    acl: open
    provide-ixfr: off
"#,
            d = d.display(),
            secret = data_encoding::BASE64.encode(KEY_SECRET),
        );
        let conf_path = d.join("knot.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let child = Command::new(knotd)
            .arg("-c")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("knotd.stderr")).unwrap())
            .spawn()
            .expect("spawn knotd");
        Knot {
            child,
            dir,
            conf: conf_path,
            knotc: knotc.to_owned(),
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        }
    }

    async fn wait_ready(&self) -> bool {
        let src = self.source(ZONE, None);
        for _ in 0..100 {
            if src.soa_serial(Duration::from_millis(200)).await.is_ok() {
                return true;
            }
            if let Ok(Some(_)) = self.child_exited() {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    }

    fn child_exited(&self) -> std::io::Result<Option<()>> {
        // `try_wait` needs &mut; probing the pid is enough here.
        let alive = Path::new(&format!("/proc/{}", self.child.id())).exists()
            && !std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))
                .unwrap_or_default()
                .contains(") Z ");
        Ok(if alive { None } else { Some(()) })
    }

    fn log(&self) -> String {
        let read = |f: &str| std::fs::read_to_string(self.dir.path().join(f)).unwrap_or_default();
        format!("{}{}", read("knotd.log"), read("knotd.stderr"))
    }

    fn source(&self, zone: &str, tsig: Option<TsigKey>) -> XfrSource {
        XfrSource {
            primary: self.addr,
            zone: name(zone),
            tsig,
        }
    }

    fn knotc(&self, args: &[&str]) {
        let out = Command::new(&self.knotc)
            .arg("-c")
            .arg(&self.conf)
            .args(args)
            .output()
            .expect("run knotc");
        assert!(
            out.status.success(),
            "knotc {args:?} failed: {}{}\nknotd log:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
    }

    /// One transaction: `(owner, type, rdata)` to add and to remove.
    fn edit(&self, zone: &str, add: &[(&str, &str, &str)], remove: &[(&str, &str, &str)]) {
        self.knotc(&["zone-begin", zone]);
        for (owner, rtype, rdata) in add {
            self.knotc(&["zone-set", zone, owner, "300", rtype, rdata]);
        }
        for (owner, rtype, rdata) in remove {
            self.knotc(&["zone-unset", zone, owner, rtype, rdata]);
        }
        self.knotc(&["zone-commit", zone]);
    }

    /// Waits until the primary serves `serial` (commits apply asynchronously).
    async fn wait_serial(&self, zone: &str, serial: u32) {
        let src = self.source(zone, None);
        for _ in 0..100 {
            if src.soa_serial(Duration::from_millis(500)).await.ok() == Some(serial) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("{zone} never reached serial {serial}; log:\n{}", self.log());
    }
}

/// A port free on 127.0.0.1 for both UDP and TCP at the time of the call.
fn free_port() -> u16 {
    loop {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

fn rule_owner(owner: &str, zone: &str) -> Name {
    name(&format!("{owner}.{zone}"))
}

#[tokio::test]
async fn knot_axfr_gets_all_records_and_serial() {
    let Some(knot) = Knot::start("knot_axfr_gets_all_records_and_serial", None).await else {
        return;
    };
    let src = knot.source(ZONE, None);
    assert_eq!(src.soa_serial(T).await.unwrap(), 100);
    let out = src.transfer(None, T).await.unwrap();
    let XfrOutcome::Full(snap) = out else {
        panic!("{out:?}")
    };
    assert_eq!(snap.serial, 100);
    assert_eq!(snap.refresh, Duration::from_secs(3600));
    assert_eq!(snap.retry, Duration::from_secs(600));
    assert_eq!(snap.records[0].record_type(), RecordType::SOA);
    // SOA, NS and five rules.
    assert_eq!(snap.records.len(), 7, "{:#?}", snap.records);
    let owners: Vec<String> = snap.records.iter().map(|r| r.name.to_ascii()).collect();
    for expected in [
        "bad.example.rpz.test.",
        "*.bad.example.rpz.test.",
        "adult.example.rpz.test.",
        "passthru.example.rpz.test.",
        "32.1.2.0.192.rpz-ip.rpz.test.",
    ] {
        assert!(
            owners.iter().any(|o| o == expected),
            "{expected} in {owners:?}"
        );
    }
    let passthru = snap
        .records
        .iter()
        .find(|r| r.name == name("passthru.example.rpz.test."))
        .unwrap();
    assert_eq!(passthru.data, RData::CNAME(CNAME(name("rpz-passthru."))));
    assert!(
        snap.records
            .iter()
            .all(|r| r.name.is_fqdn() && zone().zone_of(&r.name)),
        "owners are absolute and inside the zone"
    );

    // A zone the server does not have.
    let err = knot
        .source("missing.test.", None)
        .transfer(None, T)
        .await
        .unwrap_err();
    assert!(matches!(err, XfrError::Rcode { .. }), "{err:?}");
}

#[tokio::test]
async fn knot_ixfr_add_delete_and_up_to_date() {
    let Some(knot) = Knot::start("knot_ixfr_add_delete_and_up_to_date", None).await else {
        return;
    };
    let src = knot.source(ZONE, None);
    let XfrOutcome::Full(mut snap) = src.transfer(None, T).await.unwrap() else {
        panic!("expected AXFR")
    };
    assert_eq!(snap.serial, 100);

    // Up to date.
    assert_eq!(
        src.transfer(Some(100), T).await.unwrap(),
        XfrOutcome::UpToDate
    );

    // Add one rule: serial 100 -> 101 (serial-policy increment).
    knot.edit(ZONE, &[("new.example.rpz.test.", "CNAME", ".")], &[]);
    knot.wait_serial(ZONE, 101).await;
    let out = src.transfer(Some(100), T).await.unwrap();
    let XfrOutcome::Incremental {
        serial,
        deleted,
        added,
    } = out
    else {
        panic!("{out:?}")
    };
    assert_eq!(serial, 101);
    assert_eq!(non_soa(&deleted), vec![]);
    let added_rules = non_soa(&added);
    assert_eq!(added_rules.len(), 1, "{added_rules:?}");
    assert_eq!(added_rules[0].name, rule_owner("new.example", ZONE));
    assert_eq!(added_rules[0].data, RData::CNAME(CNAME(Name::root())));
    assert_eq!(deleted.iter().find_map(soa_of).unwrap().serial, 100);
    assert_eq!(added.iter().find_map(soa_of).unwrap().serial, 101);
    apply(&mut snap, serial, &deleted, &added);

    // Delete it again: 101 -> 102.
    knot.edit(ZONE, &[], &[("new.example.rpz.test.", "CNAME", ".")]);
    knot.wait_serial(ZONE, 102).await;
    let out = src.transfer(Some(101), T).await.unwrap();
    let XfrOutcome::Incremental {
        serial,
        deleted,
        added,
    } = out
    else {
        panic!("{out:?}")
    };
    assert_eq!(serial, 102);
    assert_eq!(non_soa(&added), vec![]);
    let deleted_rules = non_soa(&deleted);
    assert_eq!(deleted_rules.len(), 1);
    assert_eq!(deleted_rules[0].name, rule_owner("new.example", ZONE));
    apply(&mut snap, serial, &deleted, &added);

    // Two sequences at once (100 -> 102) net to nothing but the SOA.
    let out = src.transfer(Some(100), T).await.unwrap();
    let XfrOutcome::Incremental { deleted, added, .. } = out else {
        panic!("{out:?}")
    };
    assert_eq!(non_soa(&deleted), vec![]);
    assert_eq!(non_soa(&added), vec![]);

    // Another change, then the incrementally maintained snapshot must equal a
    // fresh AXFR.
    knot.edit(
        ZONE,
        &[("other.example.rpz.test.", "A", "192.0.2.1")],
        &[("adult.example.rpz.test.", "CNAME", ".")],
    );
    knot.wait_serial(ZONE, 103).await;
    let XfrOutcome::Incremental {
        serial,
        deleted,
        added,
    } = src.transfer(Some(102), T).await.unwrap()
    else {
        panic!("expected IXFR")
    };
    apply(&mut snap, serial, &deleted, &added);
    let XfrOutcome::Full(fresh) = src.transfer(None, T).await.unwrap() else {
        panic!("expected AXFR")
    };
    assert_eq!(snap.serial, 103);
    assert_eq!(snap.serial, fresh.serial);
    assert_eq!(snap.records[0], fresh.records[0]);
    assert_eq!(sorted_keys(&snap.records), sorted_keys(&fresh.records));

    // Asking from a serial newer than the primary's.
    let err = src.transfer(Some(500), T).await.unwrap_err();
    assert!(
        matches!(
            err,
            XfrError::SerialBehind {
                have: 500,
                primary_serial: 103,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn knot_ixfr_answered_with_axfr_when_provide_ixfr_is_off() {
    let Some(knot) = Knot::start("knot_ixfr_answered_with_axfr", None).await else {
        return;
    };
    knot.edit(
        NOIXFR_ZONE,
        &[("n.example.noixfr.test.", "CNAME", ".")],
        &[],
    );
    knot.wait_serial(NOIXFR_ZONE, 301).await;
    let out = knot
        .source(NOIXFR_ZONE, None)
        .transfer(Some(300), T)
        .await
        .unwrap();
    let XfrOutcome::Full(snap) = out else {
        panic!("{out:?}")
    };
    assert_eq!(snap.serial, 301);
    assert_eq!(snap.records.len(), 8);
}

#[tokio::test]
async fn knot_tsig_right_key_works_wrong_key_fails() {
    let Some(knot) = Knot::start("knot_tsig_right_key_works_wrong_key_fails", None).await else {
        return;
    };
    let right = key(KEY_NAME, KEY_SECRET);
    let src = knot.source(TSIG_ZONE, Some(right.clone()));

    // Signed SOA query (UDP) and a multi-message signed AXFR.
    assert_eq!(src.soa_serial(T).await.unwrap(), 200);
    let out = src.transfer(None, T).await.unwrap();
    let XfrOutcome::Full(snap) = out else {
        panic!("{out:?}")
    };
    assert_eq!(snap.serial, 200);
    assert_eq!(snap.records.len(), 7 + BIG_ZONE_RULES);

    // Signed IXFR.
    knot.edit(TSIG_ZONE, &[("t.example.tsig.test.", "CNAME", ".")], &[]);
    knot.wait_serial(TSIG_ZONE, 201).await;
    let out = src.transfer(Some(200), T).await.unwrap();
    let XfrOutcome::Incremental { serial, added, .. } = out else {
        panic!("{out:?}")
    };
    assert_eq!(serial, 201);
    assert_eq!(non_soa(&added).len(), 1);

    // Unsigned: the ACL requires the key.
    let err = knot
        .source(TSIG_ZONE, None)
        .transfer(None, T)
        .await
        .unwrap_err();
    assert!(matches!(err, XfrError::Rcode { .. }), "unsigned: {err:?}");

    // Right name, wrong secret.
    let wrong_secret = key(KEY_NAME, b"not the secret the primary knows!");
    let err = knot
        .source(TSIG_ZONE, Some(wrong_secret.clone()))
        .transfer(None, T)
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            XfrError::Rcode {
                rcode: ResponseCode::NotAuth,
                tsig_error: Some(_),
                ..
            }
        ),
        "wrong secret: {err:?}"
    );
    assert!(err.to_string().contains("TSIG"), "{err}");
    let err = knot
        .source(TSIG_ZONE, Some(wrong_secret))
        .soa_serial(T)
        .await
        .unwrap_err();
    assert!(
        matches!(err, XfrError::Rcode { .. }),
        "wrong secret SOA: {err:?}"
    );

    // Unknown key name.
    let err = knot
        .source(TSIG_ZONE, Some(key("other-key.", KEY_SECRET)))
        .transfer(None, T)
        .await
        .unwrap_err();
    assert!(
        matches!(
            &err,
            XfrError::Rcode {
                rcode: ResponseCode::NotAuth,
                ..
            }
        ),
        "unknown key: {err:?}"
    );
}

/// Receives one NOTIFY over UDP or TCP (Knot 3.2 sends it over TCP), acks
/// it the same way, and returns the parsed message.
async fn receive_notify(udp: &UdpSocket, tcp: &TcpListener, deadline: Instant) -> Option<Message> {
    let mut buf = vec![0u8; 65535];
    tokio::select! {
        r = timeout_at(deadline, udp.recv_from(&mut buf)) => {
            let (n, from) = r.ok()?.unwrap();
            let ack = notify_response(&buf[..n]).expect("a NOTIFY");
            udp.send_to(&ack, from).await.unwrap();
            Message::from_vec(&buf[..n]).ok()
        }
        r = timeout_at(deadline, tcp.accept()) => {
            let (mut conn, _) = r.ok()?.unwrap();
            let q = frame::read(&mut conn).await.unwrap().unwrap();
            let ack = notify_response(&q).expect("a NOTIFY");
            frame::write(&mut conn, &ack).await.unwrap();
            Message::from_vec(&q).ok()
        }
    }
}

#[tokio::test]
async fn knot_notify_is_recognised_and_acked() {
    let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let listen_addr = tcp.local_addr().unwrap();
    let udp = UdpSocket::bind(listen_addr).await.unwrap();
    let Some(knot) = Knot::start("knot_notify_is_recognised_and_acked", Some(listen_addr)).await
    else {
        return;
    };
    knot.edit(ZONE, &[("notified.example.rpz.test.", "CNAME", ".")], &[]);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let msg = receive_notify(&udp, &tcp, deadline)
            .await
            .unwrap_or_else(|| panic!("no NOTIFY from knotd; log:\n{}", knot.log()));
        assert!(is_notify_for(&msg, &zone()), "{msg:?}");
        // Knot notifies at load (serial 100) and after the edit (101).
        if notify_serial(&msg) == Some(101) {
            break;
        }
    }
    // Knot logs a successful notify once our ack arrives.
    for _ in 0..100 {
        let log = knot.log();
        if let Some(line) = log
            .lines()
            .find(|l| l.contains("notify, outgoing") && l.contains("serial 101"))
        {
            assert!(!line.contains("failed"), "{line}");
            eprintln!("knotd: {line}");
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("knotd did not log the NOTIFY ack; log:\n{}", knot.log());
}
