//! The command line as an operator or a parent uses it: compile, check (exit status 0/1/2),
//! check --client, check-config naming the bad line.

use std::process::Command;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kidsafe-dns"))
}

#[test]
fn compile_then_check_with_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("adult.txt");
    std::fs::write(&list, "bad.example\nnot..valid\n").unwrap();
    let allow = dir.path().join("allow.txt");
    std::fs::write(&allow, "ok.bad.example\n").unwrap();
    let out = dir.path().join("l.fst");
    let o = bin()
        .args([
            "compile",
            "--list",
            &format!("adult={}", list.display()),
            "--allow",
        ])
        .arg(&allow)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("rejected") && stderr.contains("entries"),
        "{stderr}"
    );

    let check = |names: &[&str]| {
        bin()
            .arg("check")
            .arg("--blocklist")
            .arg(&out)
            .args(names)
            .output()
            .unwrap()
    };
    let o = check(&["www.bad.example"]);
    assert_eq!(o.status.code(), Some(1));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("BLOCKED") && text.contains("adult") && text.contains("rule bad.example"),
        "{text}"
    );
    let o = check(&["ok.bad.example", "wikipedia.org"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    let o = bin()
        .args(["check", "--blocklist", "/nonexistent.fst", "x.com"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    // The cause is said once, not once per error that wraps it.
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
    assert!(err.contains("/nonexistent.fst"), "{err}");
    // A list that does not exist fails the compile, naming it.
    let o = bin()
        .args(["compile", "--list", "adult=/nonexistent/list.txt", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent/list.txt"));
}

#[test]
fn check_config_names_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[server]\nlisten = [\"127.0.0.1:53\"]\n[upstream]\nservers = [\"9.9.9.9:53\"]\n[blocking]\nmode = \"sinkhole\"\n[lists]\ncompiled = \"x.fst\"\n").unwrap();
    let o = bin().arg("check-config").arg(&path).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("bad.toml:6:") && err.contains("blocking.mode"),
        "{err}"
    );
    let good = concat!(env!("CARGO_MANIFEST_DIR"), "/config/family.toml");
    assert!(
        bin()
            .arg("check-config")
            .arg(good)
            .status()
            .unwrap()
            .success()
    );
}

#[test]
fn check_for_a_client_uses_its_group() {
    let dir = tempfile::tempdir().unwrap();
    let root = env!("CARGO_MANIFEST_DIR");
    let cfg = std::fs::read_to_string(format!("{root}/config/school.toml"))
        .unwrap()
        .replace("../", &format!("{root}/"))
        .replace(
            &format!("{root}/var/school.fst"),
            &dir.path().join("s.fst").display().to_string(),
        );
    let path = dir.path().join("school.toml");
    std::fs::write(&path, cfg).unwrap();
    // A fresh machine: nothing compiled yet. `check` compiles the configured lists first,
    // as `serve` would, and says so on stderr.
    let o = bin()
        .args(["check", "--config"])
        .arg(&path)
        .arg("bet365.com")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("compiled the configured lists first"), "{err}");
    assert!(String::from_utf8_lossy(&o.stdout).contains("gambling"));
    assert!(dir.path().join("s.fst").exists());
    let check = |ip: &str, name: &str| {
        let o = bin()
            .args(["check", "--config"])
            .arg(&path)
            .args(["--client", ip, name])
            .output()
            .unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
        )
    };
    let (code, out) = check("10.10.1.5", "roblox.com");
    assert_eq!(code, Some(1), "{out}");
    assert!(
        out.contains("deny list") && out.contains("profile pupils"),
        "{out}"
    );
    let (code, out) = check("10.10.200.5", "roblox.com");
    assert_eq!(code, Some(0));
    assert!(out.contains("profile staff"), "{out}");
    let (_, out) = check("10.10.200.5", "www.youtube.com");
    assert!(out.contains("restrictmoderate.youtube.com"), "{out}");
}

/// `kidsafe-dns serve` with `server.threads = 3`: three UDP receive threads (one per
/// `SO_REUSEPORT` socket; not the core count, which is what an ignored setting gives), and
/// every query answered whichever socket the kernel hands it to.
#[cfg(target_os = "linux")]
#[test]
fn serve_runs_the_configured_number_of_threads() {
    use hickory_proto::op::{Message, MessageType, OpCode, Query, ResponseCode};
    use hickory_proto::rr::{Name, RecordType};
    use std::time::{Duration, Instant};

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("adult.txt"), "bad.test\n").unwrap();
    // A free port for UDP and TCP both (port 0 would get a single socket).
    let port = loop {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            break port;
        }
    };
    let config = dir.path().join("k.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = [\"127.0.0.1:{port}\"]\nthreads = 3\n[upstream]\nservers = [\"127.0.0.1:9\"]\n[blocking]\nmode = \"nxdomain\"\n[lists]\ncompiled = \"var/list.fst\"\n[[lists.source]]\ncategory = \"adult\"\npath = \"adult.txt\"\n"
        ),
    )
    .unwrap();
    /// Killed if the test fails before its own SIGTERM.
    struct Serving(std::process::Child);
    impl Drop for Serving {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = Serving(
        bin()
            .args(["serve", "--config"])
            .arg(&config)
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("serve.log")).unwrap())
            .spawn()
            .unwrap(),
    );

    let ask = |socket: &std::net::UdpSocket, id: u16| -> Option<Message> {
        let mut m = Message::new(id, MessageType::Query, OpCode::Query);
        m.add_query(Query::query(
            Name::from_ascii("www.bad.test.").unwrap(),
            RecordType::A,
        ));
        socket.send(&m.to_vec().unwrap()).ok()?;
        let mut buf = [0u8; 1500];
        let n = socket.recv(&mut buf).ok()?;
        Message::from_vec(&buf[..n]).ok()
    };
    let client = || {
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        s.connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        s
    };
    let start = Instant::now();
    while ask(&client(), 1).is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "serve never answered"
        );
    }

    // A new thread carries its parent's name until it names itself, so the third one may
    // still read `kidsafe-dns` for a moment after the first answer: look again until then.
    let udp_threads = || -> Vec<String> {
        std::fs::read_dir(format!("/proc/{}/task", child.0.id()))
            .unwrap()
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
            .map(|c| c.trim().to_owned())
            .filter(|t| t.starts_with("kidsafe-udp"))
            .collect()
    };
    let start = Instant::now();
    let mut threads = udp_threads();
    while threads.len() < 3 && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(20));
        threads = udp_threads();
    }
    assert_eq!(threads.len(), 3, "{threads:?}");

    // Many client ports, so the kernel spreads them over the three sockets.
    for id in 0..60u16 {
        let reply = ask(&client(), id).expect("every query answered");
        assert_eq!(reply.metadata.id, id);
        assert_eq!(reply.metadata.response_code, ResponseCode::NXDomain);
    }

    // SIGTERM: a graceful stop, exit status 0.
    Command::new("kill")
        .arg(child.0.id().to_string())
        .status()
        .unwrap();
    let status = child.0.wait().unwrap();
    assert!(
        status.success(),
        "{status}; the server said:\n{}",
        std::fs::read_to_string(dir.path().join("serve.log")).unwrap_or_default()
    );
}

