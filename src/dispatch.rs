//! `-j N`, N transfers at once: one thread (the dispatcher) starts them and
//! waits in a single poll(2) for the answers to requests it sent ahead on kept
//! connections, finishing on the spot each that arrived whole; everything that
//! may wait on the network (connecting, a long or slow body, a redirect, a
//! retry) goes to a lane, a thread that runs one transfer at a time.
//!
//! Why not a thread per transfer: a small file's answer then wakes a thread
//! asleep in `recv`, a context switch per file (and on loopback, a wake-up the
//! server pays for); the dispatcher finds several answers per wake-up and its
//! thread stays warm. BENCHMARKS.md, row 6.

use crate::transfer::Pending;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use std::collections::VecDeque;
use std::io::{PipeReader, PipeWriter, Read, Write};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::thread::Scope;
use std::time::Instant;

/// What the dispatcher asks of a batch: to start transfer `i`, to send its
/// first request ahead, and to run it to its end (each records the result).
pub trait Transfers<'a>: Sync {
    /// Starts transfer `i`; `None` when it ended already (recorded).
    fn open(&self, i: usize) -> Option<Pending<'a>>;
    /// Sends the first request of `pending` on a kept connection, if one can
    /// carry it; true if it went out.
    fn send_ahead(&self, pending: &mut Pending<'a>) -> bool;
    /// Runs `pending` to its end and records how it ended.
    fn finish(&self, i: usize, pending: Pending<'a>);
}

/// A transfer whose first request is out, waiting for its answer.
struct Waiting<'a> {
    i: usize,
    pending: Pending<'a>,
    sent_at: Instant,
    /// When its silence becomes a lane's business (the lane's read then fails
    /// with the timeout at once).
    due: Instant,
}

/// Runs transfers `0..count` of `transfers`, `parallel` at a time, in order of
/// their start.
pub fn run<'a, T: Transfers<'a>>(transfers: &T, count: usize, parallel: usize) {
    let next = AtomicUsize::new(0);
    let Ok(lanes) = Lanes::new() else {
        // No pipe (out of descriptors): lanes only, each runs its transfers
        // whole, one after the other.
        return lanes_only(transfers, &next, count, parallel);
    };
    std::thread::scope(|scope| {
        let mut dispatcher = Dispatcher {
            transfers,
            lanes: &lanes,
            scope,
            next: 0,
            count,
            parallel,
            running: 0,
            waiting: Vec::new(),
        };
        // Closed however the dispatcher ends (a panic too), so that idle
        // lanes end and the scope can.
        let _close = CloseOnDrop(&lanes);
        dispatcher.run();
    });
}

struct CloseOnDrop<'l, 'a>(&'l Lanes<'a>);

impl Drop for CloseOnDrop<'_, '_> {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// The dispatcher's state: what it started, what waits for an answer.
struct Dispatcher<'a, 's, 'e, T> {
    transfers: &'s T,
    lanes: &'s Lanes<'a>,
    scope: &'s Scope<'s, 'e>,
    next: usize,
    count: usize,
    parallel: usize,
    /// Transfers started and not ended (waiting here, or on a lane).
    running: usize,
    waiting: Vec<Waiting<'a>>,
}

