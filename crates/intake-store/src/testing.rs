//! For the tests and benchmarks of this repository: places of their own on the test servers that
//! `scripts/test-servers` runs (PostgreSQL and an S3 server).

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::S3Location;

/// A setting of the test servers (`INTAKE_TEST_POSTGRES`, `INTAKE_TEST_S3`): from the environment, else from
/// what `scripts/test-servers start` prints (it starts them when they do not run).
pub fn setting(name: &str) -> String {
    if let Ok(value) = std::env::var(name) {
        return value;
    }
    static STARTED: OnceLock<HashMap<String, String>> = OnceLock::new();
    let printed = STARTED.get_or_init(|| {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/test-servers");
        let output = std::process::Command::new(script).arg("start").output().expect("scripts/test-servers runs");
        assert!(
            output.status.success(),
            "scripts/test-servers start failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        stdout.lines().filter_map(|line| line.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect()
    });
    printed.get(name).cloned().unwrap_or_else(|| panic!("scripts/test-servers start printed no {name}"))
}

/// A new empty database on the test PostgreSQL server.
pub fn scratch_database() -> String {
    crate::postgres::scratch_database(&setting("INTAKE_TEST_POSTGRES"))
        .expect("a scratch database on the test PostgreSQL server")
}

/// A new empty place (a prefix of the bucket `intake-test`) on the test S3 server.
pub fn scratch_blobs() -> S3Location {
    S3Location {
        bucket: "intake-test".into(),
        prefix: format!("t-{}", crate::catalog::random_id(12)),
        endpoint: Some(setting("INTAKE_TEST_S3")),
        region: "us-east-1".into(),
        virtual_hosted: false,
        presigned_uploads: false,
        credentials: Some(("intake-test".into(), "intake-test-secret".into())),
    }
}

/// A PostgreSQL server of one test's own (Debian's binaries, a cluster in a temporary folder, a free loopback
/// port), for tests that stop and start it: the shared test server stays up for the others.
pub struct PrivateCluster {
    dir: tempfile::TempDir,
    port: u16,
    bin: std::path::PathBuf,
}

impl PrivateCluster {
    /// Makes the cluster and starts it (a few seconds).
    pub fn start() -> PrivateCluster {
        setting("INTAKE_TEST_POSTGRES"); // Installs PostgreSQL when it is missing.
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("Debian's PostgreSQL under /usr/lib/postgresql")
            .filter_map(|entry| entry.ok().map(|e| e.path().join("bin")))
            .max()
            .expect("a PostgreSQL version under /usr/lib/postgresql");
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let cluster = PrivateCluster { dir, port, bin };
        let data = cluster.data();
        std::fs::create_dir(&data).unwrap();
        run("chown", &["-R", "postgres:", cluster.dir.path().to_str().unwrap()]);
        cluster
            .as_postgres(&format!("'{}/initdb' -D '{data}' -A trust -U postgres > /dev/null", cluster.bin.display()));
        cluster.resume();
        cluster
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    /// Its admin URL.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops it at once (`pg_ctl stop -m immediate`: as a crash would).
    pub fn stop(&self) {
        self.as_postgres(&format!(
            "'{}/pg_ctl' -D '{}' -m immediate -w stop > /dev/null",
            self.bin.display(),
            self.data()
        ));
    }

    /// Starts it (again).
    pub fn resume(&self) {
        let options = format!("-p {} -c listen_addresses=127.0.0.1 -k '{}' -c fsync=off", self.port, self.data());
        self.as_postgres(&format!(
            "'{}/pg_ctl' -D '{data}' -l '{data}/server.log' -w start -o \"{options}\" > /dev/null",
            self.bin.display(),
            data = self.data()
        ));
    }

    /// initdb and postgres refuse to run as root.
    fn as_postgres(&self, command: &str) {
        if is_root() { run("su", &["postgres", "-s", "/bin/sh", "-c", command]) } else { run("sh", &["-c", command]) }
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        let stop = format!("'{}/pg_ctl' -D '{}' -m immediate stop", self.bin.display(), self.data());
        let _ = std::process::Command::new("su").args(["postgres", "-s", "/bin/sh", "-c", &stop]).output();
    }
}

/// An S3 server of one test's own (s3s-fs, as `scripts/test-servers` installs it, on a free loopback port with a
/// folder of its own), for tests that stop and start it: the shared test server stays up for the others.
pub struct PrivateS3 {
    dir: tempfile::TempDir,
    port: u16,
    server: std::sync::Mutex<Option<std::process::Child>>,
}

impl PrivateS3 {
    /// Starts it, with the bucket `intake-test`.
    pub fn start() -> PrivateS3 {
        setting("INTAKE_TEST_S3"); // Installs s3s-fs when it is missing.
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("intake-test")).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let s3 = PrivateS3 { dir, port, server: std::sync::Mutex::default() };
        s3.resume();
        s3
    }

    /// A place of its own on this server.
    pub fn location(&self) -> S3Location {
        S3Location { endpoint: Some(format!("http://127.0.0.1:{}", self.port)), ..scratch_blobs() }
    }

    /// Stops it at once (SIGKILL).
    pub fn stop(&self) {
        if let Some(mut server) = self.server.lock().unwrap().take() {
            let _ = server.kill();
            let _ = server.wait();
        }
    }

    /// Starts it (again) and waits until it listens.
    pub fn resume(&self) {
        let binary = concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/test-servers/tools/bin/s3s-fs");
        let server = std::process::Command::new(binary)
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--access-key", "intake-test", "--secret-key", "intake-test-secret"])
            .arg(self.dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("s3s-fs starts");
        *self.server.lock().unwrap() = Some(server);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "s3s-fs did not listen on port {}", self.port);
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

impl Drop for PrivateS3 {
    fn drop(&mut self) {
        self.stop();
    }
}

fn is_root() -> bool {
    std::process::Command::new("id").arg("-u").output().is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

fn run(program: &str, args: &[&str]) {
    let output = std::process::Command::new(program).args(args).output().expect("the command runs");
    assert!(output.status.success(), "{program} {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
}
