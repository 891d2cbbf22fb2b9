//! The bench's command line.

/// Bench settings from the command line.
pub(crate) struct Options {
    /// Seconds of load per target per round.
    pub(crate) duration: u32,
    /// Interleaved rounds (A B C D, A B C D, …).
    pub(crate) rounds: usize,
    /// Cold starts to time.
    pub(crate) starts: usize,
}

impl Options {
    /// Parses `--quick` and `--duration SECS`.
    pub(crate) fn parse(args: &[String]) -> Result<Self, String> {
        let mut options = Self {
            duration: 5,
            rounds: 5,
            starts: 20,
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--quick" => {
                    options = Self {
                        duration: 1,
                        rounds: 2,
                        starts: 5,
                    }
                }
                "--duration" => {
                    let value = args.next().ok_or("--duration needs a number of seconds")?;
                    options.duration = value.parse().ok().filter(|d| *d > 0).ok_or_else(|| {
                        format!("--duration: expected whole seconds, got {value:?}")
                    })?;
                }
                other => {
                    return Err(format!(
                        "unknown option {other:?} (use --quick or --duration SECS)"
                    ));
                }
            }
        }
        Ok(options)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_take_quick_and_duration() {
        let quick = Options::parse(&["--quick".to_owned()]).expect("parses");
        assert_eq!((quick.duration, quick.rounds), (1, 2));
        let long = Options::parse(&["--duration".to_owned(), "10".to_owned()]).expect("parses");
        assert_eq!(long.duration, 10);
        assert!(Options::parse(&["--duration".to_owned(), "x".to_owned()]).is_err());
        assert!(Options::parse(&["--fast".to_owned()]).is_err());
    }
}
