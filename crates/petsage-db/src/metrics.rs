//! The pool's Prometheus series, read at each scrape: connections in use and
//! idle, the pool's limit, and what `Database::acquire` counted for this pool:
//! acquires that had to wait and for how long, and acquires that found no
//! connection within the acquire timeout (each answered 503).

use std::fmt::Error as FmtError;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use sqlx::AnyPool;

/// What one pool's `Database::acquire` has counted since start.
#[derive(Debug, Default)]
pub(crate) struct PoolCounters {
    /// Acquires that found the pool at its limit with no idle connection.
    waits: AtomicU64,
    /// Microseconds spent in those waits.
    wait_micros: AtomicU64,
    /// Acquires that found no connection within the acquire timeout.
    timeouts: AtomicU64,
}

impl PoolCounters {
    /// Counts one acquire that had to wait, and how long it did.
    pub(crate) fn count_wait(&self, waited: Duration) {
        self.waits.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(waited.as_micros()).unwrap_or(u64::MAX);
        self.wait_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// Counts one acquire that gave up at the acquire timeout.
    pub(crate) fn count_timeout(&self) {
        self.timeouts.fetch_add(1, Ordering::Relaxed);
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

/// One pool's figures for `/metrics`: its sizes, and what its acquires counted.
#[derive(Debug)]
pub(crate) struct PoolCollector {
    pool: AnyPool,
    counters: Arc<PoolCounters>,
}

impl PoolCollector {
    /// The series of `pool`, with the `counters` its acquires keep.
    pub(crate) fn new(pool: AnyPool, counters: Arc<PoolCounters>) -> Self {
        Self { pool, counters }
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
        let waits = ConstCounter::new(self.counters.waits.load(Ordering::Relaxed));
        waits.encode(encoder.encode_descriptor(
            "petsage_db_pool_acquire_waits",
            "Acquires that found the pool at its limit with no idle connection, and waited",
            None,
            waits.metric_type(),
        )?)?;
        let waited =
            ConstCounter::new(self.counters.wait_micros.load(Ordering::Relaxed) as f64 / 1e6);
        waited.encode(encoder.encode_descriptor(
            "petsage_db_pool_acquire_wait_seconds",
            "Time spent waiting for a connection, summed over every wait",
            None,
            waited.metric_type(),
        )?)?;
        let timeouts = ConstCounter::new(self.counters.timeouts.load(Ordering::Relaxed));
        timeouts.encode(encoder.encode_descriptor(
            "petsage_db_pool_acquire_timeouts",
            "Requests that found no connection within the acquire timeout (answered 503)",
            None,
            timeouts.metric_type(),
        )?)?;
        Ok(())
    }
}
