//! The jobs settings: flags with environment fallbacks, under the `Jobs`
//! heading of `--help`.

use std::time::Duration;

use clap::ArgAction;
use petsage_core::settings::{parse_bool, parse_count, parse_duration};

/// Whether this instance runs jobs, and how.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Jobs")]
pub struct JobsSettings {
    /// Run jobs and schedules on this instance; with false it serves HTTP only (it can still enqueue).
    #[arg(long, env = "PETSAGE_JOBS", value_name = "true|false", default_value = "true", action = ArgAction::Set, value_parser = parse_bool)]
    pub jobs: bool,

    /// Most jobs this instance runs at once.
    #[arg(long, env = "PETSAGE_JOBS_CONCURRENCY", value_name = "N", default_value = "4", value_parser = parse_count)]
    pub jobs_concurrency: std::num::NonZeroUsize,

    /// How often an idle instance looks for due jobs when no wake-up reaches it.
    #[arg(long, env = "PETSAGE_JOBS_POLL_INTERVAL", value_name = "DURATION", default_value = "1s", value_parser = parse_positive)]
    pub jobs_poll_interval: Duration,

    /// How long a taken job stays leased without a heartbeat; a job whose instance died runs again after it.
    #[arg(long, env = "PETSAGE_JOBS_LEASE", value_name = "DURATION", default_value = "30s", value_parser = parse_positive)]
    pub jobs_lease: Duration,

    /// Attempts before a failing job is discarded, for job types that set none.
    #[arg(long, env = "PETSAGE_JOBS_MAX_ATTEMPTS", value_name = "N", default_value = "20", value_parser = parse_count)]
    pub jobs_max_attempts: std::num::NonZeroUsize,

    /// Longest one attempt may run, for job types that set none; a longer one counts as failed.
    #[arg(long, env = "PETSAGE_JOBS_TIMEOUT", value_name = "DURATION", default_value = "60s", value_parser = parse_positive)]
    pub jobs_timeout: Duration,

    /// The `jobs` health check turns degraded when the oldest due job has waited longer than this.
    #[arg(long, env = "PETSAGE_JOBS_BACKLOG_AGE", value_name = "DURATION", default_value = "5m", value_parser = parse_positive)]
    pub jobs_backlog_age: Duration,

    /// How long completed jobs are kept for inspection (discarded ones are kept until retried or deleted).
    #[arg(long, env = "PETSAGE_JOBS_RETENTION", value_name = "DURATION", default_value = "24h", value_parser = parse_positive)]
    pub jobs_retention: Duration,
}

impl Default for JobsSettings {
    /// The flags' own defaults, with no flag and no environment variable set.
    fn default() -> Self {
        petsage_core::settings::defaults()
    }
}

fn parse_positive(value: &str) -> Result<Duration, String> {
    match parse_duration(value)? {
        Duration::ZERO => Err("expected a duration above zero, such as 500ms, 30s or 5m".into()),
        duration => Ok(duration),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_ones() {
        let settings = JobsSettings::default();
        assert!(settings.jobs);
        assert_eq!(settings.jobs_concurrency.get(), 4);
        assert_eq!(settings.jobs_max_attempts.get(), 20);
        assert_eq!(settings.jobs_backlog_age, Duration::from_secs(300));
        assert!(parse_positive("0s").is_err());
    }
}
