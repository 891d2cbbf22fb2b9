//! HAProxy, driven by the tests that need a real load balancer: the Debian
//! package that `cargo xtask ci` installs, running the config operators deploy.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::{KillOnDrop, free_port};

/// The repository's HAProxy config, the one operators deploy.
pub fn haproxy_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/haproxy/haproxy.cfg")
}

/// An HAProxy process running `deploy/haproxy/haproxy.cfg`, killed by its PID when dropped.
pub struct Haproxy {
    _process: KillOnDrop,
    port: u16,
    socket: PathBuf,
}

impl Haproxy {
    /// Starts HAProxy in front of `backends` (at most three), with retries and redispatch off.
    pub fn start(backends: &[String]) -> Haproxy {
        let port = free_port();
        let socket = std::env::temp_dir().join(format!(
            "petsage-haproxy-{}-{port}.sock",
            std::process::id()
        ));
        let mut command = Command::new("haproxy");
        command
            .arg("-f")
            .arg(haproxy_config())
            .env("HAPROXY_NO_RETRIES", "1")
            .env("PETSAGE_LB_BIND", format!("127.0.0.1:{port}"))
            .env("PETSAGE_LB_STATS_SOCKET", &socket)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for (i, backend) in backends.iter().enumerate() {
            command.env(format!("PETSAGE_APP{}", i + 1), backend);
        }
        let child = command
            .spawn()
            .expect("haproxy starts (apt-get install -y haproxy)");
        let haproxy = Haproxy {
            _process: KillOnDrop(child),
            port,
            socket,
        };
        haproxy.wait_for_socket();
        haproxy
    }

    fn wait_for_socket(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while UnixStream::connect(&self.socket).is_err() {
            assert!(
                Instant::now() < deadline,
                "haproxy stats socket never appeared"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// `http://127.0.0.1:PORT` followed by `path`, through the balancer.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The check status HAProxy shows for server `name` (`UP`, `DOWN`, …).
    pub fn server_status(&self, name: &str) -> String {
        let mut stream = UnixStream::connect(&self.socket).expect("stats socket connects");
        stream.write_all(b"show stat\n").expect("command sent");
        let mut csv = String::new();
        stream.read_to_string(&mut csv).expect("stats read");
        // Columns: pxname,svname,...; status is column 18 (index 17).
        csv.lines()
            .map(|line| line.split(',').collect::<Vec<_>>())
            .find(|cols| cols.len() > 17 && cols[0] == "petsage" && cols[1] == name)
            .map(|cols| cols[17].to_owned())
            .unwrap_or_default()
    }

    /// Waits up to `limit` until server `name` has status `want`; returns how long it took.
    pub fn wait_status(&self, name: &str, want: &str, limit: Duration) -> Duration {
        let started = Instant::now();
        loop {
            let status = self.server_status(name);
            if status.starts_with(want) {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < limit,
                "{name} is {status:?}, not {want} after {limit:?}"
            );
            thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Haproxy {
    /// Removes the stats socket; the process itself ends as its `KillOnDrop` drops.
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.socket);
    }
}
