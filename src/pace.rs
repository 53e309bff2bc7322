//! Pacing of cloud calls: at most a set number per second across the process, so that a
//! long-running `watch` does not eat the API rate limit of an account other tools share. Off
//! unless [`limit`] is called; every attempt (retries too) waits its turn, in the transport
//! (`transport::Rest`, and the AWS SDK's HTTP client of `transport::aws`).

use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use tokio::time::Instant;

struct Pace {
    /// The time between two calls.
    interval: Duration,
    /// When the next call may start.
    next: Mutex<Instant>,
}

static PACE: OnceLock<Pace> = OnceLock::new();

/// Paces every cloud call from now on to at most `per_second`; the first setting holds.
pub fn limit(per_second: u32) {
    let _ = PACE.set(Pace {
        interval: Duration::from_secs(1) / per_second.max(1),
        next: Mutex::new(Instant::now()),
    });
}

/// Whether calls are paced.
pub fn limited() -> bool {
    PACE.get().is_some()
}

/// Waits for this call's turn; at once when calls are not paced.
pub async fn turn() {
    let Some(pace) = PACE.get() else {
        return;
    };
    let at = {
        let mut next = pace.next.lock().unwrap_or_else(|e| e.into_inner());
        let at = (*next).max(Instant::now());
        *next = at + pace.interval;
        at
    };
    tokio::time::sleep_until(at).await;
}

#[cfg(test)]
mod tests {
    #[tokio::test(start_paused = true)]
    async fn calls_are_spaced_by_the_interval() {
        super::limit(20);
        let start = tokio::time::Instant::now();
        for _ in 0..21 {
            super::turn().await;
        }
        // The first call goes at once, the next 20 one every 50 ms.
        assert_eq!(start.elapsed(), std::time::Duration::from_secs(1));
    }
}
