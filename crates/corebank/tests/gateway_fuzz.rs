//! A schema-driven fuzz run against the gateway's own OpenAPI document
//! (schemathesis): generated requests for every operation, as an admin and as a
//! customer, must never get a 5xx, and every answer must match the document
//! (status codes, content types, bodies, headers).
//!
//! schemathesis comes from PyPI (`scripts/test-tools.sh` installs it into
//! `target/test-tools/venv`; `SCHEMATHESIS` names another executable). Without it the
//! test fails with a message saying how to install it, unless
//! `COREBANK_SKIP_EXTERNAL_TESTS=1`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::PathBuf;
use std::process::Command;

use serde_json::json;
use support::bank::{Bank, GatewayProcess};
use support::http::Api;

fn schemathesis() -> Option<PathBuf> {
    if let Ok(path) = std::env::var("SCHEMATHESIS") {
        return Some(PathBuf::from(path));
    }
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let local = workspace.join("target/test-tools/venv/bin/schemathesis");
    if local.exists() {
        return Some(local);
    }
    Command::new("schemathesis")
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|_| PathBuf::from("schemathesis"))
}

#[test]
fn schemathesis_finds_no_server_error_and_no_contract_violation() {
    let Some(tool) = schemathesis() else {
        if std::env::var("COREBANK_SKIP_EXTERNAL_TESTS").as_deref() == Ok("1") {
            eprintln!("skipped: schemathesis is not installed (COREBANK_SKIP_EXTERNAL_TESTS=1)");
            return;
        }
        panic!(
            "schemathesis is not installed: run scripts/test-tools.sh (or set SCHEMATHESIS), or COREBANK_SKIP_EXTERNAL_TESTS=1 to skip"
        );
    };
    let root = tempfile::tempdir().unwrap();
    let bank = Bank::start(root.path());
    let gateway = GatewayProcess::start(
        bank.registry_addr(),
        &root.path().join("gateway"),
        &[
            "--access-token-ttl",
            "7200",
            "--rate-limit-client",
            "100000",
            "--rate-limit-account",
            "100000",
            "--rate-limit-logins",
            "100000",
        ],
    );
    let api = Api::new(gateway.addr);
    let admin_token = api
        .post(
            "/api/v1/auth/login",
            &json!({"username": "admin", "password": "admin-password-1"}),
        )
        .json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let admin = api.with_token(&admin_token);
    assert_eq!(
        admin
            .post("/api/v1/users", &json!({"username": "fuzzy", "password": "fuzzy-password-1", "display_name": "Fuzzy", "role": "customer"}))
            .status,
        201
    );
    let customer_token = api
        .post(
            "/api/v1/auth/login",
            &json!({"username": "fuzzy", "password": "fuzzy-password-1"}),
        )
        .json()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        api.with_token(&customer_token)
            .post("/api/v1/accounts", &json!({"currency": "EUR"}))
            .status,
        201
    );
    let artifacts = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("schemathesis");
    std::fs::create_dir_all(&artifacts).unwrap();
    let base = format!("http://{}", gateway.addr);
    for (who, token) in [("admin", &admin_token), ("customer", &customer_token)] {
        let output = Command::new(&tool)
            .arg("--no-color")
            .arg("run")
            .arg(format!("{base}/openapi.json"))
            .args(["--url", &base])
            .args(["--checks", "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance"])
            .args(["--header", &format!("Authorization: Bearer {token}")])
            // Streams never end; sign-out, password changes and session revocation
            // would end the fuzzer's own session.
            .args(["--exclude-path-regex", "streams|logout|password|revoke-sessions|disable"])
            .args(["--max-examples", "8"])
            .args(["--request-timeout", "20"])
            .args(["--workers", "2"])
            .args(["--seed", "42"])
            .args(["--max-time", "150"])
            .env("SCHEMATHESIS_HOOKS", "")
            // Its cache of examples goes with the reports, not into the source tree.
            .current_dir(&artifacts)
            .output()
            .expect("running schemathesis");
        let report = format!(
            "{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        std::fs::write(artifacts.join(format!("{who}.txt")), &report).unwrap();
        assert!(
            output.status.success(),
            "schemathesis found problems as {who} (report in {}):\n{report}",
            artifacts.display()
        );
    }
    // The gateway is still healthy after the fuzzing.
    assert_eq!(api.get("/health").status, 200);
}
