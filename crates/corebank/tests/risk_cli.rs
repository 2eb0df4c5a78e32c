//! `corebank risk`: split, train and evaluate on the small labelled sample checked into
//! crates/risk/tests/data/, and check the model beats a stated AUPRC floor.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;

/// The trained model must reach at least this AUPRC on the held-out 30%.
const AUPRC_FLOOR: f64 = 0.80;

fn corebank() -> Command {
    Command::new(env!("CARGO_BIN_EXE_corebank"))
}

#[test]
fn split_train_eval_beats_the_floor() {
    let sample = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../risk/tests/data/sample.csv");
    let dir = tempfile::tempdir().unwrap();
    let train = dir.path().join("train.csv");
    let test = dir.path().join("test.csv");
    let model = dir.path().join("model.cbr");
    let out = corebank()
        .args([
            "risk",
            "split",
            "--label",
            "fraud",
            "--test-fraction",
            "0.3",
            "--seed",
            "42",
        ])
        .arg("--data")
        .arg(&sample)
        .arg("--train")
        .arg(&train)
        .arg("--test")
        .arg(&test)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = corebank()
        .args([
            "risk", "train", "--label", "fraud", "--ignore", "id", "--trees", "60",
        ])
        .arg("--data")
        .arg(&train)
        .arg("--out")
        .arg(&model)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = corebank()
        .args([
            "risk", "eval", "--label", "fraud", "--ignore", "id", "--json",
        ])
        .arg("--model")
        .arg(&model)
        .arg("--data")
        .arg(&test)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in [
        "auprc",
        "roc_auc",
        "recall_at_1pct_fpr",
        "recall_at_01pct_fpr",
        "precision_at_80pct_recall",
    ] {
        assert!(v[key].is_f64(), "{key} missing in {v}");
    }
    let auprc = v["auprc"].as_f64().unwrap();
    assert!(
        auprc >= AUPRC_FLOOR,
        "AUPRC {auprc} below the floor {AUPRC_FLOOR}"
    );

    // A corrupt model file gives a clear error.
    std::fs::write(&model, b"CBRSKGBT\x01\x00\x00\x00garbage").unwrap();
    let out = corebank()
        .args(["risk", "eval", "--label", "fraud", "--ignore", "id"])
        .arg("--model")
        .arg(&model)
        .arg("--data")
        .arg(&test)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("corrupt"));
}
