//! Every command line on this machine while a test runs something: to show
//! that a secret never appears in any process's argv.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

pub struct ArgvWatch {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<BTreeSet<String>>>,
    thread: Option<JoinHandle<()>>,
}

impl ArgvWatch {
    /// Starts reading every `/proc/<pid>/cmdline`, over and over.
    pub fn start() -> ArgvWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(BTreeSet::new()));
        let (s, v) = (Arc::clone(&stop), Arc::clone(&seen));
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                let Ok(dir) = std::fs::read_dir("/proc") else {
                    return;
                };
                for e in dir.flatten() {
                    let name = e.file_name();
                    if !name.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
                        continue;
                    }
                    if let Ok(raw) = std::fs::read(e.path().join("cmdline")) {
                        if !raw.is_empty() {
                            let line = String::from_utf8_lossy(&raw).replace('\0', " ");
                            v.lock().unwrap().insert(line);
                        }
                    }
                }
            }
        });
        ArgvWatch {
            stop,
            seen,
            thread: Some(thread),
        }
    }

    /// Stops; every distinct command line seen.
    pub fn stop(mut self) -> BTreeSet<String> {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}
