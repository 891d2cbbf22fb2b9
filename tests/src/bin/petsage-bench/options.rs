//! The bench's command line.

use std::path::PathBuf;

/// Bench settings from the command line.
pub(crate) struct Options {
    /// Seconds of load per target per round.
    pub(crate) duration: u32,
    /// Interleaved rounds (A B C D, A B C D, …).
    pub(crate) rounds: usize,
    /// Cold starts to time, of each server.
    pub(crate) starts: usize,
    /// Run the wrk rounds and the cold starts.
    pub(crate) rps: bool,
    /// Count instructions per request under callgrind.
    pub(crate) instructions: bool,
    /// Run the background jobs rows (throughput, start latency).
    pub(crate) jobs: bool,
    /// `--quick`: short rounds, and each instruction row counted once.
    pub(crate) quick: bool,
    /// A folder holding an older build's `petsage-app` and
    /// `petsage-test-app`, whose rows run beside this build's.
    pub(crate) old: Option<PathBuf>,
}

/// What `--help` and a bad option print.
pub(crate) const USAGE: &str = "usage: petsage-bench [--quick] [--duration SECS] [--instructions | --jobs] [--old DIR]\n  \
     (no option)     req/s rounds, cold starts and instruction counts\n  \
     --quick         short req/s rounds, then the same cold starts and instruction counts (what CI runs)\n  \
     --duration SECS seconds of load per target per round\n  \
     --instructions  instruction counts only (callgrind)\n  \
     --jobs          background jobs rows only (jobs/s against a sqlx loop, start latency)\n  \
     --old DIR       add rows for the petsage-app and petsage-test-app found in DIR (an older release build)";

impl Options {
    /// Parses the options in [`USAGE`].
    pub(crate) fn parse(args: &[String]) -> Result<Self, String> {
        let mut options = Self {
            duration: 5,
            rounds: 5,
            starts: 10,
            rps: true,
            instructions: true,
            jobs: true,
            quick: false,
            old: None,
        };
        let (mut instructions_only, mut jobs_only) = (false, false);
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--quick" => options.quick = true,
                "--instructions" => instructions_only = true,
                "--jobs" => jobs_only = true,
                "--duration" => {
                    let value = args.next().ok_or("--duration needs a number of seconds")?;
                    options.duration = value.parse().ok().filter(|d| *d > 0).ok_or_else(|| {
                        format!("--duration: expected whole seconds, got {value:?}")
                    })?;
                }
                "--old" => {
                    let dir = args.next().ok_or("--old needs a folder")?;
                    options.old = Some(PathBuf::from(dir));
                }
                other => return Err(format!("unknown option {other:?}\n{USAGE}")),
            }
        }
        // The instruction counts stay in --quick: they take well under a minute.
        if options.quick {
            options.duration = 1;
            options.rounds = 2;
        }
        if instructions_only && jobs_only {
            return Err(format!(
                "--instructions and --jobs each run one part: pick one\n{USAGE}"
            ));
        }
        if instructions_only {
            options.rps = false;
            options.jobs = false;
        }
        if jobs_only {
            options.rps = false;
            options.instructions = false;
        }
        Ok(options)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options, String> {
        Options::parse(&args.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>())
    }

    #[test]
    fn options_take_quick_duration_instructions_and_old() {
        let quick = parse(&["--quick"]).expect("parses");
        assert_eq!((quick.duration, quick.rounds), (1, 2));
        assert!(quick.rps && quick.instructions);
        let full = parse(&[]).expect("parses");
        assert!(full.rps && full.instructions && full.old.is_none());
        let long = parse(&["--duration", "10"]).expect("parses");
        assert_eq!(long.duration, 10);
        let counts = parse(&["--instructions", "--old", "/x"]).expect("parses");
        assert!(!counts.rps && counts.instructions && !counts.jobs);
        let jobs = parse(&["--jobs", "--quick"]).expect("parses");
        assert!(!jobs.rps && !jobs.instructions && jobs.jobs && jobs.quick);
        assert!(parse(&["--jobs", "--instructions"]).is_err());
        assert_eq!(counts.old, Some(PathBuf::from("/x")));
        assert!(parse(&["--duration", "x"]).is_err());
        assert!(parse(&["--old"]).is_err());
        assert!(parse(&["--fast"]).is_err());
    }
}
