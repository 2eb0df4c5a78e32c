//! A bank of real processes on loopback for the gateway's tests: a registry, one
//! branch (with the fraud screen holding online payments of 500.00 to 3,000.00)
//! and gateways.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::NodeProcess;

/// Online payments (channel 2) from 500.00 to 3,000.00 are held for review.
pub const HOLD_RULES: &str = r#"
version = 1

[[rule]]
name = "hold_large_online"
description = "Held for review: an online payment of 500.00 to 3,000.00."
when = [{ feature = "channel", equals = 2 }, { feature = "amount_log10", at_least = 4.7 }, { feature = "amount_log10", below = 5.5 }]
score = 700
action = "hold"
"#;

pub struct GatewayProcess {
    pub child: Child,
    pub addr: SocketAddr,
    pub stderr: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl GatewayProcess {
    /// `corebank gateway --registry R --data-dir D --insecure ARGS` with the bootstrap
    /// admin `admin` / `admin-password-1`.
    pub fn start(registry: SocketAddr, data_dir: &Path, args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_corebank"))
            .arg("gateway")
            .arg("--registry")
            .arg(registry.to_string())
            .arg("--data-dir")
            .arg(data_dir)
            .args([
                "--insecure",
                "--listen",
                "127.0.0.1:0",
                "--bootstrap-admin",
                "admin",
            ])
            .args(args)
            .env("COREBANK_ADMIN_PASSWORD", "admin-password-1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        if let Some(err) = child.stderr.take() {
            let lines = stderr.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(err).lines().map_while(Result::ok) {
                    let mut lines = lines.lock().unwrap();
                    if lines.len() > 200 {
                        lines.remove(0);
                    }
                    lines.push(line);
                }
            });
        }
        let stdout = child.stdout.take().unwrap();
        let mut reader = BufReader::new(stdout);
        let mut addr = None;
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap() == 0 {
                let _ = child.wait();
                panic!(
                    "the gateway exited before it was ready: {}",
                    stderr.lock().unwrap().join("\n")
                );
            }
            let text = line.trim();
            if let Some(url) = text.strip_prefix("corebank gateway: listening http://") {
                addr = url.parse().ok();
            }
            if text == "ready" {
                break;
            }
        }
        std::thread::spawn(move || for _ in reader.lines().map_while(Result::ok) {});
        Self {
            child,
            addr: addr.expect("the gateway printed no address"),
            stderr,
        }
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A registry and one branch (0001) registered with it, screening with HOLD_RULES.
pub struct Bank {
    pub registry: NodeProcess,
    pub branch: NodeProcess,
}

impl Bank {
    pub fn start(root: &Path) -> Self {
        let registry = NodeProcess::start_subcommand(
            "registry",
            &root.join("registry"),
            &[
                "--listen",
                "127.0.0.1:0",
                "--insecure",
                "--reconcile-every",
                "0",
            ],
        )
        .unwrap();
        let rules = root.join("rules.toml");
        std::fs::write(&rules, HOLD_RULES).unwrap();
        let registry_addr = registry.grpc.to_string();
        let rules_arg = rules.display().to_string();
        let branch = NodeProcess::start(
            &root.join("branch-1"),
            &[
                "--branch",
                "0001",
                "--listen",
                "127.0.0.1:0",
                "--insecure",
                "--registry",
                &registry_addr,
                "--risk-rules",
                &rules_arg,
                "--risk-hold-threshold",
                "1000",
                "--risk-decline-threshold",
                "1000",
            ],
        )
        .unwrap();
        // The branch registers itself with the registry and then heartbeats: wait
        // until the registry knows its leader.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let client = corebank_registry::RegistryClient::new(
            corebank_registry::RegistryClientConfig::new(vec![registry.grpc.to_string()]),
        )
        .unwrap();
        eventually(
            Duration::from_secs(30),
            "the branch in the registry",
            || {
                runtime
                    .block_on(client.list_branches(None))
                    .ok()
                    .filter(|branches| branches.iter().any(|b| b.leader.is_some()))
            },
        );
        Self { registry, branch }
    }

    pub fn registry_addr(&self) -> SocketAddr {
        self.registry.grpc
    }
}

/// Polls `check` until it gives Some, or panics after `wait`.
pub fn eventually<T>(wait: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + wait;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// RFC 4648 base32 (no padding), for TOTP secrets.
pub fn base32_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut bits = 0u64;
    let mut count = 0u32;
    let mut out = Vec::new();
    for c in text.bytes().filter(|c| *c != b'=') {
        let value = ALPHABET
            .iter()
            .position(|a| *a == c.to_ascii_uppercase())
            .unwrap() as u64;
        bits = (bits << 5) | value;
        count += 5;
        if count >= 8 {
            count -= 8;
            out.push(((bits >> count) & 0xff) as u8);
        }
    }
    out
}
