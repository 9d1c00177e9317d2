//! A throwaway PostgreSQL cluster for tests: initdb in a temp dir, a server on 127.0.0.1
//! at a free port (fsync off), stopped and removed on drop. initdb refuses to run as
//! root, so as root the cluster runs as `nobody`.
//!
//! [`PgCluster::start`] is `None` (after a loud message) only when the PostgreSQL
//! binaries are absent and neither `CI` nor `KIDSAFE_REQUIRE_POSTGRES` is set: in CI
//! (`.ci/run` installs `postgresql` and sets the latter) their absence fails the test.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A running cluster with one database, `kidsafe`.
pub struct PgCluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    as_nobody: bool,
}

impl PgCluster {
    /// Starts a cluster; `None` (skip) when PostgreSQL is not installed outside CI.
    pub fn start() -> Option<PgCluster> {
        let Some(bin) = bin_dir() else {
            assert!(
                std::env::var_os("CI").is_none()
                    && std::env::var_os("KIDSAFE_REQUIRE_POSTGRES").is_none(),
                "PostgreSQL binaries (initdb, pg_ctl) not found, and CI or \
                 KIDSAFE_REQUIRE_POSTGRES is set: apt-get install postgresql"
            );
            eprintln!(
                "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
                 !! SKIPPED: PostgreSQL is not installed (no initdb/pg_ctl in      !!\n\
                 !! /usr/lib/postgresql/*/bin or PATH): apt-get install postgresql !!\n\
                 !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n"
            );
            return None;
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let as_nobody = is_root();
        if as_nobody {
            chown_nobody(dir.path());
        }
        let port = free_port();
        let c = PgCluster {
            bin,
            dir,
            port,
            as_nobody,
        };
        let data = c.data();
        c.run(
            "initdb",
            &[
                "-D",
                data.to_str().expect("utf-8 path"),
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
            ],
        );
        c.start_server();
        let mut admin = postgres::Client::connect(&c.url_of("postgres"), postgres::NoTls)
            .expect("connect to the test cluster");
        admin
            .batch_execute("CREATE DATABASE kidsafe")
            .expect("create database");
        Some(c)
    }

    /// `postgres://postgres@127.0.0.1:<port>/kidsafe`.
    pub fn url(&self) -> String {
        self.url_of("kidsafe")
    }

    fn url_of(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// `pg_ctl stop -m fast`: connections are cut, as when the database goes away.
    pub fn stop(&self) {
        let data = self.data();
        self.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().expect("utf-8"),
                "-m",
                "fast",
                "-w",
                "stop",
            ],
        );
    }

    /// Starts the server again (same data, same port).
    pub fn start_server(&self) {
        let data = self.data();
        let log = self.dir.path().join("server.log");
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off",
            self.port,
            self.dir.path().display()
        );
        self.run(
            "pg_ctl",
            &[
                "-D",
                data.to_str().expect("utf-8"),
                "-l",
                log.to_str().expect("utf-8"),
                "-o",
                &opts,
                "-w",
                "start",
            ],
        );
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let exe = self.bin.join(tool);
        let mut cmd = if self.as_nobody {
            let mut c = Command::new("runuser");
            c.args(["-u", "nobody", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        let out = cmd
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap_or_else(|e| panic!("{tool}: {e}"));
        assert!(
            out.status.success(),
            "{tool} {args:?}: {}\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let data = self.data();
        let exe = self.bin.join("pg_ctl");
        let mut cmd = if self.as_nobody {
            let mut c = Command::new("runuser");
            c.args(["-u", "nobody", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        let _ = cmd
            .args(["-D", &data.to_string_lossy(), "-m", "immediate", "stop"])
            .output();
    }
}

/// The newest `/usr/lib/postgresql/<v>/bin` (Debian), else the directory of `initdb` on
/// PATH.
fn bin_dir() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v: u32 = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((v, bin))
        })
        .collect();
    found.sort();
    if let Some((_, bin)) = found.pop() {
        return Some(bin);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .find(|p| p.join("initdb").exists() && p.join("pg_ctl").exists())
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn chown_nobody(dir: &Path) {
    let ok = Command::new("chown")
        .args(["nobody", &dir.to_string_lossy()])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    assert!(ok, "chown nobody {}", dir.display());
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("local addr").port()
}
