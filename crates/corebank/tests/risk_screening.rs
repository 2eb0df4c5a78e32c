//! The fraud screen inside a real `corebank node`, driven through `corebank client`:
//! held transfers wait in the review queue and move money exactly once when reviewed,
//! declined transfers change nothing, repeated high risk freezes the payer, the rules
//! file is hot-reloaded (and a broken one refused), and the fail-open / fail-closed
//! policy decides when the model is missing or a new one is corrupt.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{NodeProcess, client_failed as failed, client_json as client, client_ok as ok};

/// For mobile payments (channel 3): hold at 700.00 (log10 of 70,000 minor units is
/// 4.85), decline from 5,000.00 (5.7); thresholds at 1000 so that only these rules
/// decide (deposits at the counter pass).
const RULES: &str = r#"
version = 1

[[rule]]
name = "hold_large"
description = "Held for review: 500.00 to 3,000.00."
when = [{ feature = "channel", equals = 3 }, { feature = "amount_log10", at_least = 4.7 }, { feature = "amount_log10", below = 5.5 }]
score = 700
action = "hold"

[[rule]]
name = "decline_huge"
description = "Declined: 3,200.00 and more."
when = [{ feature = "channel", equals = 3 }, { feature = "amount_log10", at_least = 5.5 }]
score = 950
action = "decline"
"#;

/// `transfer FROM TO AMOUNT --channel mobile ARGS...`: a screened mobile payment.
fn mobile<'a>(from: &'a str, to: &'a str, amount: &'a str, rest: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["transfer", from, to, amount, "--channel", "mobile"];
    args.extend_from_slice(rest);
    args
}

fn start(dir: &Path, extra: &[&str]) -> NodeProcess {
    let mut args = vec![
        "--branch",
        "0001",
        "--listen",
        "127.0.0.1:0",
        "--insecure",
        "--risk-hold-threshold",
        "1000",
        "--risk-decline-threshold",
        "1000",
    ];
    args.extend_from_slice(extra);
    NodeProcess::start(dir, &args).unwrap()
}

fn open(node: &NodeProcess, customer: &str, deposit: &str) -> (String, String) {
    let account = ok(
        node,
        &["open-account", "--customer", customer, "--currency", "EUR"],
    );
    let number = account["account"].as_str().unwrap().to_owned();
    let id = account["account_id"].as_str().unwrap().to_owned();
    ok(node, &["deposit", &number, deposit]);
    (number, id)
}

