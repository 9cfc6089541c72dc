//! The HTTP/2 SETTINGS the client listener announces. `server/h2compat.rs` rewrites header
//! blocks of etcdctl's `--cluster` requests on their way to hyper and relies on two settings
//! staying at HTTP/2's defaults: SETTINGS_MAX_FRAME_SIZE (16 384) and
//! SETTINGS_HEADER_TABLE_SIZE (4 096). A hyper upgrade that changed either would break that
//! rewrite silently; this test fails instead.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::Member;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const SETTINGS: u8 = 0x4;
const HEADER_TABLE_SIZE: u16 = 0x1;
const MAX_FRAME_SIZE: u16 = 0x5;

/// Reads one frame: (type, flags, payload).
async fn read_frame(s: &mut TcpStream) -> (u8, u8, Vec<u8>) {
    let mut head = [0u8; 9];
    s.read_exact(&mut head).await.expect("frame header");
    let len = (usize::from(head[0]) << 16) | (usize::from(head[1]) << 8) | usize::from(head[2]);
    let mut payload = vec![0u8; len];
    s.read_exact(&mut payload).await.expect("frame payload");
    (head[3], head[4], payload)
}

#[tokio::test]
async fn client_listener_keeps_the_settings_the_authority_rewrite_relies_on() {
    let m = Member::start().await;
    let mut s = TcpStream::connect(m.addr).await.expect("connect");
    s.write_all(PREFACE).await.expect("preface");
    // An empty SETTINGS frame of our own.
    s.write_all(&[0, 0, 0, SETTINGS, 0, 0, 0, 0, 0])
        .await
        .expect("settings");
    let (kind, flags, payload) = tokio::time::timeout(Duration::from_secs(10), read_frame(&mut s))
        .await
        .expect("the server's first frame in time");
    assert_eq!(kind, SETTINGS, "the server's first frame is SETTINGS");
    assert_eq!(flags & 0x1, 0, "not an ACK");
    assert_eq!(payload.len() % 6, 0, "whole settings");
    let mut announced = Vec::new();
    for setting in payload.chunks(6) {
        let id = u16::from_be_bytes([setting[0], setting[1]]);
        let value = u32::from_be_bytes([setting[2], setting[3], setting[4], setting[5]]);
        announced.push((id, value));
        match id {
            HEADER_TABLE_SIZE => assert_eq!(value, 4096, "HEADER_TABLE_SIZE changed"),
            MAX_FRAME_SIZE => assert_eq!(value, 16_384, "MAX_FRAME_SIZE changed"),
            _ => {}
        }
    }
    // Something was announced (hyper always sends its stream and window limits), so the
    // check above looked at a real SETTINGS payload.
    assert!(!announced.is_empty(), "{announced:?}");
}
