//! `status`: registry totals (Registry.GetStats) and the print-service as
//! every print replica that answers sees it (PrintControl.GetStatus).

use super::Ctx;
use crate::enums::short_of;
use crate::error::{CliError, code_name};
use crate::output::{Json, Table, array, pairs, yes_no};
use crate::view::printer_json;
use ektp_proto::v1 as pb;
use ektp_proto::v1::print_control_client::PrintControlClient;
use ektp_proto::v1::registry_client::RegistryClient;
use tonic::Status;

type Answers = Vec<(String, Result<pb::PrintStatus, Status>)>;

pub async fn run(ctx: &mut Ctx) -> Result<(), CliError> {
    let stats = ctx
        .registry()?
        .call(|ch| async move {
            RegistryClient::new(ch)
                .get_stats(pb::GetStatsRequest {})
                .await
        })
        .await;
    let answers: Answers = ctx
        .print()?
        .call_each(|ch| async move {
            PrintControlClient::new(ch)
                .get_status(pb::GetStatusRequest {})
                .await
        })
        .await;
    let leader = leader_view(&answers);
    ctx.emit(
        || text(stats.as_ref().ok(), leader, &answers),
        || json(stats.as_ref().ok(), leader, &answers),
    );
    if let Err(status) = stats {
        return Err(status.into());
    }
    if leader.is_none() {
        return Err(CliError::Failed("no print replica answered".into()));
    }
    Ok(())
}

/// The answer to trust for cluster-wide facts: the leader's, else any.
fn leader_view(answers: &Answers) -> Option<&pb::PrintStatus> {
    let answered = || answers.iter().filter_map(|(_, a)| a.as_ref().ok());
    answered()
        .find(|s| s.role() == pb::Role::Leader)
        .or_else(|| answered().next())
}

