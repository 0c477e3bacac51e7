//! Generates the `ektp.v1` API and the storage messages, and writes the file
//! descriptor set that server reflection serves.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out_dir = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        // Undecodable requests answer INVALID_ARGUMENT, not INTERNAL.
        .codec_path("crate::codec::ValidatingCodec")
        .file_descriptor_set_path(out_dir.join("ektp_descriptor.bin"))
        .compile_protos(
            &[
                "ektp/v1/resident.proto",
                "ektp/v1/print_job.proto",
                "ektp/v1/registry.proto",
                "ektp/v1/print_queue.proto",
                "ektp/v1/print_control.proto",
                "ektp/v1/audit.proto",
                "ektp/storage/v1/storage.proto",
            ],
            &["."],
        )?;
    Ok(())
}
