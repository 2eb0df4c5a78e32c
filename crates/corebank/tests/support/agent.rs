//! `corebank agent` as a real process for tests: started on a free port, ready when
//! it prints `ready`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A running agent; killed when dropped.
pub struct Agent {
    pub child: Child,
    /// The agent's HTTP API.
    pub http: SocketAddr,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn start_agent(data_dir: &Path, args: &[&str]) -> Agent {
    let mut child = Command::new(env!("CARGO_BIN_EXE_corebank"))
        .arg("agent")
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .env_remove("COREBANK_API_KEY")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut http = None;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap() == 0 {
            let status = child.wait().unwrap();
            panic!("the agent exited ({status}) before it was ready");
        }
        let text = line.trim_end();
        if let Some(rest) = text.strip_prefix("listening http ") {
            http = rest.trim().parse().ok();
        }
        if text == "ready" {
            break;
        }
    }
    std::thread::spawn(move || for _ in reader.lines().map_while(Result::ok) {});
    Agent {
        child,
        http: http.expect("no http address printed"),
    }
}
