//! The one source of time. Everything that expires (codes, sessions, refresh tokens,
//! pending logins, failure windows, access-token `exp`) reads it, so a test can move
//! time forward instead of sleeping. In production it is the system clock; `advance`
//! adds an offset that only tests use.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A cheap, clonable handle on the server's clock. Clones share one offset.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    /// Milliseconds added to the system time by `advance`.
    offset_ms: Arc<AtomicU64>,
}

impl Clock {
    /// The system clock, not advanced.
    pub fn system() -> Self {
        Self::default()
    }

    /// Milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> u64 {
        let system = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        system.saturating_add(self.offset_ms.load(Ordering::Relaxed))
    }

    /// Seconds since the Unix epoch: the unit of JWT times and stored timestamps.
    pub fn now(&self) -> u64 {
        self.now_ms() / 1000
    }

    /// The current time as a `SystemTime`.
    pub(crate) fn system_time(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.now_ms())
    }

    /// Moves this clock (and every clone of it) forward by `by`. For tests: time never
    /// goes back, so nothing that expired comes alive again.
    pub fn advance(&self, by: Duration) {
        let ms = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.offset_ms.fetch_add(ms, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advancing_moves_every_clone() {
        let clock = Clock::system();
        let other = clock.clone();
        let before = other.now();
        clock.advance(Duration::from_secs(3600));
        assert!(other.now() >= before + 3600);
    }
}
