//! Free loopback ports picked by the kernel.

use std::collections::HashSet;
use std::net::TcpListener;
use std::sync::Mutex;

static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// A loopback port that was free a moment ago and that this process never handed out before.
pub fn free_port() -> u16 {
    let mut seen = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    let seen = seen.get_or_insert_with(HashSet::new);
    loop {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = l.local_addr().expect("local addr").port();
        if seen.insert(port) {
            return port;
        }
    }
}

/// A loopback port outside the kernel's ephemeral range
/// (`/proc/sys/net/ipv4/ip_local_port_range`) that was free a moment ago and that this process
/// never handed out before: a member's port stays free while the member is down between a
/// kill and its restart, because no outgoing connection can be given it.
pub fn stable_port() -> u16 {
    let range =
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default();
    let mut it = range
        .split_whitespace()
        .filter_map(|p| p.parse::<u16>().ok());
    let span = match (it.next(), it.next()) {
        (Some(lo), _) if lo > 12_000 => 10_000..lo,
        (_, Some(hi)) if hi < 63_000 => hi + 1..65_535,
        _ => 10_000..30_000,
    };
    let mut seen = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    let seen = seen.get_or_insert_with(HashSet::new);
    let width = u32::from(span.end - span.start);
    // Start somewhere different in every process, to stay clear of parallel test binaries.
    let mut offset = std::process::id().wrapping_mul(7919) % width;
    for _ in 0..width {
        let port = span.start + u16::try_from(offset).expect("offset below the span");
        offset = (offset + 1) % width;
        if !seen.contains(&port) && TcpListener::bind(("127.0.0.1", port)).is_ok() {
            seen.insert(port);
            return port;
        }
    }
    panic!("no free loopback port in {span:?}");
}
