//! Real `kidsafe-dns serve` processes for the national-loop tests (a central and its
//! edges): started from a config file, waited for on their admin API's `/healthz`, killed
//! when dropped; loopback ports free for UDP and TCP; a minisign key pair made by the real
//! `minisign` CLI.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A port free on 127.0.0.1 for both UDP and TCP at the time of the call (bound and
/// released: the process binds it next).
pub fn free_port() -> u16 {
    loop {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = udp.local_addr().unwrap().port();
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// `127.0.0.1:port`.
pub fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A running `kidsafe-dns serve`, killed (SIGKILL) when dropped.
pub struct Serving {
    child: Child,
    log: PathBuf,
}

impl Serving {
    /// What the process logged so far (every start of the same name appends to one file).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A reqwest client with a 10 s timeout (and the TLS provider installed).
pub fn http() -> reqwest::Client {
    kidsafe_dns::feed::http::install_crypto_provider();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// Writes `text` to `<dir>/<name>.toml`, starts `serve --config` on it (stderr appended to
/// `<dir>/<name>.log`) and waits, up to 60 s, until its admin API on `admin` answers
/// `/healthz` with 200.
pub async fn serve(dir: &Path, name: &str, text: &str, admin: SocketAddr) -> Serving {
    let config = dir.join(format!("{name}.toml"));
    std::fs::write(&config, text).unwrap();
    let log_path = dir.join(format!("{name}.log"));
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_kidsafe-dns"))
        .args(["serve", "--config"])
        .arg(&config)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let serving = Serving {
        child,
        log: log_path,
    };
    let c = http();
    let started = Instant::now();
    loop {
        if let Ok(r) = c.get(format!("http://{admin}/healthz")).send().await
            && r.status() == 200
        {
            return serving;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{name} never answered; its log: {}",
            serving.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `minisign -G -W`: an unencrypted key pair `central.key` / `central.pub` in `dir`; the
/// public key line (what `minisign_pubkey` takes).
pub fn minisign_keys(dir: &Path) -> String {
    let out = Command::new("minisign")
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

/// The value of the first sample of `series` (a metric name with its labels, e.g.
/// `x_total{reason="a"}`) in the Prometheus text of the admin API at `admin` (with
/// `token` when it asks for one), or `None` when it is not there.
pub async fn metric_sample(
    c: &reqwest::Client,
    admin: SocketAddr,
    token: Option<&str>,
    series: &str,
) -> Option<f64> {
    let mut request = c.get(format!("http://{admin}/metrics"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let text = request.send().await.unwrap().text().await.unwrap();
    text.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// [`metric_sample`] of an admin API without a token, 0 when the series is not there yet.
pub async fn metric(c: &reqwest::Client, admin: SocketAddr, series: &str) -> f64 {
    metric_sample(c, admin, None, series).await.unwrap_or(0.0)
}
