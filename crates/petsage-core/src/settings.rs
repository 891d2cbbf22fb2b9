//! Parsers for setting values, shared by the app, platform crates and
//! features, so every bad value is explained the same way.

use std::num::NonZeroUsize;
use std::time::Duration;

/// The values a group of flags `T` takes with no flag and no environment
/// variable set: its `#[arg]` defaults stay the one source of a `Default`.
///
/// Panics when a default does not parse, a bug in `T`'s attributes.
pub fn defaults<T: clap::Args + clap::FromArgMatches>() -> T {
    let flags = T::augment_args(clap::Command::new("defaults")).mut_args(|arg| arg.env(None));
    flags
        .try_get_matches_from(["defaults"])
        .and_then(|matches| T::from_arg_matches(&matches))
        .unwrap_or_else(|err| panic!("the flags' defaults do not parse: {err}"))
}

/// `500ms`, `2s`, `1.5s`, `10m`, `1h`, or a bare number of seconds (`2`).
pub fn parse_duration(value: &str) -> Result<Duration, String> {
    const EXPECTED: &str = "expected a duration such as 500ms, 2s, 2 (seconds), 10m or 1h";
    let (number, scale) = if let Some(ms) = value.strip_suffix("ms") {
        (ms, 1e-3)
    } else if let Some(minutes) = value.strip_suffix('m') {
        (minutes, 60.0)
    } else if let Some(hours) = value.strip_suffix('h') {
        (hours, 3600.0)
    } else {
        (value.strip_suffix('s').unwrap_or(value), 1.0)
    };
    let number: f64 = number.trim().parse().map_err(|_| EXPECTED.to_owned())?;
    Duration::try_from_secs_f64(number * scale).map_err(|_| EXPECTED.to_owned())
}

/// `true` or `false`.
pub fn parse_bool(value: &str) -> Result<bool, String> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err("expected true or false".to_owned()),
    }
}

/// A whole number of at least 1.
pub fn parse_count(value: &str) -> Result<NonZeroUsize, String> {
    value
        .parse()
        .map_err(|_| "expected a whole number of at least 1".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_units_or_seconds() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        for bad in ["", "soon", "-1s", "1d", "ms", "m", "1mm"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn counts_and_bools_are_strict() {
        assert_eq!(parse_count("3").map(NonZeroUsize::get), Ok(3));
        assert!(parse_count("0").is_err());
        assert_eq!(parse_bool("false"), Ok(false));
        assert!(parse_bool("yes").is_err());
    }
}
