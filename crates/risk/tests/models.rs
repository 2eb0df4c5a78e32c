//! Both models on the synthetic sample checked into tests/data/ (written by
//! `examples/gen_sample.rs`, seeded: no real customer data), determinism, the model file
//! and its errors, explanations, and bad input.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::float_arithmetic)]

use std::path::PathBuf;

use corebank_risk::{
    AnomalyModel, AnomalyParams, Dataset, DatasetError, FORMAT_VERSION, Model, ModelError,
    ModelKind, Params, RiskModel, Scorer, evaluate, split_stratified,
};

/// Held-out AUPRC floors on the synthetic sample (base rate about 4%).
const SUPERVISED_FLOOR: f64 = 0.85;
const UNSUPERVISED_FLOOR: f64 = 0.45;

fn sample() -> Dataset {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/synthetic.csv");
    Dataset::read(&path, "fraud", &["id".to_string()]).unwrap()
}

fn names(d: &Dataset) -> Vec<String> {
    d.columns.iter().map(|c| c.name.clone()).collect()
}

fn held_out() -> (Dataset, Dataset) {
    let d = sample();
    let (tr, te) = split_stratified(&d.labels, 0.3, 42);
    (d.subset(&tr), d.subset(&te))
}

fn auprc_of(m: &dyn Scorer, test: &Dataset) -> f64 {
    let scores: Vec<f64> = test.rows.iter().map(|r| m.score(r)).collect();
    evaluate(&scores, &test.labels, 0.5).auprc
}

#[test]
fn supervised_beats_the_floor_and_is_deterministic() {
    let (train, test) = held_out();
    let p = Params::default();
    let m = Model::train(names(&train), &train.rows, &train.labels, &p, |_, _| {});
    let auprc = auprc_of(&m, &test);
    eprintln!("synthetic sample, supervised held-out AUPRC {auprc:.4}");
    assert!(
        auprc >= SUPERVISED_FLOOR,
        "supervised AUPRC {auprc} < {SUPERVISED_FLOOR}"
    );
    let again = Model::train(names(&train), &train.rows, &train.labels, &p, |_, _| {});
    assert_eq!(
        m.to_bytes(),
        again.to_bytes(),
        "same data + seed, other bytes"
    );
    assert_eq!(m.info.rows, train.rows.len() as u64);
    assert_eq!(
        m.info.positives,
        train.labels.iter().filter(|&&l| l).count() as u64
    );
}

#[test]
fn unsupervised_beats_the_floor_without_labels_and_is_deterministic() {
    let (train, test) = held_out();
    let p = AnomalyParams::default();
    // the trainer has no label argument at all
    let m = AnomalyModel::train(names(&train), &train.rows, &p, |_, _| {});
    let auprc = auprc_of(&m, &test);
    eprintln!("synthetic sample, unsupervised held-out AUPRC {auprc:.4}");
    assert!(
        auprc >= UNSUPERVISED_FLOOR,
        "unsupervised AUPRC {auprc} < {UNSUPERVISED_FLOOR}"
    );
    let again = AnomalyModel::train(names(&train), &train.rows, &p, |_, _| {});
    assert_eq!(m.to_bytes(), again.to_bytes());
}

