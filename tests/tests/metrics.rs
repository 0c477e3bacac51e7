//! The metrics catalogue on a running cluster: every metric is exported with
//! its type, moves when cards print and when leadership changes, and every
//! metric the Grafana dashboard and the alert rules use is really exported.

use ektp_tests::cluster::{Cluster, Service, Spec};
use ektp_tests::probe::{record_and_authorise, sample, scrape, wait_printed};
use ektp_tests::retry::lazy_clients;
use ektp_tests::wait::until;
use std::collections::BTreeSet;
use std::time::Duration;

type Result = ektp_tests::Result<()>;

/// (name, type, exported by) — the catalogue ARCHITECTURE.md documents.
const CATALOGUE: &[(&str, &str, Service)] = &[
    ("ektp_print_cards_printed_total", "counter", Service::Print),
    ("ektp_print_attempts_total", "counter", Service::Print),
    ("ektp_print_duration_seconds", "histogram", Service::Print),
    ("ektp_print_queue_depth", "gauge", Service::Print),
    ("ektp_print_in_doubt_jobs", "gauge", Service::Print),
    ("ektp_print_blank_stock", "gauge", Service::Print),
    ("ektp_print_out_of_blanks", "gauge", Service::Print),
    ("ektp_printer_up", "gauge", Service::Print),
    ("ektp_registry_residents", "gauge", Service::Registry),
    ("ektp_registry_backlog", "gauge", Service::Registry),
    ("ektp_registry_totals", "gauge", Service::Registry),
];

/// Exported by both services.
const COMMON: &[(&str, &str)] = &[
    ("ektp_leader_is_leader", "gauge"),
    ("ektp_leader_epoch", "gauge"),
    ("ektp_leader_transitions_total", "counter"),
    ("ektp_leader_last_transition_timestamp_seconds", "gauge"),
    ("ektp_etcd_keepalive_failures_total", "counter"),
    ("ektp_etcd_request_duration_seconds", "histogram"),
    ("grpc_server_started_total", "counter"),
    ("grpc_server_handled_total", "counter"),
    ("grpc_server_handling_seconds", "histogram"),
    ("ektp_build_info", "gauge"),
    ("ektp_requests_shed_total", "counter"),
    ("ektp_auth_refused_total", "counter"),
    ("ektp_audit_write_failures_total", "counter"),
];

fn has_type(scrape: &str, name: &str, kind: &str) -> bool {
    scrape.lines().any(|l| l == format!("# TYPE {name} {kind}"))
}

/// Metric names a dashboard or rule file uses (`ektp_*`, `grpc_server_*`).
fn names_used(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for prefix in ["ektp_", "grpc_server_"] {
        for (at, _) in text.match_indices(prefix) {
            let before = text[..at].chars().next_back();
            if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
                continue;
            }
            let name: String = text[at..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            if !name.ends_with('_') {
                names.insert(name);
            }
        }
    }
    names
}

