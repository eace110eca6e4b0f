//! Starting and stopping a simulator, and the state its handlers share.

use std::collections::VecDeque;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::config::{RateLimitConfig, SimConfig};
use crate::faults::{Faults, RequestMatcher};
use crate::inspect::{DropletInfo, FirewallInfo, KeyInfo, LoggedRequest, SnapshotInfo};
use crate::ratelimit::RateLimiter;
use crate::routes;
use crate::state::Store;

/// How many requests the log keeps; older ones are dropped so a long test cannot grow it
/// without bound.
const LOG_CAPACITY: usize = 100_000;

/// Locks a mutex, carrying on if a panicking holder poisoned it: the data is plain
/// bookkeeping, and one failed test must not take the whole simulator down.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Everything the handlers, the gate and the handle share.
///
/// Lock order: `store` may be held while taking `faults`, never the other way round;
/// `limiter` and `log` are only ever held alone. No lock is held across an `.await`.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) token: String,
    pub(crate) base_url: String,
    pub(crate) config: SimConfig,
    pub(crate) store: Mutex<Store>,
    pub(crate) faults: Mutex<Faults>,
    pub(crate) limiter: Mutex<RateLimiter>,
    log: Mutex<VecDeque<LoggedRequest>>,
}

impl Shared {
    fn new(config: SimConfig, base_url: String) -> Self {
        Self {
            token: config.token.clone(),
            base_url,
            store: Mutex::new(Store::new()),
            faults: Mutex::new(Faults::new(config.create_latency, config.action_latency)),
            limiter: Mutex::new(RateLimiter::new(config.rate_limit)),
            log: Mutex::new(VecDeque::new()),
            config,
        }
    }

    /// The store, with every action due by now settled.
    pub(crate) fn store(&self) -> MutexGuard<'_, Store> {
        let mut store = lock(&self.store);
        store.advance(Instant::now());
        store
    }

    pub(crate) fn faults(&self) -> MutexGuard<'_, Faults> {
        lock(&self.faults)
    }

    pub(crate) fn record(&self, entry: LoggedRequest) {
        let mut log = lock(&self.log);
        if log.len() == LOG_CAPACITY {
            log.pop_front();
        }
        log.push_back(entry);
    }

    pub(crate) fn requests(&self) -> Vec<LoggedRequest> {
        lock(&self.log).iter().cloned().collect()
    }

    pub(crate) fn clear_requests(&self) {
        lock(&self.log).clear();
    }

    pub(crate) fn set_rate_limit(&self, config: RateLimitConfig) {
        lock(&self.limiter).reconfigure(config);
    }

    /// Drops every fault, restores the configured latencies and rate limits, and forgets
    /// the requests counted so far.
    pub(crate) fn reset_faults(&self) {
        *self.faults() = Faults::new(self.config.create_latency, self.config.action_latency);
        let mut limiter = lock(&self.limiter);
        limiter.reconfigure(self.config.rate_limit);
        limiter.clear();
    }

    /// [`Shared::reset_faults`], and also an empty account and an empty request log.
    pub(crate) fn reset_all(&self) {
        *lock(&self.store) = Store::new();
        self.reset_faults();
        self.clear_requests();
    }

    pub(crate) fn droplets(&self) -> Vec<DropletInfo> {
        self.store().droplets.values().map(|d| d.info()).collect()
    }

    pub(crate) fn snapshots(&self) -> Vec<SnapshotInfo> {
        self.store().snapshots.values().map(|s| s.info()).collect()
    }

    pub(crate) fn keys(&self) -> Vec<KeyInfo> {
        self.store().keys.values().map(|k| k.info()).collect()
    }

    pub(crate) fn firewalls(&self) -> Vec<FirewallInfo> {
        self.store().firewalls.iter().map(|f| f.info()).collect()
    }

    pub(crate) fn tags(&self) -> Vec<String> {
        self.store().tags.iter().map(|t| t.name.clone()).collect()
    }
}

/// Starts simulators.
#[derive(Debug)]
pub struct Simulator;

impl Simulator {
    /// Starts a simulator on 127.0.0.1 (port [`SimConfig::port`], 0 for any free one).
    ///
    /// It serves from a thread of its own with its own Tokio runtime, so it works the same
    /// from synchronous tests and from inside any async runtime. Dropping the returned
    /// handle stops it.
    ///
    /// # Panics
    ///
    /// If the port cannot be bound or the thread cannot start; use [`Simulator::try_start`]
    /// to handle that instead.
    pub fn start(config: SimConfig) -> SimHandle {
        Self::try_start(config).expect("the simulator needs a loopback port and a thread")
    }

