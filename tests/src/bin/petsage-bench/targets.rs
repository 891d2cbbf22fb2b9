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
}

/// The note every database row reads: the first one the bench creates.
pub(crate) const NOTE: &str = "/api/v1/notes/1";

/// Every target, baselines first in their group.
pub(crate) const TARGETS: &[Target] = &[
    Target {
        id: "baseline",
        label: "baseline (bare actix-web)",
        path: "/api/v1/health",
        server: 0,
        baseline: "baseline",
    },
    Target {
        id: "health",
        label: "/api/v1/health",
        path: "/api/v1/health",
        server: 1,
        baseline: "baseline",
    },
    Target {
        id: "ready",
        label: "/api/v1/health/ready (3 checks, one taking 200 ms)",
        path: "/api/v1/health/ready",
        server: 2,
        baseline: "baseline",
    },
    Target {
        id: "health_checks",
        label: "/api/v1/health (3 checks, one taking 200 ms)",
        path: "/api/v1/health",
        server: 2,
        baseline: "baseline",
    },
    Target {
        id: "health_no_metrics",
        label: "/api/v1/health, metrics off (PETSAGE_METRICS=false)",
        path: "/api/v1/health",
        server: 7,
        baseline: "baseline",
    },
    Target {
        id: "live",
        label: "/api/v1/health/live",
        path: "/api/v1/health/live",
        server: 1,
        baseline: "baseline",
    },
    Target {
        id: "sqlite_baseline",
        label: "baseline: actix-web + sqlx, same query, SQLite",
        path: NOTE,
        server: 3,
        baseline: "sqlite_baseline",
    },
    Target {
        id: "notes_sqlite",
        label: "GET /api/v1/notes/{id} (generated feature), SQLite",
        path: NOTE,
        server: 4,
        baseline: "sqlite_baseline",
    },
    Target {
        id: "postgres_baseline",
        label: "baseline: actix-web + sqlx, same query, PostgreSQL",
        path: NOTE,
        server: 5,
        baseline: "postgres_baseline",
    },
    Target {
        id: "notes_postgres",
        label: "GET /api/v1/notes/{id} (generated feature), PostgreSQL",
        path: NOTE,
        server: 6,
        baseline: "postgres_baseline",
    },
];

/// The position of the target named `id` in [`TARGETS`].
pub(crate) fn target_index(id: &str) -> usize {
    TARGETS
        .iter()
        .position(|target| target.id == id)
        .unwrap_or_else(|| panic!("no bench target {id:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_target_is_compared_with_a_known_baseline_and_ids_are_unique() {
        for (i, target) in TARGETS.iter().enumerate() {
            assert_eq!(target_index(target.id), i, "{} is listed twice", target.id);
            let baseline = &TARGETS[target_index(target.baseline)];
            assert_eq!(
                baseline.baseline, baseline.id,
                "{} is not a baseline",
                baseline.id
            );
        }
    }
}
