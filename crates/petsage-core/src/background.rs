//! Background services: long-running tasks an instance runs while it serves
//! (a job worker, a scheduler), started once the instance is ready and told
//! to stop when the drain begins.
//!
//! Only a serving instance runs them: `petsage-app migrate` and `openapi`
//! run the start and stop steps but never these.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

type TaskFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// One background service, as a feature or resource added it.
pub(crate) struct Task {
    label: String,
    run: Box<dyn FnOnce(Stopping) -> TaskFuture + Send>,
}

impl Task {
    pub(crate) fn new<F, Fut>(label: String, run: F) -> Self
    where
        F: FnOnce(Stopping) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        Self {
            label,
            run: Box::new(move |stopping| Box::pin(run(stopping))),
        }
    }
}

/// What a background service is told: whether the instance is stopping, and
/// how long it then has to finish its work.
#[derive(Clone, Debug)]
pub struct Stopping {
    requested: watch::Receiver<bool>,
    grace: Duration,
}

impl Stopping {
    /// Whether the drain has begun.
    pub fn is_requested(&self) -> bool {
        *self.requested.borrow()
    }

    /// Resolves once the drain begins (at once if it has).
    pub async fn requested(&mut self) {
        // An error means the sender is gone: the instance is stopping anyway.
        let _ = self.requested.wait_for(|stop| *stop).await;
    }

    /// How long work in progress may take once the drain has begun.
    pub fn grace(&self) -> Duration {
        self.grace
    }

    /// A token that turns stopping once `true` is sent.
    fn channel(grace: Duration) -> (watch::Sender<bool>, Self) {
        let (tx, requested) = watch::channel(false);
        (tx, Self { requested, grace })
    }
}

/// The background services of one instance: started when it turns ready,
/// stopped when the drain begins, awaited before the stop steps run.
pub struct Background {
    tasks: Mutex<Vec<Task>>,
    running: Mutex<Vec<(String, JoinHandle<()>)>>,
    stop: watch::Sender<bool>,
    stopping: Stopping,
}

impl Background {
    pub(crate) fn new(tasks: Vec<Task>, grace: Duration) -> Self {
        let (stop, stopping) = Stopping::channel(grace);
        Self {
            tasks: Mutex::new(tasks),
            running: Mutex::new(Vec::new()),
            stop,
            stopping,
        }
    }

    /// Starts every service (once; later calls do nothing), unless stopping began.
    ///
    /// Must be called inside the actix system (or a tokio runtime).
    pub fn start(&self) {
        if self.stopping.is_requested() {
            return;
        }
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(PoisonError::into_inner));
        let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
        for task in tasks {
            log::info!("background: {} started", task.label);
            let handle = tokio::task::spawn((task.run)(self.stopping.clone()));
            running.push((task.label, handle));
        }
    }

    /// Tells every service the drain has begun.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }

    /// Stops every service and waits for each to end.
    pub async fn join(&self) {
        self.stop();
        let running =
            std::mem::take(&mut *self.running.lock().unwrap_or_else(PoisonError::into_inner));
        for (label, handle) in running {
            match handle.await {
                Ok(()) => log::info!("background: {label} stopped"),
                Err(err) => log::error!("background: {label} ended abnormally: {err}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[actix_web::test]
    async fn services_start_once_see_the_stop_and_are_awaited() {
        let ended = Arc::new(AtomicUsize::new(0));
        let seen = Arc::clone(&ended);
        let task = Task::new("counter".into(), move |mut stopping: Stopping| async move {
            assert_eq!(stopping.grace(), Duration::from_secs(3));
            stopping.requested().await;
            seen.fetch_add(1, Ordering::SeqCst);
        });
        let background = Background::new(vec![task], Duration::from_secs(3));
        background.start();
        background.start();
        assert_eq!(ended.load(Ordering::SeqCst), 0, "runs until told to stop");
        background.join().await;
        assert_eq!(ended.load(Ordering::SeqCst), 1);
    }

    #[actix_web::test]
    async fn nothing_starts_once_stopping_began() {
        let task = Task::new("never".into(), |_| async { panic!("must not start") });
        let background = Background::new(vec![task], Duration::ZERO);
        background.stop();
        background.start();
        background.join().await;
    }
}
