//! Compiles the etcd v3 API and kvd's peer protocol with protox (no system `protoc` needed).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/etcdserverpb/rpc.proto",
        "proto/mvccpb/kv.proto",
        "proto/authpb/auth.proto",
        "proto/v3lockpb/v3lock.proto",
        "proto/v3electionpb/v3election.proto",
        "proto/kvdpb/kvd.proto",
    ];
    println!("cargo:rerun-if-changed=proto");
    let fds = protox::compile(files, ["proto"])?;
    // The descriptors, for the JSON gateway's protobuf-JSON mapping at run time.
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("descriptors.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        // prost's codec, reserving room before encoding a large message.
        .codec_path("crate::proto::codec::Codec")
        // Hand-written (src/proto/range_response.rs): it can carry key-values already encoded.
        .extern_path(
            ".etcdserverpb.RangeResponse",
            "crate::proto::range_response::RangeResponse",
        )
        .compile_fds(fds)?;
    Ok(())
}