#[test]
fn one_file_format_for_both_kinds() {
    let (train, _) = held_out();
    let sup = Model::train(
        names(&train),
        &train.rows,
        &train.labels,
        &Params {
            trees: 10,
            ensemble: 1,
            ..Params::default()
        },
        |_, _| {},
    );
    let mut uns = AnomalyModel::train(
        names(&train),
        &train.rows,
        &AnomalyParams::default(),
        |_, _| {},
    );
    uns.categories = train.columns.iter().map(|c| c.categories.clone()).collect();
    uns.info.training_seconds = 1.5;
    for (model, kind) in [
        (RiskModel::Supervised(sup.clone()), ModelKind::Supervised),
        (
            RiskModel::Unsupervised(uns.clone()),
            ModelKind::Unsupervised,
        ),
    ] {
        let bytes = model.to_bytes();
        assert_eq!(&bytes[..8], b"CBRSKMDL");
        assert_eq!(bytes[8..12], FORMAT_VERSION.to_le_bytes());
        let back = RiskModel::from_bytes(&bytes).unwrap();
        assert_eq!(back, model);
        assert_eq!(back.kind(), kind);
        let h = back.header();
        assert_eq!(h.features, names(&train));
        assert_eq!(h.training.rows, train.rows.len() as u64);
        // the same scores after the round trip
        for r in train.rows.iter().take(20) {
            assert_eq!(back.score(r), model.score(r));
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.cbr");
        model.save(&path).unwrap();
        assert_eq!(RiskModel::load(&path).unwrap(), model);
    }
    let back = RiskModel::from_bytes(&uns.to_bytes()).unwrap();
    assert_eq!(
        back.categories()[2],
        Some(
            vec!["app".into(), "web".into(), "atm".into(), "branch".into()]
                .into_iter()
                .collect::<std::collections::BTreeSet<String>>()
                .into_iter()
                .collect()
        )
    );
    assert_eq!(back.info().training_seconds, 1.5);
    // asking for the wrong kind is a typed error
    assert!(matches!(
        Model::from_bytes(&uns.to_bytes()),
        Err(ModelError::WrongKind {
            expected: ModelKind::Supervised,
            found: ModelKind::Unsupervised
        })
    ));
    assert!(matches!(
        AnomalyModel::from_bytes(&sup.to_bytes()),
        Err(ModelError::WrongKind { .. })
    ));
}

#[test]
fn damaged_files_give_named_errors() {
    let (train, _) = held_out();
    let m = AnomalyModel::train(
        names(&train),
        &train.rows,
        &AnomalyParams::default(),
        |_, _| {},
    );
    let bytes = m.to_bytes();
    // a flipped bit anywhere after the version
    for at in [12, 20, bytes.len() / 2, bytes.len() - 1] {
        let mut bad = bytes.clone();
        bad[at] ^= 0x10;
        let e = RiskModel::from_bytes(&bad).unwrap_err();
        assert!(
            matches!(
                e,
                ModelError::Corrupt | ModelError::Truncated { .. } | ModelError::UnknownKind(_)
            ),
            "flip at {at}: {e}"
        );
        assert!(e.to_string().contains("corrupt"), "{e}");
    }
    // truncated
    for cut in [10, 13, 30, bytes.len() - 1] {
        let e = RiskModel::from_bytes(&bytes[..cut]).unwrap_err();
        assert!(
            matches!(e, ModelError::Truncated { .. }),
            "cut at {cut}: {e}"
        );
        assert!(e.to_string().contains("truncated"));
    }
    // an incompatible version
    let mut v9 = bytes.clone();
    v9[8..12].copy_from_slice(&9u32.to_le_bytes());
    let e = RiskModel::from_bytes(&v9).unwrap_err();
    assert!(matches!(e, ModelError::Version { found: 9 }));
    assert!(e.to_string().contains("version 9"));
    // a file of the first format (gradient-boosted only)
    let e = RiskModel::from_bytes(b"CBRSKGBT\x01\x00\x00\x00garbage").unwrap_err();
    assert!(matches!(e, ModelError::Version { found: 1 }));
    // not a model file
    assert!(matches!(
        RiskModel::from_bytes(b"id,amount\n1,2\n"),
        Err(ModelError::BadMagic)
    ));
    assert!(matches!(
        RiskModel::from_bytes(b""),
        Err(ModelError::BadMagic)
    ));
    // a missing file names the path
    let e = RiskModel::load(std::path::Path::new("/nonexistent/m.cbr")).unwrap_err();
    assert!(e.to_string().contains("/nonexistent/m.cbr"));
}

/// Rows where only feature 2 of 4 decides the label; the others are noise.
fn driven_by_feature_2() -> (Vec<Vec<f64>>, Vec<bool>) {
    let mut s = 7u64;
    let mut next = || {
        s = s
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (s >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut rows = Vec::new();
    let mut labels = Vec::new();
    for _ in 0..3000 {
        let row: Vec<f64> = (0..4).map(|_| next()).collect();
        labels.push(row[2] > 0.9);
        rows.push(row);
    }
    (rows, labels)
}

#[test]
fn explanations_name_the_driving_feature() {
    let (rows, labels) = driven_by_feature_2();
    let names: Vec<String> = (0..4).map(|j| format!("f{j}")).collect();
    let sup = Model::train(
        names.clone(),
        &rows,
        &labels,
        &Params {
            trees: 30,
            ..Params::default()
        },
        |_, _| {},
    );
    let row = [0.5, 0.5, 0.97, 0.5];
    let (score, why) = sup.score_explained(&row, 2);
    assert!(score > 0.5);
    assert_eq!(why.len(), 2);
    assert_eq!(why[0].0, 2, "{why:?}");
    assert!(why[0].1 > 0.0);
    assert!(why[0].1.abs() > why[1].1.abs());
    // a legitimate row: feature 2 pushes the score down
    let (low, why) = sup.score_explained(&[0.5, 0.5, 0.2, 0.5], 1);
    assert!(low < 0.1);
    assert_eq!(why[0].0, 2);
    assert!(why[0].1 < 0.0);

    let uns = AnomalyModel::train(names, &rows, &AnomalyParams::default(), |_, _| {});
    let mut out = Vec::new();
    for j in 0..4 {
        let mut row = [0.5; 4];
        row[j] = 5.0; // far outside [0, 1)
        let score = uns.score_explained_into(&row, 3, &mut out);
        assert!(score > uns.score(&[0.5; 4]));
        assert_eq!(out.len(), 3);
        assert_eq!(out[0].0, j, "{out:?}");
    }
    // the output buffer is reused without growing
    let cap = out.capacity();
    let as_enum = RiskModel::Unsupervised(uns);
    for _ in 0..10 {
        as_enum.score_explained_into(&[0.5, 9.0, 0.5, 0.5], 2, &mut out);
    }
    assert_eq!(out.capacity(), cap);
    assert_eq!(out[0].0, 1);
}

#[test]
fn bad_csv_input_is_named() {
    let e = Dataset::parse("a,b,fraud\n1,2,0\n3,4\n", "fraud", &[]).unwrap_err();
    assert!(matches!(e, DatasetError::ColumnCount { line: 3, .. }));
    assert!(e.to_string().contains("line 3"), "{e}");
    let e = Dataset::parse("a,b,label\n1,2,0\n", "fraud", &[]).unwrap_err();
    assert!(matches!(e, DatasetError::MissingLabel(ref c) if c == "fraud"));
    assert!(e.to_string().contains("fraud"));
    let e = Dataset::parse("a,fraud\n1,0\n2,yes\n", "fraud", &[]).unwrap_err();
    assert!(matches!(e, DatasetError::BadLabel { line: 3, ref value } if value == "yes"));
    let e = Dataset::parse("a,fraud\n1,2\n", "fraud", &[]).unwrap_err();
    assert!(e.to_string().contains("neither 0 nor 1"));
}
