//! # corebank-audit
//!
//! The bank's audit trail as the gateway writes it: every grant and denial of access,
//! every sign-in, token refresh and role change, every money movement asked through
//! the gateway. Append-only, SHA-256 hash-chained, durable before acknowledged,
//! searchable by auditors, and verifiable end to end, naming the first broken link.
//!
//! ## Format
//!
//! A directory of segment files `audit-000001.jsonl`, `audit-000002.jsonl`, ...
//! holding one JSON record per line (`\n`-terminated). A new segment starts once the
//! current one would grow past [`AuditTrailConfig::segment_bytes`] (64 MiB by
//! default); one batch is never split across two segments. A record is its
//! [`AuditEntry`] fields plus `seq` (1, 2, ... with no gap), `prev_hash` and `hash`
//! (64 lowercase hex digits each). A line is exactly `serde_json` of
//! [`AuditRecord`], fields in this order: `seq`, `at_ms`, `actor`, `role`, `action`,
//! `resource`, `outcome`, `code`, `detail`, `client`, `request_id`, `prev_hash`,
//! `hash`; a line in any other spelling (extra fields, spaces, other escapes) counts
//! as changed.
//!
//! ## Hash chain
//!
//! `hash = SHA-256(prev ‖ canonical)`, where `prev` is the previous record's hash as
//! 32 raw bytes (32 zero bytes for record 1) and `canonical` is the compact JSON of
//! the record without `hash`: the same fields in the same order as above, ending
//! with `prev_hash` ([`canonical_bytes`], [`chain_hash`]). Changing, removing or
//! reordering any record breaks its own link or the next one, and [`verify_dir`]
//! names the first record that does not fit (sequence number, segment, line).
//! Cutting records off the *end* leaves a shorter valid chain: only a head hash kept
//! elsewhere (see [`AuditLog::head`]; a running [`AuditTrail::verify`] compares
//! against its own) can show that.
//!
//! ## Durability
//!
//! [`AuditLog::append`] writes a batch and `fsync`s it once before returning. The
//! async [`AuditTrail`] is a handle to one writer task: entries queue on a bounded
//! channel, the writer takes everything queued, appends it and syncs once (group
//! commit). [`AuditTrail::record_durable`] returns after its batch is on disk. A
//! failed write or sync poisons the trail: every later write is refused with the
//! original error ([`AuditError::Failed`]) and [`AuditTrail::is_healthy`] turns
//! false, so no record is dropped without someone hearing of it.
//!
//! At open, a torn last line (a crash in the middle of a write: no trailing newline,
//! or an unparsable final line of the last segment) is cut off and reported
//! ([`AuditLog::repaired_tail`]); it was never acknowledged. A broken link anywhere
//! else refuses the start ([`AuditError::Broken`]): an auditor must look.
//!
//! ## Limits
//!
//! - Fields are cut at a character boundary to [`FIELD_BYTES_MAX`] bytes,
//!   [`DETAIL_BYTES_MAX`] for `detail`: the entry is recorded, shortened, never refused.
//! - The newest [`AuditTrailConfig::memory_records`] records (100,000 by default) are
//!   kept in memory for searches; older ones are found by reading the segments
//!   newest first, which costs a read of each segment reached. Memory is bounded by
//!   that count times the record size (at most about 3 KiB, typically a few
//!   hundred bytes).
//! - One writer per directory: nothing locks the directory, so two processes
//!   appending to the same trail would break the chain.
//! - A query answers at most [`QUERY_LIMIT_MAX`] records per page.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// The longest field, in bytes.
pub const FIELD_BYTES_MAX: usize = 256;
/// The longest `detail`, in bytes.
pub const DETAIL_BYTES_MAX: usize = 1024;
/// The most records one query answers.
pub const QUERY_LIMIT_MAX: u32 = 500;
/// The default segment size.
pub const SEGMENT_BYTES_DEFAULT: u64 = 64 * 1024 * 1024;

/// The most queued commands the writer takes into one batch; bounds the latency of
/// the first record of a very large burst.
const BATCH_MAX: usize = 4096;

const ZERO_HASH: [u8; 32] = [0; 32];

/// What happened to the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Access was granted (or the action succeeded).
    Granted,
    /// Access was refused.
    Denied,
    /// Access was granted but the action failed.
    Failed,
}

impl Outcome {
    /// `granted`, `denied` or `failed`, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Granted => "granted",
            Self::Denied => "denied",
            Self::Failed => "failed",
        }
    }
}

/// One thing to record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// When, in milliseconds since the Unix epoch.
    pub at_ms: u64,
    /// `user:42`, `apikey:ab12`, `anonymous`.
    pub actor: String,
    /// The actor's role when it acted.
    pub role: String,
    /// `auth.login`, `transfer.create`, `risk.review`, ...
    pub action: String,
    /// `account:XC68...`, `user:7`, ...
    pub resource: String,
    /// Granted, denied or failed.
    pub outcome: Outcome,
    /// `ok` or the refusal's stable code.
    pub code: String,
    /// Free text (amounts, reasons); at most [`DETAIL_BYTES_MAX`] bytes.
    pub detail: String,
    /// The client's address.
    pub client: String,
    /// The request's identifier, to join with other logs.
    pub request_id: String,
}

/// A record of the trail: an entry with its place in the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// 1, 2, ... without gaps.
    pub seq: u64,
    /// What was recorded (its fields sit at the top level of the JSON line).
    #[serde(flatten)]
    pub entry: AuditEntry,
    /// The previous record's `hash` (64 zeros for record 1).
    pub prev_hash: String,
    /// `SHA-256(prev ‖ canonical)` in lowercase hex ([`chain_hash`]).
    pub hash: String,
}

/// The canonical form that is hashed: the record without its hash. The field order
/// here is the format; changing it changes every hash.
#[derive(Serialize)]
struct Canonical<'a> {
    seq: u64,
    at_ms: u64,
    actor: &'a str,
    role: &'a str,
    action: &'a str,
    resource: &'a str,
    outcome: Outcome,
    code: &'a str,
    detail: &'a str,
    client: &'a str,
    request_id: &'a str,
    prev_hash: &'a str,
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

