//! Hostile clients and operators against the real binary: a second server on the same data directory, idle
//! and crawling connections, ten thousand idle connections, a connection flood past the cap, and searches
//! built to exhaust memory. Each test failed before its fix.

use crate::common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Served, spawn_server_with};
use serde_json::{Value, json};

const KEY: &str = "hostile-test-key";

fn serve(dir: &std::path::Path, flags: &[&str]) -> Served {
    let mut all = vec!["--master-key", KEY];
    all.extend_from_slice(flags);
    spawn_server_with(dir, &all)
}

fn address(served: &Served) -> String {
    format!("127.0.0.1:{}", served.port)
}

/// Sends `request` on a new connection and reads until the server closes it (or `wait` passes).
fn exchange(address: &str, request: &[u8], wait: Duration) -> String {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(wait)).unwrap();
    stream.write_all(request).unwrap();
    read_to_close(&mut stream)
}

fn read_to_close(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    let mut buffer = [0u8; 8192];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&buffer[..n]),
        }
    }
    String::from_utf8_lossy(&answer).into_owned()
}

/// Whether the server closed `stream` within `wait` (a read sees the end, or a reset).
fn closed_within(stream: &mut TcpStream, wait: Duration) -> bool {
    stream.set_read_timeout(Some(wait)).unwrap();
    let mut buffer = [0u8; 1024];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(error) => {
                return matches!(error.kind(), std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe);
            }
        }
    }
}

fn health(address: &str) -> String {
    exchange(address, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", Duration::from_secs(10))
}

/// Raises this process's open-file limit to its hard limit; returns the new soft limit.
fn raise_descriptor_limit() -> u64 {
    // SAFETY: getrlimit and setrlimit only read and write the struct passed to them.
    unsafe {
        let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        limit.rlim_cur = limit.rlim_max;
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
        limit.rlim_cur
    }
}

#[test]
fn a_second_server_on_the_same_data_directory_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = serve(dir.path(), &[]);
    let second = Command::new(env!("CARGO_BIN_EXE_intake"))
        .args(["serve", "--listen", "127.0.0.1:0", "--master-key", KEY, "--data-dir"])
        .arg(dir.path())
        .env("INTAKE_LOG", "warn")
        .output()
        .unwrap();
    assert!(!second.status.success(), "the second server started");
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains(&dir.path().display().to_string()), "{stderr}");
    assert!(stderr.contains(&format!("process {}", first.child.id())), "{stderr}");
    assert!(stderr.contains("in use by another Intake process"), "{stderr}");
    assert!(first.is_running());
    assert!(health(&address(&first)).starts_with("HTTP/1.1 200"));
    // Once the first is gone (even killed), the directory is free again.
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    let mut third = serve(dir.path(), &[]);
    assert!(third.is_running());
}

const PACE_FLAGS: [&str; 8] = [
    "--header-timeout-seconds",
    "2",
    "--body-idle-timeout-seconds",
    "3",
    "--body-min-bytes-per-second",
    "1024",
    "--body-grace-seconds",
    "1",
];

#[test]
fn idle_connections_are_cut_at_the_header_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let served = serve(dir.path(), &PACE_FLAGS);
    let mut silent = TcpStream::connect(address(&served)).unwrap();
    let mut partial = TcpStream::connect(address(&served)).unwrap();
    partial.write_all(b"GET /hea").unwrap();
    let started = Instant::now();
    assert!(closed_within(&mut silent, Duration::from_secs(8)), "a silent connection stays open");
    assert!(closed_within(&mut partial, Duration::from_secs(8)), "a connection with half a request line stays open");
    assert!(started.elapsed() >= Duration::from_millis(1500), "closed before the timeout: {:?}", started.elapsed());
    // A keep-alive connection idle past the timeout is closed too, after its answers.
    let mut kept = TcpStream::connect(address(&served)).unwrap();
    kept.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    assert!(closed_within(&mut kept, Duration::from_secs(8)));
    assert!(health(&address(&served)).starts_with("HTTP/1.1 200"));
}

