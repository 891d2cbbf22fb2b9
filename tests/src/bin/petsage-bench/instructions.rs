//! `--instructions`: each server's instructions per request, counted by
//! callgrind (valgrind). Unlike req/s, the count repeats from run to run on a
//! noisy machine.
//!
//! A server runs under `valgrind --tool=callgrind` with one worker. After it
//! answers, [`WARM_UP`] keep-alive requests warm it; `callgrind_control -z`
//! zeroes the counters; [`MEASURED`] keep-alive requests go over one
//! connection; `callgrind_control -d` dumps the counts since the zeroing, and
//! the dump's total divided by [`MEASURED`] is the row's figure.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use petsage_tests::{KillOnDrop, RawConnection, free_port};

use crate::process::answers_200;

/// Requests sent before the counters are zeroed.
pub(crate) const WARM_UP: usize = 300;
/// Requests counted, over one keep-alive connection.
pub(crate) const MEASURED: usize = 2_000;
/// How long a server under valgrind may take to answer its first request.
const START_LIMIT: Duration = Duration::from_secs(120);
/// How long one row's requests may take in all.
const LOAD_LIMIT: Duration = Duration::from_secs(120);

/// One server and path to count, and the row it is compared with.
pub(crate) struct Row {
    /// The name goals refer to it by.
    pub(crate) id: &'static str,
    /// What the report calls it.
    pub(crate) label: &'static str,
    /// The id of the row it is compared with (itself for a baseline).
    pub(crate) baseline: &'static str,
    /// The path requested.
    pub(crate) path: &'static str,
    pub(crate) binary: PathBuf,
    pub(crate) args: Vec<String>,
    pub(crate) env: Vec<(&'static str, String)>,
    /// The `Authorization` header each request carries, if any.
    pub(crate) authorization: Option<String>,
    /// Times the server is started and counted; the row keeps the lowest count.
    pub(crate) runs: usize,
}

/// A row's count.
#[derive(Clone, serde::Serialize)]
pub(crate) struct Count {
    pub(crate) id: &'static str,
    pub(crate) label: &'static str,
    pub(crate) baseline: &'static str,
    pub(crate) path: &'static str,
    /// Instructions per request: the lowest of the runs.
    pub(crate) ir_per_request: f64,
    /// The highest of the runs (the same as the lowest after one run).
    pub(crate) highest: f64,
    /// How many runs.
    pub(crate) runs: usize,
}

impl Row {
    /// Counts the row's instructions per request in each of its runs.
    ///
    /// A server whose requests wait on another thread (sqlx's SQLite
    /// connection worker) spends more or fewer instructions polling,
    /// depending on how the threads happen to interleave: such rows run more
    /// than once, and keep the lowest count, the one with the least waiting.
    pub(crate) fn count(&self, dumps: &Path) -> Result<Count, String> {
        let mut counts = Vec::new();
        for _ in 0..self.runs.max(1) {
            counts.push(self.count_once(dumps)?);
        }
        let lowest = counts.iter().copied().fold(f64::INFINITY, f64::min);
        let highest = counts.iter().copied().fold(0.0, f64::max);
        Ok(Count {
            id: self.id,
            label: self.label,
            baseline: self.baseline,
            path: self.path,
            ir_per_request: lowest,
            highest,
            runs: counts.len(),
        })
    }

