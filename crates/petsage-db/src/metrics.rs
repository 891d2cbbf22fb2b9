//! The pool's Prometheus series, read at each scrape: connections in use and
//! idle, the pool's limit, and requests that found no connection within the
//! acquire timeout (each answered 503).

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
