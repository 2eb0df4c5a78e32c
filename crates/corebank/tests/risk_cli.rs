//! `corebank risk`: split, train (both model kinds) and evaluate on the synthetic
//! labelled sample checked into crates/risk/tests/data/, with stated AUPRC floors; the
//! JSON keys; the model file's header; clear errors for damaged or incompatible files.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Held-out AUPRC floors (30% of the sample, seed 42; about 4% fraud).
const SUPERVISED_FLOOR: f64 = 0.85;
const UNSUPERVISED_FLOOR: f64 = 0.45;

const KEYS: [&str; 5] = [
    "auprc",
    "roc_auc",
    "recall_at_1pct_fpr",
    "recall_at_01pct_fpr",
    "precision_at_80pct_recall",
];

fn corebank() -> Command {
    Command::new(env!("CARGO_BIN_EXE_corebank"))
}

fn ok(out: Output) -> Output {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn split(dir: &Path) -> (PathBuf, PathBuf) {
    let sample = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../risk/tests/data/synthetic.csv");
    let train = dir.join("train.csv");
    let test = dir.join("test.csv");
    ok(corebank()
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
        .unwrap());
    (train, test)
}

fn train(train: &Path, model: &Path, kind: &str) -> serde_json::Value {
    let out = ok(corebank()
        .args([
            "risk", "train", "--label", "fraud", "--ignore", "id", "--json",
        ])
        .args(["--model-kind", kind])
        .arg("--data")
        .arg(train)
        .arg("--out")
        .arg(model)
        .output()
        .unwrap());
    serde_json::from_slice(&out.stdout).unwrap()
}

fn eval(model: &Path, test: &Path) -> Output {
    corebank()
        .args([
            "risk", "eval", "--label", "fraud", "--ignore", "id", "--json",
        ])
        .arg("--model")
        .arg(model)
        .arg("--data")
        .arg(test)
        .output()
        .unwrap()
}

#[test]
fn both_model_kinds_train_evaluate_and_beat_their_floors() {
    let dir = tempfile::tempdir().unwrap();
    let (train_csv, test_csv) = split(dir.path());
    for (kind, floor) in [
        ("supervised", SUPERVISED_FLOOR),
        ("unsupervised", UNSUPERVISED_FLOOR),
    ] {
        let model = dir.path().join(format!("{kind}.cbr"));
        let header = train(&train_csv, &model, kind);
        assert_eq!(header["kind"], kind);
        assert_eq!(header["format_version"], 2);
        assert_eq!(header["training"]["seed"], 42);
        let rows = std::fs::read_to_string(&train_csv).unwrap().lines().count() - 1;
        assert_eq!(header["training"]["rows"], rows);
        assert!(header["training"]["training_seconds"].is_f64());
        assert_eq!(header["features"].as_array().unwrap().len(), 7);

        let out = ok(eval(&model, &test_csv));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        for key in KEYS {
            assert!(v[key].is_f64(), "{key} missing in {v}");
        }
        assert_eq!(v["model_kind"], kind);
        let auprc = v["auprc"].as_f64().unwrap();
        assert!(
            auprc >= floor,
            "{kind}: AUPRC {auprc} below the floor {floor}"
        );

        let out = ok(corebank()
            .args(["risk", "info", "--json", "--model"])
            .arg(&model)
            .output()
            .unwrap());
        let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(info["kind"], kind);
    }

    // same data, same seed: the same model (the training time aside, so compare scores)
    let again = dir.path().join("again.cbr");
    train(&train_csv, &again, "supervised");
    let a = eval(&again, &test_csv).stdout;
    let b = eval(&dir.path().join("supervised.cbr"), &test_csv).stdout;
    let (a, b): (serde_json::Value, serde_json::Value) = (
        serde_json::from_slice(&a).unwrap(),
        serde_json::from_slice(&b).unwrap(),
    );
    assert_eq!(a["auprc"], b["auprc"]);
    assert_eq!(a["confusion"], b["confusion"]);

    // an unknown kind is refused by the argument parser
    let out = corebank()
        .args(["risk", "train", "--label", "fraud", "--model-kind", "magic"])
        .arg("--data")
        .arg(&train_csv)
        .arg("--out")
        .arg(dir.path().join("x.cbr"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("magic"));
}

#[test]
fn damaged_and_incompatible_model_files_are_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let (train_csv, test_csv) = split(dir.path());
    let model = dir.path().join("m.cbr");
    train(&train_csv, &model, "unsupervised");
    let bytes = std::fs::read(&model).unwrap();

    let mut flipped = bytes.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 1;
    let truncated = bytes[..bytes.len() - 10].to_vec();
    let mut v7 = bytes.clone();
    v7[8..12].copy_from_slice(&7u32.to_le_bytes());
    for (content, want) in [
        (flipped, "corrupt"),
        (truncated, "truncated"),
        (v7, "incompatible model file: format version 7"),
        (
            b"CBRSKGBT\x01\x00\x00\x00garbage".to_vec(),
            "format version 1",
        ),
        (b"not a model".to_vec(), "bad magic"),
    ] {
        std::fs::write(&model, &content).unwrap();
        let out = eval(&model, &test_csv);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "want {want:?} in {err}");
    }

    // a missing label column and a bad label are named
    let good = dir.path().join("good.cbr");
    train(&train_csv, &good, "supervised");
    let out = corebank()
        .args(["risk", "eval", "--label", "nope", "--model"])
        .arg(&good)
        .arg("--data")
        .arg(&test_csv)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("\"nope\" not found"));
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "a,fraud\n1,0\n2,7\n").unwrap();
    let out = corebank()
        .args(["risk", "train", "--label", "fraud", "--data"])
        .arg(&bad)
        .arg("--out")
        .arg(dir.path().join("y.cbr"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("line 3"));
}
