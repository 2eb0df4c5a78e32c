//! `corebank agent` against a real `corebank node`: a held transfer becomes an alert
//! at GET /alerts; POST /retrain records v0001 with its figures and promotes it to
//! the branch (its risk status names the model); a second retraining that is not
//! better is recorded but not promoted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::agent::start_agent;
use support::{NodeProcess, client_ok as ok};

/// Mobile payments (channel 3) of 500.00 and more are held (thresholds at 1000 so
/// that only this rule decides).
const RULES: &str = r#"
version = 1

[[rule]]
name = "hold_large"
description = "Held for review: 500.00 and more by mobile."
when = [{ feature = "channel", equals = 3 }, { feature = "amount_log10", at_least = 4.7 }]
score = 700
action = "hold"
"#;

/// One HTTP/1.1 request; (status, body).
fn http(addr: SocketAddr, method: &str, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(300)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap();
    (status, body.to_owned())
}

fn get_json(addr: SocketAddr, path: &str) -> Value {
    let (status, body) = http(addr, "GET", path);
    assert_eq!(status, 200, "GET {path}: {body}");
    serde_json::from_str(&body).unwrap()
}

fn post_json(addr: SocketAddr, path: &str) -> Value {
    let (status, body) = http(addr, "POST", path);
    assert_eq!(status, 200, "POST {path}: {body}");
    serde_json::from_str(&body).unwrap()
}

fn open(node: &NodeProcess, customer: &str, deposit: &str) -> String {
    let account = ok(
        node,
        &["open-account", "--customer", customer, "--currency", "EUR"],
    );
    let number = account["account"].as_str().unwrap().to_owned();
    ok(node, &["deposit", &number, deposit]);
    number
}

