//! The JSON gateway over plain HTTP/1.1, as curl uses it. Expected texts are the shapes etcd
//! 3.4.23's gateway answered to the same requests (only the IDs, revisions and terms of the
//! member under test are filled in).

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::common::{within, Member};

/// An HTTP answer.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("a JSON body")
    }
}

/// An HTTP/1.1 response being read: status line and headers done, body to come.
struct Reader {
    io: BufReader<TcpStream>,
    status: u16,
    headers: Vec<(String, String)>,
    /// Decoded body bytes not yet handed out.
    pending: Vec<u8>,
    done: bool,
}

impl Reader {
    async fn send(addr: SocketAddr, method: &str, path: &str, body: &str) -> Self {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).await.expect("send request");
        let mut io = BufReader::new(s);
        let mut line = String::new();
        io.read_line(&mut line).await.expect("status line");
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {line:?}"));
        let mut headers = Vec::new();
        loop {
            line.clear();
            io.read_line(&mut line).await.expect("header line");
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            let (n, v) = l.split_once(':').expect("header name: value");
            headers.push((n.trim().to_string(), v.trim().to_string()));
        }
        Self {
            io,
            status,
            headers,
            pending: Vec::new(),
            done: false,
        }
    }

    fn chunked(&self) -> bool {
        self.headers.iter().any(|(n, v)| {
            n.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
        })
    }

    /// Reads one more piece of the body into `pending`; false at its end.
    async fn fill(&mut self) -> bool {
        if self.done {
            return false;
        }
        if !self.chunked() {
            let before = self.pending.len();
            self.io.read_to_end(&mut self.pending).await.expect("body");
            self.done = true;
            return self.pending.len() > before;
        }
        let mut line = String::new();
        self.io.read_line(&mut line).await.expect("chunk size");
        let size = usize::from_str_radix(line.trim(), 16).expect("hex chunk size");
        if size == 0 {
            self.done = true;
            return false;
        }
        let mut chunk = vec![0; size + 2];
        self.io.read_exact(&mut chunk).await.expect("chunk");
        self.pending.extend_from_slice(&chunk[..size]);
        true
    }

    /// The next newline-terminated line of a streamed body, `None` at its end.
    async fn line(&mut self) -> Option<String> {
        loop {
            if let Some(i) = self.pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=i).collect();
                return Some(String::from_utf8(line).expect("utf-8"));
            }
            if !self.fill().await {
                return None;
            }
        }
    }

    async fn finish(mut self) -> Answer {
        while self.fill().await {}
        Answer {
            status: self.status,
            headers: self.headers,
            body: String::from_utf8(self.pending).expect("utf-8 body"),
        }
    }
}

async fn call(addr: SocketAddr, method: &str, path: &str, body: &str) -> Answer {
    Reader::send(addr, method, path, body).await.finish().await
}

async fn post(m: &Member, path: &str, body: &str) -> Answer {
    call(m.addr, "POST", path, body).await
}

/// The response header etcd writes: `{"cluster_id":…,"member_id":…,"revision":…,"raft_term":…}`.
fn header(m: &Member, revision: i64) -> String {
    let core = &m.handle.as_ref().expect("running").core;
    format!(
        r#"{{"cluster_id":"{}","member_id":"{}","revision":"{revision}","raft_term":"{}"}}"#,
        core.cluster_id(),
        core.member_id,
        core.raft.status().term
    )
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).expect("valid expected JSON")
}

fn assert_ok(a: &Answer, want: &str) {
    assert_eq!((a.status, a.body.as_str()), (200, want));
    assert_eq!(a.header("content-type"), Some("application/json"));
}