/// 32 bytes from 64 hex digits (either case); `None` for anything else.
pub fn unhex32(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, slot) in out.iter_mut().enumerate() {
        *slot = u8::from_str_radix(text.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

/// The bytes that are hashed for `record`: compact JSON of every field but `hash`,
/// in the documented order. `record.hash` is ignored.
pub fn canonical_bytes(record: &AuditRecord) -> Vec<u8> {
    let canonical = Canonical {
        seq: record.seq,
        at_ms: record.entry.at_ms,
        actor: &record.entry.actor,
        role: &record.entry.role,
        action: &record.entry.action,
        resource: &record.entry.resource,
        outcome: record.entry.outcome,
        code: &record.entry.code,
        detail: &record.entry.detail,
        client: &record.entry.client,
        request_id: &record.entry.request_id,
        prev_hash: &record.prev_hash,
    };
    // Serialising strings, integers and a unit enum into memory cannot fail; an
    // empty result would anyway never match a stored hash.
    serde_json::to_vec(&canonical).unwrap_or_default()
}

/// The hash of a record: SHA-256 of the previous record's hash (32 raw bytes) then
/// [`canonical_bytes`]. `record.hash` is ignored, so an external verifier can
/// recompute and compare.
pub fn chain_hash(prev: &[u8; 32], record: &AuditRecord) -> [u8; 32] {
    let mut context = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    context.update(prev);
    context.update(&canonical_bytes(record));
    let digest = context.finish();
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

fn cut(text: &mut String, max: usize) {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
}

impl AuditEntry {
    /// The entry with every field cut to its limit at a character boundary.
    pub fn bounded(mut self) -> Self {
        for field in [
            &mut self.actor,
            &mut self.role,
            &mut self.action,
            &mut self.resource,
            &mut self.code,
            &mut self.client,
            &mut self.request_id,
        ] {
            cut(field, FIELD_BYTES_MAX);
        }
        cut(&mut self.detail, DETAIL_BYTES_MAX);
        self
    }
}

/// Why the trail cannot do what was asked.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum AuditError {
    /// A file or directory could not be read or written.
    #[error("audit trail I/O on {path}: {detail}")]
    Io {
        /// The file or directory.
        path: String,
        /// The operating system's complaint.
        detail: String,
    },
    /// The chain does not hold: a record was changed, removed or reordered.
    #[error("the audit trail is broken at record {seq}: {reason}")]
    Broken {
        /// The first record that does not fit (the expected one when missing).
        seq: u64,
        /// What is wrong, with the segment and line.
        reason: String,
    },
    /// The writer task has ended (shut down, or its runtime stopped).
    #[error("the audit trail's writer has stopped")]
    Stopped,
    /// An earlier write failed; the trail refuses to write until restarted.
    #[error("the audit trail failed to write earlier and refuses new records: {0}")]
    Failed(String),
}

impl AuditError {
    /// A stable code for logs and problem documents.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Io { .. } => "audit_io",
            Self::Broken { .. } => "audit_broken",
            Self::Stopped => "audit_stopped",
            Self::Failed(_) => "audit_failed",
        }
    }
}

fn io(path: &Path, error: &std::io::Error) -> AuditError {
    AuditError::Io {
        path: path.display().to_string(),
        detail: error.to_string(),
    }
}

/// Settings of a trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditTrailConfig {
    /// A new segment once the current one would grow past this many bytes.
    pub segment_bytes: u64,
    /// The newest records kept in memory for searches.
    pub memory_records: usize,
    /// Entries queued before [`AuditTrail::record`] waits.
    pub queue: usize,
}

impl Default for AuditTrailConfig {
    fn default() -> Self {
        Self {
            segment_bytes: SEGMENT_BYTES_DEFAULT,
            memory_records: 100_000,
            queue: 16_384,
        }
    }
}

/// The first link that does not hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BrokenLink {
    /// The record's sequence number (the expected one when a record is missing).
    pub seq: u64,
    /// The segment's file name, e.g. `audit-000002.jsonl`.
    pub segment: String,
    /// 1-based line in the segment.
    pub line: u64,
    /// What is wrong.
    pub reason: String,
}

/// What verification found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    /// Records that verified (all of them before the first broken link).
    pub records: u64,
    /// Segment files found.
    pub segments: u32,
    /// The last verified record's sequence number (0 when none).
    pub head_seq: u64,
    /// The last verified record's hash (64 zeros when none).
    pub head_hash: String,
    /// The first broken link, if any.
    pub first_broken: Option<BrokenLink>,
    /// The last line of the last segment is incomplete: a crash, or a writer in the
    /// middle of a write. Not a broken link (it was never acknowledged);
    /// [`AuditLog::open`] cuts it off.
    pub torn_tail: bool,
}

fn segment_name(index: u32) -> String {
    format!("audit-{index:06}.jsonl")
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The segment files of `dir`, oldest first.
fn segments(dir: &Path) -> Result<Vec<(u32, PathBuf)>, AuditError> {
    let mut found = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| io(dir, &e))?;
    for entry in entries {
        let entry = entry.map_err(|e| io(dir, &e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(index) = name
            .strip_prefix("audit-")
            .and_then(|rest| rest.strip_suffix(".jsonl"))
            .and_then(|n| n.parse::<u32>().ok())
        {
            found.push((index, entry.path()));
        }
    }
    found.sort();
    Ok(found)
}

fn sync_dir(dir: &Path) -> Result<(), AuditError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io(dir, &e))
}

/// A line as the writer would have written it, or `None` when it is anything else
/// (unparsable, extra fields, other spacing or escapes).
fn parse_line(line: &[u8]) -> Option<AuditRecord> {
    let record: AuditRecord = serde_json::from_slice(line).ok()?;
    let again = serde_json::to_vec(&record).ok()?;
    (again == line).then_some(record)
}

struct Scan {
    report: VerifyReport,
    /// The last segment and the byte length to keep, when its last line is torn.
    torn: Option<(PathBuf, u64)>,
    /// The last segment: index, path and length of its good records.
    last_segment: Option<(u32, PathBuf, u64)>,
}

/// Reads every segment in order checking the chain, calling `each` per good record,
/// and stops at the first broken link or after record `stop_after`.
fn scan(
    dir: &Path,
    stop_after: Option<u64>,
    mut each: impl FnMut(&AuditRecord),
) -> Result<Scan, AuditError> {
    let list = segments(dir)?;
    let mut prev = ZERO_HASH;
    let mut expected = 1u64;
    let mut report = VerifyReport {
        records: 0,
        segments: u32::try_from(list.len()).unwrap_or(u32::MAX),
        head_seq: 0,
        head_hash: hex(&prev),
        first_broken: None,
        torn_tail: false,
    };
    let mut torn = None;
    let mut last_segment = None;
    let count = list.len();
    let mut line = Vec::new();
    for (position, (index, path)) in list.iter().enumerate() {
        let file = File::open(path).map_err(|e| io(path, &e))?;
        let mut reader = BufReader::new(file);
        let mut good_bytes = 0u64;
        let mut line_number = 0u64;
        let segment = file_name(path);
        loop {
            line.clear();
            let read = reader
                .read_until(b'\n', &mut line)
                .map_err(|e| io(path, &e))?;
            if read == 0 {
                break;
            }
            line_number += 1;
            let body = line.strip_suffix(b"\n");
            let parsed = body.and_then(parse_line);
            let Some(record) = parsed else {
                let at_end =
                    body.is_none() || reader.fill_buf().map_err(|e| io(path, &e))?.is_empty();
                if at_end && position + 1 == count {
                    report.torn_tail = true;
                    torn = Some((path.clone(), good_bytes));
                    break;
                }
                report.first_broken = Some(BrokenLink {
                    seq: expected,
                    segment,
                    line: line_number,
                    reason: "the line is not an audit record as written (changed or cut)"
                        .to_owned(),
                });
                return Ok(Scan {
                    report,
                    torn,
                    last_segment,
                });
            };
            let hash = chain_hash(&prev, &record);
            let reason = if record.seq != expected {
                Some(format!(
                    "sequence number {} where {expected} was expected (a record is missing or out of order)",
                    record.seq
                ))
            } else if record.prev_hash != hex(&prev) {
                Some("its prev_hash is not the hash of the record before it".to_owned())
            } else if unhex32(&record.hash) != Some(hash) {
                Some("its contents do not match its hash (the record was changed)".to_owned())
            } else {
                None
            };
            if let Some(reason) = reason {
                report.first_broken = Some(BrokenLink {
                    seq: expected,
                    segment,
                    line: line_number,
                    reason,
                });
                return Ok(Scan {
                    report,
                    torn,
                    last_segment,
                });
            }
            prev = hash;
            each(&record);
            report.records += 1;
            report.head_seq = record.seq;
            report.head_hash = record.hash;
            expected += 1;
            good_bytes += u64::try_from(read).unwrap_or(u64::MAX);
            if stop_after.is_some_and(|stop| report.head_seq >= stop) {
                return Ok(Scan {
                    report,
                    torn,
                    last_segment,
                });
            }
        }
        last_segment = Some((*index, path.clone(), good_bytes));
    }
    Ok(Scan {
        report,
        torn,
        last_segment,
    })
}