/// Sends a PUT with a body of `size` bytes in `chunk`-byte pieces every `every`; returns the answer.
fn paced_put(address: &str, path: &str, headers: &str, size: usize, chunk: usize, every: Duration) -> String {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let head = format!("PUT {path} HTTP/1.1\r\nHost: x\r\n{headers}Content-Length: {size}\r\n\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    let mut writer = stream.try_clone().unwrap();
    let sending = std::thread::spawn(move || {
        let body = format!("{{\"data\": \"{}\"}}", "x".repeat(size - 12));
        for piece in body.as_bytes().chunks(chunk) {
            if writer.write_all(piece).is_err() {
                return; // cut by the server
            }
            std::thread::sleep(every);
        }
    });
    let answer = read_to_close(&mut stream);
    let _ = sending.join();
    answer
}

#[test]
fn crawling_bodies_are_cut_with_408_and_slow_live_ones_complete() {
    let dir = tempfile::tempdir().unwrap();
    let served = serve(dir.path(), &PACE_FLAGS);
    let source = common::bootstrap(dir.path())["sourceId"].as_str().unwrap().to_string();
    let item = format!("/push/v1/organizations/default/sources/{source}/documents?documentId=file%3A%2F%2Fslow");
    let json_headers =
        format!("Authorization: Bearer {KEY}\r\nContent-Type: application/json\r\nConnection: close\r\n");

    let started = Instant::now();
    let answer = paced_put(&address(&served), &item, &json_headers, 100, 1, Duration::from_millis(500));
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.contains("REQUEST_TIMEOUT") && answer.contains("under the minimum of 1024 bytes per second"),
        "{answer}"
    );
    assert!(started.elapsed() < Duration::from_secs(10), "cut after {:?}", started.elapsed());

    // A pause longer than the idle timeout is cut too, whatever the pace before it.
    let answer = paced_put(&address(&served), &item, &json_headers, 8000, 4000, Duration::from_secs(5));
    assert!(answer.starts_with("HTTP/1.1 408") && answer.contains("no byte arrived for 3 s"), "{answer}");

    // Slow but live (2 KiB/s for 8 s, twice the minimum pace) completes.
    let answer = paced_put(&address(&served), &item, &json_headers, 16 * 1024, 1024, Duration::from_millis(500));
    assert!(answer.starts_with("HTTP/1.1 202"), "{answer}");

    // The upload URL of a file container keeps the same pace rules.
    let create = format!(
        "POST /push/v1/organizations/default/files HTTP/1.1\r\nHost: x\r\n{json_headers}Content-Length: 2\r\n\r\n{{}}"
    );
    let answer = exchange(&address(&served), create.as_bytes(), Duration::from_secs(10));
    let created: Value = serde_json::from_str(answer.split_once("\r\n\r\n").unwrap().1).unwrap();
    let upload = created["uploadUri"].as_str().unwrap();
    let path = &upload[served.base_url().len()..];
    let upload_headers =
        "Content-Type: application/octet-stream\r\nx-amz-server-side-encryption: AES256\r\nConnection: close\r\n";
    let answer = paced_put(&address(&served), path, upload_headers, 100, 1, Duration::from_millis(500));
    assert!(answer.starts_with("HTTP/1.1 408") && answer.contains("REQUEST_TIMEOUT"), "{answer}");
    assert!(health(&address(&served)).starts_with("HTTP/1.1 200"));
}

/// `intake_connections_open` from `/metrics`.
fn open_connections(address: &str) -> u64 {
    let metrics =
        exchange(address, b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", Duration::from_secs(10));
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("intake_connections_open "))
        .and_then(|v| v.trim().parse().ok())
        .expect("intake_connections_open")
}

#[test]
fn health_answers_while_ten_thousand_idle_connections_are_open() {
    let descriptors = raise_descriptor_limit();
    assert!(descriptors > 10_500, "this test needs more than 10,500 open files (ulimit -Hn is {descriptors})");
    let dir = tempfile::tempdir().unwrap();
    let mut served = serve(dir.path(), &[]);
    let address = address(&served);
    let idle: Vec<TcpStream> = (0..10_000).map(|_| TcpStream::connect(&address).unwrap()).collect();
    // The kernel queues connections faster than the server accepts them: wait until it holds every one.
    let deadline = Instant::now() + Duration::from_secs(120);
    while open_connections(&address) < 10_000 {
        assert!(Instant::now() < deadline, "the server holds {} connections", open_connections(&address));
        std::thread::sleep(Duration::from_millis(200));
    }
    let started = Instant::now();
    let answer = health(&address);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(5), "/health took {:?}", started.elapsed());
    drop(idle);
    assert!(served.is_running());
}

