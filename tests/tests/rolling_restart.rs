//! Faults behind a real load balancer: a rolling restart under load loses no
//! request, and a killed instance is marked DOWN quickly. Needs `haproxy` and
//! `wrk` (Debian packages, installed by `.ci/run`); `cargo xtask ci` runs these.

use std::time::Duration;

use petsage_tests::free_port;
use petsage_tests::lb::Haproxy;
use petsage_tests::load::{WriteLoad, missing};
use petsage_tests::wrk::{spawn_wrk, wrk_report};
use petsage_tests::{NOTES_SCOPES, Scratch, Server, ServerBuilder};

const APP: &str = env!("CARGO_BIN_EXE_petsage-test-app");
/// HAProxy checks every second (`inter 1s` in deploy/haproxy/haproxy.cfg).
const CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// An instance on `bind`; on a shared database it also shares `data`, so every
/// instance signs and accepts the same dev tokens.
fn instance(bind: &str, database_url: Option<&str>, data: &Scratch) -> ServerBuilder {
    let builder = Server::builder(APP);
    let builder = match database_url {
        Some(url) => builder
            .env("PETSAGE_DATABASE_URL", url)
            .data_dir(data.path()),
        None => builder,
    };
    builder
        .env("PETSAGE_BIND", bind)
        .env("PETSAGE_SHUTDOWN_DELAY", "1500ms")
        .env("RUST_LOG", "info,petsage::access=warn")
}

/// `n` instances on free ports behind HAProxy, once HAProxy sees them all UP.
fn cluster(
    n: usize,
    database_url: Option<&str>,
    data: &Scratch,
) -> (Vec<String>, Vec<Server>, Haproxy) {
    let binds: Vec<String> = (0..n)
        .map(|_| format!("127.0.0.1:{}", free_port()))
        .collect();
    let servers = binds
        .iter()
        .map(|b| instance(b, database_url, data).start())
        .collect();
    let lb = Haproxy::start(&binds);
    for i in 1..=n {
        lb.wait_status(&format!("app{i}"), "UP", Duration::from_secs(10));
    }
    (binds, servers, lb)
}

/// Instance `i` drains on SIGTERM, leaves the balancer, exits cleanly, and
/// comes back on the same address; returns once HAProxy sees it UP again.
fn restart(
    lb: &Haproxy,
    servers: &mut [Server],
    binds: &[String],
    i: usize,
    database_url: Option<&str>,
    data: &Scratch,
) {
    let name = format!("app{}", i + 1);
    servers[i].signal("TERM");
    lb.wait_status(&name, "DOWN", Duration::from_secs(5));
    let exit = servers[i]
        .wait_exit(Duration::from_secs(15))
        .expect("instance exits");
    assert!(
        exit.success(),
        "{name} exit {exit:?}:\n{}",
        servers[i].log()
    );
    servers[i] = instance(&binds[i], database_url, data).start();
    lb.wait_status(&name, "UP", Duration::from_secs(10));
}

#[test]
#[ignore = "needs haproxy and wrk: run by cargo xtask ci"]
fn rolling_restart_of_three_instances_loses_no_request() {
    let _serial = petsage_tests::one_at_a_time();
    let data = Scratch::new("cluster");
    let (binds, mut servers, lb) = cluster(3, None, &data);

    // What uptime checkers poll: health stays 200 through a drain (only
    // readiness turns 503), so every non-2xx here is a false outage or a lost
    // request. `cargo xtask soak` lengthens the load and restarts round after round.
    let seconds = petsage_tests::load_seconds();
    let load = Duration::from_secs(seconds.into());
    // One round of three restarts takes about 15 s; leave room for it to finish under load.
    let rounds_until = load.saturating_sub(Duration::from_secs(17));
    let started = std::time::Instant::now();
    let wrk = spawn_wrk(&lb.url("/api/v1/health"), 64, seconds);
    std::thread::sleep(Duration::from_secs(1)); // let the load ramp up before the first restart
    let mut restarts = 0;
    loop {
        for i in 0..binds.len() {
            restart(&lb, &mut servers, &binds, i, None, &data);
            restarts += 1;
        }
        if started.elapsed() >= rounds_until {
            break;
        }
    }
    assert!(
        started.elapsed() < load,
        "the restarts outlasted the load: {:?}",
        started.elapsed()
    );
    let report = wrk_report(wrk);
    println!("{restarts} restarts under load\n{}", report.output);
    assert!(
        report.requests > 1000,
        "too little load to prove anything: {}",
        report.output
    );
    assert_eq!(report.non_2xx, 0, "{}", report.output);
    assert_eq!(report.socket_errors, 0, "{}", report.output);
}

#[test]
#[ignore = "needs haproxy: run by cargo xtask ci"]
fn killed_instance_is_marked_down_within_two_check_intervals() {
    let _serial = petsage_tests::one_at_a_time();
    let (_, servers, lb) = cluster(2, None, &Scratch::new("cluster"));

    servers[0].signal("KILL");
    let took = lb.wait_status("app1", "DOWN", CHECK_INTERVAL * 2);
    println!("app1 marked DOWN {took:?} after kill -9");
    assert_eq!(lb.server_status("app2"), "UP");
}

#[test]
#[ignore = "needs haproxy and PostgreSQL: run by cargo xtask ci"]
fn rolling_restart_on_postgres_keeps_every_write() {
    let _serial = petsage_tests::one_at_a_time();
    let db = petsage_db::testing::TestDatabase::postgres();
    let data = Scratch::new("cluster");
    let (binds, mut servers, lb) = cluster(3, Some(db.url()), &data);
    let alice = servers[0]
        .act_as("alice", NOTES_SCOPES)
        .authorization()
        .unwrap_or_default();

    // Clients create a note and read it back, through the balancer, for the whole run.
    let load = WriteLoad::start(&lb.url(""), &alice, 8, Duration::from_secs(60));
    std::thread::sleep(Duration::from_secs(1));
    for i in 0..binds.len() {
        restart(&lb, &mut servers, &binds, i, Some(db.url()), &data);
    }
    std::thread::sleep(Duration::from_secs(1));
    let report = load.finish();
    let lost = missing(&lb.url(""), &alice, &report.acknowledged);
    println!(
        "rolling restart of 3 on PostgreSQL: {} requests, statuses {:?}, {} transport errors, \
         {} writes acknowledged, {} found afterwards, {} lost",
        report.sent,
        report.statuses,
        report.transport_errors,
        report.acknowledged.len(),
        report.acknowledged.len() - lost.len(),
        lost.len()
    );
    assert!(report.acknowledged.len() > 100, "{report:?}");
    assert_eq!(report.non_2xx(), 0, "{:?}", report.unexplained);
    assert_eq!(report.transport_errors, 0, "{report:?}");
    assert_eq!(lost, Vec::<i64>::new(), "acknowledged writes lost");
}
