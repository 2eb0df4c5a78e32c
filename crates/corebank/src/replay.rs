//! `corebank ledger replay`: JSON lines in, JSON lines out (see the README).

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use corebank_replay::Replay;

/// The longest input line accepted (a full batch of 8,190 events in JSON is ~4 MiB).
const LINE_BYTES_MAX: usize = 64 << 20;

#[derive(Debug, clap::Args)]
#[command(after_help = "Each input line is one JSON command, e.g.\n  \
    {\"op\":\"create_accounts\",\"events\":[{\"id\":\"1\",\"ledger\":978,\"code\":10}]}\n\
    Each output line answers the input line at the same position. A malformed line gets\n\
    {\"error\":\"...\"} and the replay goes on. The clock starts at 1 ns and advances by 1 ns\n\
    per event; {\"op\":\"advance_time\",\"seconds\":N} moves it on and expires pending transfers.")]
pub struct ReplayArgs {
    /// The JSON-lines file to read (standard input when absent).
    pub file: Option<PathBuf>,
}

pub fn run(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let input: Box<dyn Read> = match &args.file {
        Some(path) => Box::new(
            std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?,
        ),
        None => Box::new(std::io::stdin().lock()),
    };
    let mut input = BufReader::new(input);
    let stdout = std::io::stdout();
    let mut output = std::io::BufWriter::new(stdout.lock());
    let mut replay = Replay::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        let read = (&mut input)
            .take(LINE_BYTES_MAX as u64 + 1)
            .read_until(b'\n', &mut line)
            .context("cannot read the input")?;
        if read == 0 {
            break;
        }
        let answer = if line.len() > LINE_BYTES_MAX && line.last() != Some(&b'\n') {
            skip_rest_of_line(&mut input)?;
            format!("{{\"error\":\"line longer than {LINE_BYTES_MAX} bytes\"}}")
        } else {
            let text = line.strip_suffix(b"\n").unwrap_or(&line);
            let text = text.strip_suffix(b"\r").unwrap_or(text);
            match std::str::from_utf8(text) {
                Ok(text) => replay.handle_line(text),
                Err(_) => "{\"error\":\"line is not valid UTF-8\"}".to_string(),
            }
        };
        writeln!(output, "{answer}").context("cannot write the output")?;
        // Flush per line so that a driver can converse line by line over a pipe.
        output.flush().context("cannot write the output")?;
    }
    Ok(ExitCode::SUCCESS)
}

fn skip_rest_of_line(input: &mut impl BufRead) -> anyhow::Result<()> {
    loop {
        let buffer = input.fill_buf().context("cannot read the input")?;
        if buffer.is_empty() {
            return Ok(());
        }
        if let Some(at) = buffer.iter().position(|b| *b == b'\n') {
            input.consume(at + 1);
            return Ok(());
        }
        let len = buffer.len();
        input.consume(len);
    }
}