fn totals(s: &pb::Stats) -> [(&'static str, u64); 10] {
    [
        ("recorded", s.recorded),
        ("print_ready", s.print_ready),
        ("printed", s.printed),
        ("backlog", s.backlog),
        ("queued", s.queued),
        ("in_doubt", s.in_doubt),
        ("duplicates", s.duplicates),
        ("rejected", s.rejected),
        ("print_failed", s.print_failed),
        ("spoiled", s.spoiled),
    ]
}

fn error_text(status: &Status) -> String {
    format!("{}: {}", code_name(status.code()), status.message())
}

fn text(stats: Option<&pb::Stats>, leader: Option<&pb::PrintStatus>, answers: &Answers) -> String {
    let mut out = String::from("Registry\n");
    match stats {
        Some(s) => {
            let items: Vec<(&str, String)> = totals(s)
                .iter()
                .map(|(k, v)| (label(k), v.to_string()))
                .collect();
            out.push_str(&pairs("  ", &items));
        }
        None => out.push_str("  unavailable\n"),
    }
    out.push_str("\nPrint service\n");
    if let Some(l) = leader {
        let who = if l.leader_address.is_empty() {
            "none".to_owned()
        } else {
            format!("{} (epoch {})", l.leader_address, l.epoch)
        };
        out.push_str(&pairs(
            "  ",
            &[
                ("leader", who),
                ("blank stock", l.blank_stock.to_string()),
                ("out of blanks", yes_no(l.out_of_blanks).to_owned()),
                ("queue depth", l.queue_depth.to_string()),
            ],
        ));
    }
    let mut replicas = Table::new(&["REPLICA", "ROLE", "PRINTED TODAY"]).counts(&["PRINTED TODAY"]);
    let mut printers =
        Table::new(&["REPLICA", "PRINTER", "DRIVER", "PAUSED", "PRINTED"]).counts(&["PRINTED"]);
    for (endpoint, answer) in answers {
        match answer {
            Ok(s) => {
                let role = short_of::<pb::Role>(s.role).to_lowercase();
                replicas.row(vec![endpoint.clone(), role, s.printed_today.to_string()]);
                for p in &s.printers {
                    printers.row(vec![
                        endpoint.clone(),
                        p.name.clone(),
                        p.driver.clone(),
                        yes_no(p.paused).to_owned(),
                        p.printed.to_string(),
                    ]);
                }
            }
            Err(e) => replicas.row(vec![endpoint.clone(), "unreachable".into(), error_text(e)]),
        }
    }
    out.push('\n');
    out.push_str(&replicas.render("  "));
    out.push('\n');
    out.push_str(&printers.render("  "));
    out
}

fn label(key: &str) -> &str {
    match key {
        "print_ready" => "print-ready",
        "in_doubt" => "in doubt",
        "print_failed" => "failed",
        other => other,
    }
}

fn json(stats: Option<&pb::Stats>, leader: Option<&pb::PrintStatus>, answers: &Answers) -> String {
    let registry = stats.map_or_else(
        || "null".to_owned(),
        |s| {
            totals(s)
                .iter()
                .fold(Json::new(), |j, (k, v)| j.num(k, *v))
                .build()
        },
    );
    let replicas = answers
        .iter()
        .map(|(endpoint, answer)| match answer {
            Ok(s) => Json::new()
                .str("endpoint", endpoint)
                .str("role", &short_of::<pb::Role>(s.role).to_lowercase())
                .num("printed_today", s.printed_today)
                .raw(
                    "printers",
                    array(s.printers.iter().map(printer_json).collect()),
                )
                .build(),
            Err(e) => Json::new()
                .str("endpoint", endpoint)
                .str("role", "unreachable")
                .str("error", &error_text(e))
                .build(),
        })
        .collect();
    let print = match leader {
        Some(l) => Json::new()
            .str("leader_address", &l.leader_address)
            .num("epoch", l.epoch)
            .num("blank_stock", l.blank_stock)
            .bool("out_of_blanks", l.out_of_blanks)
            .num("queue_depth", l.queue_depth),
        None => Json::new(),
    };
    Json::new()
        .raw("registry", registry)
        .raw("print", print.raw("replicas", array(replicas)).build())
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answers() -> Answers {
        let leader = pb::PrintStatus {
            role: pb::Role::Leader as i32,
            leader_address: "http://127.0.0.1:50061".into(),
            epoch: 42,
            blank_stock: 9995,
            printed_today: 5,
            printers: vec![pb::PrinterStatus {
                name: "printer-1".into(),
                driver: "hotfolder".into(),
                paused: false,
                printed: 5,
            }],
            ..Default::default()
        };
        vec![
            ("http://127.0.0.1:50061".into(), Ok(leader)),
            (
                "http://127.0.0.1:50062".into(),
                Err(Status::unavailable("down")),
            ),
        ]
    }

    #[test]
    fn json_has_every_fact_with_numbers_as_numbers() {
        let stats = pb::Stats {
            recorded: 5,
            printed: 5,
            ..Default::default()
        };
        let answers = answers();
        let json = json(Some(&stats), leader_view(&answers), &answers);
        assert!(json.starts_with(r#"{"registry":{"recorded":5,"print_ready":0,"printed":5,"#));
        assert!(json.contains(r#""leader_address":"http://127.0.0.1:50061","epoch":42,"blank_stock":9995,"out_of_blanks":false"#), "{json}");
        assert!(json.contains(r#""role":"leader","printed_today":5,"printers":[{"name":"printer-1","driver":"hotfolder","paused":false,"printed":5}]"#), "{json}");
        assert!(
            json.contains(r#""role":"unreachable","error":"UNAVAILABLE: down""#),
            "{json}"
        );
    }

    #[test]
    fn text_shows_totals_leader_and_replicas() {
        let answers = answers();
        let text = text(Some(&pb::Stats::default()), leader_view(&answers), &answers);
        assert!(text.contains("  print-ready  0\n"), "{text}");
        assert!(
            text.contains("  leader         http://127.0.0.1:50061 (epoch 42)\n"),
            "{text}"
        );
        assert!(
            text.contains("  http://127.0.0.1:50062  unreachable  UNAVAILABLE: down\n"),
            "{text}"
        );
    }
}