#[test]
fn alerts_retraining_and_promotion() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.toml");
    std::fs::write(&rules, RULES).unwrap();
    let node = NodeProcess::start(
        &dir.path().join("node"),
        &[
            "--branch",
            "0001",
            "--listen",
            "127.0.0.1:0",
            "--insecure",
            "--risk-hold-threshold",
            "1000",
            "--risk-decline-threshold",
            "1000",
            "--risk-rules",
            rules.to_str().unwrap(),
        ],
    )
    .unwrap();
    let branch = format!("0001={}", node.grpc);
    let agent_dir = dir.path().join("agent");
    // Small training sizes (debug build); any second version must beat the first by
    // more than 0.5 AUPRC to be promoted: impossible, so the outcome is deterministic.
    let agent = start_agent(
        &agent_dir,
        &[
            "--branch",
            &branch,
            "--insecure",
            "--poll-ms",
            "100",
            "--train-customers",
            "100",
            "--train-days",
            "20",
            "--train-trees",
            "20",
            "--min-improvement",
            "0.5",
        ],
    );
    assert_eq!(http(agent.http, "GET", "/health"), (200, "ok\n".to_owned()));

    // A held transfer becomes an alert.
    let alice = open(&node, "alice", "5000.00");
    let bob = open(&node, "bob", "10.00");
    let receipt = ok(
        &node,
        &[
            "transfer",
            &alice,
            &bob,
            "700.00",
            "--channel",
            "mobile",
            "--idempotency-key",
            "agent-k1",
        ],
    );
    assert_eq!(receipt["held_for_review"], true, "{receipt}");
    let held_id = receipt["transfer_id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(30);
    let alert = loop {
        let page = get_json(agent.http, "/alerts?after=0&limit=100");
        let found = page["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["kind"] == "held")
            .cloned();
        if let Some(alert) = found {
            break alert;
        }
        assert!(Instant::now() < deadline, "no held alert: {page}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(alert["transfer_id"], held_id.as_str(), "{alert}");
    assert_eq!(alert["branch"], 1);
    // Severity from the score: high from 900.
    let score = alert["score"].as_u64().unwrap();
    assert!(score >= 700, "{alert}");
    let expected = if score >= 900 { "high" } else { "medium" };
    assert_eq!(alert["severity"], expected, "{alert}");
    assert_eq!(alert["reasons"][0], "hold_large");
    let id = alert["id"].as_u64().unwrap();
    let later = get_json(agent.http, &format!("/alerts?after={id}"));
    assert!(
        later["alerts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["id"].as_u64().unwrap() > id)
    );
    assert_eq!(http(agent.http, "GET", "/alerts?after=x").0, 400);

    // The same alert as a server-sent event.
    let mut stream = TcpStream::connect(agent.http).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(
        stream,
        "GET /alerts/stream?after=0 HTTP/1.1\r\nHost: agent\r\nAccept: text/event-stream\r\n\r\n"
    )
    .unwrap();
    let mut lines = BufReader::new(stream).lines().map_while(Result::ok);
    assert!(
        lines.any(|l| l.starts_with("event: held")),
        "no held event streamed"
    );
    let data = lines.find(|l| l.starts_with("data: ")).unwrap();
    assert!(data.contains(&held_id), "{data}");

    // The branch is followed: positions and counts.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = get_json(agent.http, "/status");
        let b = &status["branches"][0];
        if b["transfers"].as_u64().unwrap() >= 3 {
            assert_eq!(b["branch"], 1);
            assert!(b["position"].as_u64().unwrap() > 0);
            assert!(b["risk_events"].as_u64().unwrap() >= 1);
            break;
        }
        assert!(Instant::now() < deadline, "branch not followed: {status}");
        std::thread::sleep(Duration::from_millis(100));
    }

    // First retraining: v0001, with its figures, promoted to the branch.
    let started = Instant::now();
    let v1 = post_json(agent.http, "/retrain");
    eprintln!("retrain v0001 took {:?}: {v1}", started.elapsed());
    assert_eq!(v1["name"], "v0001", "{v1}");
    assert_eq!(v1["promoted"], true, "{v1}");
    assert!(v1["auprc"].as_f64().unwrap() > 0.0, "{v1}");
    assert!(v1["train_rows"].as_u64().unwrap() > 0 && v1["train_positives"].as_u64().unwrap() > 0);
    for key in [
        "roc_auc",
        "recall_at_1pct_fpr",
        "recall_at_01pct_fpr",
        "precision_at_80pct_recall",
    ] {
        assert!(v1[key].as_f64().is_some(), "{key}: {v1}");
    }
    assert!(
        v1["promotion_errors"].as_array().unwrap().is_empty(),
        "{v1}"
    );
    let engine_v1 = v1["engine_version"].as_str().unwrap().to_owned();
    let models_dir = agent_dir.join("models");
    assert!(models_dir.join("v0001.cbr").exists() && models_dir.join("v0001.json").exists());
    let status = ok(&node, &["risk-status"]);
    assert!(
        status["engine"]
            .as_str()
            .unwrap()
            .contains(&format!("model {engine_v1}")),
        "{status}"
    );

    // Second: recorded, not promoted; the branch keeps v0001.
    let v2 = post_json(agent.http, "/retrain");
    assert_eq!(v2["name"], "v0002", "{v2}");
    assert_eq!(v2["promoted"], false, "{v2}");
    assert!(
        v2["decision"].as_str().unwrap().contains("kept v0001"),
        "{v2}"
    );
    assert_ne!(v2["train_seed"], v1["train_seed"]);
    assert_eq!(v2["test_seed"], v1["test_seed"]);
    assert!(models_dir.join("v0002.json").exists());
    let models = get_json(agent.http, "/models");
    assert_eq!(models["current"], "v0001", "{models}");
    assert_eq!(models["versions"].as_array().unwrap().len(), 2);
    let status = ok(&node, &["risk-status"]);
    assert!(
        status["engine"].as_str().unwrap().contains(&engine_v1),
        "{status}"
    );

    // Forcing v0002 pushes it; an unknown version is refused.
    let forced = post_json(agent.http, "/models/v0002/promote");
    assert_eq!(forced["promoted"], true, "{forced}");
    let engine_v2 = forced["engine_version"].as_str().unwrap();
    let status = ok(&node, &["risk-status"]);
    assert!(
        status["engine"].as_str().unwrap().contains(engine_v2),
        "{status}"
    );
    assert_eq!(get_json(agent.http, "/models")["current"], "v0002");
    assert_eq!(http(agent.http, "POST", "/models/v0042/promote").0, 404);

    // Metrics.
    let (code, metrics) = http(agent.http, "GET", "/metrics");
    assert_eq!(code, 200);
    assert!(
        metrics.contains("corebank_agent_alerts_total{kind=\"held\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("corebank_agent_model_versions 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("corebank_agent_events_total{branch=\"0001\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("corebank_agent_model_current_version 2"),
        "{metrics}"
    );
    drop(agent);
    node.stop();
}
