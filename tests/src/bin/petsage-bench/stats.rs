//! Medians, percentiles and paired ratios over the bench's rounds and samples.

use serde::Serialize;

/// One wrk run's figures.
#[derive(Clone, Copy, Default, Serialize)]
pub(crate) struct Sample {
    pub(crate) rps: f64,
    pub(crate) p50_us: f64,
    pub(crate) p99_us: f64,
    pub(crate) errors: u64,
    pub(crate) cpu_us_per_req: f64,
}

/// The median of `values` (NaN when empty); sorts them.
pub(crate) fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// Each figure's median over the rounds; errors summed.
pub(crate) fn median_sample(samples: &[Sample]) -> Sample {
    let pick = |f: fn(&Sample) -> f64| median(&mut samples.iter().map(f).collect::<Vec<_>>());
    Sample {
        rps: pick(|s| s.rps),
        p50_us: pick(|s| s.p50_us),
        p99_us: pick(|s| s.p99_us),
        errors: samples.iter().map(|s| s.errors).sum(),
        cpu_us_per_req: pick(|s| s.cpu_us_per_req),
    }
}

/// A target against its baseline: the median over rounds of each round's ratio.
#[derive(Clone, Copy, Serialize)]
pub(crate) struct Ratios {
    pub(crate) rps: f64,
    pub(crate) cpu: f64,
    pub(crate) p99: f64,
}

/// Ratios paired round by round, so a slow drift of the machine cancels out.
pub(crate) fn paired_ratios(target: &[Sample], baseline: &[Sample]) -> Ratios {
    let pick = |f: fn(&Sample) -> f64| {
        let mut values: Vec<f64> = target
            .iter()
            .zip(baseline)
            .map(|(t, b)| f(t) / f(b))
            .collect();
        median(&mut values)
    };
    Ratios {
        rps: pick(|s| s.rps),
        cpu: pick(|s| s.cpu_us_per_req),
        p99: pick(|s| s.p99_us),
    }
}

/// The median and the 99th percentile (nearest rank) of `values`.
#[allow(clippy::cast_precision_loss)]
pub(crate) fn percentiles(mut values: Vec<i64>) -> (f64, f64) {
    if values.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    values.sort_unstable();
    let rank = |p: f64| {
        let index = ((p * values.len() as f64).ceil() as usize).clamp(1, values.len()) - 1;
        values[index] as f64
    };
    (rank(0.50), rank(0.99))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_even_and_odd_counts() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&mut []).is_nan());
    }

    #[test]
    fn ratios_pair_rounds() {
        let sample = |rps| Sample {
            rps,
            cpu_us_per_req: 1.0,
            p99_us: 1.0,
            ..Sample::default()
        };
        // Round by round 0.9, 0.9, 0.5: the median is 0.9 whatever the drift.
        let target = [sample(90.0), sample(45.0), sample(50.0)];
        let baseline = [sample(100.0), sample(50.0), sample(100.0)];
        assert!((paired_ratios(&target, &baseline).rps - 0.9).abs() < 1e-9);
    }
}
