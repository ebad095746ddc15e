//! Process-wide counters for `listkeeper status`: relaxed atomics, no locks, no timers.

use std::sync::atomic::{AtomicU64, Ordering};

/// A named counter.
pub struct Counter(AtomicU64);

impl Counter {
    const fn new() -> Counter {
        Counter(AtomicU64::new(0))
    }

    /// Add one.
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// Add `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// Subtract one (gauges).
    pub fn dec(&self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }

    /// The current value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// LMTP sessions open now.
pub static SESSIONS: Counter = Counter::new();
/// LMTP sessions since start.
pub static SESSIONS_TOTAL: Counter = Counter::new();
/// Posts distributed.
pub static POSTS_DISTRIBUTED: Counter = Counter::new();
/// Posts held for moderation.
pub static POSTS_HELD: Counter = Counter::new();
/// Posts rejected (550).
pub static POSTS_REJECTED: Counter = Counter::new();
/// Posts discarded.
pub static POSTS_DISCARDED: Counter = Counter::new();
/// Deliveries answered 4xx (the MTA retries).
pub static DEFERRED: Counter = Counter::new();
/// Copies the MTA accepted.
pub static COPIES: Counter = Counter::new();
/// Mails to membership addresses handled.
pub static REQUESTS: Counter = Counter::new();
/// Bounces processed.
pub static BOUNCES: Counter = Counter::new();
/// Times the store was reopened after an I/O error (a full disk, say).
pub static STORE_REOPENS: Counter = Counter::new();

/// `name value` lines for `listkeeper status`.
pub fn lines() -> Vec<String> {
    [
        ("sessions_open", SESSIONS.get()),
        ("sessions_total", SESSIONS_TOTAL.get()),
        ("posts_distributed", POSTS_DISTRIBUTED.get()),
        ("posts_held", POSTS_HELD.get()),
        ("posts_rejected", POSTS_REJECTED.get()),
        ("posts_discarded", POSTS_DISCARDED.get()),
        ("deliveries_deferred", DEFERRED.get()),
        ("copies_accepted", COPIES.get()),
        ("requests", REQUESTS.get()),
        ("bounces", BOUNCES.get()),
        ("store_reopens", STORE_REOPENS.get()),
    ]
    .iter()
    .map(|(n, v)| format!("{n} {v}"))
    .collect()
}

static STARTED: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

/// Note that the server has started (the first call counts).
pub fn started() {
    let _ = STARTED.set(std::time::Instant::now());
}

/// Time since the server started (zero before).
pub fn uptime() -> std::time::Duration {
    STARTED.get().map(|t| t.elapsed()).unwrap_or_default()
}
