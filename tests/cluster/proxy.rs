//! A TCP proxy in front of every member's peer listener, so a test can cut a member off.
//!
//! Each member advertises (in `--initial-advertise-peer-urls` and everyone's
//! `--initial-cluster`) the port of its proxy, which forwards to the member's real peer
//! listener. All peer traffic therefore crosses a proxy, and [`Net`] decides per link
//! (from member, to member) whether it may: a connection arriving at member `to`'s proxy is
//! attributed to the member process that opened it by looking its source port up in
//! `/proc/net/tcp` and the member processes' open sockets. Cutting a member closes every
//! live connection on its links and refuses new ones, in both directions; healing lets new
//! connections through again. The proxy knows nothing of the protocol, so it works for kvd
//! and etcd alike (and will for TLS peers).

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

/// One proxied connection: the two sockets and the link it belongs to.
struct Conn {
    id: u64,
    from: Option<usize>,
    to: usize,
    inbound: TcpStream,
    outbound: TcpStream,
}

impl Conn {
    fn close(&self) {
        let _ = self.inbound.shutdown(Shutdown::Both);
        let _ = self.outbound.shutdown(Shutdown::Both);
    }
}

#[derive(Default)]
struct State {
    /// Member index of each member process we started.
    pids: HashMap<u32, usize>,
    /// Links (from, to) that may not carry traffic.
    blocked: HashSet<(usize, usize)>,
    conns: Vec<Conn>,
    /// Number of members with a proxy.
    members: usize,
}

impl State {
    fn allowed(&self, from: Option<usize>, to: usize) -> bool {
        match from {
            Some(f) => !self.blocked.contains(&(f, to)),
            // A connection we cannot attribute only passes when nothing into `to` is cut.
            None => !self.blocked.iter().any(|&(_, t)| t == to),
        }
    }

    fn close_disallowed(&mut self) {
        let (keep, close): (Vec<Conn>, Vec<Conn>) = std::mem::take(&mut self.conns)
            .into_iter()
            .partition(|c| self.allowed(c.from, c.to));
        for c in &close {
            c.close();
        }
        self.conns = keep;
    }
}

struct Shared {
    state: Mutex<State>,
    stop: AtomicBool,
    next_id: AtomicU64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The proxies of one cluster and the switchboard of its links.
pub struct Net {
    shared: Arc<Shared>,
    listen_ports: Mutex<Vec<u16>>,
}

impl Default for Net {
    fn default() -> Self {
        Self::new()
    }
}

impl Net {
    /// A switchboard with no proxies yet.
    pub fn new() -> Net {
        Net {
            shared: Arc::new(Shared {
                state: Mutex::new(State::default()),
                stop: AtomicBool::new(false),
                next_id: AtomicU64::new(0),
            }),
            listen_ports: Mutex::new(Vec::new()),
        }
    }

    /// Starts the proxy for member `index` (indices are handed out in order) forwarding to
    /// `127.0.0.1:target_port`; returns the proxy's port, which the member advertises.
    pub fn add_proxy(&self, index: usize, target_port: u16) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy listener");
        let port = listener.local_addr().expect("proxy addr").port();
        {
            let mut st = self.shared.lock();
            assert_eq!(st.members, index, "proxies are added in member order");
            st.members += 1;
        }
        self.listen_ports
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(port);
        let shared = Arc::clone(&self.shared);
        thread::spawn(move || accept_loop(listener, port, index, target_port, shared));
        port
    }

    /// Records that member `index` now runs as process `pid`.
    pub fn register(&self, pid: u32, index: usize) {
        self.shared.lock().pids.insert(pid, index);
    }

    /// Forgets process `pid` (it exited).
    pub fn unregister(&self, pid: u32) {
        self.shared.lock().pids.remove(&pid);
    }

    /// Cuts every link of member `index`, both ways: live connections are closed, new ones
    /// refused.
    pub fn isolate(&self, index: usize) {
        let mut st = self.shared.lock();
        for other in 0..st.members {
            if other != index {
                st.blocked.insert((index, other));
                st.blocked.insert((other, index));
            }
        }
        st.close_disallowed();
    }

    /// Lets every link of member `index` carry traffic again.
    pub fn heal(&self, index: usize) {
        let mut st = self.shared.lock();
        st.blocked.retain(|&(f, t)| f != index && t != index);
    }

