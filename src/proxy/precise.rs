//! Sleeps that end within tens of microseconds of their instant, without spinning.
//!
//! tokio's timer wheel ticks in whole milliseconds and rounds up, so a piece due at 50.2 ms
//! would leave at 51 ms. Release instants are exact (delays count from arrival), so only the
//! last stretch needs precision: a [`Sleep`] uses tokio's timer until [`HORIZON`] before its
//! instant, then one shared thread that parks until the earliest registered instant (a futex
//! wait whose timer slack it sets to 1 ns) and wakes the tasks that are due. Nothing
//! busy-waits, and the thread sleeps whenever no release is near.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, OnceLock};
use std::task::{Context, Poll, Waker};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

/// How long before its instant a sleep hands over from tokio's timer to the precise thread.
pub const HORIZON: Duration = Duration::from_millis(2);

struct Entry {
    at: Instant,
    seq: u64,
    waker: Waker,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// Registered instants, earliest first, and a sequence number that keeps equal instants apart.
static QUEUE: Mutex<(BinaryHeap<Reverse<Entry>>, u64)> = Mutex::new((BinaryHeap::new(), 0));

/// The timer thread, started on first use.
fn timer_thread() -> &'static Thread {
    static THREAD: OnceLock<Thread> = OnceLock::new();
    THREAD.get_or_init(|| {
        thread::Builder::new()
            .name("faultline-timer".into())
            .spawn(run)
            .expect("spawn the timer thread")
            .thread()
            .clone()
    })
}

/// The timer thread: wakes what is due, then parks until the next instant or a new, earlier
/// registration.
fn run() {
    precise_timer_slack();
    let mut due = Vec::new();
    loop {
        let next = {
            let mut queue = QUEUE.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            while queue.0.peek().is_some_and(|e| e.0.at <= now) {
                due.push(queue.0.pop().expect("peeked").0.waker);
            }
            queue.0.peek().map(|e| e.0.at - now)
        };
        for waker in due.drain(..) {
            waker.wake();
        }
        match next {
            Some(wait) => thread::park_timeout(wait),
            None => thread::park(),
        }
    }
}

/// Asks the kernel to end this thread's timed waits at their instant. By default Linux may
/// end them up to 50 µs late (the timer slack, so it can batch wake-ups), which alone would
/// take half of the 0.5 ms a latency's p99 may add. Only this thread asks: it wakes once per
/// due instant, never in a loop.
fn precise_timer_slack() {
    #[cfg(target_os = "linux")]
    if let Err(error) = rustix::thread::set_current_timer_slack(std::num::NonZeroU64::new(1)) {
        tracing::debug!(%error, "could not set the timer thread's slack; releases may be 50 µs late");
    }
}

fn register(at: Instant, waker: &Waker) {
    let earliest = {
        let mut queue = QUEUE.lock().unwrap_or_else(|e| e.into_inner());
        let seq = queue.1;
        queue.1 += 1;
        queue.0.push(Reverse(Entry {
            at,
            seq,
            waker: waker.clone(),
        }));
        queue.0.peek().is_some_and(|e| e.0.seq == seq)
    };
    if earliest {
        timer_thread().unpark();
    }
}

/// A resettable sleep until an instant, precise to the kernel's timer slack.
pub struct Sleep {
    at: Instant,
    coarse: Pin<Box<tokio::time::Sleep>>,
    /// The instant handed to the precise thread, so each instant is registered once.
    registered: Option<Instant>,
}

impl Sleep {
    pub fn new(at: Instant) -> Self {
        Sleep {
            at,
            coarse: Box::pin(tokio::time::sleep_until(coarse_deadline(at).into())),
            registered: None,
        }
    }

    pub fn reset(&mut self, at: Instant) {
        if at != self.at {
            self.at = at;
            self.coarse.as_mut().reset(coarse_deadline(at).into());
        }
    }
}