impl<'a, T: Transfers<'a>> Dispatcher<'a, '_, '_, T> {
    fn run(&mut self) {
        loop {
            if self.lanes.failed.load(Ordering::Acquire) {
                // A lane panicked (a bug): end, so that the panic shows.
                return;
            }
            self.running -= self.lanes.take_done();
            self.start_more();
            if self.running == 0 {
                return;
            }
            let Some(ready) = wait(&self.waiting, self.lanes) else {
                // poll(2) failed for a reason other than a signal: the lanes
                // wait for the answers instead.
                for w in std::mem::take(&mut self.waiting) {
                    self.hand_over(w.i, w.pending);
                }
                continue;
            };
            let now = Instant::now();
            // In reverse, so that swap_remove moves only entries already seen.
            // The next requests go out together once these are done (sent one
            // by one, each would wake the server on its own: measured slower).
            for k in (0..ready.len()).rev() {
                if !ready[k] && now < self.waiting[k].due {
                    continue;
                }
                let mut w = self.waiting.swap_remove(k);
                if ready[k] && w.pending.read_whole_answer() {
                    self.transfers.finish(w.i, w.pending);
                    self.running -= 1;
                } else {
                    if !ready[k] {
                        w.pending
                            .count_silence(now.saturating_duration_since(w.sent_at));
                    }
                    self.hand_over(w.i, w.pending);
                }
            }
        }
    }

    /// Starts transfers while fewer than `parallel` run: each sends its first
    /// request ahead and waits here, or goes to a lane.
    fn start_more(&mut self) {
        while self.running < self.parallel && self.next < self.count {
            let i = self.next;
            self.next += 1;
            let Some(mut pending) = self.transfers.open(i) else {
                continue;
            };
            self.running += 1;
            if self.transfers.send_ahead(&mut pending) && pending.answer_fd().is_some() {
                let sent_at = Instant::now();
                let due = pending.answer_due(sent_at);
                self.waiting.push(Waiting {
                    i,
                    pending,
                    sent_at,
                    due,
                });
            } else {
                self.hand_over(i, pending);
            }
        }
    }

    /// Gives transfer `i` to a lane; runs it here when there is none and no
    /// thread can be started.
    fn hand_over(&mut self, i: usize, pending: Pending<'a>) {
        if let Some((i, pending)) = self.lanes.give(self.scope, self.transfers, i, pending) {
            self.transfers.finish(i, pending);
            self.running -= 1;
        }
    }
}

/// Waits until an answer has input, a lane has finished or the first answer is
/// due; which of `waiting` have input, or `None` when poll(2) fails.
fn wait(waiting: &[Waiting<'_>], lanes: &Lanes<'_>) -> Option<Vec<bool>> {
    let mut polled = Vec::with_capacity(waiting.len());
    let mut fds = Vec::with_capacity(waiting.len() + 1);
    for (k, w) in waiting.iter().enumerate() {
        if let Some(fd) = w.pending.answer_fd() {
            polled.push(k);
            fds.push(PollFd::new(fd, PollFlags::POLLIN));
        }
    }
    fds.push(PollFd::new(lanes.wake_reader.as_fd(), PollFlags::POLLIN));
    let timeout = match waiting.iter().map(|w| w.due).min() {
        Some(due) => {
            let left = due.saturating_duration_since(Instant::now());
            // Rounded up: a timeout of 0 ms before the due time would spin.
            let ms = left.as_nanos().div_ceil(1_000_000);
            PollTimeout::try_from(ms.min(i32::MAX as u128) as i32).unwrap_or(PollTimeout::MAX)
        }
        None => PollTimeout::NONE,
    };
    match poll(&mut fds, timeout) {
        Ok(_) => {}
        Err(nix::errno::Errno::EINTR) => return Some(vec![false; waiting.len()]),
        // Only lanes to wait for: a read of the pipe waits for them as well.
        Err(_) if waiting.is_empty() => {
            lanes.drain_wake();
            return Some(Vec::new());
        }
        Err(_) => return None,
    }
    let has_input = |fd: &PollFd<'_>| fd.revents().is_some_and(|r| !r.is_empty());
    let mut ready = vec![false; waiting.len()];
    for (fd, &k) in fds.iter().zip(&polled) {
        ready[k] = has_input(fd);
    }
    if fds.last().is_some_and(has_input) {
        lanes.drain_wake();
    }
    Some(ready)
}

/// Threads that run transfers whole, one at a time, started when there is work
/// and none is free: at most one per transfer running at once.
struct Lanes<'a> {
    queue: Mutex<Queue<'a>>,
    work_added: Condvar,
    /// Transfers the lanes finished since the dispatcher last looked.
    done: AtomicUsize,
    /// A lane panicked.
    failed: AtomicBool,
    /// A byte for each finished transfer wakes the dispatcher's poll. Fewer
    /// than two per transfer running wait there (-j is at most 256; a pipe
    /// holds 64 KiB), and the dispatcher reads them all.
    wake_reader: PipeReader,
    wake_writer: PipeWriter,
}

struct Queue<'a> {
    work: VecDeque<(usize, Pending<'a>)>,
    /// Lanes waiting for work.
    idle: usize,
    /// Lanes started.
    lanes: usize,
    closed: bool,
}