    /// Number of live proxied connections (for diagnostics).
    pub fn live_connections(&self) -> usize {
        self.shared.lock().conns.len()
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for port in self
            .listen_ports
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            // Wakes the accept loop so it sees the stop flag.
            let _ = TcpStream::connect_timeout(
                &SocketAddr::from(([127, 0, 0, 1], *port)),
                Duration::from_millis(200),
            );
        }
        let mut st = self.shared.lock();
        for c in st.conns.drain(..) {
            c.close();
        }
    }
}

fn accept_loop(listener: TcpListener, port: u16, to: usize, target_port: u16, shared: Arc<Shared>) {
    for inbound in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(inbound) = inbound else { continue };
        let shared = Arc::clone(&shared);
        thread::spawn(move || serve(inbound, port, to, target_port, shared));
    }
}

/// Attributes, admits or refuses one inbound connection, then pumps bytes both ways.
fn serve(inbound: TcpStream, port: u16, to: usize, target_port: u16, shared: Arc<Shared>) {
    let from = inbound
        .peer_addr()
        .ok()
        .and_then(|peer| identify(peer.port(), port, &shared));
    if !shared.lock().allowed(from, to) {
        let _ = inbound.shutdown(Shutdown::Both);
        return;
    }
    let target = SocketAddr::from(([127, 0, 0, 1], target_port));
    let Ok(outbound) = TcpStream::connect_timeout(&target, Duration::from_secs(1)) else {
        let _ = inbound.shutdown(Shutdown::Both);
        return;
    };
    let _ = outbound.set_nodelay(true);
    let _ = inbound.set_nodelay(true);
    let id = shared.next_id.fetch_add(1, Ordering::SeqCst);
    let (Ok(in2), Ok(out2), Ok(in3), Ok(out3)) = (
        inbound.try_clone(),
        outbound.try_clone(),
        inbound.try_clone(),
        outbound.try_clone(),
    ) else {
        return;
    };
    {
        // Admission and registration under one lock, so a cut cannot slip in between.
        let mut st = shared.lock();
        if !st.allowed(from, to) || shared.stop.load(Ordering::SeqCst) {
            let _ = inbound.shutdown(Shutdown::Both);
            let _ = outbound.shutdown(Shutdown::Both);
            return;
        }
        st.conns.push(Conn {
            id,
            from,
            to,
            inbound,
            outbound,
        });
    }
    let back = thread::spawn(move || pump(out2, in2));
    pump(in3, out3);
    let _ = back.join();
    shared.lock().conns.retain(|c| c.id != id);
}

/// Copies `from` to `to` until either side ends, then closes both.
fn pump(mut from: TcpStream, mut to: TcpStream) {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}

/// The member whose process owns the loopback socket `127.0.0.1:src_port` connected to
/// `127.0.0.1:dst_port`, if it is one of ours.
fn identify(src_port: u16, dst_port: u16, shared: &Shared) -> Option<usize> {
    for _ in 0..20 {
        if let Some(inode) = socket_inode(src_port, dst_port) {
            let pids: Vec<(u32, usize)> =
                shared.lock().pids.iter().map(|(p, i)| (*p, *i)).collect();
            let needle = format!("socket:[{inode}]");
            for (pid, index) in pids {
                let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
                    continue;
                };
                for fd in fds.flatten() {
                    if std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == needle.as_str())
                    {
                        return Some(index);
                    }
                }
            }
            return None;
        }
        thread::sleep(Duration::from_millis(5));
    }
    None
}

/// Inode of the IPv4 TCP socket with local address 127.0.0.1:`local` and remote address
/// 127.0.0.1:`remote`, from `/proc/net/tcp`.
fn socket_inode(local: u16, remote: u16) -> Option<u64> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let want_local = format!("0100007F:{local:04X}");
    let want_remote = format!("0100007F:{remote:04X}");
    table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() > 9 && f[1] == want_local && f[2] == want_remote {
            f[9].parse().ok()
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_a_connection_to_its_process() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let client = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        let (_server, peer) = listener.accept().expect("accept");
        assert_eq!(peer.port(), client.local_addr().expect("local").port());
        let shared = Shared {
            state: Mutex::new(State::default()),
            stop: AtomicBool::new(false),
            next_id: AtomicU64::new(0),
        };
        shared.lock().pids.insert(std::process::id(), 7);
        assert_eq!(identify(peer.port(), port, &shared), Some(7));
    }
}
