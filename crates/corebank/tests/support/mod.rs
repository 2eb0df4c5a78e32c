//! Starting real `corebank node` processes for tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};

pub struct NodeProcess {
    pub child: Child,
    pub grpc: SocketAddr,
    pub admin: Option<SocketAddr>,
}

impl NodeProcess {
    /// Starts `corebank node` with `args` and waits for its "ready" line.
    pub fn start(data_dir: &Path, args: &[&str]) -> Result<Self, String> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_corebank"))
            .arg("node")
            .arg("--data-dir")
            .arg(data_dir)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| e.to_string())?;
        let stdout = child.stdout.take().unwrap();
        let mut grpc = None;
        let mut admin = None;
        for line in BufReader::new(stdout).lines() {
            let line = line.map_err(|e| e.to_string())?;
            if let Some(rest) = line.strip_prefix("listening grpc ") {
                grpc = rest.split_whitespace().next().and_then(|a| a.parse().ok());
            }
            if let Some(rest) = line.strip_prefix("listening admin ") {
                admin = rest.trim().parse().ok();
            }
            if line == "ready" {
                return Ok(Self {
                    child,
                    grpc: grpc.ok_or("no grpc address printed")?,
                    admin,
                });
            }
        }
        let status = child.wait().map_err(|e| e.to_string())?;
        let mut stderr = String::new();
        if let Some(mut err) = child.stderr.take() {
            use std::io::Read;
            let _ = err.read_to_string(&mut stderr);
        }
        Err(format!(
            "the node exited ({status}) before it was ready:\n{stderr}"
        ))
    }

    pub fn insecure(data_dir: &Path) -> Self {
        Self::start(
            data_dir,
            &[
                "--branch",
                "0001",
                "--listen",
                "127.0.0.1:0",
                "--admin",
                "127.0.0.1:0",
                "--insecure",
            ],
        )
        .unwrap()
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.grpc)
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM and wait: a clean stop.
    pub fn stop(mut self) {
        #[cfg(unix)]
        {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(self.child.id().to_string())
                .status();
        }
        let _ = self.child.wait();
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
