//! Starting real `corebank node` and `corebank registry` processes for tests, and
//! watching the Raft groups they form.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use corebank_client::{Client, ClientConfig, v1};

pub mod agent;
pub mod bank;
pub mod http;

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
            "the {subcommand} exited ({status}) before it was ready:\n{stderr}"
        ))
    }

    pub fn insecure(data_dir: &Path) -> Self {
        Self::insecure_with(data_dir, &[])
    }

    /// [`Self::insecure`] with more flags.
    pub fn insecure_with(data_dir: &Path, extra: &[&str]) -> Self {
        let mut args = vec![
            "--branch",
            "0001",
            "--listen",
            "127.0.0.1:0",
            "--admin",
            "127.0.0.1:0",
            "--insecure",
        ];
        args.extend_from_slice(extra);
        Self::start(data_dir, &args).unwrap()
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

    /// SIGTERM, and the exit status (within 20 s); the stderr tail is printed when the
    /// process did not exit cleanly.
    pub fn stop_with_status(mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                if !status.success() {
                    eprintln!(
                        "the process at {} exited with {status}:\n{}",
                        self.grpc,
                        self.stderr_tail()
                    );
                }
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the process did not stop within 20 s of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
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

/// Ports free right now (bound together, then released for the processes to take).
pub fn free_ports(count: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    listeners
        .iter()
        .map(|listener| listener.local_addr().unwrap().port())
        .collect()
}

/// The `--member` list of founding replicas 1, 2, ... on `ports` of loopback.
pub fn member_list(ports: &[u16]) -> String {
    ports
        .iter()
        .enumerate()
        .map(|(index, port)| format!("{}=127.0.0.1:{port}", index + 1))
        .collect::<Vec<_>>()
        .join(",")
}

/// One replica of a Raft group (`corebank node` or `corebank registry`), started and
/// stopped as the test goes.
pub struct Replica {
    pub id: u64,
    pub port: u16,
    pub dir: PathBuf,
    /// `node` or `registry`.
    pub subcommand: &'static str,
    pub args: Vec<String>,
    pub process: Option<NodeProcess>,
}

impl Replica {
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn start(&mut self) {
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        let process = NodeProcess::start_subcommand(self.subcommand, &self.dir, &args)
            .unwrap_or_else(|error| panic!("replica {} did not start: {error}", self.id));
        self.process = Some(process);
    }

    pub fn kill(&mut self) {
        if let Some(process) = self.process.take() {
            process.kill();
        }
    }

    pub fn signal(&self, name: &str) {
        if let Some(process) = &self.process {
            process.signal(name);
        }
    }
}

/// One replica's own view of its group (its `Cluster.Status`).
pub async fn status_of(address: &str) -> Result<v1::ClusterStatus, String> {
    let config = ClientConfig::new(format!("http://{address}"))
        .with_connect_timeout(Duration::from_millis(500));
    let client = Client::connect(config).await.map_err(|e| e.to_string())?;
    let mut stub = client.cluster_stub();
    let mut request = tonic::Request::new(v1::ClusterStatusRequest {});
    request.set_timeout(Duration::from_secs(2));
    stub.status(request)
        .await
        .map(tonic::Response::into_inner)
        .map_err(|e| e.to_string())
}

/// Waits until a running replica (not in `excluded`) says it leads; its node id.
pub async fn wait_for_leader(replicas: &[Replica], excluded: &BTreeSet<u64>) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        for replica in replicas.iter().filter(|r| r.process.is_some()) {
            if let Ok(status) = status_of(&replica.address()).await
                && status.role == "leader"
                && !excluded.contains(&status.node_id)
            {
                return status.node_id;
            }
        }
        assert!(Instant::now() < deadline, "no leader elected within 30 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until every running replica has applied the same index, at least
/// `at_least`, with the same state digest; returns them.
pub async fn wait_for_convergence(replicas: &[Replica], at_least: u64) -> (u64, String) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut views = Vec::new();
        for replica in replicas.iter().filter(|r| r.process.is_some()) {
            match status_of(&replica.address()).await {
                Ok(status) => views.push((
                    replica.id,
                    status.last_applied_index,
                    status.state_digest.clone(),
                )),
                Err(error) => views.push((replica.id, 0, error)),
            }
        }
        if let Some((_, index, digest)) = views.first().cloned()
            && index >= at_least
            && views.iter().all(|(_, i, d)| *i == index && *d == digest)
        {
            return (index, digest);
        }
        assert!(
            Instant::now() < deadline,
            "the replicas did not converge within 60 s: {views:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `corebank client --server NODE --insecure --json ARGS...`.
pub fn client_json(node: &NodeProcess, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_corebank"))
        .arg("client")
        .arg("--server")
        .arg(node.grpc.to_string())
        .arg("--insecure")
        .arg("--json")
        .args(args)
        .env_remove("COREBANK_SERVER")
        .env_remove("COREBANK_API_KEY")
        .output()
        .unwrap()
}

/// A `corebank client` command that must succeed; its JSON.
pub fn client_ok(node: &NodeProcess, args: &[&str]) -> serde_json::Value {
    let output = client_json(node, args);
    assert!(
        output.status.success(),
        "{args:?} failed:\n{}{}\nnode: {}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        node.stderr_tail()
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// A `corebank client` command that must fail with `code`; its JSON.
pub fn client_failed(node: &NodeProcess, args: &[&str], code: &str) -> serde_json::Value {
    let output = client_json(node, args);
    assert!(!output.status.success(), "{args:?} should fail");
    let value: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(value["error"]["code"], code, "{args:?}: {value}");
    value
}
