//! Replay tests driven by JSON-lines files: `cases/NAME.jsonl` is replayed and must
//! answer exactly `cases/NAME.expected.jsonl`. Set BLESS=1 to rewrite the expected
//! files after a deliberate change (and review the diff).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use corebank_replay::Replay;

#[test]
fn every_case_file_replays_to_its_expected_output() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases");
    let mut cases: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.extension().is_some_and(|e| e == "jsonl")
                && !path.to_string_lossy().ends_with(".expected.jsonl")
        })
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 3,
        "case files are missing from {}",
        dir.display()
    );
    let bless = std::env::var_os("BLESS").is_some();
    for case in cases {
        let input = std::fs::read_to_string(&case).unwrap();
        let mut replay = Replay::new();
        let output: Vec<String> = input.lines().map(|line| replay.handle_line(line)).collect();
        replay.ledger().check_invariants().unwrap();
        let expected_path = case.with_extension("expected.jsonl");
        if bless {
            std::fs::write(&expected_path, output.join("\n") + "\n").unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_else(|_| {
            panic!(
                "{} is missing (run with BLESS=1 and review it)",
                expected_path.display()
            )
        });
        let expected: Vec<&str> = expected.lines().collect();
        assert_eq!(
            output.len(),
            input.lines().count(),
            "one output line per input line"
        );
        for (number, (got, want)) in output.iter().zip(&expected).enumerate() {
            assert_eq!(got, want, "{}: line {} differs", case.display(), number + 1);
        }
        assert_eq!(
            output.len(),
            expected.len(),
            "{}: line count differs",
            case.display()
        );
    }
}
