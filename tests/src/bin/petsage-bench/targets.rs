//! What the bench loads: each target's path, server and baseline.

/// One server under test, pinned to core 0, and the target it is compared with.
pub(crate) struct Target {
    /// The name goals refer to it by.
    pub(crate) id: &'static str,
    /// What the report calls it.
    pub(crate) label: &'static str,
    /// The path wrk loads.
    pub(crate) path: &'static str,
    /// The index of its server in the bench's list.
    pub(crate) server: usize,
    /// The id of the target it is compared with.
    pub(crate) baseline: &'static str,
    /// For an older build's row (`--old`), the id of this build's row it is set beside.
    pub(crate) old_of: Option<&'static str>,
}

/// The note every database row reads: the first one the bench creates.
pub(crate) const NOTE: &str = "/api/v1/notes/1";
/// The same note through the test app's public route (no token needed).
pub(crate) const PUBLIC_NOTE: &str = "/api/v1/test/public-notes/1";

/// Every target, baselines first in their group.
pub(crate) const TARGETS: &[Target] = &[
    Target {
        id: "baseline",
        label: "baseline (bare actix-web)",
        path: "/api/v1/health",
        server: 0,
        baseline: "baseline",
        old_of: None,
    },
    Target {
        id: "same_headers",
        label: "baseline sending a health poll's headers (--same-headers)",
        path: "/api/v1/health",
        server: 8,
        baseline: "baseline",
        old_of: None,
    },
    Target {
        id: "health",
        label: "/api/v1/health",
        path: "/api/v1/health",
        server: 1,
        baseline: "baseline",
        old_of: None,
    },
    Target {
        id: "ready",
        label: "/api/v1/health/ready (3 checks, one taking 200 ms)",
        path: "/api/v1/health/ready",
        server: 2,
        baseline: "baseline",
        old_of: None,
    },
    Target {
        id: "health_checks",
        label: "/api/v1/health (3 checks, one taking 200 ms)",
        path: "/api/v1/health",
        server: 2,
        baseline: "baseline",
        old_of: None,
    },
    Target {
        id: "health_no_metrics",
        label: "/api/v1/health, metrics off (PETSAGE_METRICS=false)",
        path: "/api/v1/health",
        server: 7,
        baseline: "baseline",
        old_of: None,
    },
    Target {
        id: "live",
        label: "/api/v1/health/live",
        path: "/api/v1/health/live",
        server: 1,
        baseline: "baseline",
        old_of: None,
    },
    Target {
        id: "sqlite_baseline",
        label: "baseline: actix-web + sqlx, same query, SQLite",
        path: NOTE,
        server: 3,
        baseline: "sqlite_baseline",
        old_of: None,
    },
    Target {
        id: "notes_sqlite",
        label: "GET /api/v1/notes/{id} (generated feature), SQLite",
        path: NOTE,
        server: 4,
        baseline: "sqlite_baseline",
        old_of: None,
    },
    Target {
        id: "notes_public_sqlite",
        label: "the same GET on a route declared public, SQLite",
        path: PUBLIC_NOTE,
        server: 4,
        baseline: "sqlite_baseline",
        old_of: None,
    },
    Target {
        id: "postgres_baseline",
        label: "baseline: actix-web + sqlx, same query, PostgreSQL",
        path: NOTE,
        server: 5,
        baseline: "postgres_baseline",
        old_of: None,
    },
    Target {
        id: "notes_postgres",
        label: "GET /api/v1/notes/{id} (generated feature), PostgreSQL",
        path: NOTE,
        server: 6,
        baseline: "postgres_baseline",
        old_of: None,
    },
    Target {
        id: "health_jobs_off",
        label: "/api/v1/health, a feature with jobs, PETSAGE_JOBS=false",
        path: "/api/v1/health",
        server: 9,
        baseline: "health_jobs_off",
        old_of: None,
    },
    Target {
        id: "health_jobs_idle",
        label: "/api/v1/health, the same with its job worker on and idle",
        path: "/api/v1/health",
        server: 10,
        baseline: "health_jobs_off",
        old_of: None,
    },
];

/// An older build's rows (`--old`): its servers follow this build's.
pub(crate) const OLD_TARGETS: &[Target] = &[
    Target {
        id: "old_health",
        label: "old build: /api/v1/health",
        path: "/api/v1/health",
        server: 11,
        baseline: "baseline",
        old_of: Some("health"),
    },
    Target {
        id: "old_ready",
        label: "old build: /api/v1/health/ready (3 checks, one taking 200 ms)",
        path: "/api/v1/health/ready",
        server: 12,
        baseline: "baseline",
        old_of: Some("ready"),
    },
    Target {
        id: "old_notes_sqlite",
        label: "old build: GET /api/v1/notes/{id}, SQLite",
        path: NOTE,
        server: 13,
        baseline: "sqlite_baseline",
        old_of: Some("notes_sqlite"),
    },
    Target {
        id: "old_notes_postgres",
        label: "old build: GET /api/v1/notes/{id}, PostgreSQL",
        path: NOTE,
        server: 14,
        baseline: "postgres_baseline",
        old_of: Some("notes_postgres"),
    },
];

/// This build's targets, then the older build's when there is one.
pub(crate) fn targets(old: bool) -> Vec<&'static Target> {
    let old_targets = if old { OLD_TARGETS } else { &[] };
    TARGETS.iter().chain(old_targets).collect()
}

/// The position of the target named `id` in `targets`.
pub(crate) fn target_index(targets: &[&Target], id: &str) -> usize {
    targets
        .iter()
        .position(|target| target.id == id)
        .unwrap_or_else(|| panic!("no bench target {id:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_target_is_compared_with_a_known_baseline_and_ids_are_unique() {
        let all = targets(true);
        for (i, target) in all.iter().enumerate() {
            assert_eq!(
                target_index(&all, target.id),
                i,
                "{} is listed twice",
                target.id
            );
            let baseline = all[target_index(&all, target.baseline)];
            assert_eq!(
                baseline.baseline, baseline.id,
                "{} is not a baseline",
                baseline.id
            );
            if let Some(new) = target.old_of {
                let new = all[target_index(&all, new)];
                assert_eq!((new.path, new.baseline), (target.path, target.baseline));
            }
        }
        let servers = |list: &[Target]| list.iter().map(|t| t.server).collect::<Vec<_>>();
        let last_new = servers(TARGETS).into_iter().max();
        assert!(servers(OLD_TARGETS).iter().all(|s| Some(*s) > last_new));
    }
}
