//! Peer programs installed on the system (Unbound, PowerDNS Recursor, kdig): found in PATH
//! or an sbin directory, skipped with a printed reason unless CI asked for them, and run as
//! daemons killed on drop.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// Path of a system tool, looking in sbin directories too.
pub fn find_tool(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

/// The tool, or `None` after printing why the test is skipped (a panic when `require` is
/// set to 1 in the environment: CI installed it, so it must run).
pub fn tool_or_skip(test: &str, tool: &str, package: &str, require: &str) -> Option<PathBuf> {
    let found = find_tool(tool);
    if found.is_none() {
        assert!(
            std::env::var_os(require).is_none_or(|v| v != "1"),
            "{test}: {tool} not installed and {require}=1"
        );
        println!("{test}: SKIPPED, {tool} not installed (apt-get install {package})");
    }
    found
}

/// A child process killed on drop; its stdout and stderr go to a file shown on failure.
pub struct Daemon {
    child: Child,
    log: PathBuf,
}

impl Daemon {
    /// Spawns `cmd` with its output in `log`.
    pub fn spawn(cmd: &mut Command, log: PathBuf) -> Daemon {
        let file = std::fs::File::create(&log).unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap();
        Daemon { child, log }
    }

    /// What it printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