/// Verifies the trail in `dir` end to end. It only reads, so it may run beside a
/// writer (a line being written shows as [`VerifyReport::torn_tail`]).
pub fn verify_dir(dir: &Path) -> Result<VerifyReport, AuditError> {
    Ok(scan(dir, None, |_| {})?.report)
}

/// Verifies the trail in `dir` up to and including record `seq`.
pub fn verify_dir_upto(dir: &Path, seq: u64) -> Result<VerifyReport, AuditError> {
    Ok(scan(dir, Some(seq), |_| {})?.report)
}

/// What to search for; results come newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Exactly this actor.
    pub actor: Option<String>,
    /// An action or its prefix (`auth.`).
    pub action: Option<String>,
    /// Only this outcome.
    pub outcome: Option<Outcome>,
    /// Part of the resource.
    pub resource: Option<String>,
    /// Part of actor, action, resource, code or detail, in any case.
    pub text: Option<String>,
    /// At or after this time (ms since the epoch).
    pub since_ms: Option<u64>,
    /// At or before this time (ms since the epoch).
    pub until_ms: Option<u64>,
    /// Only records before this sequence number: the cursor from
    /// [`AuditPage::next_before_seq`].
    pub before_seq: Option<u64>,
    /// 1 to [`QUERY_LIMIT_MAX`] (clamped).
    pub limit: u32,
}

/// A query made ready to match: its text lowered once.
struct Matcher<'a> {
    query: &'a AuditQuery,
    text: Option<String>,
}

impl<'a> Matcher<'a> {
    fn new(query: &'a AuditQuery) -> Self {
        Self {
            query,
            text: query.text.as_ref().map(|t| t.to_lowercase()),
        }
    }

    fn matches(&self, record: &AuditRecord) -> bool {
        let q = self.query;
        let e = &record.entry;
        q.before_seq.is_none_or(|before| record.seq < before)
            && q.actor.as_ref().is_none_or(|a| e.actor == *a)
            && q.action
                .as_ref()
                .is_none_or(|a| e.action.starts_with(a.as_str()))
            && q.outcome.is_none_or(|o| e.outcome == o)
            && q.resource
                .as_ref()
                .is_none_or(|r| e.resource.contains(r.as_str()))
            && q.since_ms.is_none_or(|s| e.at_ms >= s)
            && q.until_ms.is_none_or(|u| e.at_ms <= u)
            && self.text.as_ref().is_none_or(|t| {
                [&e.actor, &e.action, &e.resource, &e.code, &e.detail]
                    .iter()
                    .any(|field| field.to_lowercase().contains(t.as_str()))
            })
    }
}

/// A page of results, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditPage {
    /// The records found.
    pub items: Vec<AuditRecord>,
    /// Pass as `before_seq` for the next (older) page; `None` on the last page.
    pub next_before_seq: Option<u64>,
}

fn page_limit(query: &AuditQuery) -> usize {
    usize::try_from(query.limit.clamp(1, QUERY_LIMIT_MAX)).unwrap_or(500)
}

/// What memory answered, and where the files must take over.
struct Partial {
    items: Vec<AuditRecord>,
    /// Records before this sequence number are not in memory.
    files_below: Option<u64>,
}

/// Reads the records of one segment that parse, skipping anything else (open has
/// verified the chain; a line being written is simply not there yet).
fn read_segment(path: &Path) -> Result<Vec<AuditRecord>, AuditError> {
    let file = File::open(path).map_err(|e| io(path, &e))?;
    let mut reader = BufReader::new(file);
    let mut records = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = reader
            .read_until(b'\n', &mut line)
            .map_err(|e| io(path, &e))?;
        if read == 0 {
            break;
        }
        if let Some(record) = line
            .strip_suffix(b"\n")
            .and_then(|body| serde_json::from_slice::<AuditRecord>(body).ok())
        {
            records.push(record);
        }
    }
    Ok(records)
}

/// Finishes a query from the segment files: the newest matches below `below`,
/// reading segments newest first and stopping once the page is full.
fn finish_from_files(
    dir: &Path,
    query: &AuditQuery,
    partial: Partial,
) -> Result<AuditPage, AuditError> {
    let limit = page_limit(query);
    let mut items = partial.items;
    if let Some(below) = partial.files_below
        && items.len() <= limit
    {
        let bound = query.before_seq.map_or(below, |b| b.min(below));
        let narrowed = AuditQuery {
            before_seq: Some(bound),
            ..query.clone()
        };
        let matcher = Matcher::new(&narrowed);
        for (_, path) in segments(dir)?.iter().rev() {
            let records = read_segment(path)?;
            if records.first().is_some_and(|r| r.seq >= bound) {
                continue;
            }
            items.extend(records.into_iter().rev().filter(|r| matcher.matches(r)));
            if items.len() > limit {
                break;
            }
        }
    }
    let next_before_seq = if items.len() > limit {
        items.truncate(limit);
        items.last().map(|r| r.seq)
    } else {
        None
    };
    Ok(AuditPage {
        items,
        next_before_seq,
    })
}

/// The trail on disk, written by one owner.
#[derive(Debug)]
pub struct AuditLog {
    dir: PathBuf,
    config: AuditTrailConfig,
    file: File,
    segment: u32,
    segment_len: u64,
    head_seq: u64,
    head: [u8; 32],
    recent: VecDeque<AuditRecord>,
    repaired_tail: bool,
    /// Set by the first failed write: after it the file's state is unknown (a failed
    /// `fsync` may have dropped pages), so nothing more is appended.
    failed: Option<String>,
}

impl AuditLog {
    /// Opens (or creates) the trail in `dir` with the default settings.
    pub fn open(dir: &Path) -> Result<Self, AuditError> {
        Self::open_with(dir, AuditTrailConfig::default())
    }