fn available(node: &NodeProcess, number: &str) -> String {
    ok(node, &["balance", number])["available"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn posted(node: &NodeProcess, number: &str) -> String {
    ok(node, &["balance", number])["posted"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn held_declined_and_frozen_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.toml");
    std::fs::write(&rules, RULES).unwrap();
    let node = start(
        &dir.path().join("data"),
        &["--risk-rules", rules.to_str().unwrap()],
    );
    let (alice, alice_id) = open(&node, "alice", "10000.00");
    let (bob, _) = open(&node, "bob", "100.00");

    // Approved: an ordinary payment.
    let receipt = ok(
        &node,
        &mobile(&alice, &bob, "10.00", &["--idempotency-key", "k1"]),
    );
    assert_eq!(receipt["status"], "posted");
    assert_eq!(receipt["held_for_review"], false);

    // Held: created pending, the money reserved, nothing delivered yet.
    let receipt = ok(
        &node,
        &mobile(
            &alice,
            &bob,
            "700.00",
            &[
                "--idempotency-key",
                "k2",
                "--device",
                "phone-1",
                "--location",
                "48.8566,2.3522",
            ],
        ),
    );
    assert_eq!(receipt["status"], "pending", "{receipt}");
    assert_eq!(receipt["held_for_review"], true);
    assert_eq!(receipt["risk"]["reasons"][0]["name"], "hold_large");
    let held_id = receipt["transfer_id"].as_str().unwrap().to_owned();
    assert_eq!(available(&node, &alice), "9290.00");
    assert_eq!(posted(&node, &bob), "110.00");
    let queue = ok(&node, &["held"]);
    assert_eq!(queue["total"], 1);
    assert_eq!(queue["held"][0]["transfer_id"], held_id.as_str());
    assert_eq!(queue["held"][0]["assessment"]["verdict"], "hold");
    // A retry reports the same held transfer; the customer cannot capture it.
    let again = ok(
        &node,
        &mobile(&alice, &bob, "700.00", &["--idempotency-key", "k2"]),
    );
    assert_eq!(again["replayed"], true);
    assert_eq!(again["held_for_review"], true);
    failed(&node, &["capture-hold", &held_id], "held_for_review");

    // Released once: the money moves once; a second review is refused.
    let review = ok(
        &node,
        &[
            "review",
            &held_id,
            "--release",
            "--note",
            "called the customer",
        ],
    );
    assert_eq!(review["outcome"], "released");
    assert_eq!(posted(&node, &bob), "810.00");
    assert_eq!(available(&node, &alice), "9290.00");
    let refused = failed(
        &node,
        &["review", &held_id, "--reject"],
        "failed_precondition",
    );
    assert_eq!(refused["error"]["reason"], "not_held");
    assert_eq!(posted(&node, &bob), "810.00");
    let again = ok(
        &node,
        &mobile(&alice, &bob, "700.00", &["--idempotency-key", "k2"]),
    );
    assert_eq!(again["status"], "posted");

    // Held then rejected: the reservation returns.
    let receipt = ok(
        &node,
        &mobile(&alice, &bob, "800.00", &["--idempotency-key", "k3"]),
    );
    let rejected_id = receipt["transfer_id"].as_str().unwrap().to_owned();
    assert_eq!(available(&node, &alice), "8490.00");
    ok(
        &node,
        &[
            "review",
            &rejected_id,
            "--reject",
            "--note",
            "customer denies it",
        ],
    );
    assert_eq!(available(&node, &alice), "9290.00");
    assert_eq!(posted(&node, &bob), "810.00");
    assert_eq!(ok(&node, &["held"])["total"], 0);

    // Declined three times: no balance changes; the third freezes alice.
    for key in ["d1", "d2", "d3"] {
        let refused = failed(
            &node,
            &mobile(&alice, &bob, "5000.00", &["--idempotency-key", key]),
            "declined_by_risk",
        );
        assert!(
            refused["error"]["message"]
                .as_str()
                .unwrap()
                .contains(&alice)
        );
        assert_eq!(available(&node, &alice), "9290.00");
        assert_eq!(posted(&node, &bob), "810.00");
    }
    // A retry is declined again (not re-screened into an approval).
    failed(
        &node,
        &mobile(&alice, &bob, "5000.00", &["--idempotency-key", "d1"]),
        "declined_by_risk",
    );
    let frozen = ok(&node, &["frozen"]);
    assert_eq!(
        frozen["frozen"][0]["account_id"],
        alice_id.as_str(),
        "{frozen}"
    );
    failed(&node, &["transfer", &alice, &bob, "1.00"], "account_frozen");
    failed(&node, &["withdraw", &alice, "1.00"], "account_frozen");
    // Credits still arrive.
    ok(&node, &["transfer", &bob, &alice, "1.00"]);
    assert_eq!(available(&node, &alice), "9291.00");
    ok(
        &node,
        &["unfreeze", &alice_id, "--note", "verified in branch"],
    );
    ok(&node, &["transfer", &alice, &bob, "1.00"]);
    failed(&node, &["unfreeze", &alice_id], "failed_precondition");

    // The journal tells the story in order.
    let events = ok(&node, &["risk-events"]);
    let kinds: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds[..4],
        ["held", "released", "held", "rejected"],
        "{kinds:?}"
    );
    assert_eq!(
        kinds.iter().filter(|k| **k == "declined").count(),
        3,
        "{kinds:?}"
    );
    let frozen_at = kinds.iter().position(|k| *k == "frozen").unwrap();
    assert!(
        frozen_at > 4 && kinds.last() == Some(&"unfrozen"),
        "{kinds:?}"
    );
    let status = ok(&node, &["risk-status"]);
    assert_eq!(status["screening"], true);
    assert_eq!(status["failure_policy"], "open");

    // Hot reload: a stricter rules file takes effect without a restart; a broken one
    // is refused and the rules in force stay.
    let stricter = RULES.replace("at_least = 5.5 }]", "at_least = 3.5 }]");
    std::fs::write(&rules, stricter).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let output = client(&node, &mobile(&bob, &alice, "40.00", &[]));
        if !output.status.success() {
            let value: Value = serde_json::from_slice(&output.stdout).unwrap();
            assert_eq!(value["error"]["code"], "declined_by_risk", "{value}");
            break;
        }
        assert!(Instant::now() < deadline, "the new rules never took effect");
        std::thread::sleep(Duration::from_millis(200));
    }
    std::fs::write(&rules, "version = 1\n[[rule]]\nname = \"broken\"\nwhen = [{ feature = \"no_such_feature\", above = 1 }]\n").unwrap();
    std::thread::sleep(Duration::from_millis(2_500));
    failed(
        &node,
        &mobile(&bob, &alice, "40.00", &[]),
        "declined_by_risk",
    );
    ok(&node, &mobile(&bob, &alice, "20.00", &[]));
    node.stop();
}

#[test]
fn failure_policy_when_the_model_is_missing_and_bad_models_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-model.cbr");
    let missing = missing.to_str().unwrap();
    for (policy, expect_refusal) in [("closed", true), ("open", false)] {
        let node = start(
            &dir.path().join(policy),
            &[
                "--risk-model",
                missing,
                "--risk-require-model",
                "--risk-failure-policy",
                policy,
            ],
        );
        let account = ok(
            &node,
            &["open-account", "--customer", "carol", "--currency", "EUR"],
        );
        let number = account["account"].as_str().unwrap().to_owned();
        let other = ok(
            &node,
            &["open-account", "--customer", "dave", "--currency", "EUR"],
        );
        let other = other["account"].as_str().unwrap().to_owned();
        let deposit = client(
            &node,
            &["deposit", &number, "100.00", "--idempotency-key", "dep"],
        );
        if expect_refusal {
            assert!(!deposit.status.success());
            let value: Value = serde_json::from_slice(&deposit.stdout).unwrap();
            assert_eq!(value["error"]["code"], "risk_check_unavailable", "{value}");
            assert_eq!(posted(&node, &number), "0.00");
        } else {
            assert!(deposit.status.success());
            ok(&node, &["transfer", &number, &other, "10.00"]);
            assert_eq!(posted(&node, &other), "10.00");
        }
        let status = ok(&node, &["risk-status"]);
        assert_eq!(status["failure_policy"], policy);
        assert!(status["failures"].as_u64().unwrap() >= 1, "{status}");

        // A corrupt model file is refused with a clear error; nothing changes.
        let garbage = dir.path().join(format!("garbage-{policy}.cbr"));
        std::fs::write(&garbage, b"CBRSK not really a model").unwrap();
        let refused = failed(
            &node,
            &["load-model", "--file", garbage.to_str().unwrap()],
            "invalid_argument",
        );
        assert!(
            refused["error"]["message"]
                .as_str()
                .unwrap()
                .contains("model in service stays"),
            "{refused}"
        );
        let after = ok(&node, &["risk-status"]);
        assert!(
            after["engine"].as_str().unwrap().contains("model none"),
            "{after}"
        );
        node.stop();
    }
}

