//! Print material encrypted at rest, on a real cluster: photos and signatures
//! never appear in etcd, printed cards still carry the right photo, a key
//! rotation (with the leader's re-seal pass) keeps every resident printable
//! after the old key is removed, and a registry that lacks the key of stored
//! material refuses to hand it out rather than print a card without it.

use ektp_election::Fence;
use ektp_proto::storage::SealedMaterial;
use ektp_proto::v1::print_queue_client::PrintQueueClient;
use ektp_proto::v1::*;
use ektp_tests::audit::all_jobs;
use ektp_tests::cluster::{Cluster, Service, Spec};
use ektp_tests::material_keys::{keys_dir, write_key};
use ektp_tests::probe::{says_it_leads, scrape, wait_printed};
use ektp_tests::residents::{authorize_request, record_request, resident};
use ektp_tests::retry::{lazy_clients, retrying};
use ektp_tests::wait::until;
use etcd_client::GetOptions;
use prost::Message;
use std::path::Path;
use std::time::Duration;
use tonic::Code;
use tonic::transport::Channel;

type Result<T = ()> = ektp_tests::Result<T>;
type Clients = Vec<registry_client::RegistryClient<Channel>>;

/// A real JPEG: the printer draws it, so a printed card shows whether it arrived.
const JPEG: &[u8] = include_bytes!("../../services/print-service/src/render/testdata/photo.jpg");

/// The photo area of a card front (print-service `render`: x, y, w, h).
const PHOTO: (usize, usize, usize, usize) = (746, 112, 230, 300);

/// Bytes no ciphertext will contain by chance: a small LCG seeded per resident.
fn pattern(seed: u32, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(12_345);
    (0..len)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            (x >> 16) as u8
        })
        .collect()
}

/// Resident `i`'s material: the JPEG (decoders stop at its end marker) with
/// a tail of its own, and a signature of its own; or the harness's filler
/// photo, which the printer draws as a placeholder.
fn material(i: u32, real_photo: bool) -> PrintMaterial {
    let photo = if real_photo {
        [JPEG, &pattern(i, 256)].concat()
    } else {
        record_request(i).material.unwrap_or_default().photo
    };
    PrintMaterial {
        photo,
        signature: [&b"\x89PNG\r\n\x1a\n"[..], &pattern(1000 + i, 500)].concat(),
    }
}

/// Records and authorises resident `i` with its own material.
async fn record(clients: &Clients, i: u32, real_photo: bool) -> Result {
    let request = RecordResidentRequest {
        material: Some(material(i, real_photo)),
        ..record_request(i)
    };
    retrying(clients, Duration::from_secs(20), |mut c| {
        let request = request.clone();
        async move { c.record_resident(request).await }
    })
    .await?;
    retrying(clients, Duration::from_secs(20), |mut c| async move {
        c.authorize_print(authorize_request(i)).await
    })
    .await?;
    Ok(())
}

/// Every value under the office prefix, and the sealed material values.
async fn etcd_values(cluster: &Cluster) -> Result<(Vec<Vec<u8>>, Vec<SealedMaterial>)> {
    let mut client = cluster.etcd.client().await?;
    let prefix = format!("/ektp/{}/", cluster.office);
    let all = client
        .get(prefix.as_str(), Some(GetOptions::new().with_prefix()))
        .await?;
    let mut sealed = Vec::new();
    for kv in all.kvs() {
        if kv
            .key()
            .starts_with(format!("{prefix}material/").as_bytes())
        {
            sealed.push(SealedMaterial::decode(kv.value())?);
        }
    }
    Ok((
        all.kvs().iter().map(|kv| kv.value().to_vec()).collect(),
        sealed,
    ))
}

/// Fails if any etcd value holds a recognisable piece of any resident's material.
async fn assert_no_material_in_etcd(cluster: &Cluster, residents: &[(u32, bool)]) -> Result {
    let (values, sealed) = etcd_values(cluster).await?;
    assert!(
        sealed.len() >= residents.len(),
        "{} sealed values",
        sealed.len()
    );
    for &(i, real) in residents {
        let m = material(i, real);
        let needles = [
            &m.photo[m.photo.len() - 64..],
            &m.signature[8..72],
            &JPEG[40..104],
        ];
        for value in &values {
            for needle in needles {
                assert!(
                    !value.windows(needle.len()).any(|w| w == needle),
                    "resident {i}'s print material is readable in etcd"
                );
            }
        }
    }
    Ok(())
}

/// Waits until every material value in etcd is sealed with `key_id`.
async fn wait_all_sealed_with(cluster: &Cluster, key_id: &str) -> Result {
    until(
        &format!("every material value re-sealed with {key_id}"),
        Duration::from_secs(30),
        || async {
            let (_, sealed) = etcd_values(cluster).await.ok()?;
            sealed.iter().all(|s| s.key_id == key_id).then_some(())
        },
    )
    .await
}