    /// Opens (or creates) the trail in `dir`, checking the whole chain. A torn last
    /// line is cut off ([`Self::repaired_tail`]); any other broken link is
    /// [`AuditError::Broken`].
    pub fn open_with(dir: &Path, config: AuditTrailConfig) -> Result<Self, AuditError> {
        std::fs::create_dir_all(dir).map_err(|e| io(dir, &e))?;
        let keep = config.memory_records;
        let mut recent = VecDeque::with_capacity(keep.min(4096));
        let scan = scan(dir, None, |record| {
            if keep > 0 {
                if recent.len() == keep {
                    recent.pop_front();
                }
                recent.push_back(record.clone());
            }
        })?;
        if let Some(broken) = &scan.report.first_broken {
            return Err(AuditError::Broken {
                seq: broken.seq,
                reason: format!(
                    "{} ({} line {})",
                    broken.reason, broken.segment, broken.line
                ),
            });
        }
        let mut repaired_tail = false;
        if let Some((path, keep_bytes)) = &scan.torn {
            let file = OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(|e| io(path, &e))?;
            file.set_len(*keep_bytes).map_err(|e| io(path, &e))?;
            file.sync_all().map_err(|e| io(path, &e))?;
            repaired_tail = true;
            tracing::warn!(
                segment = %path.display(),
                head_seq = scan.report.head_seq,
                "the audit trail's last line was incomplete and was cut off"
            );
        }
        let (segment, path, segment_len, created) = match scan.last_segment {
            Some((index, path, len)) => (index, path, len, false),
            None => (1, dir.join(segment_name(1)), 0, true),
        };
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| io(&path, &e))?;
        if created {
            sync_dir(dir)?;
        }
        let head = unhex32(&scan.report.head_hash).unwrap_or(ZERO_HASH);
        Ok(Self {
            dir: dir.to_path_buf(),
            config,
            file,
            segment,
            segment_len,
            head_seq: scan.report.head_seq,
            head,
            recent,
            repaired_tail,
            failed: None,
        })
    }

    /// The last record's sequence number and hash (0 and 64 zeros when empty).
    pub fn head(&self) -> (u64, String) {
        (self.head_seq, hex(&self.head))
    }

    /// Whether a torn last line was cut off at open.
    pub fn repaired_tail(&self) -> bool {
        self.repaired_tail
    }

    /// The directory of the trail.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends the entries (cut to the field limits) and syncs them to disk once
    /// before returning their records. After a failed write every later call fails.
    pub fn append(&mut self, entries: Vec<AuditEntry>) -> Result<Vec<AuditRecord>, AuditError> {
        if let Some(failure) = &self.failed {
            return Err(AuditError::Failed(failure.clone()));
        }
        let mut records = Vec::with_capacity(entries.len());
        let mut bytes = Vec::new();
        let mut head = self.head;
        let mut seq = self.head_seq;
        for entry in entries {
            seq += 1;
            let mut record = AuditRecord {
                seq,
                entry: entry.bounded(),
                prev_hash: hex(&head),
                hash: String::new(),
            };
            head = chain_hash(&head, &record);
            record.hash = hex(&head);
            serde_json::to_writer(&mut bytes, &record).map_err(|e| AuditError::Io {
                path: self.dir.display().to_string(),
                detail: e.to_string(),
            })?;
            bytes.push(b'\n');
            records.push(record);
        }
        if records.is_empty() {
            return Ok(records);
        }
        let len = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        if let Err(error) = self.write(&bytes, len) {
            self.failed = Some(error.to_string());
            tracing::error!(%error, "the audit trail cannot write; it refuses further records");
            return Err(error);
        }
        self.head = head;
        self.head_seq = seq;
        if self.config.memory_records > 0 {
            for record in &records {
                if self.recent.len() >= self.config.memory_records {
                    self.recent.pop_front();
                }
                self.recent.push_back(record.clone());
            }
        }
        Ok(records)
    }

    fn write(&mut self, bytes: &[u8], len: u64) -> Result<(), AuditError> {
        if self.segment_len > 0 && self.segment_len.saturating_add(len) > self.config.segment_bytes
        {
            let next = self.segment.checked_add(1).ok_or_else(|| AuditError::Io {
                path: self.dir.display().to_string(),
                detail: "no segment numbers left".to_owned(),
            })?;
            let path = self.dir.join(segment_name(next));
            self.file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|e| io(&path, &e))?;
            // The new file's name must be durable too, or a crash could lose the
            // segment with its acknowledged records.
            sync_dir(&self.dir)?;
            self.segment = next;
            self.segment_len = 0;
        }
        let path = self.dir.join(segment_name(self.segment));
        let written = self
            .file
            .write_all(bytes)
            .and_then(|()| self.file.sync_data());
        if let Err(error) = written {
            // Best effort: take a half-written batch back off so a restart after
            // the cause is fixed does not meet it as a torn line.
            let _ = self.file.set_len(self.segment_len);
            return Err(io(&path, &error));
        }
        self.segment_len += len;
        Ok(())
    }

    /// Searches the trail, newest first: memory first, then the segment files for
    /// what memory no longer holds.
    pub fn query(&self, query: &AuditQuery) -> Result<AuditPage, AuditError> {
        let partial = self.query_memory(query);
        finish_from_files(&self.dir, query, partial)
    }

    fn query_memory(&self, query: &AuditQuery) -> Partial {
        let limit = page_limit(query);
        let matcher = Matcher::new(query);
        let items: Vec<AuditRecord> = self
            .recent
            .iter()
            .rev()
            .filter(|r| matcher.matches(r))
            .take(limit + 1)
            .cloned()
            .collect();
        let oldest_in_memory = self.recent.front().map_or(self.head_seq + 1, |r| r.seq);
        let files_below = (oldest_in_memory > 1 && query.before_seq.is_none_or(|b| b > 1))
            .then_some(oldest_in_memory);
        Partial { items, files_below }
    }
}

type Reply<T> = oneshot::Sender<Result<T, AuditError>>;

enum Command {
    Record(AuditEntry, Option<Reply<AuditRecord>>),
    Query(AuditQuery, Reply<AuditPage>),
    /// Answers with the head once everything queued before it is written.
    Flush(Reply<(u64, String)>),
    Shutdown(oneshot::Sender<()>),
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Record(..) => "Record",
            Self::Query(..) => "Query",
            Self::Flush(_) => "Flush",
            Self::Shutdown(_) => "Shutdown",
        })
    }
}

/// Figures of a running trail.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditStats {
    /// Records written by this trail since it started.
    pub records: u64,
    /// The last record's sequence number.
    pub head_seq: u64,
    /// The last record's hash.
    pub head_hash: String,
    /// Records in the last batch (one `fsync`).
    pub last_batch: usize,
    /// Batches written since start (one `fsync` each).
    pub batches: u64,
    /// Why the trail stopped writing, once it has.
    pub failure: Option<String>,
}

struct Shared {
    healthy: AtomicBool,
    stats: Mutex<AuditStats>,
}