/// A free port on 127.0.0.1 for UDP and TCP both.
fn free_port() -> u16 {
    loop {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A `kidsafe-dns serve` child (killed on drop) whose stderr a thread collects.
struct Server {
    child: std::process::Child,
    log: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Server {
    fn start(config: &std::path::Path) -> Server {
        use std::io::BufRead;
        let mut child = bin()
            .args(["serve", "--config"])
            .arg(config)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .env_remove("NO_COLOR")
            .spawn()
            .unwrap();
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        Server { child, log }
    }

    /// The log so far, once it contains `text` (or after 20 s, or when the server exited).
    fn wait_for(&mut self, text: &str) -> String {
        let start = std::time::Instant::now();
        loop {
            let log = self.log.lock().unwrap().clone();
            if log.contains(text)
                || start.elapsed() > std::time::Duration::from_secs(20)
                || self.child.try_wait().unwrap().is_some()
            {
                std::thread::sleep(std::time::Duration::from_millis(100));
                return self.log.lock().unwrap().clone();
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A config in a directory of its own (as under /etc/kidsafe-dns), list paths absolute,
/// a group with SafeSearch and no `[safesearch]` section; `extra` is appended.
fn config_anywhere(dir: &std::path::Path, port: u16, extra: &str) -> std::path::PathBuf {
    let list = dir.join("lists").join("adult.txt");
    std::fs::create_dir_all(list.parent().unwrap()).unwrap();
    std::fs::write(&list, "pornhub.com\n").unwrap();
    let path = dir.join("etc").join("kidsafe-dns.toml");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(
        &path,
        format!(
            "[server]\nlisten = [\"127.0.0.1:{port}\"]\nthreads = 1\n[upstream]\nservers = [\"127.0.0.1:9\"]\n[lists]\ncompiled = \"{}\"\n[[lists.source]]\ncategory = \"adult\"\npath = \"{}\"\n[[groups]]\nname = \"kids\"\nclients = [\"127.0.0.0/8\"]\nsafesearch = true\n{extra}",
            dir.join("var").join("list.fst").display(),
            list.display()
        ),
    )
    .unwrap();
    path
}

#[test]
fn check_reduces_a_url_to_its_host_and_calls_invalid_names_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("adult.txt");
    std::fs::write(&list, "pornhub.com\n").unwrap();
    let out = dir.path().join("l.fst");
    let o = bin()
        .args([
            "compile",
            "--list",
            &format!("adult={}", list.display()),
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let check = |names: &[&str]| {
        let o = bin()
            .arg("check")
            .arg("--blocklist")
            .arg(&out)
            .args(names)
            .output()
            .unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
        )
    };
    let (code, text) = check(&["http://pornhub.com/x"]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.starts_with("pornhub.com\tBLOCKED\tadult")
            && text.contains("host of http://pornhub.com/x"),
        "{text}"
    );
    let (code, text) = check(&["bad..name"]);
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains("INVALID") && !text.contains("ALLOWED"),
        "{text}"
    );
    let (code, text) = check(&[""]);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("INVALID"), "{text}");
    // An invalid name among valid ones still makes the run an error.
    let (code, text) = check(&["wikipedia.org", "bad..name", "www.pornhub.com"]);
    assert_eq!(code, Some(2), "{text}");
    assert!(
        text.contains("wikipedia.org\tALLOWED") && text.contains("www.pornhub.com\tBLOCKED"),
        "{text}"
    );
}

#[test]
fn check_reports_every_group_and_refuses_foreign_clients() {
    let dir = tempfile::tempdir().unwrap();
    let root = env!("CARGO_MANIFEST_DIR");
    let cfg = std::fs::read_to_string(format!("{root}/config/school.toml"))
        .unwrap()
        .replace("../", &format!("{root}/"))
        .replace(
            &format!("{root}/var/school.fst"),
            &dir.path().join("s.fst").display().to_string(),
        );
    let path = dir.path().join("school.toml");
    std::fs::write(&path, cfg).unwrap();
    // roblox.com is on no shared list, but the pupils' own deny list: not "ALLOWED".
    let o = bin()
        .args(["check", "--config"])
        .arg(&path)
        .arg("roblox.com")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(text.contains("roblox.com\tALLOWED\tnot listed"), "{text}");
    assert!(
        text.contains("profile pupils\tBLOCKED\tdeny list"),
        "{text}"
    );
    assert!(text.contains("profile staff\tALLOWED"), "{text}");
    assert!(text.contains("profile default\tALLOWED"), "{text}");
    // A client outside server.allow_clients gets nothing: REFUSED, not its group's verdict.
    let o = bin()
        .args(["check", "--config"])
        .arg(&path)
        .args(["--client", "192.0.2.1", "wikipedia.org"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{text}");
    assert!(
        text.contains("wikipedia.org\tREFUSED") && text.contains("allow_clients"),
        "{text}"
    );
}

#[test]
fn check_config_refuses_what_serve_refuses() {
    let dir = tempfile::tempdir().unwrap();
    let check = |extra: &str, edit: &dyn Fn(String) -> String| {
        let path = config_anywhere(dir.path(), 10053, extra);
        let text = edit(std::fs::read_to_string(&path).unwrap());
        std::fs::write(&path, text).unwrap();
        let o = bin()
            .args(["check-config", "--config"])
            .arg(&path)
            .output()
            .unwrap();
        (
            o.status.code(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ),
        )
    };
    let same = |t: String| t;
    let (code, out) = check("", &same);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains(": ok ("), "{out}");
    // Checking compiles into a scratch directory: the serving list is not written.
    assert!(!dir.path().join("var").join("list.fst").exists());

    let (code, out) = check("", &|t| t.replace("adult.txt", "missing.txt"));
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("missing.txt"), "{out}");

    let (code, out) = check("deny_paths = [\"/nonexistent/deny.txt\"]\n", &same);
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains("kids") && out.contains("/nonexistent/deny.txt"),
        "{out}"
    );

    let (code, out) = check("[safesearch]\ndir = \"/nonexistent/safesearch\"\n", &same);
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains("SafeSearch") && out.contains("/nonexistent/safesearch"),
        "{out}"
    );

    let (code, out) = check("", &|t| {
        t.replace(
            "threads = 1\n",
            "threads = 1\ndot_listen = [\"127.0.0.1:0\"]\ntls_cert = \"/nonexistent/cert.pem\"\ntls_key = \"/nonexistent/key.pem\"\n",
        )
    });
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("/nonexistent/cert.pem"), "{out}");

    // The positional form still works.
    let path = config_anywhere(dir.path(), 10053, "");
    assert!(
        bin()
            .arg("check-config")
            .arg(&path)
            .status()
            .unwrap()
            .success()
    );
}

/// The SafeSearch data is built into the binary: a config installed anywhere starts.
#[test]
fn a_config_outside_the_repository_with_safesearch_starts() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_anywhere(dir.path(), free_port(), "");
    let o = bin()
        .args(["check", "--config"])
        .arg(&config)
        .args(["--client", "127.0.0.1", "www.google.com"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("SafeSearch → forcesafesearch.google.com"),
        "{text}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let mut server = Server::start(&config);
    let log = server.wait_for("listening on UDP and TCP");
    assert!(log.contains("listening on UDP and TCP"), "{log}");
}

/// Logs go to journald, docker logs or a file: no colour codes unless on a terminal.
#[test]
fn a_served_log_captured_by_a_pipe_has_no_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_anywhere(dir.path(), free_port(), "");
    let mut server = Server::start(&config);
    let log = server.wait_for("listening on UDP and TCP");
    assert!(log.contains("listening on UDP and TCP"), "{log}");
    assert!(!log.contains("\x1b["), "{log:?}");
}

/// A DNS port another program holds: serve stops, naming the address and the usual suspects.
#[test]
fn a_port_in_use_names_the_usual_suspects() {
    let dir = tempfile::tempdir().unwrap();
    let holder = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port();
    let config = config_anywhere(dir.path(), port, "");
    let o = bin()
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    for name in [
        format!("127.0.0.1:{port}"),
        "systemd-resolved".into(),
        "dnsmasq".into(),
        "avahi".into(),
        "another kidsafe-dns".into(),
    ] {
        assert!(err.contains(&name), "{name}: {err}");
    }
    drop(holder);
}

/// A config with one `path` source, written into a new temp dir (and a `sub` directory to
/// run commands from).
fn path_source_config() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    std::fs::write(dir.path().join("adult.txt"), "bad.example\nporn.example\n").unwrap();
    std::fs::write(
        dir.path().join("k.toml"),
        "[server]\nlisten = [\"127.0.0.1:0\"]\n[upstream]\nservers = [\"127.0.0.1:9\"]\n[blocking]\nmode = \"nxdomain\"\n[lists]\ncompiled = \"var/list.fst\"\n[[lists.source]]\ncategory = \"adult\"\npath = \"adult.txt\"\n",
    )
    .unwrap();
    dir
}

/// The same sources reached through another relative path are the same sources: `check`
/// run from another directory neither recompiles nor rewrites the server's list.
#[test]
fn check_from_another_directory_leaves_the_compiled_list_alone() {
    let dir = path_source_config();
    let o = bin()
        .current_dir(dir.path())
        .args(["check", "--config", "k.toml", "bad.example"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("compiled the configured lists first"), "{err}");
    let manifest = dir.path().join("var/list.fst.manifest.json");
    let built = std::fs::read(&manifest).unwrap();
    let mtime = std::fs::metadata(&manifest).unwrap().modified().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100)); // coarse mtimes
    for (cwd, config) in [("sub", "../k.toml"), (".", "./sub/../k.toml")] {
        let o = bin()
            .current_dir(dir.path().join(cwd))
            .args(["check", "--config", config, "bad.example"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(!err.contains("compile"), "from {cwd}: {err}");
        assert_eq!(std::fs::read(&manifest).unwrap(), built, "from {cwd}");
        let now = std::fs::metadata(&manifest).unwrap().modified().unwrap();
        assert_eq!(now, mtime, "from {cwd}");
    }
    // A source really changed: `check` answers for it, still without touching the list.
    std::fs::write(dir.path().join("adult.txt"), "porn.example\n").unwrap();
    let o = bin()
        .current_dir(dir.path().join("sub"))
        .args(["check", "--config", "../k.toml", "bad.example"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("fresh compile"), "{err}");
    assert_eq!(std::fs::read(&manifest).unwrap(), built);
}

/// `status` says when a `path` source was compiled in, not "never", whoever compiled it.
#[test]
fn status_shows_when_path_sources_were_compiled() {
    let dir = path_source_config();
    let o = bin()
        .current_dir(dir.path())
        .args(["compile", "--config", "k.toml"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = bin()
        .current_dir(dir.path().join("sub"))
        .args(["status", "--config", "../k.toml"])
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}");
    let source = out.split("\n\n").nth(1).unwrap_or_default();
    assert!(source.contains("(path "), "{out}");
    assert!(source.contains("last success: 2"), "{out}");
    assert!(!source.contains("never"), "{out}");
    assert!(source.contains("entries: 2"), "{out}");
}

/// `compile` locates rejected lines (`file:line: reason: text`), the first 5 per source or
/// all with `--show-rejected`, and a URL is rejected as one, with the host to list instead.
#[test]
fn compile_shows_where_rejected_lines_are() {
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("adult.txt");
    std::fs::write(
        &list,
        "bad.example\nhttps://www.xvideos.com/watch?v=1\n# note\nnot..valid\n1.2.3.4\na b\nx!.example\nbad#x.example\nlast..one\n",
    )
    .unwrap();
    let out = dir.path().join("l.fst");
    let compile = |extra: &[&str]| {
        let o = bin()
            .args(["compile", "--list"])
            .arg(format!("adult={}", list.display()))
            .arg("--out")
            .arg(&out)
            .args(extra)
            .output()
            .unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (code, err) = compile(&[]);
    assert_eq!(code, Some(0), "{err}");
    let at = |n: u32| format!("{}:{n}: ", list.display());
    assert!(
        err.contains(&format!(
            "{}url: https://www.xvideos.com/watch?v=1 (a URL: list its host instead, e.g. `www.xvideos.com`)",
            at(2)
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("{}empty_label: not..valid", at(4))),
        "{err}"
    );
    assert!(
        err.contains(&format!("{}ip_address: 1.2.3.4", at(5))),
        "{err}"
    );
    assert!(!err.contains(&at(9)), "only the first 5: {err}");
    assert!(err.contains("and 2 more rejected lines"), "{err}");
    assert!(err.contains("url=1"), "{err}");
    let (code, err) = compile(&["--show-rejected"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        err.contains(&format!("{}empty_label: last..one", at(9))),
        "{err}"
    );
    assert!(!err.contains("more rejected lines"), "{err}");
    // Nothing but a URL: no valid entry, so the compile fails, naming the file.
    std::fs::write(&list, "https://www.xvideos.com/watch?v=1\n").unwrap();
    let (code, err) = compile(&[]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("no valid entries"), "{err}");
}
