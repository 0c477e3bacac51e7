//! Card fronts on a real cluster: the print leader renders each card and
//! hands the PNG to the printer with its ticket (the simulator keeps printed
//! ones under `printed/`), and any print replica renders a preview of a job's
//! card through `PrintControl.GetCardPreview`.

use ektp_proto::v1::*;
use ektp_tests::cluster::{Cluster, Service, Spec};
use ektp_tests::probe::{record_and_authorise, wait_printed};
use ektp_tests::retry::{lazy_clients, retrying};
use std::path::Path;
use std::time::Duration;
use tonic::Code;
use tonic_types::StatusExt;

type Result = ektp_tests::Result<()>;

/// CR80 at 300 dpi.
const CARD: (u32, u32) = (1012, 638);

/// Where the preview is left for people to look at, under the workspace's `target/`.
const PREVIEW_PATH: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/card-preview.png");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn printed_cards_carry_their_rendered_front_and_any_replica_previews_one() -> Result {
    let dir = tempfile::tempdir()?;
    let cluster = Cluster::start(Spec::test(dir.path())?).await?;
    let addresses: Vec<String> = cluster.registry.iter().map(|n| n.address.clone()).collect();
    let clients = lazy_clients(&addresses)?;
    record_and_authorise(&clients, 0..2).await?;
    wait_printed(&clients, 2, Duration::from_secs(60)).await?;

    // The printer reports a card finished only after its image reached
    // printed/, so both are there once the registry counts them printed.
    let jobs = retrying(&clients, Duration::from_secs(10), |mut c| async move {
        c.list_print_jobs(ListPrintJobsRequest {
            state: PrintJobState::Printed as i32,
            page_size: 10,
            page_token: String::new(),
        })
        .await
    })
    .await?
    .jobs;
    assert_eq!(jobs.len(), 2, "{jobs:?}");
    let printed_dir = cluster.hotfolder.join("printed");
    let mut images: Vec<String> = std::fs::read_dir(&printed_dir)?
        .map(|entry| Ok(entry?.file_name().to_string_lossy().into_owned()))
        .collect::<std::io::Result<_>>()?;
    images.sort();
    let mut expected: Vec<String> = jobs
        .iter()
        .map(|job| format!("{}_{}.png", job.job_id, job.card_serial))
        .collect();
    expected.sort();
    assert_eq!(images, expected);
    let mut fronts = Vec::new();
    for name in &images {
        let bytes = std::fs::read(printed_dir.join(name))?;
        assert_eq!(png_size(&bytes)?, CARD, "{name}");
        fronts.push(bytes);
    }
    assert_ne!(fronts[0], fronts[1], "two residents, two different cards");

    // A preview from a follower: it reads the job and the resident from the registry.
    let leader = cluster
        .wait_leader(Service::Print, Duration::from_secs(10))
        .await?;
    let follower = 1 - leader;
    let mut control = cluster.print_client(follower).await?;
    let job = &jobs[0];
    let preview = control
        .get_card_preview(GetCardPreviewRequest {
            job_id: job.job_id.clone(),
        })
        .await?
        .into_inner();
    assert_eq!(preview.card_serial, job.card_serial);
    assert_eq!(png_size(&preview.png)?, CARD);
    let again = control
        .get_card_preview(GetCardPreviewRequest {
            job_id: job.job_id.clone(),
        })
        .await?
        .into_inner();
    assert_eq!(again.png, preview.png, "rendering is deterministic");
    let other = control
        .get_card_preview(GetCardPreviewRequest {
            job_id: jobs[1].job_id.clone(),
        })
        .await?
        .into_inner();
    assert_ne!(other.png, preview.png);

    // Malformed ids are refused with a field violation; unknown ones are NOT_FOUND.
    for bad in ["", "12345", "00000000000x", "0000000000001"] {
        let status = control
            .get_card_preview(GetCardPreviewRequest { job_id: bad.into() })
            .await
            .expect_err("a malformed job id must be refused");
        assert_eq!(status.code(), Code::InvalidArgument, "{bad:?}: {status:?}");
        let fields: Vec<String> = status
            .get_details_bad_request()
            .ok_or("no BadRequest detail")?
            .field_violations
            .into_iter()
            .map(|v| v.field)
            .collect();
        assert_eq!(fields, ["job_id"], "{bad:?}");
    }
    let status = control
        .get_card_preview(GetCardPreviewRequest {
            job_id: "999999999999".into(),
        })
        .await
        .expect_err("an unknown job has no card");
    assert_eq!(status.code(), Code::NotFound, "{status:?}");

    let path = Path::new(PREVIEW_PATH);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, &preview.png)?;
    let shown = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    println!("card preview written to {}", shown.display());
    Ok(())
}

/// Width and height of a well-formed 8-bit RGB PNG: the signature, then
/// IHDR first and IEND last, every chunk's CRC right, image data present.
/// (Inflating the pixels is left to print-service's own tests, which decode
/// them with the `png` crate.)
fn png_size(bytes: &[u8]) -> ektp_tests::Result<(u32, u32)> {
    let rest = bytes
        .strip_prefix(b"\x89PNG\r\n\x1a\n".as_slice())
        .ok_or("no PNG signature")?;
    let be32 = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    let mut chunks = Vec::new();
    let mut at = 0usize;
    while at < rest.len() {
        let header = rest.get(at..at + 8).ok_or("truncated chunk header")?;
        let len = be32(header) as usize;
        let kind: [u8; 4] = [header[4], header[5], header[6], header[7]];
        let body = rest.get(at + 4..at + 8 + len).ok_or("truncated chunk")?;
        let crc = rest
            .get(at + 8 + len..at + 12 + len)
            .ok_or("no chunk crc")?;
        if crc32(body) != be32(crc) {
            return Err(format!("bad crc on {}", String::from_utf8_lossy(&kind)).into());
        }
        chunks.push((kind, body[4..].to_vec()));
        at += 12 + len;
    }
    let (first, ihdr) = chunks.first().ok_or("no chunks")?;
    if first != b"IHDR" || ihdr.len() != 13 {
        return Err("IHDR is not the first chunk".into());
    }
    if chunks.last().map(|(kind, _)| kind) != Some(b"IEND") {
        return Err("IEND is not the last chunk".into());
    }
    if !chunks
        .iter()
        .any(|(kind, data)| kind == b"IDAT" && !data.is_empty())
    {
        return Err("no image data".into());
    }
    // Bit depth 8, colour type 2 (RGB).
    if (ihdr[8], ihdr[9]) != (8, 2) {
        return Err(format!("not 8-bit RGB: depth {} colour {}", ihdr[8], ihdr[9]).into());
    }
    Ok((be32(&ihdr[0..4]), be32(&ihdr[4..8])))
}

/// CRC-32 (ISO-HDLC), as PNG chunks use.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}
