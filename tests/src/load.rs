//! A write-and-read load on the `notes` feature from client threads, bounded
//! in time, that records every acknowledged write so a test can look for it
//! afterwards.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::agent;

/// What the clients saw.
#[derive(Debug, Default)]
pub struct LoadReport {
    /// Requests sent (creates and reads).
    pub sent: u64,
    /// Answers by status code.
    pub statuses: BTreeMap<u16, u64>,
    /// Requests that got no answer (connection refused or reset, timeout).
    pub transport_errors: u64,
    /// Ids of the creates answered `201`.
    pub acknowledged: Vec<i64>,
    /// Answers other than 2xx that were not `503` with `Retry-After`.
    pub unexplained: Vec<String>,
    /// The slowest answer.
    pub slowest: Duration,
}

impl LoadReport {
    /// Answers outside 2xx.
    pub fn non_2xx(&self) -> u64 {
        self.statuses
            .iter()
            .filter(|(status, _)| !(200..300).contains(*status))
            .map(|(_, n)| n)
            .sum()
    }

    fn add(&mut self, other: LoadReport) {
        self.sent += other.sent;
        for (status, n) in other.statuses {
            *self.statuses.entry(status).or_default() += n;
        }
        self.transport_errors += other.transport_errors;
        self.acknowledged.extend(other.acknowledged);
        self.unexplained.extend(other.unexplained);
        self.slowest = self.slowest.max(other.slowest);
    }
}

/// Client threads that create a note and read it back, over and over, at `base`
/// (`http://IP:PORT`), as the caller whose `Authorization` header they send,
/// until stopped or `limit` has passed.
pub struct WriteLoad {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<LoadReport>>,
}

impl WriteLoad {
    /// Starts `clients` threads.
    pub fn start(base: &str, authorization: &str, clients: usize, limit: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let deadline = Instant::now() + limit;
        let threads = (0..clients)
            .map(|client| {
                let stop = Arc::clone(&stop);
                let (base, authorization) = (base.to_owned(), authorization.to_owned());
                thread::spawn(move || run(&base, &authorization, client, &stop, deadline))
            })
            .collect();
        Self { stop, threads }
    }

    /// Runs `clients` threads for `duration`, and adds up what they saw.
    pub fn run_for(
        base: &str,
        authorization: &str,
        clients: usize,
        duration: Duration,
    ) -> LoadReport {
        let load = Self::start(base, authorization, clients, duration);
        thread::sleep(duration);
        load.finish()
    }

    /// Stops the clients and adds up what they saw.
    pub fn finish(self) -> LoadReport {
        self.stop.store(true, Ordering::SeqCst);
        let mut report = LoadReport::default();
        for thread in self.threads {
            report.add(thread.join().expect("client thread"));
        }
        report
    }
}

fn run(
    base: &str,
    authorization: &str,
    client: usize,
    stop: &AtomicBool,
    deadline: Instant,
) -> LoadReport {
    let agent = agent(Duration::from_secs(5));
    let mut report = LoadReport::default();
    let mut n = 0;
    while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
        n += 1;
        let body = serde_json::json!({ "name": format!("note {client}-{n}") }).to_string();
        let started = Instant::now();
        let created = agent
            .post(format!("{base}/api/v1/notes"))
            .header("content-type", "application/json")
            .header("authorization", authorization)
            .send(body);
        let id = record(&mut report, created, started, "POST")
            .filter(|(status, _)| *status == 201)
            .and_then(|(_, body)| serde_json::from_str::<serde_json::Value>(&body).ok())
            .and_then(|json| json["id"].as_i64());
        let Some(id) = id else {
            // Nothing to read back; do not spin while the service is away.
            thread::sleep(Duration::from_millis(20));
            continue;
        };
        report.acknowledged.push(id);
        let started = Instant::now();
        let read = agent
            .get(format!("{base}/api/v1/notes/{id}"))
            .header("authorization", authorization)
            .call();
        record(&mut report, read, started, "GET");
    }
    report
}

fn record(
    report: &mut LoadReport,
    result: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    started: Instant,
    method: &str,
) -> Option<(u16, String)> {
    report.sent += 1;
    match result {
        Ok(mut res) => {
            report.slowest = report.slowest.max(started.elapsed());
            let status = res.status().as_u16();
            *report.statuses.entry(status).or_default() += 1;
            let retry_after = res.headers().contains_key("retry-after");
            let body = res.body_mut().read_to_string().unwrap_or_default();
            let explained = (200..300).contains(&status) || (status == 503 && retry_after);
            if !explained {
                report
                    .unexplained
                    .push(format!("{method} {status}: {body}"));
            }
            Some((status, body))
        }
        Err(_) => {
            report.transport_errors += 1;
            None
        }
    }
}

/// Reads each id in `ids` from `base` as the caller whose `Authorization`
/// header is given: the ones not found (or not readable).
pub fn missing(base: &str, authorization: &str, ids: &[i64]) -> Vec<i64> {
    let agent = agent(Duration::from_secs(5));
    ids.iter()
        .copied()
        .filter(|id| {
            agent
                .get(format!("{base}/api/v1/notes/{id}"))
                .header("authorization", authorization)
                .call()
                .map_or(true, |res| res.status() != 200)
        })
        .collect()
}
