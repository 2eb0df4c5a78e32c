//! A small HTTP/1.1 client over a std TCP stream, for tests against a real gateway:
//! requests with `Connection: close`, chunked bodies, and Server-Sent Events read
//! line by line.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use serde_json::Value;

#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    /// Lower-case names.
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {} {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// The problem's code, asserting the status.
    pub fn problem(&self, status: u16) -> String {
        assert_eq!(
            self.status,
            status,
            "expected {status}, got {}: {}",
            self.status,
            self.text()
        );
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "{}",
            self.text()
        );
        self.json()["code"].as_str().unwrap_or_default().to_owned()
    }
}

fn read_head(reader: &mut BufReader<TcpStream>) -> (u16, BTreeMap<String, String>) {
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .unwrap_or("0")
        .parse()
        .unwrap_or(0);
    let mut headers = BTreeMap::new();
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            break;
        }
        if let Some((name, value)) = trimmed.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
        }
    }
    (status, headers)
}

fn write_request(
    stream: &mut TcpStream,
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(body) = body {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    if let Some(body) = body {
        stream.write_all(body).unwrap();
    }
}

/// One request; the whole answer.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Response {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write_request(&mut stream, addr, method, path, headers, body);
    let mut reader = BufReader::new(stream);
    let (status, headers) = read_head(&mut reader);
    let mut body = Vec::new();
    if headers
        .get("transfer-encoding")
        .is_some_and(|v| v.contains("chunked"))
    {
        loop {
            let mut size = String::new();
            reader.read_line(&mut size).unwrap();
            let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if size == 0 {
                break;
            }
            let mut chunk = vec![0; size];
            reader.read_exact(&mut chunk).unwrap();
            body.extend_from_slice(&chunk);
            let mut crlf = String::new();
            reader.read_line(&mut crlf).unwrap();
        }
    } else {
        reader.read_to_end(&mut body).unwrap();
    }
    Response {
        status,
        headers,
        body,
    }
}

/// A client bound to a gateway and, optionally, a bearer token.
#[derive(Debug, Clone)]
pub struct Api {
    pub addr: SocketAddr,
    pub token: Option<String>,
}

impl Api {
    pub fn new(addr: SocketAddr) -> Self {
        Self { addr, token: None }
    }

    pub fn with_token(&self, token: &str) -> Self {
        Self {
            addr: self.addr,
            token: Some(token.to_owned()),
        }
    }

    fn auth(&self) -> Option<String> {
        self.token.as_ref().map(|t| {
            if t.starts_with("cbk_") {
                format!("ApiKey {t}")
            } else {
                format!("Bearer {t}")
            }
        })
    }

    pub fn get(&self, path: &str) -> Response {
        let auth = self.auth();
        let mut headers = Vec::new();
        if let Some(auth) = &auth {
            headers.push(("Authorization", auth.as_str()));
        }
        request(self.addr, "GET", path, &headers, None)
    }

    pub fn post(&self, path: &str, body: &Value) -> Response {
        self.post_with(path, body, &[])
    }

    pub fn post_with(&self, path: &str, body: &Value, extra: &[(&str, &str)]) -> Response {
        let auth = self.auth();
        let mut headers = vec![("Content-Type", "application/json")];
        if let Some(auth) = &auth {
            headers.push(("Authorization", auth.as_str()));
        }
        headers.extend_from_slice(extra);
        let body = serde_json::to_vec(body).unwrap();
        request(self.addr, "POST", path, &headers, Some(&body))
    }

    pub fn delete(&self, path: &str) -> Response {
        let auth = self.auth();
        let mut headers = Vec::new();
        if let Some(auth) = &auth {
            headers.push(("Authorization", auth.as_str()));
        }
        request(self.addr, "DELETE", path, &headers, None)
    }
}

/// A Server-Sent Events stream being read.
pub struct EventStream {
    reader: BufReader<TcpStream>,
    pub status: u16,
    pub headers: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default)]
pub struct SseEvent {
    pub id: Option<String>,
    pub event: String,
    pub data: String,
}

impl EventStream {
    pub fn open(addr: SocketAddr, path: &str, token: &str, last_event_id: Option<&str>) -> Self {
        let mut stream = TcpStream::connect(addr).unwrap();
        let auth = format!("Bearer {token}");
        let mut headers = vec![
            ("Authorization", auth.as_str()),
            ("Accept", "text/event-stream"),
        ];
        if let Some(id) = last_event_id {
            headers.push(("Last-Event-ID", id));
        }
        write_request(&mut stream, addr, "GET", path, &headers, None);
        stream
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let mut reader = BufReader::new(stream);
        let (status, headers) = read_head(&mut reader);
        Self {
            reader,
            status,
            headers,
        }
    }

    /// The next event (comments and keep-alives skipped) within `wait`.
    pub fn next(&mut self, wait: Duration) -> Option<SseEvent> {
        let deadline = Instant::now() + wait;
        let mut event = SseEvent::default();
        let mut line = String::new();
        while Instant::now() < deadline {
            line.clear();
            match self.reader.read_line(&mut line) {
                Ok(0) => return None,
                Ok(_) => {}
                Err(_) => continue,
            }
            // Chunk-size lines of the chunked encoding are not SSE fields.
            let text = line.trim_end_matches(['\r', '\n']);
            if let Some(value) = text.strip_prefix("data:") {
                event.data.push_str(value.trim_start());
            } else if let Some(value) = text.strip_prefix("event:") {
                event.event = value.trim().to_owned();
            } else if let Some(value) = text.strip_prefix("id:") {
                event.id = Some(value.trim().to_owned());
            } else if text.is_empty() && !event.event.is_empty() {
                return Some(event);
            }
        }
        None
    }

    /// Events until one of `kind` satisfies `want`.
    pub fn until(
        &mut self,
        kind: &str,
        wait: Duration,
        want: impl Fn(&Value) -> bool,
    ) -> Option<SseEvent> {
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            if let Some(event) = self.next(deadline.saturating_duration_since(Instant::now()))
                && event.event == kind
                && serde_json::from_str::<Value>(&event.data).is_ok_and(|v| want(&v))
            {
                return Some(event);
            }
        }
        None
    }
}