    /// Like [`Simulator::start`], returning the error instead of panicking.
    ///
    /// # Errors
    ///
    /// If the port cannot be bound or the runtime or thread cannot be created.
    pub fn try_start(config: SimConfig) -> io::Result<SimHandle> {
        // Binding here, on the caller's thread, means the port is known (and errors are
        // reported) before `try_start` returns.
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, config.port))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(config, format!("http://{addr}")));
        let app = routes::router(Arc::clone(&shared));
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let thread =
            std::thread::Builder::new().name("do-simulator".to_owned()).spawn(move || {
                runtime.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(listener) => listener,
                        Err(error) => {
                            tracing::error!(%error, "do-simulator cannot use its socket");
                            return;
                        }
                    };
                    tokio::spawn(async move {
                        if let Err(error) = axum::serve(listener, app).await {
                            tracing::error!(%error, "do-simulator stopped serving");
                        }
                    });
                    // Either a stop request or a dropped sender ends the wait.
                    let _ = stopped.await;
                });
                // Dropping the runtime here cancels the server and every open connection.
            })?;
        tracing::debug!(%addr, "do-simulator listening");
        Ok(SimHandle { shared, addr, stop: Some(stop), thread: Some(thread) })
    }
}

/// A running simulator. Dropping it stops the server.
///
/// Every method takes effect at once for the requests that follow.
#[derive(Debug)]
pub struct SimHandle {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl SimHandle {
    /// `http://127.0.0.1:PORT`; API paths go under it (`{base_url}/v2/droplets`).
    pub fn base_url(&self) -> &str {
        &self.shared.base_url
    }

    /// The socket address served.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The bearer token the simulator accepts.
    pub fn token(&self) -> &str {
        &self.shared.token
    }

    /// How long Droplets created from now on stay `new`.
    pub fn set_create_latency(&self, latency: Duration) {
        self.shared.faults().create_latency = latency;
    }

    /// How long actions started from now on stay `in-progress`.
    pub fn set_action_latency(&self, latency: Duration) {
        self.shared.faults().action_latency = latency;
    }

    /// Delays every matching request by `delay` (added to other matching delays).
    pub fn add_latency(&self, matcher: RequestMatcher, delay: Duration) {
        self.shared.faults().add_latency(matcher, delay);
    }

    /// Answers the next `count` matching requests with 429 `too_many_requests`.
    pub fn rate_limit_next(&self, count: u32, matcher: RequestMatcher) {
        self.shared.faults().add_rate_limited(matcher, count);
    }

    /// Answers the next `count` matching requests with `status` (a 5xx) without carrying
    /// them out.
    ///
    /// # Panics
    ///
    /// If `status` is not in 500..=599.
    pub fn fail_next(&self, count: u32, status: u16, matcher: RequestMatcher) {
        assert!((500..=599).contains(&status), "fail_next takes a 5xx status, not {status}");
        self.shared.faults().add_failures(matcher, count, status);
    }

    /// Makes the next `count` successful `POST /v2/droplets` answer 500 although the
    /// Droplet was created: the trap that makes naive retries create duplicates.
    pub fn fail_creates_after_commit(&self, count: u32) {
        self.shared.faults().add_create_failures(count);
    }

    /// Makes the next action of `action_type` (`create`, `resize`, `snapshot`, ...) end
    /// `errored`, with no effect. Call it again to queue more.
    pub fn fail_next_action(&self, action_type: &str) {
        self.shared.faults().add_action_error(action_type);
    }

    /// Replaces the rate limits (requests already counted keep counting).
    pub fn set_rate_limit(&self, config: RateLimitConfig) {
        self.shared.set_rate_limit(config);
    }

    /// Removes every fault, restores the configured latencies and rate limits, and
    /// forgets the requests counted against the rate limit. Resources are kept.
    pub fn reset_faults(&self) {
        self.shared.reset_faults();
    }

    /// [`SimHandle::reset_faults`], and also empties the account and the request log.
    pub fn reset(&self) {
        self.shared.reset_all();
    }

    /// Every Droplet, by id.
    pub fn droplets(&self) -> Vec<DropletInfo> {
        self.shared.droplets()
    }

    /// Every Droplet snapshot, by id.
    pub fn snapshots(&self) -> Vec<SnapshotInfo> {
        self.shared.snapshots()
    }

    /// Every SSH key, by id.
    pub fn keys(&self) -> Vec<KeyInfo> {
        self.shared.keys()
    }

    /// Every firewall, in creation order.
    pub fn firewalls(&self) -> Vec<FirewallInfo> {
        self.shared.firewalls()
    }

    /// Every tag name, in creation order.
    pub fn tags(&self) -> Vec<String> {
        self.shared.tags()
    }

    /// The API requests answered so far, oldest first (admin requests are not logged).
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.shared.requests()
    }

    /// Empties the request log.
    pub fn clear_requests(&self) {
        self.shared.clear_requests();
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            // The thread only waits for the stop signal, so this returns promptly.
            let _ = thread.join();
        }
    }
}