#[test]
fn past_the_connection_cap_only_health_is_served_then_connections_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let served = serve(dir.path(), &["--max-connections", "20"]);
    let address = address(&served);
    let mut held: Vec<TcpStream> = (0..20).map(|_| TcpStream::connect(&address).unwrap()).collect();
    // The server accepts asynchronously: wait until it holds all twenty.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let metrics = exchange(
            &address,
            b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            Duration::from_secs(10),
        );
        if metrics.contains("intake_connections_over_capacity_total 1") {
            break;
        }
        assert!(Instant::now() < deadline, "the server never reached its cap");
    }
    let answer = health(&address);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let push =
        format!("POST /push/v1/organizations/default/files HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n\r\n");
    let answer = exchange(&address, push.as_bytes(), Duration::from_secs(10));
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("SERVICE_UNAVAILABLE") && answer.contains("20 connections open"), "{answer}");
    // Past the headroom too, new connections are closed at once.
    held.extend((0..64).map(|_| TcpStream::connect(&address).unwrap()));
    std::thread::sleep(Duration::from_millis(500));
    let mut refused = TcpStream::connect(&address).unwrap();
    assert!(closed_within(&mut refused, Duration::from_secs(5)), "a connection past the headroom stays open");
    drop(held);
}

#[tokio::test]
async fn searches_built_to_exhaust_memory_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let mut served = serve(dir.path(), &[]);
    let base = served.base_url();
    let source = common::bootstrap(dir.path())["sourceId"].as_str().unwrap().to_string();
    let client = reqwest::Client::new();
    for i in 0..200 {
        let url =
            format!("{base}/push/v1/organizations/default/sources/{source}/documents?documentId=file%3A%2F%2F{i}");
        let words: String = (0..200).map(|w| format!("word{} ", (i * 7 + w) % 2000)).collect();
        let body = json!({"data": words, "title": format!("item {i}")});
        let response = client.put(url).bearer_auth(KEY).json(&body).send().await.unwrap();
        assert_eq!(response.status(), 202);
    }
    let search = |body: Value| {
        let client = client.clone();
        let url = format!("{base}/rest/search/v2?organizationId=default");
        async move { client.post(url).bearer_auth(KEY).json(&body).send().await.unwrap() }
    };
    let hostile = [
        json!({"q": "word ".repeat(100_000)}),
        json!({"q": format!("{}a{}", "(".repeat(100_000), ")".repeat(100_000))}),
        json!({"aq": format!("@uri==({})", vec!["file://x"; 100_000].join(","))}),
        json!({"q": "NOT ".repeat(50_000) + "a"}),
    ];
    for body in &hostile {
        assert_eq!(search(body.clone()).await.status(), 400, "{}", &body.to_string()[..40]);
    }
    // The heaviest searches within the limits, many at once.
    let heaviest = [
        json!({"q": (0..1024).map(|w| format!("word{w}")).collect::<Vec<_>>().join(" OR "), "numberOfResults": 1000}),
        json!({"aq": format!("@uri==({})", (0..1024).map(|i| format!("file://{i}")).collect::<Vec<_>>().join(",")), "numberOfResults": 1000}),
        json!({"q": "word1", "firstResult": 100_000, "numberOfResults": 1000}),
    ];
    let mut running = Vec::new();
    for round in 0..4 {
        for body in &heaviest {
            let answer = search(body.clone());
            running.push(tokio::spawn(async move { (round, answer.await.status()) }));
        }
    }
    for task in running {
        let (_, status) = task.await.unwrap();
        assert_eq!(status, 200);
    }
    let peak_mib = served.peak_rss_kib() / 1024;
    eprintln!("peak memory of the server: {peak_mib} MiB");
    assert!(served.is_running());
    assert!(peak_mib < 512, "the server's memory peaked at {peak_mib} MiB");
}

#[test]
fn logs_written_to_a_file_carry_no_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_intake"))
        .args(["serve", "--listen", "127.0.0.1:0", "--master-key", KEY, "--data-dir"])
        .arg(dir.path())
        .env("INTAKE_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut logged = String::new();
    while !logged.contains("Intake is listening") {
        assert!(std::io::BufRead::read_line(&mut stderr, &mut logged).unwrap() > 0, "the server stopped: {logged}");
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!logged.contains('\u{1b}'), "colour codes in a log file: {logged:?}");
}