/// The photo area of the printed front of resident `i`'s newest printed card.
async fn printed_photo(cluster: &Cluster, clients: &Clients, i: u32) -> Result<Vec<u8>> {
    let nik = resident(i).nik;
    let mut client = clients[0].clone();
    let job = all_jobs(&mut client)
        .await?
        .into_iter()
        .filter(|j| j.nik == nik && j.state() == PrintJobState::Printed)
        .max_by(|a, b| a.job_id.cmp(&b.job_id))
        .ok_or("no printed job")?;
    let path = cluster
        .hotfolder
        .join("printed")
        .join(format!("{}_{}.png", job.job_id, job.card_serial));
    let mut reader = png::Decoder::new(std::io::Cursor::new(std::fs::read(path)?)).read_info()?;
    let mut pixels = vec![0; reader.output_buffer_size().ok_or("png too large")?];
    let frame = reader.next_frame(&mut pixels)?;
    let (x, y, w, h) = PHOTO;
    let stride = frame.line_size;
    let bpp = stride / frame.width as usize;
    Ok((y..y + h)
        .flat_map(|row| pixels[row * stride + x * bpp..row * stride + (x + w) * bpp].to_vec())
        .collect())
}

/// Restarts every registry replica, one at a time, with `edit` applied to its
/// arguments; waits for each to be ready before the next.
async fn rolling_restart(cluster: &mut Cluster, edit: impl Fn(&mut Vec<String>)) -> Result {
    for i in 0..cluster.registry.len() {
        let node = &mut cluster.registry[i];
        let mut args = node.proc.args().to_vec();
        edit(&mut args);
        node.proc.restart_with(args)?;
        node.wait_ready(Duration::from_secs(30)).await?;
    }
    cluster
        .wait_leader(Service::Registry, Duration::from_secs(30))
        .await?;
    Ok(())
}