fn coarse_deadline(at: Instant) -> Instant {
    at.checked_sub(HORIZON).unwrap_or(at)
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let now = Instant::now();
        if now >= self.at {
            return Poll::Ready(());
        }
        if self.at - now > HORIZON {
            // Far off: tokio's timer brings us within the horizon.
            if self.coarse.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
        if self.registered != Some(self.at) {
            self.registered = Some(self.at);
            register(self.at, cx.waker());
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sleep never ends before its instant, whether it starts far off or within the horizon.
    #[tokio::test]
    async fn ends_at_its_instant_not_before() {
        let mut late = Vec::new();
        for i in 0..20u64 {
            let at = Instant::now() + Duration::from_micros(3_000 + 137 * i);
            Sleep::new(at).await;
            let now = Instant::now();
            assert!(now >= at, "woke {:?} early", at - now);
            late.push(now - at);
        }
        // How late is measured by the benchmark; here only a bound no loaded machine misses.
        late.sort();
        assert!(
            late[10] < Duration::from_millis(50),
            "median lateness {:?}",
            late[10]
        );
    }

    /// A reset moves the instant; the old one does not end the sleep.
    #[tokio::test]
    async fn reset_moves_the_instant() {
        let start = Instant::now();
        let mut sleep = Sleep::new(start + Duration::from_millis(1));
        sleep.reset(start + Duration::from_millis(20));
        let mut sleep = std::pin::pin!(sleep);
        sleep.as_mut().await;
        assert!(start.elapsed() >= Duration::from_millis(20));
    }

    /// CPU time a thread has used, from `/proc/<stat>` (utime + stime, in the kernel's
    /// USER_HZ ticks of 10 ms).
    #[cfg(target_os = "linux")]
    fn cpu_of(stat: &str) -> Duration {
        let text = std::fs::read_to_string(stat).expect("a /proc stat file");
        // The fields after the command name, which is in parentheses.
        let fields: Vec<&str> = text[text.rfind(')').unwrap() + 2..].split(' ').collect();
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        Duration::from_millis(ticks * 10)
    }

    /// The timer thread's stat file, once a sleep within the horizon has started it.
    #[cfg(target_os = "linux")]
    async fn timer_thread_stat() -> String {
        for _ in 0..1000 {
            Sleep::new(Instant::now() + Duration::from_micros(500)).await;
            let found = std::fs::read_dir("/proc/self/task")
                .unwrap()
                .filter_map(Result::ok)
                .map(|task| task.path())
                .find(|task| {
                    std::fs::read_to_string(task.join("comm"))
                        .is_ok_and(|c| c.trim() == "faultline-timer")
                });
            if let Some(task) = found {
                return task.join("stat").display().to_string();
            }
        }
        panic!("no timer thread after 1,000 sleeps within the horizon")
    }

    /// Hundreds of releases, each within the horizon, cost the timer thread and the waiting
    /// task almost no CPU: they park until the instant instead of spinning through its last
    /// stretch (a spin would burn about the horizon, 2 ms, per release: most of the wall time).
    #[cfg(target_os = "linux")]
    #[tokio::test(flavor = "current_thread")]
    async fn waiting_for_releases_burns_no_cpu() {
        let timer = timer_thread_stat().await;
        let (timer_before, task_before) = (cpu_of(&timer), cpu_of("/proc/thread-self/stat"));
        let start = Instant::now();
        for _ in 0..300 {
            Sleep::new(Instant::now() + Duration::from_micros(1_500)).await;
        }
        let wall = start.elapsed();
        let cpu =
            (cpu_of(&timer) - timer_before) + (cpu_of("/proc/thread-self/stat") - task_before);
        assert!(
            wall >= Duration::from_millis(450),
            "the sleeps did not wait: {wall:?}"
        );
        assert!(cpu < wall / 10, "{cpu:?} of CPU over {wall:?} of waiting");
    }
}