#[tokio::test]
async fn kv_calls_answer_as_etcds_gateway() {
    let m = Member::start().await;
    within(async {
        assert_ok(
            &post(&m, "/v3/kv/range", r#"{"key":"Zm9v"}"#).await,
            &format!(r#"{{"header":{}}}"#, header(&m, 1)),
        );
        assert_ok(
            &post(&m, "/v3/kv/put", r#"{"key":"Zm9v","value":"YmFy"}"#).await,
            &format!(r#"{{"header":{}}}"#, header(&m, 2)),
        );
        assert_ok(
            &post(&m, "/v3/kv/put", r#"{"key":"Zm9v","value":"YmF6","prev_kv":true}"#).await,
            &format!(
                r#"{{"header":{},"prev_kv":{{"key":"Zm9v","create_revision":"2","mod_revision":"2","version":"1","value":"YmFy"}}}}"#,
                header(&m, 3)
            ),
        );
        let current = format!(
            r#"{{"header":{},"kvs":[{{"key":"Zm9v","create_revision":"2","mod_revision":"3","version":"2","value":"YmF6"}}],"count":"1"}}"#,
            header(&m, 3)
        );
        assert_ok(&post(&m, "/v3/kv/range", r#"{"key":"Zm9v"}"#).await, &current);
        assert_ok(&post(&m, "/v3beta/kv/range", r#"{"key":"Zm9v"}"#).await, &current);
        // Unknown fields are ignored; revisions may be numbers or strings.
        assert_ok(
            &post(&m, "/v3/kv/range", r#"{"key":"Zm9v","revision":2,"bogus":1}"#).await,
            &format!(
                r#"{{"header":{},"kvs":[{{"key":"Zm9v","create_revision":"2","mod_revision":"2","version":"1","value":"YmFy"}}],"count":"1"}}"#,
                header(&m, 3)
            ),
        );
        assert_ok(
            &post(&m, "/v3/kv/range", r#"{"key":"Zm9v","count_only":true}"#).await,
            &format!(r#"{{"header":{},"count":"1"}}"#, header(&m, 3)),
        );
        assert_ok(
            &post(&m, "/v3/kv/deleterange", r#"{"key":"bm9uZQ=="}"#).await,
            &format!(r#"{{"header":{}}}"#, header(&m, 3)),
        );
        assert_ok(
            &post(&m, "/v3/kv/deleterange", r#"{"key":"Zm9v","prev_kv":true}"#).await,
            &format!(
                r#"{{"header":{},"deleted":"1","prev_kvs":[{{"key":"Zm9v","create_revision":"2","mod_revision":"3","version":"2","value":"YmF6"}}]}}"#,
                header(&m, 4)
            ),
        );
    })
    .await;
}

#[tokio::test]
async fn errors_answer_as_etcds_gateway() {
    let m = Member::start().await;
    within(async {
        let a = post(&m, "/v3/kv/range", r#"{"key":"Zm9v","revision":100}"#).await;
        assert_eq!(a.status, 400);
        assert_eq!(a.header("content-type"), Some("application/json"));
        assert_eq!(
            a.body,
            r#"{"error":"etcdserver: mvcc: required revision is a future revision","message":"etcdserver: mvcc: required revision is a future revision","code":11}"#
        );
        let a = post(&m, "/v3/kv/put", r#"{"value":"YmFy"}"#).await;
        assert_eq!(
            (a.status, a.body.as_str()),
            (
                400,
                r#"{"error":"etcdserver: key is not provided","message":"etcdserver: key is not provided","code":3}"#
            )
        );
        let a = post(&m, "/v3/kv/range", r#"{"key":"Zm9v""#).await;
        assert_eq!(
            (a.status, a.body.as_str()),
            (
                400,
                r#"{"error":"unexpected EOF","message":"unexpected EOF","code":3}"#
            )
        );
        // Other bodies that are not JSON of the request's shape: 400, code 3 (the text is
        // kvd's own).
        for bad in ["not json", r#"{"key":"!!!"}"#, "[]"] {
            let a = post(&m, "/v3/kv/range", bad).await;
            assert_eq!(a.status, 400, "{bad}");
            assert_eq!(a.json()["code"], 3, "{bad}");
            assert_eq!(a.json()["error"], a.json()["message"], "{bad}");
        }
        let a = post(&m, "/v3/auth/authenticate", r#"{"name":"root","password":"x"}"#).await;
        assert_eq!(
            (a.status, a.body.as_str()),
            (
                412,
                r#"{"error":"etcdserver: authentication is not enabled","message":"etcdserver: authentication is not enabled","code":9}"#
            )
        );
        let a = call(m.addr, "GET", "/v3/kv/range", "").await;
        assert_eq!((a.status, a.body.as_str()), (405, "Method Not Allowed\n"));
        assert_eq!(a.header("content-type"), Some("text/plain; charset=utf-8"));
        let a = post(&m, "/v3/kv/nothing", "{}").await;
        assert_eq!((a.status, a.body.as_str()), (404, "Not Found\n"));
        let a = post(&m, "/v3alpha/kv/range", r#"{"key":"Zm9v"}"#).await;
        assert_eq!((a.status, a.body.as_str()), (404, "404 page not found\n"));
    })
    .await;
}

#[tokio::test]
async fn txn_and_compaction_answer_as_etcds_gateway() {
    let m = Member::start().await;
    within(async {
        post(&m, "/v3/kv/put", r#"{"key":"Zm9v","value":"YmFy"}"#).await;
        let txn = r#"{"compare":[{"key":"Zm9v","result":"EQUAL","target":"VALUE","value":"YmFy"}],"success":[{"request_range":{"key":"Zm9v"}},{"request_put":{"key":"Zm9v","value":"eA=="}}],"failure":[{"request_delete_range":{"key":"Zm9v"}}]}"#;
        let a = post(&m, "/v3/kv/txn", txn).await;
        assert_eq!(a.status, 200, "{}", a.body);
        let j = a.json();
        assert_eq!(j["succeeded"], true);
        let range = &j["responses"][0]["response_range"];
        assert_eq!(
            range["kvs"][0],
            json(r#"{"key":"Zm9v","create_revision":"2","mod_revision":"2","version":"1","value":"YmFy"}"#)
        );
        assert_eq!(range["count"], "1");
        assert!(j["responses"][1]["response_put"].is_object());
        assert_eq!(j["header"]["revision"], "3");
        // The compare fails now: `succeeded` (false) is left out.
        let a = post(&m, "/v3/kv/txn", txn).await;
        let j = a.json();
        assert_eq!(j.get("succeeded"), None, "{}", a.body);
        assert_eq!(j["responses"][0]["response_delete_range"]["deleted"], "1");

        assert_ok(
            &post(&m, "/v3/kv/compaction", r#"{"revision":"3"}"#).await,
            &format!(r#"{{"header":{}}}"#, header(&m, 4)),
        );
        let a = post(&m, "/v3/kv/compaction", r#"{"revision":"3"}"#).await;
        assert_eq!(
            (a.status, a.body.as_str()),
            (
                400,
                r#"{"error":"etcdserver: mvcc: required revision has been compacted","message":"etcdserver: mvcc: required revision has been compacted","code":11}"#
            )
        );
        let a = post(&m, "/v3/kv/range", r#"{"key":"Zm9v","revision":2}"#).await;
        assert_eq!((a.status, a.json()["code"].clone()), (400, Value::from(11)));
    })
    .await;
}

#[tokio::test]
async fn lease_calls_answer_as_etcds_gateway() {
    let m = Member::start().await;
    within(async {
        assert_ok(
            &post(&m, "/v3/lease/grant", r#"{"TTL":60,"ID":1234}"#).await,
            &format!(r#"{{"header":{},"ID":"1234","TTL":"60"}}"#, header(&m, 1)),
        );
        let a = post(&m, "/v3/lease/grant", r#"{"TTL":"60","ID":"1234"}"#).await;
        assert_eq!(
            (a.status, a.body.as_str()),
            (
                412,
                r#"{"error":"etcdserver: lease already exists","message":"etcdserver: lease already exists","code":9}"#
            )
        );
        post(&m, "/v3/kv/put", r#"{"key":"YQ==","value":"YQ==","lease":"1234"}"#).await;
        for path in ["/v3/lease/timetolive", "/v3/kv/lease/timetolive"] {
            let a = post(&m, path, r#"{"ID":"1234","keys":true}"#).await;
            let j = a.json();
            assert_eq!(j["header"], json(&header(&m, 2)));
            assert_eq!(
                (&j["ID"], &j["grantedTTL"], &j["keys"]),
                (&Value::from("1234"), &Value::from("60"), &serde_json::json!(["YQ=="]))
            );
            assert!(j["TTL"] == "60" || j["TTL"] == "59", "{}", a.body);
        }
        assert_ok(
            &post(&m, "/v3/lease/timetolive", r#"{"ID":999}"#).await,
            &format!(r#"{{"header":{},"ID":"999","TTL":"-1"}}"#, header(&m, 2)),
        );
        assert_ok(
            &post(&m, "/v3/lease/leases", "{}").await,
            &format!(r#"{{"header":{},"leases":[{{"ID":"1234"}}]}}"#, header(&m, 2)),
        );
        assert_ok(
            &post(&m, "/v3/lease/revoke", r#"{"ID":1234}"#).await,
            &format!(r#"{{"header":{}}}"#, header(&m, 3)),
        );
        let a = post(&m, "/v3/kv/lease/revoke", r#"{"ID":1234}"#).await;
        assert_eq!(
            (a.status, a.body.as_str()),
            (
                404,
                r#"{"error":"etcdserver: requested lease not found","message":"etcdserver: requested lease not found","code":5}"#
            )
        );
        assert_ok(
            &post(&m, "/v3/kv/range", r#"{"key":"YQ=="}"#).await,
            &format!(r#"{{"header":{}}}"#, header(&m, 3)),
        );
    })
    .await;
}

#[tokio::test]
async fn lease_keepalive_streams_one_result_per_request() {
    let m = Member::start().await;
    within(async {
        post(&m, "/v3/lease/grant", r#"{"TTL":30,"ID":77}"#).await;
        let a = post(
            &m,
            "/v3/lease/keepalive",
            r#"{"ID":77} {"ID":"77"} {"ID":78}"#,
        )
        .await;
        assert_eq!(a.status, 200);
        assert_eq!(a.header("content-type"), Some("application/json"));
        let h = header(&m, 1);
        assert_eq!(
            a.body,
            format!(
                "{{\"result\":{{\"header\":{h},\"ID\":\"77\",\"TTL\":\"30\"}}}}\n\
                 {{\"result\":{{\"header\":{h},\"ID\":\"77\",\"TTL\":\"30\"}}}}\n\
                 {{\"result\":{{\"header\":{h},\"ID\":\"78\"}}}}\n"
            )
        );
        // A first request that is not JSON: etcd's gateway answers 500 with code 2.
        let a = post(&m, "/v3/lease/keepalive", r#"{"ID":"#).await;
        assert_eq!(
            (a.status, a.body.as_str()),
            (
                500,
                r#"{"error":"unexpected EOF","message":"unexpected EOF","code":2}"#
            )
        );
        // No request, no answer: the stream ends at once.
        let a = post(&m, "/v3/lease/keepalive", "").await;
        assert_eq!((a.status, a.body.as_str()), (200, ""));
    })
    .await;
}

#[tokio::test]
async fn watch_streams_events_after_the_request_body_ended() {
    let m = Member::start().await;
    within(async {
        let mut w = Reader::send(
            m.addr,
            "POST",
            "/v3/watch",
            r#"{"create_request":{"key":"Zm9v","prev_kv":true}}"#,
        )
        .await;
        assert_eq!(w.status, 200);
        assert_eq!(
            w.line().await.as_deref(),
            Some(format!("{{\"result\":{{\"header\":{},\"created\":true}}}}\n", header(&m, 1)).as_str())
        );
        post(&m, "/v3/kv/put", r#"{"key":"Zm9v","value":"YmFy"}"#).await;
        assert_eq!(
            w.line().await.as_deref(),
            Some(
                format!(
                    "{{\"result\":{{\"header\":{},\"events\":[{{\"kv\":{{\"key\":\"Zm9v\",\"create_revision\":\"2\",\"mod_revision\":\"2\",\"version\":\"1\",\"value\":\"YmFy\"}}}}]}}}}\n",
                    header(&m, 2)
                )
                .as_str()
            )
        );
        post(&m, "/v3/kv/deleterange", r#"{"key":"Zm9v"}"#).await;
        assert_eq!(
            w.line().await.as_deref(),
            Some(
                format!(
                    "{{\"result\":{{\"header\":{},\"events\":[{{\"type\":\"DELETE\",\"kv\":{{\"key\":\"Zm9v\",\"mod_revision\":\"3\"}},\"prev_kv\":{{\"key\":\"Zm9v\",\"create_revision\":\"2\",\"mod_revision\":\"2\",\"version\":\"1\",\"value\":\"YmFy\"}}}}]}}}}\n",
                    header(&m, 3)
                )
                .as_str()
            )
        );
    })
    .await;
}

#[tokio::test]
async fn maintenance_and_cluster_calls_answer_as_etcds_gateway() {
    let m = Member::start().await;
    within(async {
        let core = m.handle.as_ref().expect("running").core.clone();
        // A fresh member's database holds no key yet: put one so `dbSize` is not zero.
        post(&m, "/v3/kv/put", r#"{"key":"Zm9v","value":"YmFy"}"#).await;
        let a = post(&m, "/v3/maintenance/status", "{}").await;
        assert_eq!(a.status, 200);
        let j = a.json();
        let keys: Vec<&str> = j.as_object().expect("object").keys().map(String::as_str).collect();
        for key in ["header", "version", "dbSize", "leader", "raftIndex", "raftTerm", "raftAppliedIndex"] {
            assert!(keys.contains(&key), "{key} missing from {}", a.body);
        }
        assert_eq!(j["version"], kvd::version::ETCD_VERSION);
        assert_eq!(j["leader"], core.member_id.to_string());
        assert!(j["dbSize"].is_string(), "int64 as a string: {}", a.body);

        // The member publishes its name and client URLs shortly after start.
        let want = format!(
            r#"[{{"ID":"{}","name":"default","peerURLs":["http://localhost:2380"],"clientURLs":["http://127.0.0.1:2379"]}}]"#,
            core.member_id
        );
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let a = post(&m, "/v3/cluster/member/list", "{}").await;
            assert_eq!(a.status, 200);
            if a.json()["members"] == json(&want) {
                break;
            }
            assert!(tokio::time::Instant::now() < deadline, "member list: {}", a.body);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let a = post(&m, "/v3/maintenance/alarm", r#"{"action":"GET"}"#).await;
        assert_eq!(a.status, 200);
        assert_eq!(a.json().get("alarms"), None, "no alarm: {}", a.body);
        let a = post(&m, "/v3/maintenance/hash", "{}").await;
        assert!(a.json()["hash"].is_u64(), "uint32 as a number: {}", a.body);
    })
    .await;
}

#[tokio::test]
async fn lock_and_election_answer_as_etcds_gateway() {
    let m = Member::start().await;
    within(async {
        post(&m, "/v3/lease/grant", r#"{"TTL":60,"ID":"4660"}"#).await;
        // The lock key is `name/<lease in hex>`: "l/1234".
        assert_ok(
            &post(&m, "/v3/lock/lock", r#"{"name":"bA==","lease":"4660"}"#).await,
            &format!(r#"{{"header":{},"key":"bC8xMjM0"}}"#, header(&m, 2)),
        );
        assert_ok(
            &post(&m, "/v3/lock/unlock", r#"{"key":"bC8xMjM0"}"#).await,
            &format!(r#"{{"header":{}}}"#, header(&m, 3)),
        );
        let a = post(&m, "/v3/election/leader", r#"{"name":"ZQ=="}"#).await;
        assert_eq!(
            (a.status, a.body.as_str()),
            (
                500,
                r#"{"error":"election: no leader","message":"election: no leader","code":2}"#
            )
        );
        assert_ok(
            &post(&m, "/v3/election/campaign", r#"{"name":"ZQ==","value":"djE=","lease":"4660"}"#).await,
            &format!(
                r#"{{"header":{},"leader":{{"name":"ZQ==","key":"ZS8xMjM0","rev":"4","lease":"4660"}}}}"#,
                header(&m, 4)
            ),
        );
        let leader = format!(
            r#"{{"header":{},"kv":{{"key":"ZS8xMjM0","create_revision":"4","mod_revision":"4","version":"1","value":"djE=","lease":"4660"}}}}"#,
            header(&m, 4)
        );
        assert_ok(&post(&m, "/v3/election/leader", r#"{"name":"ZQ=="}"#).await, &leader);
        // Observe starts with the current leader.
        let mut observe = Reader::send(m.addr, "POST", "/v3/election/observe", r#"{"name":"ZQ=="}"#).await;
        assert_eq!(observe.status, 200);
        assert_eq!(observe.line().await, Some(format!("{{\"result\":{leader}}}\n")));
    })
    .await;
}
