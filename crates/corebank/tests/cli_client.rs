//! `corebank client` against a real `corebank node --insecure` process: the
//! commands scripts and runbooks rely on, their JSON, their tables and their errors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::{Command, Output};

use serde_json::Value;
use support::NodeProcess;

/// `corebank client --server ADDR --insecure ARGS...`.
fn client(node: &NodeProcess, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_corebank"))
        .arg("client")
        .arg("--server")
        .arg(node.grpc.to_string())
        .arg("--insecure")
        .args(args)
        .env_remove("COREBANK_SERVER")
        .env_remove("COREBANK_API_KEY")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// Runs a `--json` command that must succeed; stdout must be exactly one object.
fn ok_json(node: &NodeProcess, args: &[&str]) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let output = client(node, &all);
    assert!(
        output.status.success(),
        "{args:?} failed:\n{}{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    let value: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "{args:?}: not one JSON object ({e}): {}",
            text(&output.stdout)
        )
    });
    assert!(value.is_object(), "{value}");
    value
}

/// Runs a `--json` command that must fail; checks the error object, the stderr
/// line and the exit status, and returns the error object.
fn failed_json(node: &NodeProcess, args: &[&str], code: &str) -> Value {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let output = client(node, &all);
    assert!(!output.status.success(), "{args:?} should fail");
    let value: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(value["error"]["code"], code, "{args:?}: {value}");
    assert!(
        value["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
    let stderr = text(&output.stderr);
    assert!(
        stderr.starts_with(&format!("error: {code}: ")) && stderr.lines().count() == 1,
        "{args:?}: {stderr:?}"
    );
    value
}

fn ok_text(node: &NodeProcess, args: &[&str]) -> String {
    let output = client(node, args);
    assert!(
        output.status.success(),
        "{args:?} failed: {}",
        text(&output.stderr)
    );
    text(&output.stdout)
}

#[test]
fn banking_commands_against_a_real_node() {
    let dir = tempfile::tempdir().unwrap();
    let node = NodeProcess::insecure(dir.path());

    // Open two accounts.
    let opened = ok_json(
        &node,
        &["open-account", "--customer", "alice", "--currency", "EUR"],
    );
    let alice = opened["account"].as_str().unwrap().to_owned();
    assert_eq!(alice.len(), 22, "{opened}");
    assert_eq!(opened["currency"], "EUR");
    let bob = ok_json(
        &node,
        &[
            "open-account",
            "--customer",
            "bob",
            "--currency",
            "EUR",
            "--product",
            "savings",
        ],
    )["account"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(alice, bob);

    // Deposit.
    let deposit = ok_json(&node, &["deposit", &alice, "100.00"]);
    assert_eq!(deposit["amount"], "100.00");
    assert_eq!(deposit["currency"], "EUR");
    assert_eq!(deposit["replayed"], false);
    assert_eq!(deposit["credit_account"], alice.as_str());
    let deposit_id = deposit["transfer_id"].as_str().unwrap().to_owned();
    assert!(deposit_id.parse::<u128>().is_ok(), "{deposit}");

    // A transfer, then the same command again: replayed, money moved once.
    let transfer = [
        "transfer",
        &alice,
        &bob,
        "30.25",
        "--idempotency-key",
        "cli-test-0001",
    ];
    let first = ok_json(&node, &transfer);
    assert_eq!(first["amount"], "30.25");
    assert_eq!(first["replayed"], false);
    assert_eq!(first["idempotency_key"], "cli-test-0001");
    let second = ok_json(&node, &transfer);
    assert_eq!(second["replayed"], true);
    assert_eq!(second["transfer_id"], first["transfer_id"]);

    // Balances.
    let balance = ok_json(&node, &["balance", &alice]);
    assert_eq!(balance["account"], alice.as_str());
    assert_eq!(balance["currency"], "EUR");
    assert_eq!(balance["posted"], "69.75");
    assert_eq!(balance["pending"], "0.00");
    assert_eq!(balance["available"], "69.75");
    assert_eq!(balance["pending_credits"], "0.00");
    assert_eq!(ok_json(&node, &["balance", &bob])["posted"], "30.25");

    // History: the deposit and the payment, once each.
    let history = ok_json(&node, &["history", &alice]);
    assert_eq!(history["account"], alice.as_str());
    assert_eq!(history["currency"], "EUR");
    let entries = history["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{history}");
    assert_eq!(entries[0]["direction"], "credit");
    assert_eq!(entries[0]["amount"], "100.00");
    assert_eq!(entries[0]["transfer_id"], deposit_id.as_str());
    assert_eq!(entries[1]["direction"], "debit");
    assert_eq!(entries[1]["amount"], "30.25");
    assert_eq!(entries[1]["counterparty"], bob.as_str());
    assert_eq!(entries[1]["balance_after"], "69.75");
    assert!(entries[1]["time"].as_str().unwrap().ends_with('Z'));
    let limited = ok_json(&node, &["history", &alice, "--limit", "1"]);
    assert_eq!(limited["entries"].as_array().unwrap().len(), 1);
    assert_eq!(limited["more"], true);

    // Refusals: exit status, error object, stderr line; nothing moved.
    failed_json(
        &node,
        &["withdraw", &alice, "1000.00"],
        "insufficient_funds",
    );
    failed_json(
        &node,
        &["deposit", "XC00CORE00010000001000", "1.00"],
        "invalid_account_number",
    );
    failed_json(&node, &["deposit", &alice, "-5.00"], "invalid_amount");
    failed_json(&node, &["deposit", &alice, "1.234"], "invalid_amount");
    failed_json(
        &node,
        &["lookup-account", "XC68CORE00010000001001"],
        "invalid_account_number",
    );
    failed_json(&node, &["release-hold", "not-a-number"], "invalid_argument");
    assert_eq!(ok_json(&node, &["balance", &alice])["available"], "69.75");

    // Holds: place, capture part; the rest is available again.
    let hold = ok_json(
        &node,
        &["place-hold", &alice, "10.00", "--timeout-seconds", "600"],
    );
    assert_eq!(hold["status"], "active");
    let hold_id = hold["hold_id"].as_str().unwrap().to_owned();
    let held = ok_json(&node, &["balance", &alice]);
    assert_eq!(
        (&held["pending"], &held["available"]),
        (&Value::from("10.00"), &Value::from("59.75"))
    );
    let captured = ok_json(&node, &["capture-hold", &hold_id, "4.00"]);
    assert_eq!(captured["status"], "captured");
    assert_eq!(captured["captured_amount"], "4.00");
    failed_json(&node, &["release-hold", &hold_id], "hold_not_active");
    let after = ok_json(&node, &["balance", &alice]);
    assert_eq!(
        (&after["posted"], &after["available"]),
        (&Value::from("65.75"), &Value::from("65.75"))
    );

    // Ledger lookups, by account number and by id.
    let accounts = ok_json(&node, &["lookup-account", &alice, "99"]);
    assert_eq!(accounts["accounts"][0]["account_number"], alice.as_str());
    assert_eq!(accounts["accounts"][0]["credits_posted"], "100.00");
    assert_eq!(accounts["accounts"][0]["debits_posted_minor"], "3425");
    assert_eq!(accounts["not_found"], serde_json::json!(["99"]));
    let transfers = ok_json(&node, &["lookup-transfer", &deposit_id]);
    assert_eq!(transfers["transfers"][0]["amount"], "100.00");
    assert_eq!(transfers["transfers"][0]["amount_minor"], "10000");
    assert_eq!(transfers["transfers"][0]["credit_account"], alice.as_str());

    // Tables.
    let table = ok_text(&node, &["balance", &alice]);
    assert!(table.starts_with("ACCOUNT"), "{table}");
    assert!(
        table.contains(&alice) && table.contains("65.75") && table.contains("EUR"),
        "{table}"
    );
    let table = ok_text(&node, &["history", &alice]);
    for needle in [alice.as_str(), bob.as_str(), "100.00", "30.25", "69.75"] {
        assert!(table.contains(needle), "{needle} missing:\n{table}");
    }
    let opened = ok_text(
        &node,
        &["open-account", "--customer", "carol", "--currency", "EUR"],
    );
    assert_eq!(opened.trim().len(), 22, "{opened:?}");
    assert!(ok_text(&node, &["deposit", &alice, "1.00"]).contains("1.00 EUR"));
}

#[test]
fn tls_needs_a_ca_and_the_api_key_is_never_printed() {
    let output = Command::new(env!("CARGO_BIN_EXE_corebank"))
        .args(["client", "--server", "127.0.0.1:9", "--json", "balance"])
        .arg("XC68CORE00010000001000")
        .env_remove("COREBANK_SERVER")
        .env("COREBANK_API_KEY", "cbk_0123456789ab_hunter2")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(
        stderr.starts_with("error: invalid_config: TLS needs a CA to trust"),
        "{stderr}"
    );
    let value: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(value["error"]["code"], "invalid_config");
    assert!(!stderr.contains("hunter2") && !text(&output.stdout).contains("hunter2"));
}
