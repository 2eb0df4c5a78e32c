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
    /// The last lines the node wrote on stderr (drained all along, so that a chatty
    /// node never blocks on a full pipe).
    pub stderr: std::sync::Arc<std::sync::Mutex<std::collections::VecDeque<String>>>,
}

const STDERR_LINES_KEPT: usize = 200;

impl NodeProcess {
    /// Starts `corebank node` with `args` and waits for its "ready" line.
    pub fn start(data_dir: &Path, args: &[&str]) -> Result<Self, String> {
        Self::start_subcommand("node", data_dir, args)
    }

    /// Starts `corebank SUBCOMMAND --data-dir DIR ARGS` (a node or a registry) and waits
    /// for its "ready" line.
    pub fn start_subcommand(
        subcommand: &str,
        data_dir: &Path,
        args: &[&str],
    ) -> Result<Self, String> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_corebank"))
            .arg(subcommand)
            .arg("--data-dir")
            .arg(data_dir)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| e.to_string())?;
        let stdout = child.stdout.take().unwrap();
        let stderr_lines =
            std::sync::Arc::new(std::sync::Mutex::new(std::collections::VecDeque::new()));
        if let Some(err) = child.stderr.take() {
            let lines = std::sync::Arc::clone(&stderr_lines);
            std::thread::spawn(move || {
                for line in BufReader::new(err).lines().map_while(Result::ok) {
                    let mut lines = lines.lock().unwrap();
                    if lines.len() == STDERR_LINES_KEPT {
                        lines.pop_front();
                    }
                    lines.push_back(line);
                }
            });
        }
        let mut grpc = None;
        let mut admin = None;
        let mut reader = BufReader::new(stdout);
        let mut buffer = String::new();
        loop {
            buffer.clear();
            if reader.read_line(&mut buffer).map_err(|e| e.to_string())? == 0 {
                break;
            }
            let line = buffer.trim_end();
            if let Some(rest) = line.strip_prefix("listening grpc ") {
                grpc = rest.split_whitespace().next().and_then(|a| a.parse().ok());
            }
            if let Some(rest) = line.strip_prefix("listening admin ") {
                admin = rest.trim().parse().ok();
            }
            if line == "ready" {
                // Keep draining stdout too.
                std::thread::spawn(move || for _ in reader.lines().map_while(Result::ok) {});
                return Ok(Self {
                    child,
                    grpc: grpc.ok_or("no grpc address printed")?,
                    admin,
                    stderr: stderr_lines,
                });
            }
        }
        let status = child.wait().map_err(|e| e.to_string())?;
        std::thread::sleep(std::time::Duration::from_millis(100));
        let stderr = stderr_lines
            .lock()
            .unwrap()
            .iter()
            .cloned()
            .collect::<Vec<_>>()
            .join("\n");
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

    /// The last lines of the node's stderr, for failure messages.
    pub fn stderr_tail(&self) -> String {
        self.stderr
            .lock()
            .unwrap()
            .iter()
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Sends a signal by name (`USR1`, `TERM`, ...).
    pub fn signal(&self, name: &str) {
        let _ = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status();
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
