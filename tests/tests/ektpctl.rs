//! The operator CLI against a real cluster: `ektpctl` imports residents from
//! a CSV (idempotently), authorises them, reports status and jobs as JSON,
//! adds blank stock once per request id, pauses and resumes the printer,
//! and reports a bad row with its field and exit code 1.

use ektp_proto::v1::Resident;
use ektp_tests::cluster::{Cluster, Spec};
use ektp_tests::probe::wait_printed;
use ektp_tests::residents::{photo, resident, signature};
use ektp_tests::retry::lazy_clients;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

type Result = ektp_tests::Result<()>;

const HEADER: &str = "nik,full_name,birth_place,birth_date,sex,blood_type,street,rt,rw,\
village,district,regency,province,religion,marital_status,occupation,citizenship,\
photo_file,signature_file";

/// A CSV field, quoted when it holds a comma or a quote.
fn field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// Short enum names as an operator would write them, from a resident.
fn csv_row(r: &Resident) -> String {
    let a = r.address.clone().unwrap_or_default();
    let sex = if r.sex == ektp_proto::v1::Sex::Male as i32 {
        "MALE"
    } else {
        "female"
    };
    [
        r.nik.as_str(),
        &r.full_name,
        &r.birth_place,
        &r.birth_date,
        sex,
        "O",
        // A street with a comma and a quote, to go through CSV quoting.
        &format!("{}, Gang \"Melati\"", a.street),
        &a.rt,
        &a.rw,
        &a.village,
        &a.district,
        &a.regency,
        &a.province,
        "Islam",
        "MARRIED",
        &r.occupation,
        "wni",
        "photo.jpg",
        "img/signature.png",
    ]
    .iter()
    .map(|f| field(f))
    .collect::<Vec<_>>()
    .join(",")
}

struct Ctl {
    bin: PathBuf,
    registry: String,
    print: String,
}

