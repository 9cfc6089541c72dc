//! A TCP proxy in front of every member's peer listener, so a test can break the links
//! between members.
//!
//! Each member advertises (in `--initial-advertise-peer-urls` and everyone's
//! `--initial-cluster`) the port of its proxy, which forwards to the member's real peer
//! listener. All peer traffic therefore crosses a proxy, and [`Net`] decides per link
//! (from member, to member) what happens to it: a connection arriving at member `to`'s proxy
//! is attributed to the member process that opened it by looking its source port up in
//! `/proc/net/tcp` and the member processes' open sockets. The faults, per direction of a
//! link:
//! - cut ([`Net::isolate`]): every live connection on the member's links is closed and new
//!   ones are refused, both ways;
//! - blackhole ([`Net::blackhole`]): connections stay open but nothing crosses: bytes are
//!   held at the proxy (the sender's buffers fill up, as when packets vanish and TCP keeps
//!   retransmitting) and flow again once healed;
//! - delay ([`Net::delay`]): every chunk is forwarded `delay` (plus up to `jitter`) after it
//!   arrived, in order;
//! - drop ([`Net::drop_messages`]): each chunk is lost with probability `p`, and with it the
//!   connection (a byte stream with a hole in it is useless: TLS and HTTP/2 cannot resume
//!   it), so the sender must reconnect and resend.
//!
//! Healing ([`Net::heal`]) clears every fault of a member. The proxy knows nothing of the
//! protocol, so it works for kvd and etcd alike, with or without TLS.

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use rand::Rng;

/// How often a held (blackholed) chunk checks whether its link healed.
const HOLD_POLL: Duration = Duration::from_millis(10);

/// One proxied connection: the two sockets and the link it belongs to.
struct Conn {
    id: u64,
    from: Option<usize>,
    to: usize,
    inbound: TcpStream,
    outbound: TcpStream,
    closed: Arc<AtomicBool>,
}

impl Conn {
    fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
        let _ = self.inbound.shutdown(Shutdown::Both);
        let _ = self.outbound.shutdown(Shutdown::Both);
    }
}

/// The faults of one direction of one link.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Rule {
    /// Hold every byte until healed.
    pub blackhole: bool,
    /// Forward each chunk this long after it arrived.
    pub delay: Duration,
    /// Plus a random extra delay up to this.
    pub jitter: Duration,
    /// Probability that a chunk is lost (and its connection with it).
    pub drop: f64,
}

impl Rule {
    /// The worse of two rules (for connections that could not be attributed).
    fn worst(self, other: Rule) -> Rule {
        Rule {
            blackhole: self.blackhole || other.blackhole,
            delay: self.delay.max(other.delay),
            jitter: self.jitter.max(other.jitter),
            drop: self.drop.max(other.drop),
        }
    }
}

#[derive(Default)]
struct State {
    /// Member index of each member process we started.
    pids: HashMap<u32, usize>,
    /// Links (from, to) that are cut.
    blocked: HashSet<(usize, usize)>,
    /// Faults of the links (from, to) that are not cut.
    rules: HashMap<(usize, usize), Rule>,
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