impl Shared {
    fn stats(&self) -> std::sync::MutexGuard<'_, AuditStats> {
        self.stats.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn failure(&self) -> Option<AuditError> {
        if self.healthy.load(Ordering::Acquire) {
            return None;
        }
        Some(AuditError::Failed(
            self.stats().failure.clone().unwrap_or_default(),
        ))
    }
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("healthy", &self.healthy.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// A handle to the trail's writer task; clones are cheap and share the writer.
#[derive(Debug, Clone)]
pub struct AuditTrail {
    tx: mpsc::Sender<Command>,
    dir: PathBuf,
    shared: Arc<Shared>,
}

impl AuditTrail {
    /// Opens the trail in `dir` (see [`AuditLog::open_with`]) and starts its writer
    /// task on the current Tokio runtime. The task ends after [`Self::shutdown`] or
    /// once every handle is dropped.
    pub fn start(
        dir: &Path,
        config: AuditTrailConfig,
    ) -> Result<(Self, JoinHandle<()>), AuditError> {
        let log = AuditLog::open_with(dir, config)?;
        let (head_seq, head_hash) = log.head();
        let (tx, rx) = mpsc::channel(config.queue.max(1));
        let shared = Arc::new(Shared {
            healthy: AtomicBool::new(true),
            stats: Mutex::new(AuditStats {
                head_seq,
                head_hash,
                ..AuditStats::default()
            }),
        });
        let task = tokio::spawn(writer(log, rx, shared.clone()));
        Ok((
            Self {
                tx,
                dir: dir.to_path_buf(),
                shared,
            },
            task,
        ))
    }

    async fn send(&self, command: Command) -> Result<(), AuditError> {
        self.tx.send(command).await.map_err(|_| AuditError::Stopped)
    }

    /// Queues an entry; waits only while the queue is full. It is on disk after the
    /// next [`Self::flush`] (or any [`Self::record_durable`] that follows it).
    pub async fn record(&self, entry: AuditEntry) -> Result<(), AuditError> {
        if let Some(error) = self.shared.failure() {
            return Err(error);
        }
        self.send(Command::Record(entry, None)).await
    }

    /// Records an entry and returns its record once its batch is synced to disk.
    pub async fn record_durable(&self, entry: AuditEntry) -> Result<AuditRecord, AuditError> {
        if let Some(error) = self.shared.failure() {
            return Err(error);
        }
        let (done, wait) = oneshot::channel();
        self.send(Command::Record(entry, Some(done))).await?;
        wait.await.map_err(|_| AuditError::Stopped)?
    }

    /// Waits until everything queued before is on disk; answers the head then.
    pub async fn flush(&self) -> Result<(u64, String), AuditError> {
        let (done, wait) = oneshot::channel();
        self.send(Command::Flush(done)).await?;
        wait.await.map_err(|_| AuditError::Stopped)?
    }

    /// Searches the trail, newest first, including everything queued before. Still
    /// answers after a failed write: what is on disk stays readable.
    pub async fn query(&self, query: AuditQuery) -> Result<AuditPage, AuditError> {
        let (done, wait) = oneshot::channel();
        self.send(Command::Query(query, done)).await?;
        wait.await.map_err(|_| AuditError::Stopped)?
    }

    /// Verifies the chain on disk up to the head as of now (after everything queued
    /// before is written), and that the disk still holds that head: records cut off
    /// the end behind the writer's back show as a broken link.
    pub async fn verify(&self) -> Result<VerifyReport, AuditError> {
        let (head_seq, head_hash) = match self.flush().await {
            Ok(head) => head,
            // Reading still works after a failed write; verify what was acknowledged.
            Err(AuditError::Failed(_)) => {
                let stats = self.stats();
                (stats.head_seq, stats.head_hash)
            }
            Err(error) => return Err(error),
        };
        let dir = self.dir.clone();
        let mut report = tokio::task::spawn_blocking(move || verify_dir_upto(&dir, head_seq))
            .await
            .map_err(|_| AuditError::Stopped)??;
        if report.first_broken.is_none()
            && (report.head_seq != head_seq || report.head_hash != head_hash)
        {
            let last = segments(&self.dir)?
                .last()
                .map(|(_, path)| file_name(path))
                .unwrap_or_default();
            report.first_broken = Some(BrokenLink {
                seq: report.head_seq + 1,
                segment: last,
                line: 0,
                reason: format!(
                    "the writer's head is record {head_seq} ({head_hash}) but the files end at record {} ({}): acknowledged records were removed or replaced",
                    report.head_seq, report.head_hash
                ),
            });
        }
        Ok(report)
    }

    /// Whether every write so far succeeded.
    pub fn is_healthy(&self) -> bool {
        self.shared.healthy.load(Ordering::Acquire)
    }

    /// Figures of the trail.
    pub fn stats(&self) -> AuditStats {
        self.shared.stats().clone()
    }

    /// Writes everything queued so far and stops the writer; later calls answer
    /// [`AuditError::Stopped`]. A write failure is logged (and kept in
    /// [`Self::stats`]).
    pub async fn shutdown(&self) {
        let (done, wait) = oneshot::channel();
        if self.send(Command::Shutdown(done)).await.is_ok() {
            let _ = wait.await;
        }
        if let Some(error) = self.shared.failure() {
            tracing::error!(%error, "the audit trail shut down after a failed write");
        }
    }
}

async fn writer(log: AuditLog, mut rx: mpsc::Receiver<Command>, shared: Arc<Shared>) {
    let dir = log.dir().to_path_buf();
    let log = Arc::new(Mutex::new(log));
    let mut stopping = Vec::new();
    while let Some(first) = rx.recv().await {
        let mut commands = vec![first];
        while commands.len() < BATCH_MAX {
            match rx.try_recv() {
                Ok(more) => commands.push(more),
                Err(_) => break,
            }
        }
        let mut entries = Vec::new();
        let mut waiters = Vec::new();
        let mut after = Vec::new();
        for command in commands {
            match command {
                Command::Record(entry, done) => {
                    entries.push(entry);
                    waiters.push(done);
                }
                other => after.push(other),
            }
        }
        if !entries.is_empty() {
            write_batch(&log, entries, waiters, &shared).await;
        }
        for command in after {
            match command {
                Command::Query(query, done) => {
                    // Memory is read in order with the writes; the files are read
                    // off the writer's path so a deep search does not hold it up.
                    let log = log.clone();
                    let dir = dir.clone();
                    tokio::task::spawn_blocking(move || {
                        let partial = log
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .query_memory(&query);
                        let _ = done.send(finish_from_files(&dir, &query, partial));
                    });
                }
                Command::Flush(done) => {
                    let answer = match shared.failure() {
                        Some(error) => Err(error),
                        None => {
                            let stats = shared.stats();
                            Ok((stats.head_seq, stats.head_hash.clone()))
                        }
                    };
                    let _ = done.send(answer);
                }
                Command::Shutdown(done) => {
                    // Refuse new commands but write what is already queued.
                    rx.close();
                    stopping.push(done);
                }
                Command::Record(..) => {}
            }
        }
    }
    for done in stopping {
        let _ = done.send(());
    }
}

async fn write_batch(
    log: &Arc<Mutex<AuditLog>>,
    entries: Vec<AuditEntry>,
    waiters: Vec<Option<Reply<AuditRecord>>>,
    shared: &Shared,
) {
    let count = entries.len();
    let written = match shared.failure() {
        Some(error) => Err(error),
        None => {
            let log = log.clone();
            tokio::task::spawn_blocking(move || {
                log.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .append(entries)
            })
            .await
            .unwrap_or_else(|error| {
                Err(AuditError::Failed(format!(
                    "the audit write task failed: {error}"
                )))
            })
        }
    };
    match written {
        Ok(records) => {
            if let Some(last) = records.last() {
                let mut stats = shared.stats();
                stats.records += u64::try_from(records.len()).unwrap_or(u64::MAX);
                stats.head_seq = last.seq;
                stats.head_hash = last.hash.clone();
                stats.last_batch = count;
                stats.batches += 1;
            }
            for (done, record) in waiters.into_iter().zip(records) {
                if let Some(done) = done {
                    let _ = done.send(Ok(record));
                }
            }
        }
        Err(error) => {
            let unanswered = waiters.iter().filter(|w| w.is_none()).count();
            tracing::error!(%error, entries = count, unanswered, "the audit trail cannot write these entries");
            if shared.healthy.load(Ordering::Acquire) {
                shared.stats().failure = Some(error.to_string());
                shared.healthy.store(false, Ordering::Release);
            }
            let error = shared.failure().unwrap_or(error);
            for done in waiters.into_iter().flatten() {
                let _ = done.send(Err(error.clone()));
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn entry(i: u64, action: &str, outcome: Outcome) -> AuditEntry {
        AuditEntry {
            at_ms: 1_000 + i,
            actor: format!("user:{}", i % 3),
            role: "customer".into(),
            action: action.into(),
            resource: format!("account:XC{i}"),
            outcome,
            code: if outcome == Outcome::Granted {
                "ok".into()
            } else {
                "forbidden".into()
            },
            detail: format!("amount 1{i}.00 EUR"),
            client: "127.0.0.1".into(),
            request_id: format!("r{i}"),
        }
    }

    fn small(memory_records: usize) -> AuditTrailConfig {
        AuditTrailConfig {
            segment_bytes: 2_000,
            memory_records,
            queue: 64,
        }
    }

    fn big() -> AuditTrailConfig {
        AuditTrailConfig {
            segment_bytes: 1 << 20,
            ..small(1000)
        }
    }

    fn lines(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn the_chain_continues_across_reopens_and_segments() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = AuditLog::open_with(dir.path(), small(5)).unwrap();
        assert_eq!(log.head(), (0, hex(&ZERO_HASH)));
        let first = log
            .append(
                (1..=10)
                    .map(|i| entry(i, "auth.login", Outcome::Granted))
                    .collect(),
            )
            .unwrap();
        assert_eq!(
            first.iter().map(|r| r.seq).collect::<Vec<_>>(),
            (1..=10).collect::<Vec<_>>()
        );
        assert_eq!(first[0].prev_hash, "0".repeat(64));
        assert_eq!(first[1].prev_hash, first[0].hash);
        let head = log.head();
        drop(log);
        let mut log = AuditLog::open_with(dir.path(), small(5)).unwrap();
        assert_eq!(log.head(), head);
        assert!(!log.repaired_tail());
        for i in 11..=30 {
            log.append(vec![entry(i, "transfer.create", Outcome::Denied)])
                .unwrap();
        }
        let report = verify_dir(dir.path()).unwrap();
        assert_eq!(report.records, 30);
        assert!(report.segments > 2, "segments rotate: {report:?}");
        assert!(dir.path().join("audit-000002.jsonl").exists());
        assert_eq!(report.first_broken, None);
        assert!(!report.torn_tail);
        assert_eq!((report.head_seq, report.head_hash.clone()), log.head());
        // The first batch went whole into segment 1; single appends after it
        // respect the limit.
        for (_, path) in segments(dir.path()).unwrap().iter().skip(1) {
            assert!(std::fs::metadata(path).unwrap().len() <= 2_000);
        }
        drop(log);
        // Reopened after rotation, it keeps appending to the last segment.
        let mut log = AuditLog::open_with(dir.path(), small(5)).unwrap();
        log.append(vec![entry(31, "auth.logout", Outcome::Granted)])
            .unwrap();
        let again = verify_dir(dir.path()).unwrap();
        assert_eq!(again.records, 31);
        assert!(again.segments >= report.segments);
        assert_eq!(again.first_broken, None);
    }

    #[test]
    fn an_external_verifier_recomputes_the_hash_from_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = AuditLog::open_with(dir.path(), big()).unwrap();
        log.append(vec![
            entry(1, "auth.login", Outcome::Granted),
            entry(2, "auth.refresh", Outcome::Granted),
        ])
        .unwrap();
        let mut prev = ZERO_HASH;
        for line in lines(&dir.path().join("audit-000001.jsonl")) {
            let record: AuditRecord = serde_json::from_str(&line).unwrap();
            assert_eq!(unhex32(&record.prev_hash), Some(prev));
            let hash = chain_hash(&prev, &record);
            assert_eq!(hex(&hash), record.hash);
            let canonical = String::from_utf8(canonical_bytes(&record)).unwrap();
            assert!(canonical.starts_with("{\"seq\":"), "{canonical}");
            assert!(canonical.ends_with(&format!("\"prev_hash\":\"{}\"}}", record.prev_hash)));
            prev = hash;
        }
    }

    #[test]
    fn a_changed_byte_in_the_middle_is_found_and_named() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = AuditLog::open_with(dir.path(), small(5)).unwrap();
        for i in 1..=30 {
            log.append(vec![entry(i, "transfer.create", Outcome::Granted)])
                .unwrap();
        }
        drop(log);
        // Record 17 sits in a later segment: change one digit of its amount.
        let (path, line) = segments(dir.path())
            .unwrap()
            .into_iter()
            .find_map(|(_, path)| {
                lines(&path)
                    .iter()
                    .position(|l| l.starts_with("{\"seq\":17,"))
                    .map(|at| (path.clone(), at + 1))
            })
            .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let tampered = text.replacen("amount 117.00", "amount 917.00", 1);
        assert_eq!(tampered.len(), text.len());
        std::fs::write(&path, &tampered).unwrap();

        let report = verify_dir(dir.path()).unwrap();
        let broken = report.first_broken.unwrap();
        assert_eq!(broken.seq, 17);
        assert_eq!(broken.segment, file_name(&path));
        assert_ne!(broken.segment, "audit-000001.jsonl");
        assert_eq!(usize::try_from(broken.line).unwrap(), line);
        assert!(broken.reason.contains("hash"), "{}", broken.reason);
        assert_eq!(report.records, 16);
        assert_eq!(report.head_seq, 16);
        match AuditLog::open_with(dir.path(), small(5)) {
            Err(AuditError::Broken { seq: 17, reason }) => {
                assert!(reason.contains(&file_name(&path)))
            }
            other => panic!("expected a broken link at 17, got {other:?}"),
        }
    }

    #[test]
    fn a_deleted_line_and_a_reformatted_line_are_found() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = AuditLog::open_with(dir.path(), big()).unwrap();
        log.append(
            (1..=6)
                .map(|i| entry(i, "auth.login", Outcome::Granted))
                .collect(),
        )
        .unwrap();
        drop(log);
        let path = dir.path().join(segment_name(1));
        let original = lines(&path);
        let without: String = original
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != 2)
            .map(|(_, l)| format!("{l}\n"))
            .collect();
        std::fs::write(&path, without).unwrap();
        let broken = verify_dir(dir.path()).unwrap().first_broken.unwrap();
        assert_eq!((broken.seq, broken.line), (3, 3));
        assert!(broken.reason.contains("missing"), "{}", broken.reason);
        assert!(matches!(
            AuditLog::open_with(dir.path(), big()),
            Err(AuditError::Broken { seq: 3, .. })
        ));

        // Same content, different spelling: an extra field the hash does not cover.
        let padded: String = original
            .iter()
            .enumerate()
            .map(|(i, l)| {
                if i == 1 {
                    format!("{},\"note\":1}}\n", &l[..l.len() - 1])
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        std::fs::write(&path, padded).unwrap();
        let broken = verify_dir(dir.path()).unwrap().first_broken.unwrap();
        assert_eq!((broken.seq, broken.line), (2, 2));
    }

    #[test]
    fn a_torn_tail_is_cut_off_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = AuditLog::open_with(dir.path(), big()).unwrap();
        log.append(
            (1..=3)
                .map(|i| entry(i, "auth.login", Outcome::Granted))
                .collect(),
        )
        .unwrap();
        let head = log.head();
        drop(log);
        let path = dir.path().join(segment_name(1));
        let good_len = std::fs::metadata(&path).unwrap().len();
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(b"{\"seq\":4,\"at_ms\":").unwrap();
        drop(file);

        let report = verify_dir(dir.path()).unwrap();
        assert!(report.torn_tail);
        assert_eq!(report.first_broken, None);
        assert_eq!(report.records, 3);

        let mut log = AuditLog::open_with(dir.path(), big()).unwrap();
        assert!(log.repaired_tail());
        assert_eq!(log.head(), head);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), good_len);
        log.append(vec![entry(4, "auth.login", Outcome::Granted)])
            .unwrap();
        let report = verify_dir(dir.path()).unwrap();
        assert_eq!(report.records, 4);
        assert_eq!(report.first_broken, None);
        assert!(!report.torn_tail);
    }

    #[test]
    fn an_unparsable_line_before_the_end_is_not_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = AuditLog::open_with(dir.path(), big()).unwrap();
        log.append(
            (1..=3)
                .map(|i| entry(i, "auth.login", Outcome::Granted))
                .collect(),
        )
        .unwrap();
        drop(log);
        let path = dir.path().join(segment_name(1));
        let mut all = lines(&path);
        all[1] = "garbage".into();
        std::fs::write(&path, all.join("\n") + "\n").unwrap();
        assert!(matches!(
            AuditLog::open_with(dir.path(), big()),
            Err(AuditError::Broken { seq: 2, .. })
        ));
    }