impl Ctl {
    fn run(&self, args: &[&str]) -> ektp_tests::Result<Output> {
        let output = std::process::Command::new(&self.bin)
            .args(["--registry", &self.registry, "--print", &self.print])
            .args(args)
            .env_remove("EKTP_REGISTRY_ENDPOINTS")
            .env_remove("EKTP_PRINT_ENDPOINTS")
            .output()?;
        eprintln!(
            "$ ektpctl {}\n-> {:?}\nstdout: {}stderr: {}",
            args.join(" "),
            output.status.code(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(output)
    }

    /// Runs and expects exit 0; returns stdout.
    fn ok(&self, args: &[&str]) -> ektp_tests::Result<String> {
        let output = self.run(args)?;
        if !output.status.success() {
            return Err(format!(
                "ektpctl {args:?} exited {:?}: {}",
                output.status.code(),
                String::from_utf8_lossy(&output.stderr)
            )
            .into());
        }
        Ok(String::from_utf8(output.stdout)?)
    }
}

fn write_csv(dir: &Path, name: &str, rows: &[String]) -> ektp_tests::Result<PathBuf> {
    let path = dir.join(name);
    let mut text = format!("{HEADER}\r\n");
    for row in rows {
        text.push_str(row);
        text.push_str("\r\n");
    }
    std::fs::write(&path, text)?;
    Ok(path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_imports_authorises_and_watches_cards_print() -> Result {
    let dir = tempfile::tempdir()?;
    let cluster = Cluster::start(Spec::test(&dir.path().join("cluster"))?).await?;
    let ctl = Ctl {
        bin: ektp_tests::bin_dir()?.join("ektpctl"),
        registry: cluster
            .registry
            .iter()
            .map(|n| n.address.clone())
            .collect::<Vec<_>>()
            .join(","),
        print: cluster
            .print
            .iter()
            .map(|n| n.address.clone())
            .collect::<Vec<_>>()
            .join(","),
    };
    if !ctl.bin.exists() {
        return Err("ektpctl not built: run `cargo build --workspace --bins` first".into());
    }

    // A CSV of 5 residents, with images next to it (one in a subdirectory).
    let data = dir.path().join("data");
    std::fs::create_dir_all(data.join("img"))?;
    std::fs::write(data.join("photo.jpg"), photo())?;
    std::fs::write(data.join("img/signature.png"), signature())?;
    let residents: Vec<Resident> = (0..5).map(resident).collect();
    let rows: Vec<String> = residents.iter().map(csv_row).collect();
    let csv = write_csv(&data, "residents.csv", &rows)?;
    let csv = csv.display().to_string();

    let out = ctl.ok(&["residents", "import", &csv])?;
    assert_eq!(out.trim(), "imported=5 already=0 failed=0");
    let out = ctl.ok(&["residents", "import", &csv])?;
    assert_eq!(
        out.trim(),
        "imported=0 already=5 failed=0",
        "a re-run is idempotent"
    );

    for r in &residents {
        let out = ctl.ok(&["authorize", &r.nik])?;
        assert!(out.contains("PRINT_READY"), "{out}");
    }
    let clients = lazy_clients(
        &cluster
            .registry
            .iter()
            .map(|n| n.address.clone())
            .collect::<Vec<_>>(),
    )?;
    wait_printed(&clients, 5, Duration::from_secs(60)).await?;

    let status = ctl.ok(&["status", "--output", "json"])?;
    assert!(
        status.starts_with(r#"{"registry":{"recorded":5,"print_ready":5,"printed":5,"#),
        "{status}"
    );
    assert!(status.contains(r#""role":"leader""#), "{status}");
    assert!(status.contains(r#""role":"follower""#), "{status}");
    let text = ctl.ok(&["status"])?;
    assert!(text.contains("printed"), "{text}");

    let jobs = ctl.ok(&["jobs", "list", "--state", "printed", "--output", "json"])?;
    assert!(
        jobs.trim().starts_with('[') && jobs.trim().ends_with(']'),
        "{jobs}"
    );
    assert_eq!(jobs.matches(r#""state":"PRINTED""#).count(), 5, "{jobs}");
    for r in &residents {
        assert!(jobs.contains(&format!(r#""nik":"{}""#, r.nik)), "{jobs}");
    }
    let limited = ctl.ok(&["jobs", "list", "--limit", "2", "--output", "json"])?;
    assert_eq!(limited.matches(r#""job_id":"#).count(), 2, "{limited}");

    // The same delivery twice adds once.
    let first = ctl.ok(&[
        "blanks",
        "add",
        "10",
        "--request-id",
        "t1",
        "--output",
        "json",
    ])?;
    let second = ctl.ok(&[
        "blanks",
        "add",
        "10",
        "--request-id",
        "t1",
        "--output",
        "json",
    ])?;
    let remaining = |json: &str| -> Option<u64> {
        let rest = json.split(r#""remaining":"#).nth(1)?;
        rest.trim_end().trim_end_matches('}').parse().ok()
    };
    let (a, b) = (remaining(&first), remaining(&second));
    assert!(a.is_some(), "{first}");
    assert_eq!(a, b, "a repeated request id must not add blanks again");
    assert_eq!(a, Some(10_000 - 5 + 10));

    // Pausing and resuming the printer.
    let paused = ctl.ok(&["printer", "pause", "printer-1", "--output", "json"])?;
    assert!(paused.contains(r#""paused":true"#), "{paused}");
    let resumed = ctl.ok(&["printer", "resume", "printer-1", "--output", "json"])?;
    assert!(resumed.contains(r#""paused":false"#), "{resumed}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_row_fails_the_import_with_its_field() -> Result {
    let dir = tempfile::tempdir()?;
    let cluster = Cluster::start(Spec::registry_only(&dir.path().join("cluster"))?).await?;
    let ctl = Ctl {
        bin: ektp_tests::bin_dir()?.join("ektpctl"),
        registry: cluster
            .registry
            .iter()
            .map(|n| n.address.clone())
            .collect::<Vec<_>>()
            .join(","),
        print: String::from("http://127.0.0.1:1"),
    };
    let data = dir.path().join("data");
    std::fs::create_dir_all(data.join("img"))?;
    std::fs::write(data.join("photo.jpg"), photo())?;
    std::fs::write(data.join("img/signature.png"), signature())?;
    let good = csv_row(&resident(7));
    let mut bad = resident(8);
    bad.nik = "12345".into();
    let csv = write_csv(&data, "bad.csv", &[good, csv_row(&bad)])?;

    let output = ctl.run(&["residents", "import", &csv.display().to_string()])?;
    let stdout = String::from_utf8(output.stdout)?;
    let stderr = String::from_utf8(output.stderr)?;
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(stdout.trim(), "imported=1 already=0 failed=1");
    assert!(stderr.contains("line 3"), "{stderr}");
    assert!(stderr.contains("  resident.nik: "), "{stderr}");

    // A file that cannot be read, or has the wrong header, is bad usage.
    let missing = ctl.run(&["residents", "import", "/nonexistent/residents.csv"])?;
    assert_eq!(missing.status.code(), Some(2));
    let wrong = data.join("wrong.csv");
    std::fs::write(&wrong, "nik,name\n1,A\n")?;
    let wrong = ctl.run(&["residents", "import", &wrong.display().to_string()])?;
    assert_eq!(wrong.status.code(), Some(2));
    assert!(String::from_utf8(wrong.stderr)?.contains("missing column"));

    // A failed call: one line with the gRPC code and message.
    let output = ctl.run(&["jobs", "show", "999999999999"])?;
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr)?;
    assert!(stderr.starts_with("ektpctl: NOT_FOUND: "), "{stderr}");
    Ok(())
}
