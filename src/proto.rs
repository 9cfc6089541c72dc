//! Generated protobuf and gRPC types: etcd's v3 API packages and kvd's own peer protocol.
#![allow(missing_docs, clippy::all, clippy::pedantic)]

/// etcd's `mvccpb` package: key-values and watch events.
pub mod mvccpb {
    tonic::include_proto!("mvccpb");
}
/// etcd's `authpb` package: users, roles, permissions.
pub mod authpb {
    tonic::include_proto!("authpb");
}
/// etcd's `etcdserverpb` package: the KV, Watch, Lease, Cluster, Maintenance and Auth services.
pub mod etcdserverpb {
    pub use super::range_response::RangeResponse;
    tonic::include_proto!("etcdserverpb");
}
pub mod codec;
pub mod range_response;
/// etcd's `v3lockpb` package: the Lock service.
pub mod v3lockpb {
    tonic::include_proto!("v3lockpb");
}
/// etcd's `v3electionpb` package: the Election service.
pub mod v3electionpb {
    tonic::include_proto!("v3electionpb");
}
/// kvd's replicated commands and member-to-member service.
pub(crate) mod kvdpb {
    tonic::include_proto!("kvdpb");
}

/// The encoded `FileDescriptorSet` of every package above (for protobuf-JSON mapping).
pub const DESCRIPTORS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/descriptors.bin"));