    /// 40 records: even ones `transfer.create`, odd ones `auth.login`, every fourth
    /// denied.
    fn filled(memory_records: usize) -> (tempfile::TempDir, AuditLog) {
        let dir = tempfile::tempdir().unwrap();
        let mut log = AuditLog::open_with(dir.path(), small(memory_records)).unwrap();
        for i in 1..=40 {
            let outcome = if i % 4 == 0 {
                Outcome::Denied
            } else {
                Outcome::Granted
            };
            let action = if i % 2 == 0 {
                "transfer.create"
            } else {
                "auth.login"
            };
            log.append(vec![entry(i, action, outcome)]).unwrap();
        }
        (dir, log)
    }

    fn all_pages(log: &AuditLog, mut query: AuditQuery) -> Vec<u64> {
        let mut seen = Vec::new();
        loop {
            let page = log.query(&query).unwrap();
            assert!(page.items.len() <= usize::try_from(query.limit).unwrap());
            seen.extend(page.items.iter().map(|r| r.seq));
            match page.next_before_seq {
                Some(next) => query.before_seq = Some(next),
                None => break,
            }
        }
        seen
    }

    fn seqs(log: &AuditLog, query: AuditQuery) -> Vec<u64> {
        log.query(&AuditQuery {
            limit: 500,
            ..query
        })
        .unwrap()
        .items
        .iter()
        .map(|r| r.seq)
        .collect()
    }

