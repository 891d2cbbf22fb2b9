//! Cost as data grows: the bench caller's first list page and a deep page
//! (its rows 801 to 850), read through the generated feature from a table
//! holding 1,000 rows (all the caller's) and from one holding many more (the
//! caller's 1,000 spread evenly among other owners' rows), on SQLite and on
//! PostgreSQL; and each database's plan for the list query on the big table.

use std::path::Path;

use petsage_tests::raw_exchange;
use sqlx::{Executor as _, Row as _};

use crate::process::{BenchDatabase, Pinned};
use crate::stats::median;

/// The caller's rows in every table.
pub(crate) const OWN_ROWS: u64 = 1_000;
/// The first page.
const FIRST: &str = "/api/v1/notes?limit=50";

/// One database's pages, on the small table and the big one.
#[derive(serde::Serialize)]
pub(crate) struct GrowthRow {
    pub(crate) label: String,
    /// Median req/s on the table of [`OWN_ROWS`] rows.
    pub(crate) small_rps: f64,
    /// Median req/s on the table of `big_rows` rows.
    pub(crate) big_rps: f64,
}

/// What the growth rounds measured.
#[derive(serde::Serialize)]
pub(crate) struct Growth {
    /// Rows in the big table.
    pub(crate) big_rows: u64,
    pub(crate) rows: Vec<GrowthRow>,
    /// Each database's plan for the list query on the big table.
    pub(crate) plans: Vec<(String, String)>,
}

/// A notes server on a fresh database, given its data folder and PostgreSQL URL.
pub(crate) type StartNotes<'a> = &'a dyn Fn(&str, Option<&str>) -> Result<Pinned, String>;

/// The list query the feature runs, with the bench caller's values written in.
fn list_sql(after: i64) -> String {
    format!(
        r#"SELECT id, name FROM "notes" WHERE owner_issuer = '{}' AND owner_subject = '{}' AND id > {after} ORDER BY id LIMIT 51"#,
        petsage_identity::dev::DEV_ISSUER,
        petsage_tests::public_notes::OWNER
    )
}

/// Fills `url`'s notes table (its first row, the caller's, is there) to
/// `rows` rows, every `rows / OWN_ROWS`-th the caller's, then analyzes it.
fn fill(url: &str, rows: u64, postgres: bool) -> Result<(), String> {
    let step = rows / OWN_ROWS;
    let values = format!(
        r#"'{}', CASE WHEN i % {step} = 0 THEN '{}' ELSE 'owner-' || (i % 5000) END, 'note ' || i"#,
        petsage_identity::dev::DEV_ISSUER,
        petsage_tests::public_notes::OWNER
    );
    let insert = if postgres {
        format!(
            r#"INSERT INTO "notes" (owner_issuer, owner_subject, name) SELECT {values} FROM generate_series(2, {rows}) AS i"#
        )
    } else {
        format!(
            r#"WITH RECURSIVE n(i) AS (SELECT 2 UNION ALL SELECT i + 1 FROM n WHERE i < {rows}) INSERT INTO "notes" (owner_issuer, owner_subject, name) SELECT {values} FROM n"#
        )
    };
    petsage_db::testing::on_own_runtime(url, move |mut conn| async move {
        conn.execute(sqlx::AssertSqlSafe(insert)).await?;
        conn.execute("ANALYZE").await?;
        Ok(())
    })
}

/// The database's plan for the list query on `url`, one step per line.
fn plan(url: &str, postgres: bool, after: i64) -> Result<String, String> {
    let sql = if postgres {
        format!("EXPLAIN {}", list_sql(after))
    } else {
        format!("EXPLAIN QUERY PLAN {}", list_sql(after))
    };
    let column = if postgres { 0 } else { 3 };
    let lines: Vec<String> =
        petsage_db::testing::on_own_runtime(url, move |mut conn| async move {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .fetch_all(&mut conn)
                .await?;
            rows.iter()
                .map(|row| row.try_get::<String, _>(column))
                .collect()
        })?;
    Ok(lines.join("\n"))
}

