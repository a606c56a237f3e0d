//! A real `intake serve` process for the command-line, crash and hostile tests, and what they ask of it.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

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
        peak_rss_kib(self.child.id())
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

/// The most memory process `pid` has held so far (VmHWM), in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).expect("a VmHWM line");
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Starts `intake serve` on a free port in `data_dir` and waits until it listens.
pub fn spawn_server(data_dir: &Path) -> Served {
    spawn_server_with(data_dir, &[])
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `intake serve` on `port` in `data_dir`, committing every 50 ms unless the flags say otherwise.
fn serve_command(data_dir: &Path, port: u16, flags: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_intake"));
    command.args(["serve", "--listen", &format!("127.0.0.1:{port}")]);
    if !flags.contains(&"--commit-interval-ms") {
        command.args(["--commit-interval-ms", "50"]);
    }
    command.args(flags).arg("--data-dir").arg(data_dir).env("INTAKE_LOG", "warn");
    command
}

/// Starts `intake serve` with more flags.
pub fn spawn_server_with(data_dir: &Path, flags: &[&str]) -> Served {
    let port = free_port();
    let mut child = serve_command(data_dir, port, flags).stdout(Stdio::piped()).spawn().unwrap();
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

/// The master key of [`Server`]s.
pub const KEY: &str = "process-test-key";

/// A running `intake serve` with [`KEY`], not waited for: the crash tests start one while its journal is
/// replayed. Killed (SIGKILL) when dropped.
pub struct Server {
    pub child: Child,
    pub base: String,
    pub data_dir: PathBuf,
    pub client: reqwest::Client,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    pub fn start(data_dir: &Path, flags: &[&str]) -> Server {
        Server::start_with_env(data_dir, flags, &[])
    }

    /// [`Server::start`] with more environment variables.
    pub fn start_with_env(data_dir: &Path, flags: &[&str], env: &[(&str, &str)]) -> Server {
        let port = free_port();
        let mut all = vec!["--master-key", KEY];
        all.extend_from_slice(flags);
        let mut command = serve_command(data_dir, port, &all);
        command.envs(env.iter().copied());
        let child = command.stdout(Stdio::null()).spawn().unwrap();
        Server {
            child,
            base: format!("http://127.0.0.1:{port}"),
            data_dir: data_dir.to_path_buf(),
            client: reqwest::Client::new(),
        }
    }

    /// SIGKILL, and wait for the process to be gone.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    pub async fn is_ready(&self) -> bool {
        let response = self.client.get(format!("{}/ready", self.base)).send().await;
        response.is_ok_and(|r| r.status() == 200)
    }

    /// The most memory the process has held so far (VmHWM), in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        peak_rss_kib(self.child.id())
    }

    /// Whether the process runs (a zombie does not).
    pub fn alive(&self) -> bool {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        stat.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with('Z'))
    }

    /// Waits until the server answers (it may still be replaying its journal).
    pub async fn wait_listening(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.client.get(format!("{}/health", self.base)).send().await.is_err() {
            assert!(self.alive(), "the server exited");
            assert!(Instant::now() < deadline, "the server did not start listening");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(300);
        while !self.is_ready().await {
            assert!(self.alive(), "the server exited");
            assert!(Instant::now() < deadline, "the server did not become ready");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn source_id(&self) -> String {
        bootstrap(&self.data_dir)["sourceId"].as_str().unwrap().to_string()
    }

    /// `…/sources/{the default source}/documents`.
    pub fn documents_url(&self) -> String {
        format!("{}/push/v1/organizations/default/sources/{}/documents", self.base, self.source_id())
    }

    /// PUTs an item; the status, or `None` if the server did not answer.
    pub async fn put_item(&self, id: &str, body: &Value) -> Option<u16> {
        let put = self.client.put(self.documents_url()).query(&[("documentId", id)]).bearer_auth(KEY).json(body);
        put.send().await.ok().map(|r| r.status().as_u16())
    }

    /// How many items the organization's index holds (0 while the server is not listening yet).
    pub async fn total(&self) -> u64 {
        let search = self
            .client
            .post(format!("{}/rest/search/v2?organizationId=default", self.base))
            .bearer_auth(KEY)
            .json(&json!({"numberOfResults": 0}));
        match search.send().await {
            Ok(response) => response.json::<Value>().await.unwrap()["totalCount"].as_u64().unwrap(),
            Err(_) => 0,
        }
    }

    /// Every URI matching `aq` with how many times it appears (at most 100,000: search pages no deeper).
    /// Pages are separate searches: a commit between two (new items, a merge reordering equal scores) can move
    /// a result across a page boundary, so a read showing a URI twice is made again; an item really indexed
    /// twice shows in every read.
    pub async fn indexed(&self, aq: &str) -> HashMap<String, usize> {
        let mut counts = self.indexed_once(aq).await;
        for _ in 0..3 {
            if counts.values().all(|n| *n == 1) {
                break;
            }
            counts = self.indexed_once(aq).await;
        }
        counts
    }

    async fn indexed_once(&self, aq: &str) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        let mut first = 0;
        loop {
            let body = json!({"aq": aq, "numberOfResults": 1000, "firstResult": first});
            let page = self.post_json("/rest/search/v2?organizationId=default", body).await;
            let results = page["results"].as_array().unwrap();
            for result in results {
                *counts.entry(result["uri"].as_str().unwrap().to_string()).or_insert(0) += 1;
            }
            first += results.len();
            if results.is_empty() || first >= page["totalCount"].as_u64().unwrap() as usize {
                return counts;
            }
        }
    }

    /// POSTs `body` to `path` with the master key; the JSON answer.
    pub async fn post_json(&self, path: &str, body: Value) -> Value {
        let response = self.client.post(format!("{}{path}", self.base)).bearer_auth(KEY).json(&body).send().await;
        response.unwrap().json().await.unwrap()
    }

    /// How many times each (documentId, operation, result) was logged.
    pub async fn logged(&self) -> HashMap<(String, String, String), usize> {
        let mut counts = HashMap::new();
        for page in 0.. {
            let body =
                self.post_json(&format!("/logs/v1/organizations/default?perPage=1000&page={page}"), json!({})).await;
            for entry in body["documentLogEntries"].as_array().unwrap() {
                let key = ["id", "operation", "result"].map(|k| entry[k].as_str().unwrap().to_string());
                *counts.entry(key.into()).or_insert(0) += 1;
            }
            if !body["hasNextPage"].as_bool().unwrap() {
                break;
            }
        }
        counts
    }

    /// Creates a container and uploads `bytes`: its fileId, or the status that refused it (0: no answer).
    pub async fn upload(&self, bytes: Vec<u8>) -> Result<String, u16> {
        let create = self.client.post(format!("{}/push/v1/organizations/default/files", self.base)).bearer_auth(KEY);
        let created = create.send().await.map_err(|_| 0u16)?;
        if created.status() != 201 {
            return Err(created.status().as_u16());
        }
        let container: Value = created.json().await.map_err(|_| 0u16)?;
        let uploaded = self
            .client
            .put(container["uploadUri"].as_str().unwrap())
            .header("content-type", "application/octet-stream")
            .header("x-amz-server-side-encryption", "AES256")
            .body(bytes)
            .send()
            .await
            .map_err(|_| 0u16)?;
        match uploaded.status().as_u16() {
            200 => Ok(container["fileId"].as_str().unwrap().to_string()),
            status => Err(status),
        }
    }

    /// Pushes the container `file_id` as a batch: the status.
    pub async fn push_batch(&self, file_id: &str) -> u16 {
        let accepted = self
            .client
            .put(format!("{}/batch", self.documents_url()))
            .query(&[("fileId", file_id)])
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap();
        accepted.status().as_u16()
    }
}
