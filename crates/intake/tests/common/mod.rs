//! A real `intake serve` process for the command-line tests.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A running `intake serve`; killed when dropped, so a failing test leaves nothing behind.
pub struct Served {
    pub child: Child,
    pub port: u16,
    /// What it printed up to its "API reference" line (the master key on first start).
    pub banner: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Served {
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The most memory the process has held so far (VmHWM), in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmHWM:")).expect("a VmHWM line");
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

/// Starts `intake serve` on a free port in `data_dir` and waits until it listens.
pub fn spawn_server(data_dir: &Path) -> Served {
    spawn_server_with(data_dir, &[])
}

/// Starts `intake serve` with more flags.
pub fn spawn_server_with(data_dir: &Path, flags: &[&str]) -> Served {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_intake"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--commit-interval-ms", "50"])
        .args(flags)
        .arg("--data-dir")
        .arg(data_dir)
        .env("INTAKE_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut banner = String::new();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    while !banner.contains("API reference") {
        assert!(stdout.read_line(&mut banner).unwrap() > 0, "the server stopped: {banner}");
    }
    Served { child, port, banner }
}

/// What `intake serve` wrote to `<data-dir>/bootstrap.json`.
pub fn bootstrap(data_dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(data_dir.join("bootstrap.json")).unwrap()).unwrap()
}
