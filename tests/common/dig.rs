//! `dig` (BIND's client, the one an operator reaches for) from a chosen loopback source
//! address, and what its output says decided.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// `dig` from source `from` with extra arguments; its output.
pub async fn dig(server: SocketAddr, from: &str, args: &[&str]) -> String {
    let out = tokio::process::Command::new("dig")
        .arg(format!("@{}", server.ip()))
        .args(["-p", &server.port().to_string(), "-b", from])
        .args(["+tries=1", "+time=3"])
        .args(args)
        .output()
        .await
        .expect("dig runs (CI installs bind9-dnsutils)");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "dig {args:?}: {text}");
    text
}

/// Asks `args` from `from` every 10 ms until `done` holds for dig's output (the policy is
/// rebuilt shortly after a change): that output and how long it took. Panics after 10 s
/// with the last output, saying it never became `what`: a change that never applies.
pub async fn dig_until(
    server: SocketAddr,
    from: &str,
    args: &[&str],
    what: &str,
    done: impl Fn(&str) -> bool,
) -> (String, Duration) {
    let start = Instant::now();
    loop {
        let text = dig(server, from, args).await;
        if done(&text) {
            return (text, start.elapsed());
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{args:?} from {from}: never {what}: {text}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The profile dig's output names in its EDE line, or "forwarded" for a NOERROR answer.
pub fn dig_profile(text: &str) -> String {
    if text.contains("status: NOERROR") && text.contains("192.0.2.") {
        return "forwarded".into();
    }
    assert!(text.contains("status: NXDOMAIN"), "{text}");
    let ede = text
        .lines()
        .find(|l| l.contains("EDE: 17"))
        .unwrap_or_else(|| panic!("an EDE 17 line: {text}"));
    ede.split("(profile ")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .unwrap_or_else(|| panic!("a group in {ede}"))
        .to_owned()
}