/// The `next_cursor` after `pages` pages of 200 of the caller's rows on `server`.
fn cursor_after(server: &Pinned, pages: usize) -> Result<String, String> {
    let mut cursor = String::new();
    for _ in 0..pages {
        let path = if cursor.is_empty() {
            "/api/v1/notes?limit=200".to_owned()
        } else {
            format!("/api/v1/notes?limit=200&cursor={cursor}")
        };
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: bench\r\n{}Connection: close\r\n\r\n",
            server.authorization_line()
        );
        let reply = raw_exchange(server.addr(), request.as_bytes()).map_err(|e| e.to_string())?;
        let body = reply
            .split_once("\r\n\r\n")
            .map(|(_, body)| body)
            .unwrap_or_default();
        let page: serde_json::Value =
            serde_json::from_str(body).map_err(|e| format!("{path}: {e}: {reply:.200}"))?;
        cursor = page["next_cursor"]
            .as_str()
            .ok_or_else(|| format!("{path}: no next page: {reply:.200}"))?
            .to_owned();
    }
    Ok(cursor)
}

/// One database's tables, servers and pages.
struct Tables {
    label: &'static str,
    small: Pinned,
    big: Pinned,
    deep_small: String,
    deep_big: String,
}

/// Measures both databases: `rounds` interleaved runs of `seconds` per page and table.
pub(crate) fn measure(
    target: &Path,
    start: StartNotes<'_>,
    big_rows: u64,
    rounds: usize,
    seconds: u32,
) -> Result<Growth, String> {
    let mut plans = Vec::new();
    let mut tables = Vec::new();
    let mut databases = Vec::new();
    for postgres in [false, true] {
        let mut servers = Vec::new();
        for (size, rows) in [("small", OWN_ROWS), ("big", big_rows)] {
            let name = format!("growth-{}-{size}", if postgres { "pg" } else { "sqlite" });
            let dir = target.join("bench").join(&name);
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            let dir = dir.display().to_string();
            let (server, url) = if postgres {
                let db = BenchDatabase::create(&format!("_growth_{size}"))?;
                let url = db.url.clone();
                databases.push(db);
                (start(&dir, Some(&url))?, url)
            } else {
                let url = format!("sqlite://{dir}/petsage.db");
                (start(&dir, None)?, url)
            };
            eprintln!("bench: growth: filling {name} to {rows} rows");
            fill(&url, rows, postgres)?;
            if size == "big" {
                let db = if postgres { "PostgreSQL" } else { "SQLite" };
                plans.push((format!("{db}, first page"), plan(&url, postgres, 0)?));
                let deep = (big_rows / OWN_ROWS * 800) as i64;
                plans.push((format!("{db}, deep page"), plan(&url, postgres, deep)?));
            }
            servers.push(server);
        }
        let big = servers.pop().ok_or("no big table")?;
        let small = servers.pop().ok_or("no small table")?;
        tables.push(Tables {
            label: if postgres { "PostgreSQL" } else { "SQLite" },
            deep_small: cursor_after(&small, 4)?,
            deep_big: cursor_after(&big, 4)?,
            small,
            big,
        });
    }
    // Per database and page: the small table's and the big table's samples.
    let mut samples: Vec<(String, Vec<f64>, Vec<f64>)> = Vec::new();
    for t in &tables {
        for page in ["first page", "deep page (rows 801–850)"] {
            samples.push((format!("{}, {page}", t.label), Vec::new(), Vec::new()));
        }
    }
    for round in 1..=rounds {
        eprintln!("bench: growth round {round}/{rounds}");
        for (i, t) in tables.iter().enumerate() {
            let deep_small = format!("{FIRST}&cursor={}", t.deep_small);
            let deep_big = format!("{FIRST}&cursor={}", t.deep_big);
            for (k, (small, big)) in [(FIRST, FIRST), (deep_small.as_str(), deep_big.as_str())]
                .into_iter()
                .enumerate()
            {
                let sample = &mut samples[i * 2 + k];
                // Alternate which table goes first, round by round.
                if round % 2 == 0 {
                    sample.1.push(check(t.small.load(small, seconds)?)?);
                    sample.2.push(check(t.big.load(big, seconds)?)?);
                } else {
                    sample.2.push(check(t.big.load(big, seconds)?)?);
                    sample.1.push(check(t.small.load(small, seconds)?)?);
                }
            }
        }
    }
    drop(tables);
    drop(databases);
    Ok(Growth {
        big_rows,
        rows: samples
            .into_iter()
            .map(|(label, mut small, mut big)| GrowthRow {
                label,
                small_rps: median(&mut small),
                big_rps: median(&mut big),
            })
            .collect(),
        plans,
    })
}

/// A sample's req/s, or why it does not count.
fn check(sample: crate::stats::Sample) -> Result<f64, String> {
    if sample.errors > 0 {
        return Err(format!("growth: {} errors under load", sample.errors));
    }
    Ok(sample.rps)
}