    #[test]
    fn queries_filter_and_page_the_same_from_memory_and_from_files() {
        for memory in [0, 3, 7, 1000] {
            let (_dir, log) = filled(memory);
            let transfers = AuditQuery {
                action: Some("transfer.".into()),
                limit: 7,
                ..AuditQuery::default()
            };
            let expected: Vec<u64> = (1..=40).rev().filter(|i| i % 2 == 0).collect();
            assert_eq!(all_pages(&log, transfers), expected, "memory {memory}");
            let everything = AuditQuery {
                limit: 1,
                ..AuditQuery::default()
            };
            assert_eq!(
                all_pages(&log, everything),
                (1..=40).rev().collect::<Vec<_>>(),
                "memory {memory}"
            );

            let denied = seqs(
                &log,
                AuditQuery {
                    outcome: Some(Outcome::Denied),
                    ..AuditQuery::default()
                },
            );
            assert_eq!(
                denied,
                (1..=40).rev().filter(|i| i % 4 == 0).collect::<Vec<_>>()
            );
            let actor = seqs(
                &log,
                AuditQuery {
                    actor: Some("user:1".into()),
                    ..AuditQuery::default()
                },
            );
            assert_eq!(
                actor,
                (1..=40).rev().filter(|i| i % 3 == 1).collect::<Vec<_>>()
            );
            let resource = seqs(
                &log,
                AuditQuery {
                    resource: Some("XC3".into()),
                    ..AuditQuery::default()
                },
            );
            assert_eq!(resource, vec![39, 38, 37, 36, 35, 34, 33, 32, 31, 30, 3]);
            let text = seqs(
                &log,
                AuditQuery {
                    text: Some("AMOUNT 117".into()),
                    ..AuditQuery::default()
                },
            );
            assert_eq!(text, vec![17]);
            let code = seqs(
                &log,
                AuditQuery {
                    text: Some("Forbid".into()),
                    ..AuditQuery::default()
                },
            );
            assert_eq!(code, denied);
            let window = seqs(
                &log,
                AuditQuery {
                    since_ms: Some(1_010),
                    until_ms: Some(1_012),
                    ..AuditQuery::default()
                },
            );
            assert_eq!(window, vec![12, 11, 10]);
            let login = seqs(
                &log,
                AuditQuery {
                    action: Some("auth.login".into()),
                    outcome: Some(Outcome::Denied),
                    ..AuditQuery::default()
                },
            );
            assert!(login.is_empty());
            let before = seqs(
                &log,
                AuditQuery {
                    before_seq: Some(4),
                    ..AuditQuery::default()
                },
            );
            assert_eq!(before, vec![3, 2, 1]);
            let none = log
                .query(&AuditQuery {
                    before_seq: Some(1),
                    ..AuditQuery::default()
                })
                .unwrap();
            assert_eq!(
                none,
                AuditPage {
                    items: vec![],
                    next_before_seq: None
                }
            );
        }
    }

