//! Generates the Rust code of the protobuf API without `protoc`: `protox` (a protobuf
//! compiler written in Rust) parses the `.proto` files into a descriptor set, and
//! `tonic-prost-build` turns that into prost messages and tonic clients and servers.

use std::path::PathBuf;

const PROTOS: &[&str] = &[
    "proto/corebank/v1/common.proto",
    "proto/corebank/v1/ledger.proto",
    "proto/corebank/v1/banking.proto",
    "proto/corebank/v1/events.proto",
    "proto/corebank/v1/errors.proto",
    "proto/corebank/v1/cluster.proto",
    "proto/corebank/v1/registry.proto",
    "proto/corebank/v1/risk.proto",
    "proto/corebank/v1/identity.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }

    let mut compiler = protox::Compiler::new(["proto"])?;
    compiler.include_source_info(true).include_imports(true);
    compiler.open_files(PROTOS)?;

    // The encoded descriptor set, for gRPC server reflection.
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("corebank_descriptor.bin"),
        compiler.encode_file_descriptor_set(),
    )?;

    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .build_transport(true)
        .emit_rerun_if_changed(false)
        .compile_fds(compiler.file_descriptor_set())?;
    Ok(())
}