    /// Runs the server under callgrind once: its instructions per request.
    fn count_once(&self, dumps: &Path) -> Result<f64, String> {
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let out_base = dumps.join(format!("callgrind.{}", self.id));
        let child = Command::new("valgrind")
            .arg("--tool=callgrind")
            // One file per dump for all threads together (callgrind's default, said outright).
            .arg("--separate-threads=no")
            .arg(format!("--callgrind-out-file={}.%p", out_base.display()))
            .arg(&self.binary)
            .arg("--bind")
            .arg(addr.to_string())
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("PETSAGE_WORKERS", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start valgrind (apt-get install -y valgrind): {e}"))?;
        let process = KillOnDrop(child);
        let pid = process.0.id();
        let started = Instant::now();
        while !answers_200(addr) {
            if started.elapsed() > START_LIMIT {
                return Err(format!(
                    "{} under callgrind did not answer on {addr}",
                    self.id
                ));
            }
            thread::sleep(Duration::from_millis(50));
        }
        let authorization = self
            .authorization
            .as_ref()
            .map_or_else(String::new, |a| format!("Authorization: {a}\r\n"));
        let request = format!(
            "GET {} HTTP/1.1\r\nHost: bench\r\n{authorization}\r\n",
            self.path
        );
        let deadline = Instant::now() + LOAD_LIMIT;
        let mut connection =
            RawConnection::connect(addr).map_err(|e| format!("{}: connect: {e}", self.id))?;
        let mut send = |n: usize| -> Result<(), String> {
            for _ in 0..n {
                let status = connection
                    .exchange(request.as_bytes())
                    .map_err(|e| format!("{} {}: {e}", self.id, self.path))?;
                if status != 200 {
                    return Err(format!("{} {} answered {status}", self.id, self.path));
                }
                if Instant::now() > deadline {
                    return Err(format!("{}: requests took over {LOAD_LIMIT:?}", self.id));
                }
            }
            Ok(())
        };
        send(WARM_UP)?;
        callgrind_control("-z", pid)?;
        send(MEASURED)?;
        callgrind_control("-d", pid)?;
        drop(process);
        let total = read_dump(&out_base, pid)?;
        Ok(total as f64 / MEASURED as f64)
    }
}

fn callgrind_control(action: &str, pid: u32) -> Result<(), String> {
    let out = Command::new("callgrind_control")
        .args([action, &pid.to_string()])
        .output()
        .map_err(|e| format!("cannot run callgrind_control: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "callgrind_control {action} {pid} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// The instruction total of the one dump `callgrind_control -d` made
/// (`BASE.PID.1`; the file without a number is the final dump at exit).
fn read_dump(out_base: &Path, pid: u32) -> Result<u64, String> {
    let dir = out_base.parent().ok_or("no dump folder")?;
    let prefix = format!(
        "{}.{pid}.",
        out_base
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or("bad dump name")?
    );
    let mut dumps: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix))
        })
        .collect();
    dumps.sort();
    let [dump] = dumps.as_slice() else {
        return Err(format!(
            "expected one callgrind dump {prefix}*, found {dumps:?}"
        ));
    };
    let text = std::fs::read_to_string(dump).map_err(|e| format!("{}: {e}", dump.display()))?;
    dump_total(&text).ok_or_else(|| format!("no totals: or summary: line in {}", dump.display()))
}

/// The `totals:` of a callgrind dump (or its `summary:`): the first event, Ir.
fn dump_total(text: &str) -> Option<u64> {
    let field = |key: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(key))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
    };
    field("totals:").or_else(|| field("summary:"))
}

/// Whether valgrind and callgrind_control are on PATH.
pub(crate) fn tools_missing() -> Option<String> {
    ["valgrind", "callgrind_control"]
        .into_iter()
        .find(|tool| {
            Command::new(tool)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_err()
        })
        .map(|tool| {
            format!("--instructions needs {tool}; install it with: sudo apt-get install -y valgrind (cargo xtask ci installs it too)")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dump_gives_its_totals_line_or_its_summary() {
        let dump = "version: 1\ncmd: x\npart: 1\nevents: Ir\nsummary: 41000\nfn=(1) main\n3 5\ntotals: 42000\n";
        assert_eq!(dump_total(dump), Some(42_000));
        assert_eq!(dump_total("events: Ir\nsummary: 7\n"), Some(7));
        assert_eq!(dump_total("events: Ir\n"), None);
    }
}