    #[test]
    fn long_fields_are_cut_at_character_boundaries() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = AuditLog::open_with(dir.path(), big()).unwrap();
        let mut long = entry(1, "auth.login", Outcome::Granted);
        long.detail = "é".repeat(2_000);
        long.actor = format!("a{}", "ü".repeat(500));
        long.resource = "€".repeat(300);
        let records = log.append(vec![long]).unwrap();
        let e = &records[0].entry;
        assert_eq!(e.detail.len(), DETAIL_BYTES_MAX);
        assert_eq!(e.actor.len(), FIELD_BYTES_MAX - 1, "a + 127 two-byte chars");
        assert_eq!(e.resource.len(), 255, "85 three-byte chars");
        assert!(e.resource.chars().all(|c| c == '€'));
        drop(log);
        let log = AuditLog::open_with(dir.path(), big()).unwrap();
        let page = log
            .query(&AuditQuery {
                limit: 1,
                ..AuditQuery::default()
            })
            .unwrap();
        assert_eq!(page.items, records);
        assert_eq!(verify_dir(dir.path()).unwrap().first_broken, None);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_records_make_a_gapless_chain() {
        let dir = tempfile::tempdir().unwrap();
        let config = AuditTrailConfig {
            segment_bytes: 20_000,
            memory_records: 50,
            queue: 16,
        };
        let (trail, task) = AuditTrail::start(dir.path(), config).unwrap();
        let mut tasks = Vec::new();
        for t in 0..8u64 {
            let trail = trail.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..50 {
                    let entry = entry(t * 100 + i, "auth.login", Outcome::Granted);
                    if i % 10 == 0 {
                        trail.record_durable(entry).await.unwrap();
                    } else {
                        trail.record(entry).await.unwrap();
                    }
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(trail.flush().await.unwrap().0, 400);
        let stats = trail.stats();
        assert_eq!((stats.records, stats.head_seq), (400, 400));
        assert!(stats.batches < 400, "group commit batches: {stats:?}");
        let report = verify_dir(dir.path()).unwrap();
        assert_eq!(report.records, 400);
        assert!(report.segments > 1);
        assert_eq!(report.first_broken, None);
        let mut seen = Vec::new();
        let mut query = AuditQuery {
            limit: 100,
            ..AuditQuery::default()
        };
        loop {
            let page = trail.query(query.clone()).await.unwrap();
            seen.extend(page.items.iter().map(|r| r.seq));
            match page.next_before_seq {
                Some(next) => query.before_seq = Some(next),
                None => break,
            }
        }
        assert_eq!(seen, (1..=400).rev().collect::<Vec<_>>());
        let verified = trail.verify().await.unwrap();
        assert_eq!((verified.records, verified.first_broken), (400, None));
        assert!(trail.is_healthy());
        trail.shutdown().await;
        task.await.unwrap();
        assert_eq!(
            trail.record(entry(1, "x", Outcome::Granted)).await,
            Err(AuditError::Stopped)
        );
    }

    #[tokio::test]
    async fn record_durable_is_on_disk_when_it_returns() {
        let dir = tempfile::tempdir().unwrap();
        let (trail, _task) = AuditTrail::start(dir.path(), AuditTrailConfig::default()).unwrap();
        trail
            .record(entry(1, "auth.login", Outcome::Granted))
            .await
            .unwrap();
        let record = trail
            .record_durable(entry(2, "role.change", Outcome::Granted))
            .await
            .unwrap();
        assert_eq!(record.seq, 2);
        // Another reader, while the writer still runs.
        let other = AuditLog::open_with(dir.path(), AuditTrailConfig::default()).unwrap();
        assert_eq!(other.head(), (2, record.hash.clone()));
        let page = other
            .query(&AuditQuery {
                limit: 1,
                ..AuditQuery::default()
            })
            .unwrap();
        assert_eq!(page.items, vec![record]);
        drop(other);
        trail.shutdown().await;
    }

    #[tokio::test]
    async fn verify_notices_acknowledged_records_cut_off_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let (trail, _task) = AuditTrail::start(dir.path(), AuditTrailConfig::default()).unwrap();
        for i in 1..=3 {
            trail
                .record_durable(entry(i, "auth.login", Outcome::Granted))
                .await
                .unwrap();
        }
        let path = dir.path().join(segment_name(1));
        let kept = lines(&path)[..2].join("\n") + "\n";
        std::fs::write(&path, kept).unwrap();
        // The files alone are a valid, shorter chain; the writer knows better.
        assert_eq!(verify_dir(dir.path()).unwrap().first_broken, None);
        let broken = trail.verify().await.unwrap().first_broken.unwrap();
        assert_eq!(broken.seq, 3);
    }

    #[tokio::test]
    async fn a_failed_write_is_reported_on_every_later_call() {
        let dir = tempfile::tempdir().unwrap();
        let trail_dir = dir.path().join("audit");
        // Every batch after the first needs a new segment, which cannot be created
        // once the directory is gone.
        let config = AuditTrailConfig {
            segment_bytes: 1,
            ..AuditTrailConfig::default()
        };
        let (trail, _task) = AuditTrail::start(&trail_dir, config).unwrap();
        trail
            .record_durable(entry(1, "auth.login", Outcome::Granted))
            .await
            .unwrap();
        assert!(trail.is_healthy());
        std::fs::remove_dir_all(&trail_dir).unwrap();
        let error = trail
            .record_durable(entry(2, "auth.login", Outcome::Granted))
            .await
            .unwrap_err();
        assert!(matches!(error, AuditError::Failed(_)), "{error:?}");
        assert!(!trail.is_healthy());
        assert!(trail.stats().failure.is_some());
        assert!(matches!(
            trail.record(entry(3, "auth.login", Outcome::Granted)).await,
            Err(AuditError::Failed(_))
        ));
        assert!(matches!(
            trail
                .record_durable(entry(4, "auth.login", Outcome::Granted))
                .await,
            Err(AuditError::Failed(_))
        ));
        assert!(matches!(trail.flush().await, Err(AuditError::Failed(_))));
        // What was acknowledged is still searchable.
        let page = trail
            .query(AuditQuery {
                limit: 10,
                ..AuditQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(page.items.len(), 1);
        trail.shutdown().await;
    }

    #[test]
    fn a_failed_log_refuses_further_appends() {
        let dir = tempfile::tempdir().unwrap();
        let trail_dir = dir.path().join("audit");
        let config = AuditTrailConfig {
            segment_bytes: 1,
            ..AuditTrailConfig::default()
        };
        let mut log = AuditLog::open_with(&trail_dir, config).unwrap();
        log.append(vec![entry(1, "auth.login", Outcome::Granted)])
            .unwrap();
        std::fs::remove_dir_all(&trail_dir).unwrap();
        assert!(matches!(
            log.append(vec![entry(2, "a", Outcome::Granted)]),
            Err(AuditError::Io { .. })
        ));
        std::fs::create_dir_all(&trail_dir).unwrap();
        assert!(matches!(
            log.append(vec![entry(3, "a", Outcome::Granted)]),
            Err(AuditError::Failed(_))
        ));
        assert_eq!(log.head().0, 1);
    }
}
