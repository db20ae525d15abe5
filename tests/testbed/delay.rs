//! A TCP proxy that delays every chunk of data by a fixed time in each
//! direction: a netem substitute (this kernel has no `sch_netem`).
//!
//! It listens on `127.0.0.1` (an ephemeral port) and forwards to a target that
//! must be loopback or an address inside a namespace the test bed created.
//! Pure Rust threads: per connection one reader and one writer per direction.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

type Conns = Arc<Mutex<HashMap<u64, (TcpStream, TcpStream)>>>;

/// A running delay proxy; stops (and closes all its connections) on drop.
pub struct DelayProxy {
    addr: SocketAddr,
    target: SocketAddr,
    one_way: Duration,
    stop: Arc<AtomicBool>,
    accepted: Arc<AtomicUsize>,
    conns: Conns,
    thread: Option<JoinHandle<()>>,
}

impl DelayProxy {
    /// Proxy `127.0.0.1:<ephemeral>` → `target`, adding `rtt / 2` each way.
    pub fn with_rtt(target: SocketAddr, rtt: Duration) -> io::Result<DelayProxy> {
        DelayProxy::start(target, rtt / 2)
    }

    /// Proxy `127.0.0.1:<ephemeral>` → `target`, adding `one_way` to every
    /// chunk in each direction (so a round trip gains `2 * one_way`).
    pub fn start(target: SocketAddr, one_way: Duration) -> io::Result<DelayProxy> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicUsize::new(0));
        let conns: Conns = Arc::default();
        let thread = {
            let (stop, accepted, conns) = (stop.clone(), accepted.clone(), conns.clone());
            thread::Builder::new()
                .name("delay-proxy-accept".into())
                .spawn(move || accept_loop(listener, target, one_way, stop, accepted, conns))?
        };
        Ok(DelayProxy {
            addr,
            target,
            one_way,
            stop,
            accepted,
            conns,
            thread: Some(thread),
        })
    }

    /// Where clients connect (`127.0.0.1:PORT`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn target(&self) -> SocketAddr {
        self.target
    }

    /// Delay added in each direction.
    pub fn one_way_delay(&self) -> Duration {
        self.one_way
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Connections currently open.
    pub fn open_connections(&self) -> usize {
        self.conns.lock().unwrap().len()
    }

    /// Cut every open connection (both sides see the stream end at once).
    /// Returns how many were cut. New connections are still accepted.
    pub fn drop_connections(&self) -> usize {
        let conns = self.conns.lock().unwrap();
        for (a, b) in conns.values() {
            let _ = a.shutdown(Shutdown::Both);
            let _ = b.shutdown(Shutdown::Both);
        }
        conns.len()
    }
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.drop_connections();
        // Wake the blocking accept().
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn accept_loop(
    listener: TcpListener,
    target: SocketAddr,
    one_way: Duration,
    stop: Arc<AtomicBool>,
    accepted: Arc<AtomicUsize>,
    conns: Conns,
) {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    for client in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = client else { continue };
        accepted.fetch_add(1, Ordering::SeqCst);
        let Ok(server) = TcpStream::connect_timeout(&target, Duration::from_secs(10)) else {
            let _ = client.shutdown(Shutdown::Both);
            continue;
        };
        let _ = client.set_nodelay(true);
        let _ = server.set_nodelay(true);
        let id = NEXT.fetch_add(1, Ordering::SeqCst);
        let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) else {
            continue;
        };
        conns.lock().unwrap().insert(id, (c2, s2));
        let done = Arc::new(AtomicUsize::new(0));
        for (src, dst) in [
            (client.try_clone(), server.try_clone()),
            (Ok(server), Ok(client)),
        ] {
            let (Ok(src), Ok(dst)) = (src, dst) else {
                continue;
            };
            let (conns, done) = (conns.clone(), done.clone());
            let _ = thread::Builder::new()
                .name("delay-proxy-pump".into())
                .spawn(move || {
                    pump(src, dst, one_way);
                    if done.fetch_add(1, Ordering::SeqCst) == 1 {
                        conns.lock().unwrap().remove(&id);
                    }
                });
        }
    }
}

/// Copy `src` → `dst`, delivering each chunk `delay` after it was read.
fn pump(mut src: TcpStream, mut dst: TcpStream, delay: Duration) {
    let (tx, rx) = mpsc::channel::<(Instant, Option<Vec<u8>>, bool)>();
    let reader = {
        let mut src = match src.try_clone() {
            Ok(s) => s,
            Err(_) => return,
        };
        thread::spawn(move || {
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match src.read(&mut buf) {
                    Ok(0) => {
                        let _ = tx.send((Instant::now() + delay, None, false));
                        return;
                    }
                    Ok(n) => {
                        if tx
                            .send((Instant::now() + delay, Some(buf[..n].to_vec()), false))
                            .is_err()
                        {
                            return;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => {
                        let _ = tx.send((Instant::now(), None, true));
                        return;
                    }
                }
            }
        })
    };
    for (due, data, error) in rx {
        let now = Instant::now();
        if due > now {
            thread::sleep(due - now);
        }
        match data {
            Some(d) => {
                if dst.write_all(&d).is_err() {
                    let _ = src.shutdown(Shutdown::Both);
                    let _ = dst.shutdown(Shutdown::Both);
                    break;
                }
            }
            None if error => {
                let _ = src.shutdown(Shutdown::Both);
                let _ = dst.shutdown(Shutdown::Both);
                break;
            }
            None => {
                let _ = dst.shutdown(Shutdown::Write);
                break;
            }
        }
    }
    let _ = src.flush();
    let _ = reader.join();
}
