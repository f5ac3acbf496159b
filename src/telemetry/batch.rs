//! The log's writer. Request threads append each formatted line to one shared buffer
//! (a lock held for a copy: no allocation, no system call, no thread woken per line);
//! one writer thread writes the buffer out with one `write` when it holds
//! [`FLUSH_AT`] bytes or [`FLUSH_EVERY`] after the previous write, whichever comes
//! first. An idle server's line goes out at once; under load one system call carries
//! hundreds of lines and the writer thread wakes once or twice a batch, not once
//! per line (which is what made the audit log cost a tenth of the token rate on one core:
//! bench/README.md, "The audit log in batches"). While the output is blocked the
//! buffer grows to [`CAP`] bytes, then new lines are dropped and counted
//! ([`LogBatch::dropped_lines`]). Dropping the [`FlushOnDrop`] guard writes what is
//! left: a clean shutdown loses no line.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A buffer this full is written out without waiting for [`FLUSH_EVERY`].
const FLUSH_AT: usize = 64 * 1024;
/// The longest a line waits in the buffer while the server is busy.
const FLUSH_EVERY: Duration = Duration::from_millis(100);
/// The most the buffer holds while the output is blocked (about a second of the
/// token endpoint at full speed); lines beyond it are dropped and counted.
const CAP: usize = 32 * 1024 * 1024;

/// The lines waiting, whether the writer waits for the first of them, and whether it
/// should finish.
#[derive(Default)]
struct Pending {
    lines: Vec<u8>,
    idle: bool,
    closing: bool,
}

/// Whether appending a line, which took the buffer from `before` to `after` bytes,
/// wakes the writer: when it waits for a first line (`idle`), or the buffer just
/// filled. A writer busy writing, or waiting out [`FLUSH_EVERY`], takes the line with
/// its next batch: notifying it then was a system call a batch for nothing.
fn wakes_writer(idle: bool, before: usize, after: usize) -> bool {
    (idle && before == 0) || (before < FLUSH_AT && after >= FLUSH_AT)
}

#[derive(Default)]
struct Shared {
    pending: Mutex<Pending>,
    wake: Condvar,
    dropped: AtomicUsize,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends one formatted event; wakes the writer as [`wakes_writer`] says.
    fn append(&self, line: &[u8]) {
        let mut pending = self.lock();
        let before = pending.lines.len();
        if before + line.len() > CAP {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        pending.lines.extend_from_slice(line);
        if wakes_writer(pending.idle, before, pending.lines.len()) {
            pending.idle = false;
            self.wake.notify_one();
        }
    }

    /// Waits until the buffer is due to be written: full, [`FLUSH_EVERY`] after
    /// `last_write` with something in it, or closing. Takes what it holds into `out`
    /// (the buffers swap, so neither is reallocated); whether the writer should stop.
    fn take(&self, last_write: Instant, out: &mut Vec<u8>) -> bool {
        let mut pending = self.lock();
        while !pending.closing && pending.lines.len() < FLUSH_AT {
            if pending.lines.is_empty() {
                pending.idle = true;
                pending = self.wake.wait(pending).unwrap_or_else(|e| e.into_inner());
                pending.idle = false;
                continue;
            }
            let Some(left) = (last_write + FLUSH_EVERY).checked_duration_since(Instant::now())
            else {
                break;
            };
            pending = (self.wake.wait_timeout(pending, left))
                .map_or_else(|e| e.into_inner().0, |(p, _)| p);
        }
        std::mem::swap(&mut pending.lines, out);
        pending.closing
    }
}

/// The log's writer (a `tracing_subscriber` `MakeWriter`): see the module's text.
#[derive(Clone)]
pub struct LogBatch {
    shared: Arc<Shared>,
}

/// Writes what is left and stops the writer thread when dropped.
pub struct FlushOnDrop {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl LogBatch {
    /// Starts the writer thread, writing batches to `out`.
    pub fn spawn<W: Write + Send + 'static>(out: W) -> std::io::Result<(Self, FlushOnDrop)> {
        let shared = Arc::new(Shared::default());
        let theirs = shared.clone();
        let thread = std::thread::Builder::new()
            .name("gatehouse-log".into())
            .spawn(move || write_batches(&theirs, out))?;
        let guard = FlushOnDrop {
            shared: shared.clone(),
            thread: Some(thread),
        };
        Ok((Self { shared }, guard))
    }