/// Series names in a scrape.
fn series_names(scrape: &str) -> BTreeSet<String> {
    scrape
        .lines()
        .filter(|l| {
            !l.starts_with('#') && !l.is_empty() && !l.starts_with("HTTP") && !l.contains(": ")
        })
        .filter_map(|l| l.split(['{', ' ']).next().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metric_catalogue_is_exported_moves_and_covers_the_dashboards_and_alerts() -> Result {
    let dir = tempfile::tempdir()?;
    let mut cluster = Cluster::start(Spec::test(dir.path())?).await?;
    let clients = lazy_clients(
        &cluster
            .registry
            .iter()
            .map(|n| n.address.clone())
            .collect::<Vec<_>>(),
    )?;
    record_and_authorise(&clients, 0..10).await?;
    wait_printed(&clients, 10, Duration::from_secs(60)).await?;

    let registry_leader = cluster
        .wait_leader(Service::Registry, Duration::from_secs(5))
        .await?;
    let registry_port = cluster.registry[registry_leader].metrics_port;
    until(
        "the registry gauges to show 10 printed",
        Duration::from_secs(20),
        || async {
            let text = scrape(registry_port).await.ok()?;
            (sample(&text, "ektp_registry_totals{kind=\"printed\"}")? == 10.0).then_some(())
        },
    )
    .await?;
    let print_leader = cluster
        .wait_leader(Service::Print, Duration::from_secs(5))
        .await?;
    let print_port = cluster.print[print_leader].metrics_port;
    until(
        "the print leader's queue gauges",
        Duration::from_secs(20),
        || async {
            scrape(print_port)
                .await
                .ok()?
                .contains("ektp_print_queue_depth ")
                .then_some(())
        },
    )
    .await?;

    let mut exported = BTreeSet::new();
    for node in cluster.registry.iter().chain(cluster.print.iter()) {
        exported.extend(series_names(&scrape(node.metrics_port).await?));
    }
    let registry_scrape = scrape(registry_port).await?;
    let print_scrape = scrape(print_port).await?;
    for (name, kind, service) in CATALOGUE {
        let text = if *service == Service::Print {
            &print_scrape
        } else {
            &registry_scrape
        };
        assert!(
            has_type(text, name, kind),
            "{name} ({kind}) missing from the {service:?} leader"
        );
    }
    for (name, kind) in COMMON {
        assert!(
            has_type(&registry_scrape, name, kind),
            "{name} ({kind}) missing from the registry"
        );
        assert!(
            has_type(&print_scrape, name, kind),
            "{name} ({kind}) missing from the print leader"
        );
    }
    for line in registry_scrape.lines().chain(print_scrape.lines()) {
        assert!(
            !line.contains("nik=") && !line.contains("serial="),
            "unbounded label: {line}"
        );
    }
    assert_eq!(sample(&registry_scrape, "ektp_registry_backlog"), Some(0.0));
    assert_eq!(
        sample(
            &registry_scrape,
            "ektp_registry_residents{status=\"printed\"}"
        ),
        Some(10.0)
    );
    assert_eq!(
        sample(
            &print_scrape,
            "ektp_print_cards_printed_total{printer=\"printer-1\"}"
        ),
        Some(10.0)
    );

    // Every metric the dashboard and the alert rules use is exported.
    let mut used = BTreeSet::new();
    for path in [
        "deploy/grafana/dashboards/ektp-overview.json",
        "deploy/prometheus/rules/ektp-alerts.yml",
    ] {
        let text = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join(path),
        )?;
        used.extend(names_used(&text));
    }
    assert!(used.len() > 10, "too few metric names found: {used:?}");
    let missing: Vec<_> = used.iter().filter(|n| !exported.contains(*n)).collect();
    assert!(
        missing.is_empty(),
        "used by dashboards or alerts but not exported: {missing:?}"
    );

    // Cards printing moves the counters; leadership moving moves the leader metrics.
    record_and_authorise(&clients, 10..15).await?;
    wait_printed(&clients, 15, Duration::from_secs(60)).await?;
    let old_epoch =
        sample(&print_scrape, "ektp_leader_epoch{service=\"print\"}").ok_or("no epoch")?;
    cluster.nodes_mut(Service::Print)[print_leader].proc.kill();
    let new = cluster
        .wait_new_leader(Service::Print, print_leader, Duration::from_secs(15))
        .await?;
    let new_port = cluster.print[new].metrics_port;
    let text = until(
        "the new print leader's metrics",
        Duration::from_secs(15),
        || async {
            let text = scrape(new_port).await.ok()?;
            (sample(&text, "ektp_leader_is_leader{service=\"print\"}")? == 1.0).then_some(text)
        },
    )
    .await?;
    assert!(sample(&text, "ektp_leader_epoch{service=\"print\"}").unwrap_or(0.0) > old_epoch);
    assert!(
        sample(&text, "ektp_leader_transitions_total{service=\"print\"}").unwrap_or(0.0) >= 1.0
    );
    until(
        "the registry totals to count 15 printed",
        Duration::from_secs(20),
        || async {
            let text = scrape(registry_port).await.ok()?;
            (sample(&text, "ektp_registry_totals{kind=\"printed\"}")? == 15.0).then_some(())
        },
    )
    .await?;
    let followers_backlog = sample(
        &scrape(cluster.registry[1 - registry_leader].metrics_port).await?,
        "ektp_registry_backlog",
    );
    assert_eq!(
        followers_backlog.unwrap_or(0.0),
        0.0,
        "followers report 0 for cluster-wide gauges"
    );
    Ok(())
}