impl<'a> Lanes<'a> {
    fn new() -> std::io::Result<Lanes<'a>> {
        let (wake_reader, wake_writer) = std::io::pipe()?;
        Ok(Lanes {
            queue: Mutex::new(Queue {
                work: VecDeque::new(),
                idle: 0,
                lanes: 0,
                closed: false,
            }),
            work_added: Condvar::new(),
            done: AtomicUsize::new(0),
            failed: AtomicBool::new(false),
            wake_reader,
            wake_writer,
        })
    }

    fn queue(&self) -> MutexGuard<'_, Queue<'a>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands transfer `i` to a free lane, or to a new one. Gives it back when
    /// there is no lane and none can be started (out of threads).
    fn give<'s, T: Transfers<'a>>(
        &'s self,
        scope: &'s Scope<'s, '_>,
        transfers: &'s T,
        i: usize,
        pending: Pending<'a>,
    ) -> Option<(usize, Pending<'a>)> {
        let mut queue = self.queue();
        queue.work.push_back((i, pending));
        if queue.idle >= queue.work.len() {
            self.work_added.notify_one();
            return None;
        }
        drop(queue);
        let started =
            std::thread::Builder::new().spawn_scoped(scope, move || self.serve(transfers));
        let mut queue = self.queue();
        match started {
            Ok(_) => {
                queue.lanes += 1;
                None
            }
            // A lane there is takes it when it is free.
            Err(_) if queue.lanes > 0 => None,
            // Only this thread pushes work, and no lane takes it: it is last.
            Err(_) => queue.work.pop_back(),
        }
    }

    /// A lane: takes work until the queue is closed and empty.
    fn serve<T: Transfers<'a>>(&self, transfers: &T) {
        self.queue().idle += 1;
        loop {
            let (i, pending) = {
                let mut queue = self.queue();
                while queue.work.is_empty() && !queue.closed {
                    queue = self
                        .work_added
                        .wait(queue)
                        .unwrap_or_else(|e| e.into_inner());
                }
                queue.idle -= 1;
                match queue.work.pop_front() {
                    Some(work) => work,
                    None => return,
                }
            };
            // The dispatcher hears of the end of the transfer even if it
            // panics (it would wait for it forever), and then ends.
            let done = Done(self);
            transfers.finish(i, pending);
            // Idle before the dispatcher hears of it, so that the work it
            // gives next comes here instead of to a new lane.
            self.queue().idle += 1;
            drop(done);
        }
    }

    fn take_done(&self) -> usize {
        self.done.swap(0, Ordering::AcqRel)
    }

    /// Reads the wake-up bytes that are there (waits for one if none is).
    fn drain_wake(&self) {
        let mut bytes = [0u8; 512];
        let _ = (&self.wake_reader).read(&mut bytes);
    }

    /// No more work: idle lanes end, busy ones after their transfer.
    fn close(&self) {
        self.queue().closed = true;
        self.work_added.notify_all();
    }
}

/// Counts a lane's transfer as done and wakes the dispatcher, when dropped.
struct Done<'l, 'a>(&'l Lanes<'a>);

impl Drop for Done<'_, '_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.failed.store(true, Ordering::Release);
        }
        self.0.done.fetch_add(1, Ordering::AcqRel);
        // Never full (see `wake_reader`); a failed write leaves the count for
        // the next wake-up.
        let _ = (&self.0.wake_writer).write(&[1]);
    }
}

/// Without a dispatcher: `parallel` threads (this one among them; fewer if
/// no more can be started), each opening and finishing the next transfer until
/// none is left.
fn lanes_only<'a, T: Transfers<'a>>(
    transfers: &T,
    next: &AtomicUsize,
    count: usize,
    parallel: usize,
) {
    let work = || {
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= count {
                break;
            }
            if let Some(pending) = transfers.open(i) {
                transfers.finish(i, pending);
            }
        }
    };
    std::thread::scope(|scope| {
        for _ in 1..parallel {
            if std::thread::Builder::new()
                .spawn_scoped(scope, work)
                .is_err()
            {
                break;
            }
        }
        work();
    });
}