    /// How many lines were dropped so far because the buffer was full.
    pub fn dropped_lines(&self) -> usize {
        self.shared.dropped.load(Ordering::Relaxed)
    }
}

/// The writer thread: one `write_all` per batch, until closed and drained.
fn write_batches<W: Write>(shared: &Shared, mut out: W) {
    let mut batch = Vec::with_capacity(FLUSH_AT);
    // Long enough ago that the first line after a quiet spell goes out at once.
    let mut last_write = Instant::now()
        .checked_sub(FLUSH_EVERY)
        .unwrap_or_else(Instant::now);
    loop {
        let closing = shared.take(last_write, &mut batch);
        if !batch.is_empty() {
            // A failing stderr has nowhere to report itself; the lines are lost.
            let _ = out.write_all(&batch).and_then(|()| out.flush());
            batch.clear();
            if batch.capacity() > 4 * FLUSH_AT {
                batch.shrink_to(FLUSH_AT);
            }
            last_write = Instant::now();
        }
        if closing {
            let rest = std::mem::take(&mut shared.lock().lines);
            let _ = out.write_all(&rest).and_then(|()| out.flush());
            return;
        }
    }
}

impl Drop for FlushOnDrop {
    fn drop(&mut self) {
        self.shared.lock().closing = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBatch {
    type Writer = LineSink<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        LineSink {
            shared: &self.shared,
        }
    }
}

/// What the formatter writes one event into: the shared buffer.
pub struct LineSink<'a> {
    shared: &'a Shared,
}

impl Write for LineSink<'_> {
    /// The formatter hands over one whole event per call.
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.shared.append(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::telemetry::batch::*;

    /// A `Write` whose every call is recorded, shared with the test.
    #[derive(Clone, Default)]
    struct Recorder(Arc<Mutex<Vec<Vec<u8>>>>);

    impl Write for Recorder {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("recorder").push(buf.to_vec());
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_line_is_written_in_order_in_few_writes_and_the_guard_drains_them() {
        let recorder = Recorder::default();
        let (batch, guard) = LogBatch::spawn(recorder.clone()).expect("spawn");
        let lines: Vec<String> = (0..20_000).map(|i| format!("line {i:05}\n")).collect();
        for line in &lines {
            batch.shared.append(line.as_bytes());
        }
        drop(guard);
        let writes = recorder.0.lock().expect("recorder");
        assert_eq!(
            writes.concat(),
            lines.concat().into_bytes(),
            "all, in order"
        );
        assert!(
            writes.len() < lines.len() / 50,
            "{} writes for {} lines",
            writes.len(),
            lines.len()
        );
        assert_eq!(batch.dropped_lines(), 0);
    }

    #[test]
    fn the_writer_is_woken_for_a_first_line_only_while_idle_and_when_the_buffer_fills() {
        assert!(wakes_writer(true, 0, 80), "idle, first line");
        assert!(
            !wakes_writer(false, 0, 80),
            "busy writing: the next batch takes it"
        );
        assert!(!wakes_writer(true, 80, 160), "already woken by the first");
        assert!(
            wakes_writer(false, FLUSH_AT - 10, FLUSH_AT + 70),
            "just filled"
        );
        assert!(
            !wakes_writer(false, FLUSH_AT + 70, FLUSH_AT + 150),
            "woken already"
        );
    }

    #[test]
    fn a_line_appended_while_the_writer_writes_goes_out_in_the_next_batch() {
        // The first write blocks until the test has appended a second line, which
        // then finds the buffer empty and the writer not idle: it must still go out.
        let (entered_tx, entered_rx) = std::sync::mpsc::channel();
        let (release_tx, release_rx) = std::sync::mpsc::channel();
        let (written_tx, written_rx) = std::sync::mpsc::channel();
        let recorder = Recorder::default();
        let gate = Gated {
            inner: recorder.clone(),
            entered: Some(entered_tx),
            release: release_rx,
            written: written_tx,
        };
        let (batch, guard) = LogBatch::spawn(gate).expect("spawn");
        batch.shared.append(b"first\n");
        entered_rx.recv().expect("the first write began");
        batch.shared.append(b"second\n");
        release_tx.send(()).expect("release");
        while recorder.0.lock().expect("recorder").concat() != b"first\nsecond\n" {
            written_rx
                .recv_timeout(Duration::from_secs(10))
                .expect("the second line was not written");
        }
        drop(guard);
    }

    /// A `Write` whose first call waits for the test's go-ahead, and which tells the
    /// test of every write.
    struct Gated {
        inner: Recorder,
        entered: Option<std::sync::mpsc::Sender<()>>,
        release: std::sync::mpsc::Receiver<()>,
        written: std::sync::mpsc::Sender<()>,
    }

    impl Write for Gated {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if let Some(entered) = self.entered.take() {
                let _ = entered.send(());
                let _ = self.release.recv();
            }
            let n = self.inner.write(buf)?;
            let _ = self.written.send(());
            Ok(n)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_full_buffer_drops_and_counts_new_lines() {
        let shared = Shared::default();
        let mib = vec![b'x'; 1024 * 1024];
        for _ in 0..CAP / mib.len() - 1 {
            shared.append(&mib);
        }
        assert_eq!(shared.dropped.load(Ordering::Relaxed), 0);
        shared.append(&[mib.as_slice(), mib.as_slice()].concat());
        assert_eq!(shared.dropped.load(Ordering::Relaxed), 1, "past the cap");
        shared.append(b"short\n");
        assert_eq!(
            shared.dropped.load(Ordering::Relaxed),
            1,
            "a line that fits"
        );
        assert_eq!(shared.lock().lines.len(), CAP - mib.len() + 6);
    }
}
