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
    assert!(
        bin()
            .args(["compile", "--config"])
            .arg(&path)
            .status()
            .unwrap()
            .success()
    );
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
    assert_eq!(code, Some(1));
    assert!(
        out.contains("deny list") && out.contains("group pupils"),
        "{out}"
    );
    let (code, out) = check("10.10.200.5", "roblox.com");
    assert_eq!(code, Some(0));
    assert!(out.contains("group staff"), "{out}");
    let (_, out) = check("10.10.200.5", "www.youtube.com");
    assert!(out.contains("restrictmoderate.youtube.com"), "{out}");
}
