//! The web console in headless Chromium (Debian's `chromium`, driven by Playwright's
//! `playwright-core` from npm, `tests/browser/`): a customer signs in with a TOTP
//! second factor and makes a transfer that shows up live; an analyst releases a
//! held transfer; the dashboard renders live charts; the sign-in page is usable
//! with the keyboard. Screenshots land in `target/test-artifacts/browser/`.
//!
//! `scripts/test-tools.sh` installs Chromium and the npm packages. Without them the
//! test fails with a message saying so, unless `COREBANK_SKIP_EXTERNAL_TESTS=1`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::PathBuf;
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::json;
use support::bank::{Bank, GatewayProcess, base32_decode};
use support::http::Api;

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn chromium() -> Option<PathBuf> {
    std::env::var("CHROMIUM")
        .ok()
        .map(PathBuf::from)
        .or_else(|| {
            ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
                .iter()
                .map(PathBuf::from)
                .find(|p| p.exists())
        })
}

fn post_key(api: &Api, path: &str, body: &serde_json::Value, key: &str) -> support::http::Response {
    api.post_with(path, body, &[("Idempotency-Key", key)])
}

#[test]
fn the_console_works_in_a_real_browser() {
    let script = workspace().join("tests/browser/console.test.mjs");
    let modules = workspace().join("tests/browser/node_modules/playwright-core");
    let browser = chromium();
    if browser.is_none() || !modules.exists() {
        if std::env::var("COREBANK_SKIP_EXTERNAL_TESTS").as_deref() == Ok("1") {
            eprintln!(
                "skipped: Chromium or the npm packages are missing (COREBANK_SKIP_EXTERNAL_TESTS=1)"
            );
            return;
        }
        panic!(
            "the browser test needs Debian's chromium and `npm ci` in tests/browser: run scripts/test-tools.sh, or COREBANK_SKIP_EXTERNAL_TESTS=1 to skip"
        );
    }
    let root = tempfile::tempdir().unwrap();
    let bank = Bank::start(root.path());
    let gateway = GatewayProcess::start(
        bank.registry_addr(),
        &root.path().join("gateway"),
        &["--rate-limit-client", "1000", "--rate-limit-logins", "1000"],
    );
    let api = Api::new(gateway.addr);
    let admin = api.with_token(
        api.post(
            "/api/v1/auth/login",
            &json!({"username": "admin", "password": "admin-password-1"}),
        )
        .json()["access_token"]
            .as_str()
            .unwrap(),
    );
    for (name, role) in [
        ("cora", "customer"),
        ("dan", "customer"),
        ("ana", "analyst"),
        ("tess", "teller"),
    ] {
        let made = admin.post(
            "/api/v1/users",
            &json!({"username": name, "password": format!("{name}-password-1"), "display_name": name, "role": role}),
        );
        assert_eq!(made.status, 201, "{}", made.text());
    }
    let sign_in = |name: &str| {
        api.with_token(
            api.post(
                "/api/v1/auth/login",
                &json!({"username": name, "password": format!("{name}-password-1")}),
            )
            .json()["access_token"]
                .as_str()
                .unwrap(),
        )
    };
    let cora = sign_in("cora");
    let dan = sign_in("dan");
    let tess = sign_in("tess");
    let cora_account = cora
        .post("/api/v1/accounts", &json!({"currency": "EUR"}))
        .json()["number"]
        .as_str()
        .unwrap()
        .to_owned();
    let dan_account = dan
        .post("/api/v1/accounts", &json!({"currency": "EUR"}))
        .json()["number"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        post_key(
            &tess,
            "/api/v1/deposits",
            &json!({"account": cora_account, "amount": "5000.00"}),
            "browser-dep"
        )
        .status,
        201
    );
    // A payment the screen holds, for the analyst to release in the browser.
    let held = post_key(
        &cora,
        "/api/v1/transfers",
        &json!({"from_account": cora_account, "to_account": dan_account, "amount": "750.00"}),
        "browser-held",
    )
    .json();
    assert_eq!(held["status"], "held_for_review", "{held}");
    // Cora enrols a second factor; confirmed with the previous 30-second step's code
    // so that the browser's code (this step) has not been used.
    let enrolment = cora.post("/api/v1/me/totp", &json!({})).json();
    let secret = enrolment["secret"].as_str().unwrap().to_owned();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let code = corebank_identity::totp::code_at(&base32_decode(&secret), now - 30);
    let confirmed = cora.post("/api/v1/me/totp/confirm", &json!({"code": code}));
    assert_eq!(confirmed.status, 200, "{}", confirmed.text());

    let artifacts = workspace().join("target/test-artifacts/browser");
    std::fs::create_dir_all(&artifacts).unwrap();
    let output = Command::new("node")
        .arg(&script)
        .current_dir(workspace().join("tests/browser"))
        .env("GATEWAY_URL", format!("http://{}", gateway.addr))
        .env("CHROMIUM", browser.unwrap())
        .env("CUSTOMER_USER", "cora")
        .env("CUSTOMER_PASSWORD", "cora-password-1")
        .env("CUSTOMER_TOTP_SECRET", &secret)
        .env("CUSTOMER_TO_ACCOUNT", &dan_account)
        .env("ANALYST_USER", "ana")
        .env("ANALYST_PASSWORD", "ana-password-1")
        .env("ANALYST_TOTP_SECRET", "")
        .env("ADMIN_USER", "admin")
        .env("ADMIN_PASSWORD", "admin-password-1")
        .env("ADMIN_TOTP_SECRET", "")
        .env("HELD_TRANSFER_ID", held["transfer_id"].as_str().unwrap())
        .env("ARTIFACTS_DIR", &artifacts)
        .output()
        .expect("running node");
    let report = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    std::fs::write(artifacts.join("report.txt"), &report).unwrap();
    assert!(
        output.status.success(),
        "the browser tests failed:\n{report}"
    );
    // What the browser did is real: the held transfer was released, the payment made.
    let analyst = sign_in("ana");
    assert!(
        !analyst.get("/api/v1/risk/held").json()["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["transfer_id"] == held["transfer_id"]),
        "the analyst's release in the browser took effect"
    );
    let statement = dan
        .get(&format!(
            "/api/v1/accounts/{dan_account}/transactions?limit=20"
        ))
        .json();
    assert!(
        statement["items"].as_array().unwrap().len() >= 2,
        "{statement}"
    );
    let screenshots = std::fs::read_dir(&artifacts)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "png"))
        .count();
    assert!(
        screenshots >= 3,
        "only {screenshots} screenshots in {}",
        artifacts.display()
    );
}
