//! A gateway request larger than the gRPC limit: etcd reads it whole and answers HTTP 429 with
//! grpc-go's size message for the encoded request, instead of cutting the upload off.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use base64::Engine;

use crate::server::Server;

/// Sends one HTTP/1.1 POST and returns (status line, body).
fn post(addr: &str, path: &str, body: &[u8]) -> (String, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).expect("write head");
    s.write_all(body)
        .expect("the whole body is read, not cut off");
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).expect("read answer");
    let text = String::from_utf8_lossy(&answer).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head.lines().next().unwrap_or_default().to_string();
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    (status, body)
}

/// The payload of a chunked HTTP/1.1 body.
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

#[test]
fn an_oversized_gateway_request_gets_429_with_the_grpc_size_message() {
    for (label, bin) in crate::servers() {
        crate::run("gateway_oversized", Duration::from_secs(120), async {
            let mut server = Server::start(label, &bin, &[]).await;
            let addr = server.member.endpoint();
            let b64 = base64::engine::general_purpose::STANDARD;
            let body = format!(
                r#"{{"key":"{}","value":"{}"}}"#,
                b64.encode("big"),
                b64.encode(vec![b'x'; 15 << 20])
            );
            let (status, answer) =
                tokio::task::spawn_blocking(move || post(&addr, "/v3/kv/put", body.as_bytes()))
                    .await
                    .expect("request");
            assert!(status.contains(" 429 "), "{label}: {status}\n{answer}");
            let message = "grpc: received message larger than max (15728650 vs. 2097152)";
            let json: serde_json::Value = serde_json::from_str(answer.trim())
                .unwrap_or_else(|e| panic!("{label}: {e}: {answer}"));
            assert_eq!(json["error"], message, "{label}");
            assert_eq!(json["message"], message, "{label}");
            assert_eq!(json["code"], 8, "{label}");
            server.assert_serving().await;
        });
    }
}