    /// The rule for bytes flowing `from` -> `to` (an unknown end takes the worst rule of
    /// the links it could be).
    fn rule(&self, from: Option<usize>, to: Option<usize>) -> Rule {
        match (from, to) {
            (Some(f), Some(t)) => self.rules.get(&(f, t)).copied().unwrap_or_default(),
            (f, t) => self
                .rules
                .iter()
                .filter(|((rf, rt), _)| f.is_none_or(|f| f == *rf) && t.is_none_or(|t| t == *rt))
                .fold(Rule::default(), |acc, (_, r)| acc.worst(*r)),
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

    /// Applies `f` to the rules of every link of member `index` in the chosen directions.
    fn edit(&mut self, index: usize, outgoing: bool, incoming: bool, f: impl Fn(&mut Rule)) {
        for other in 0..self.members {
            if other == index {
                continue;
            }
            if outgoing {
                f(self.rules.entry((index, other)).or_default());
            }
            if incoming {
                f(self.rules.entry((other, index)).or_default());
            }
        }
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

    /// Blackholes every link of member `index` in both directions: connections stay open,
    /// nothing crosses until healed.
    pub fn blackhole(&self, index: usize) {
        self.shared
            .lock()
            .edit(index, true, true, |r| r.blackhole = true);
    }

    /// Blackholes only what member `index` sends: it still hears the others.
    pub fn blackhole_outgoing(&self, index: usize) {
        self.shared
            .lock()
            .edit(index, true, false, |r| r.blackhole = true);
    }

    /// Delays everything member `index` sends and receives by `delay` plus up to `jitter`.
    pub fn delay(&self, index: usize, delay: Duration, jitter: Duration) {
        self.shared.lock().edit(index, true, true, |r| {
            r.delay = delay;
            r.jitter = jitter;
        });
    }

    /// Loses each chunk member `index` sends or receives with probability `p` (and the
    /// connection that carried it).
    pub fn drop_messages(&self, index: usize, p: f64) {
        self.shared.lock().edit(index, true, true, |r| r.drop = p);
    }

    /// Clears every fault of member `index`: its links carry traffic again.
    pub fn heal(&self, index: usize) {
        let mut st = self.shared.lock();
        st.blocked.retain(|&(f, t)| f != index && t != index);
        st.rules.retain(|&(f, t), _| f != index && t != index);
    }

    /// Clears every fault of every member.
    pub fn heal_all(&self) {
        let mut st = self.shared.lock();
        st.blocked.clear();
        st.rules.clear();
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

/// Attributes, admits or refuses one inbound connection, then forwards bytes both ways.
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
    let closed = Arc::new(AtomicBool::new(false));
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
            closed: Arc::clone(&closed),
        });
    }
    let back = {
        let shared = Arc::clone(&shared);
        let closed = Arc::clone(&closed);
        thread::spawn(move || pump(out2, in2, Some(to), from, &shared, &closed))
    };
    pump(in3, out3, from, Some(to), &shared, &closed);
    let _ = back.join();
    shared.lock().conns.retain(|c| c.id != id);
}

/// Forwards `src` to `dst` (bytes flowing from member `from` to member `to`) under the
/// link's rule until either side ends, then closes both. A reader thread holds, drops or
/// stamps each chunk; a writer thread sends it when it is due, so a delay adds latency
/// without limiting throughput.
fn pump(
    mut src: TcpStream,
    dst: TcpStream,
    from: Option<usize>,
    to: Option<usize>,
    shared: &Shared,
    closed: &AtomicBool,
) {
    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>)>();
    let Ok(mut out) = dst.try_clone() else {
        return;
    };
    let writer = thread::spawn(move || {
        for (due, chunk) in rx {
            let now = Instant::now();
            if due > now {
                thread::sleep(due - now);
            }
            if out.write_all(&chunk).is_err() {
                break;
            }
        }
        let _ = out.shutdown(Shutdown::Both);
    });
    let mut buf = [0u8; 16 * 1024];
    let mut last_due = Instant::now();
    // true when the connection is lost (dropped chunk, cut, stop) rather than ended
    let mut lost = false;
    'read: loop {
        let n = match src.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let rule = loop {
            if closed.load(Ordering::SeqCst) || shared.stop.load(Ordering::SeqCst) {
                lost = true;
                break 'read;
            }
            let rule = shared.lock().rule(from, to);
            if !rule.blackhole {
                break rule;
            }
            thread::sleep(HOLD_POLL);
        };
        let mut rng = rand::thread_rng();
        if rule.drop > 0.0 && rng.gen_bool(rule.drop.min(1.0)) {
            lost = true;
            break;
        }
        let extra = if rule.jitter.is_zero() {
            Duration::ZERO
        } else {
            rule.jitter.mul_f64(rng.gen_range(0.0..1.0))
        };
        // in order: a chunk is never due before the one ahead of it
        let due = (Instant::now() + rule.delay + extra).max(last_due);
        last_due = due;
        if tx.send((due, buf[..n].to_vec())).is_err() {
            break;
        }
    }
    drop(tx);
    if lost {
        closed.store(true, Ordering::SeqCst);
        let _ = dst.shutdown(Shutdown::Both);
    }
    // the writer forwards what is still due (unless the connection is lost), then closes
    let _ = writer.join();
    let _ = src.shutdown(Shutdown::Both);
    closed.store(true, Ordering::SeqCst);
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
