//! The binary as a user runs it: real processes, real pipes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

fn corebank() -> Command {
    Command::new(env!("CARGO_BIN_EXE_corebank"))
}

fn case(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../replay/tests/cases")
        .join(name)
}

#[test]
fn replay_from_a_file_and_from_stdin_give_the_expected_lines() {
    let expected = std::fs::read_to_string(case("readme_example.expected.jsonl")).unwrap();
    let from_file = corebank()
        .args(["ledger", "replay"])
        .arg(case("readme_example.jsonl"))
        .output()
        .unwrap();
    assert!(from_file.status.success());
    assert_eq!(String::from_utf8(from_file.stdout).unwrap(), expected);

    let mut child = corebank()
        .args(["ledger", "replay"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let input = std::fs::read(case("readme_example.jsonl")).unwrap();
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    assert_eq!(String::from_utf8(output.stdout).unwrap(), expected);
}

#[test]
fn replay_answers_each_line_before_the_next_arrives() {
    let mut child = corebank()
        .args(["ledger", "replay"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut answer = String::new();
    writeln!(
        stdin,
        r#"{{"op":"create_accounts","events":[{{"id":"1","ledger":978,"code":10}}]}}"#
    )
    .unwrap();
    stdout.read_line(&mut answer).unwrap();
    assert_eq!(answer, "{\"results\":[]}\n");
    answer.clear();
    // Binary garbage and a lone carriage return are answered, not fatal.
    stdin.write_all(b"\xff\xfe\n\r\n").unwrap();
    stdout.read_line(&mut answer).unwrap();
    assert_eq!(answer, "{\"error\":\"line is not valid UTF-8\"}\n");
    answer.clear();
    stdout.read_line(&mut answer).unwrap();
    assert!(answer.contains("empty line"), "{answer}");
    drop(stdin);
    assert!(child.wait().unwrap().success());
}

#[test]
fn replay_of_a_missing_file_fails_with_a_clear_message() {
    let output = corebank()
        .args(["ledger", "replay", "/nonexistent/commands.jsonl"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains("cannot open /nonexistent/commands.jsonl"),
        "{stderr}"
    );
}

#[test]
fn demo_runs_three_branches_with_cross_branch_transfers_and_reconciles() {
    let output = corebank()
        .args([
            "demo",
            "--seconds",
            "2",
            "--quiet",
            "--customers",
            "500",
            "--fraud-customers",
            "40",
            "--fraud-days",
            "10",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        output.status.success(),
        "demo failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for branch in ["0001", "0002", "0003"] {
        let line = stdout
            .lines()
            .find(|line| line.trim_start().starts_with(branch) && line.contains("accounts"))
            .unwrap_or_else(|| panic!("no line for branch {branch}:\n{stdout}"));
        assert!(
            line.contains("debits = credits: ok") && line.contains("invariants: ok"),
            "{line}"
        );
    }
    for currency in ["EUR", "USD", "GBP"] {
        assert!(
            stdout.lines().any(|line| line
                .trim_start()
                .starts_with(&format!("{currency}  debits"))
                && line.ends_with("ok")),
            "no bank-wide line for {currency}:\n{stdout}"
        );
    }
    // The simulated customers' traffic went through the fraud screen.
    assert!(stdout.contains("Fraud screening"), "{stdout}");
    let legitimate = stdout
        .lines()
        .find(|line| line.trim_start().starts_with("legitimate"))
        .unwrap_or_else(|| panic!("no screening line for legitimate traffic:\n{stdout}"));
    let screened: u64 = legitimate
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(screened > 100, "{legitimate}");
    let cross = stdout
        .lines()
        .find(|line| line.contains("cross-branch") && line.contains("started"))
        .unwrap_or_else(|| panic!("no cross-branch line:\n{stdout}"));
    let posted: u64 = cross
        .split(" posted")
        .next()
        .and_then(|head| head.rsplit(' ').next())
        .and_then(|n| n.replace(',', "").parse().ok())
        .unwrap_or(0);
    assert!(posted > 0, "no cross-branch transfer was posted: {cross}");
    assert!(stdout.contains("breaks: none"), "{stdout}");
    assert!(stdout.contains("result      OK"), "{stdout}");
}

#[test]
fn bench_json_is_one_object_with_the_throughput() {
    let output = corebank()
        .args([
            "bench",
            "ledger",
            "--accounts",
            "100",
            "--transfers",
            "20000",
            "--batch",
            "1000",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(output.status.success());
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(report["transfers_per_second"].as_f64().unwrap() > 0.0);
    assert_eq!(report["transfers"], 20000);
    assert_eq!(report["created"], 20000);
}

#[test]
fn every_subcommand_has_help() {
    for args in [
        &["--help"][..],
        &["demo", "--help"],
        &["ledger", "replay", "--help"],
        &["bench", "ledger", "--help"],
    ] {
        let output = corebank().args(args).output().unwrap();
        assert!(output.status.success(), "{args:?}");
        assert!(!output.stdout.is_empty());
    }
}

#[test]
fn bad_flags_are_refused_with_a_message() {
    let output = corebank()
        .args(["bench", "ledger", "--batch", "9000"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(!output.stderr.is_empty());
    // A malformed branch route is named before anything is contacted.
    let output = corebank()
        .args(["reconcile", "--insecure", "--branch", "1=127.0.0.1:8080"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("write BRANCH=HOST:PORT"), "{stderr}");
    let output = corebank()
        .args([
            "node",
            "--branch",
            "0001",
            "--data-dir",
            "/nonexistent/x",
            "--insecure",
        ])
        .args(["--registry", "no-port"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("invalid registry address"), "{stderr}");
}