#[test]
fn screening_can_be_turned_off() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.toml");
    std::fs::write(&rules, RULES).unwrap();
    let node = start(
        &dir.path().join("data"),
        &["--risk", "off", "--risk-rules", rules.to_str().unwrap()],
    );
    let (alice, _) = open(&node, "alice", "10000.00");
    let (bob, _) = open(&node, "bob", "1.00");
    let receipt = ok(&node, &mobile(&alice, &bob, "5000.00", &[]));
    assert_eq!(receipt["status"], "posted");
    assert_eq!(ok(&node, &["risk-status"])["screening"], false);
    node.stop();
}

#[test]
fn bad_screening_input_is_refused_with_a_clear_error_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let node = start(&dir.path().join("data"), &[]);
    let (alice, _) = open(&node, "alice", "100.00");
    let (bob, _) = open(&node, "bob", "1.00");
    let bad_channel = failed(
        &node,
        &["transfer", &alice, &bob, "1.00", "--channel", "teleport"],
        "invalid_argument",
    );
    assert_eq!(
        bad_channel["error"]["field"], "context.channel",
        "{bad_channel}"
    );
    // The bank's own channel cannot be claimed by a caller.
    failed(
        &node,
        &["transfer", &alice, &bob, "1.00", "--channel", "internal"],
        "invalid_argument",
    );
    let bad_place = failed(
        &node,
        &["transfer", &alice, &bob, "1.00", "--location", "91,0"],
        "invalid_argument",
    );
    assert_eq!(bad_place["error"]["field"], "context", "{bad_place}");
    failed(
        &node,
        &[
            "transfer",
            &alice,
            &bob,
            "1.00",
            "--merchant-category",
            "123456",
        ],
        "invalid_argument",
    );
    assert_eq!(available(&node, &alice), "100.00");
    assert_eq!(posted(&node, &bob), "1.00");
    // Analysts' actions on what does not exist, or with an oversized note.
    failed(&node, &["freeze", "99999999999"], "account_not_found");
    failed(
        &node,
        &["review", "12345", "--release"],
        "failed_precondition",
    );
    let long = "x".repeat(501);
    let note = failed(
        &node,
        &["freeze", "10000001000", "--note", &long],
        "invalid_argument",
    );
    assert_eq!(note["error"]["field"], "note", "{note}");
    assert_eq!(ok(&node, &["frozen"])["frozen"], serde_json::json!([]));
    node.stop();
}