/// Sets a flag's value in an argument list.
fn set_flag(args: &mut [String], flag: &str, value: &str) {
    if let Some(at) = args.iter().position(|a| a == flag)
        && let Some(slot) = args.get_mut(at + 1)
    {
        *slot = value.to_owned();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn material_is_sealed_in_etcd_and_prints_across_a_key_rotation() -> Result {
    let dir = tempfile::tempdir()?;
    let mut spec = Spec::test(dir.path())?;
    // Retention sweeps and re-seal passes every second.
    spec.registry_args = vec!["--retention-sweep-secs".into(), "1".into()];
    let mut cluster = Cluster::start(spec).await?;
    let addresses: Vec<String> = cluster.registry.iter().map(|n| n.address.clone()).collect();
    let clients = lazy_clients(&addresses)?;

    // Sealed with k1: nothing of the material is readable in etcd.
    let first = [(0, true), (1, true), (2, false)];
    for (i, real) in first {
        record(&clients, i, real).await?;
    }
    assert_no_material_in_etcd(&cluster, &first).await?;
    let (_, sealed) = etcd_values(&cluster).await?;
    assert!(
        sealed
            .iter()
            .all(|s| s.key_id == "k1" && s.nonce.len() == 12)
    );

    // The printed cards carry the photo: the same JPEG draws the same
    // pixels, the filler photo a placeholder.
    wait_printed(&clients, 3, Duration::from_secs(60)).await?;
    let photo = printed_photo(&cluster, &clients, 0).await?;
    assert_eq!(photo, printed_photo(&cluster, &clients, 1).await?);
    assert_ne!(photo, printed_photo(&cluster, &clients, 2).await?);

    // Rotation: add k2, make it active, restart the replicas one at a time.
    let keys = keys_dir(dir.path());
    write_key(&keys, "k2")?;
    rolling_restart(&mut cluster, |args| {
        set_flag(args, "--material-key-id", "k2")
    })
    .await?;
    record(&clients, 3, true).await?;
    assert_no_material_in_etcd(&cluster, &[(3, true)]).await?;
    wait_printed(&clients, 4, Duration::from_secs(60)).await?;
    assert_eq!(printed_photo(&cluster, &clients, 3).await?, photo);

    // The leader's re-seal pass moves the k1 values onto k2 and then reports
    // that a whole pass found nothing on another key.
    wait_all_sealed_with(&cluster, "k2").await?;
    until(
        "a re-seal pass with nothing stale",
        Duration::from_secs(30),
        || async {
            for node in &cluster.registry {
                if says_it_leads(node.metrics_port, "registry").await == Some(true) {
                    let text = scrape(node.metrics_port).await.ok()?;
                    return text
                        .lines()
                        .any(|l| l == "ektp_registry_material_stale_key_values 0")
                        .then_some(());
                }
            }
            None
        },
    )
    .await?;

    // The old key can go: a reprint of a resident recorded under k1 prints
    // with its photo from registries that only have k2.
    std::fs::remove_file(keys.join("k1"))?;
    rolling_restart(&mut cluster, |_| {}).await?;
    let reprint = RequestReprintRequest {
        nik: resident(0).nik,
        reason: PrintReason::Damaged as i32,
        request_id: "reprint-damaged-0".into(),
        ..Default::default()
    };
    retrying(&clients, Duration::from_secs(20), |mut c| {
        let reprint = reprint.clone();
        async move { c.request_reprint(reprint).await }
    })
    .await?;
    wait_printed(&clients, 5, Duration::from_secs(60)).await?;
    assert_eq!(printed_photo(&cluster, &clients, 0).await?, photo);
    Ok(())
}

/// One claim at the registry leader; retried while replicas settle after a
/// restart (UNAVAILABLE), so the answer is the leader's verdict.
async fn claim(
    cluster: &Cluster,
    fence: &Fence,
) -> Result<std::result::Result<Vec<ClaimedJob>, tonic::Status>> {
    let request = ClaimJobsRequest {
        fence: Some(ektp_proto::v1::Fence {
            leader_key: fence.key.clone(),
            epoch: fence.epoch.0,
        }),
        max_jobs: 10,
        printer: "printer-1".into(),
        first_cards_first: false,
    };
    until(
        "a claim answer from the registry leader",
        Duration::from_secs(20),
        || {
            let request = request.clone();
            async move {
                let leader = cluster.leader_index(Service::Registry).await?;
                let channel = cluster.registry[leader].channel().await.ok()?;
                match PrintQueueClient::new(channel).claim_jobs(request).await {
                    Ok(answer) => Some(Ok(answer.into_inner().jobs)),
                    Err(status) if status.code() == Code::Unavailable => None,
                    Err(status) => Some(Err(status)),
                }
            }
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_without_the_key_of_stored_material_refuses_to_hand_it_out() -> Result {
    let dir = tempfile::tempdir()?;
    let mut cluster = Cluster::start(Spec::registry_only(dir.path())?).await?;
    let addresses: Vec<String> = cluster.registry.iter().map(|n| n.address.clone()).collect();
    let clients = lazy_clients(&addresses)?;
    record(&clients, 0, true).await?;

    // A node pointed at a directory that does not exist does not start.
    let missing = dir.path().join("no-such-keys");
    let mut args = cluster.registry[0].proc.args().to_vec();
    set_flag(
        &mut args,
        "--material-keys-dir",
        &missing.display().to_string(),
    );
    set_flag(&mut args, "--listen", "127.0.0.1:0");
    set_flag(&mut args, "--metrics-listen", "127.0.0.1:0");
    let program = ektp_tests::bin_dir()?.join("registry-service");
    let mut refused =
        ektp_tests::process::Proc::spawn("registry-nokeys", &program, args, dir.path())?;
    let status = refused
        .wait_exit(Duration::from_secs(10))
        .ok_or("started without keys")?;
    assert!(!status.success());
    assert!(
        refused
            .log_tail(1)
            .contains("cannot read material keys directory"),
        "{}",
        refused.log_tail(5)
    );

    // Registries that only have a new key k2 cannot open k1's material: the
    // claim is refused, nothing is claimed, and the log names the key id.
    let other = dir.path().join("other-keys");
    write_key(&other, "k2")?;
    let other_dir = other.display().to_string();
    rolling_restart(&mut cluster, |args| {
        set_flag(args, "--material-keys-dir", &other_dir);
        set_flag(args, "--material-key-id", "k2");
    })
    .await?;
    let (_election, fence) = cluster.lead_print().await?;
    let refused = claim(&cluster, &fence)
        .await?
        .expect_err("material it cannot open");
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert!(
        refused.message().contains("\"k1\""),
        "{}",
        refused.message()
    );
    let mut registry = clients[0].clone();
    let jobs = all_jobs(&mut registry).await?;
    assert!(
        jobs.iter().all(|j| j.state() == PrintJobState::Queued),
        "{jobs:?}"
    );
    let logged = |node: &ektp_tests::cluster::Node| {
        std::fs::read_to_string(node.proc.log_path())
            .is_ok_and(|log| log.contains("cannot be opened") && log.contains("k1"))
    };
    assert!(
        cluster.registry.iter().any(logged),
        "no error log names the key id"
    );

    // With k1 back beside k2 the claim hands over exactly what was recorded.
    copy_key(&keys_dir(dir.path()), &other, "k1")?;
    rolling_restart(&mut cluster, |_| {}).await?;
    let claimed = until("a claim", Duration::from_secs(20), || async {
        claim(&cluster, &fence)
            .await
            .ok()?
            .ok()
            .filter(|c| !c.is_empty())
    })
    .await?;
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].material.as_ref(), Some(&material(0, true)));
    Ok(())
}

fn copy_key(from: &Path, to: &Path, id: &str) -> Result {
    std::fs::copy(from.join(id), to.join(id))?;
    Ok(())
}
