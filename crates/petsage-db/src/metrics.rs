//! The pool's Prometheus series, read at each scrape: connections in use and
//! idle, the pool's limit, acquires that had to wait (through
//! `Database::acquire`) and for how long, and requests that found no
//! connection within the acquire timeout (each answered 503).

use std::fmt::Error as FmtError;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use sqlx::AnyPool;

/// Requests that waited the whole acquire timeout for a connection, since start.
pub(crate) static ACQUIRE_TIMEOUTS: AtomicU64 = AtomicU64::new(0);

/// Acquires that found the pool at its limit with no idle connection, since start.
static ACQUIRE_WAITS: AtomicU64 = AtomicU64::new(0);

/// Microseconds spent in those waits, since start.
static ACQUIRE_WAIT_MICROS: AtomicU64 = AtomicU64::new(0);

/// Counts one acquire that had to wait, and how long it did.
pub(crate) fn count_wait(waited: std::time::Duration) {
    ACQUIRE_WAITS.fetch_add(1, Ordering::Relaxed);
    let micros = u64::try_from(waited.as_micros()).unwrap_or(u64::MAX);
    ACQUIRE_WAIT_MICROS.fetch_add(micros, Ordering::Relaxed);
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

/// The pool's figures for `/metrics`.
#[derive(Debug)]
pub(crate) struct PoolCollector {
    pool: AnyPool,
}

impl PoolCollector {
    pub(crate) fn new(pool: AnyPool) -> Self {
        Self { pool }
    }
}

impl Collector for PoolCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), FmtError> {
        let open = i64::from(self.pool.size());
        let idle = i64::try_from(self.pool.num_idle()).unwrap_or(i64::MAX);
        let mut connections = encoder.encode_descriptor(
            "petsage_db_pool_connections",
            "Open database connections, in use or idle",
            None,
            MetricType::Gauge,
        )?;
        for (state, value) in [("in_use", (open - idle).max(0)), ("idle", idle)] {
            ConstGauge::new(value).encode(connections.encode_family(&StateLabels { state })?)?;
        }
        let max = ConstGauge::new(i64::from(self.pool.options().get_max_connections()));
        max.encode(encoder.encode_descriptor(
            "petsage_db_pool_max_connections",
            "The most connections the pool opens (--database-max-connections)",
            None,
            max.metric_type(),
        )?)?;
        let waits = ConstCounter::new(ACQUIRE_WAITS.load(Ordering::Relaxed));
        waits.encode(encoder.encode_descriptor(
            "petsage_db_pool_acquire_waits",
            "Acquires that found the pool at its limit with no idle connection, and waited",
            None,
            waits.metric_type(),
        )?)?;
        let waited = ConstCounter::new(ACQUIRE_WAIT_MICROS.load(Ordering::Relaxed) as f64 / 1e6);
        waited.encode(encoder.encode_descriptor(
            "petsage_db_pool_acquire_wait_seconds",
            "Time spent waiting for a connection, summed over every wait",
            None,
            waited.metric_type(),
        )?)?;
        let timeouts = ConstCounter::new(ACQUIRE_TIMEOUTS.load(Ordering::Relaxed));
        timeouts.encode(encoder.encode_descriptor(
            "petsage_db_pool_acquire_timeouts",
            "Requests that found no connection within the acquire timeout (answered 503)",
            None,
            timeouts.metric_type(),
        )?)?;
        Ok(())
    }
}
