//! Waiting for a condition with a deadline, instead of sleeping a fixed time after a signal:
//! on a loaded machine any fixed sleep is sometimes too short, and on an idle one it is
//! always too long.

use std::time::{Duration, Instant};

/// Calls `f` every 20 ms until it returns `Some`, and returns that value. Panics, naming
/// `what` (the condition waited for), if `deadline` passes first.
pub fn until<T>(what: &str, deadline: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let give_up = Instant::now() + deadline;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < give_up,
            "timed out after {deadline:?} waiting until {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
