//! One member's network identity (plain http on loopback) and the flags that start it.

use std::path::Path;

use super::ports::free_port;

/// One member's network identity: its name and client/peer ports.
#[derive(Clone, Debug)]
pub struct Member {
    /// `--name`.
    pub name: String,
    /// Client port on 127.0.0.1.
    pub client_port: u16,
    /// Peer port on 127.0.0.1.
    pub peer_port: u16,
}

impl Member {
    /// A member with fresh free ports.
    pub fn new(name: &str) -> Member {
        Member {
            name: name.to_string(),
            client_port: free_port(),
            peer_port: free_port(),
        }
    }

    /// `127.0.0.1:CLIENT`, an etcdctl endpoint.
    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.client_port)
    }

    /// `http://127.0.0.1:PEER`.
    pub fn peer_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.peer_port)
    }

    /// `NAME=http://127.0.0.1:PEER`, one entry of `--initial-cluster`.
    pub fn cluster_entry(&self) -> String {
        format!("{}={}", self.name, self.peer_url())
    }

    /// The flags that start this member with its data in `data_dir` as part of a new
    /// cluster `initial_cluster` with `token`.
    pub fn flags(&self, data_dir: &Path, initial_cluster: &str, token: &str) -> Vec<String> {
        let client = format!("http://127.0.0.1:{}", self.client_port);
        let peer = self.peer_url();
        vec![
            "--name".into(),
            self.name.clone(),
            "--data-dir".into(),
            data_dir.display().to_string(),
            "--listen-client-urls".into(),
            client.clone(),
            "--advertise-client-urls".into(),
            client,
            "--listen-peer-urls".into(),
            peer.clone(),
            "--initial-advertise-peer-urls".into(),
            peer,
            "--initial-cluster".into(),
            initial_cluster.into(),
            "--initial-cluster-token".into(),
            token.into(),
            "--initial-cluster-state".into(),
            "new".into(),
        ]
    }
}

/// `--initial-cluster` for `members`.
pub fn initial_cluster(members: &[Member]) -> String {
    members
        .iter()
        .map(Member::cluster_entry)
        .collect::<Vec<_>>()
        .join(",")
}
