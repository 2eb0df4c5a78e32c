#![allow(clippy::unwrap_used, clippy::expect_used, clippy::float_arithmetic)]
use super::*;
use crate::features::FEATURE_NAMES;
use corebank_risk::Params;
use corebank_screening::{Channel, GeoPoint, TransferContext};

const SEC: u64 = 1_000_000_000;
const T0: u64 = 19_675 * NS_PER_DAY;

fn cand(id: u128, debit: u128, amount: u128, ts: u64) -> Candidate {
    Candidate {
        id,
        debit_account: debit,
        credit_account: 5_000_000 + id,
        amount,
        ledger: 978,
        code: 1,
        pending: false,
        timestamp_ns: ts,
        debit_account_created_ns: 0,
        credit_account_created_ns: 0,
        debit_available: 10_000_000,
        context: TransferContext {
            channel: Channel::Card,
            merchant_category: 5411,
            device: 1,
            location: Some(GeoPoint {
                lat_micro: 1,
                lon_micro: 1,
            }),
            occurred_at_ns: ts,
        },
    }
}

fn screen_one(e: &Engine, c: &Candidate) -> Assessment {
    let mut out = Vec::new();
    e.screen(std::slice::from_ref(c), &mut out).unwrap();
    e.committed(std::slice::from_ref(c));
    out[0]
}

fn no_rules() -> RuleSet {
    RuleSet::parse("version = 1\n").unwrap()
}

/// A small model: fraud when the amount is large.
fn small_model() -> Model {
    let mut rows = Vec::new();
    let mut labels = Vec::new();
    for i in 0..400u32 {
        let mut r = vec![f64::NAN; FEATURE_NAMES.len()];
        let amount_log = f64::from(i % 80) / 10.0;
        r[Feature::AmountLog.index()] = amount_log;
        rows.push(r);
        labels.push(amount_log > 5.0);
    }
    let names = FEATURE_NAMES.iter().map(|s| s.to_string()).collect();
    let params = Params {
        trees: 10,
        max_depth: 3,
        ..Params::default()
    };
    Model::train(names, &rows, &labels, &params, |_, _| {})
}

#[test]
fn default_engine_screens_and_counts() {
    let e = Engine::new(EngineConfig::default()).unwrap();
    let batch: Vec<Candidate> = (0..10).map(|i| cand(i, 100 + i, 1_000, T0 + 1)).collect();
    let mut out = Vec::new();
    e.screen(&batch, &mut out).unwrap();
    assert_eq!(out.len(), 10);
    assert!(
        out.iter()
            .all(|a| a.verdict == Verdict::Approve && a.score < 600)
    );
    e.committed(&batch);
    let s = e.stats();
    assert_eq!((s.screened, s.approved, s.committed), (10, 10, 10));
    assert_eq!((s.hold_threshold, s.decline_threshold), (600, 900));
    assert!(s.rules >= 5);
    assert_eq!(s.model_version, None);
}

#[test]
fn bad_config_is_rejected() {
    let bad = EngineConfig {
        hold_threshold: 950,
        decline_threshold: 900,
        ..EngineConfig::default()
    };
    assert!(matches!(Engine::new(bad), Err(EngineError::Config(_))));
    let missing_rules = EngineConfig {
        rules: Some("/nonexistent/rules.toml".into()),
        ..EngineConfig::default()
    };
    assert!(matches!(
        Engine::new(missing_rules),
        Err(EngineError::Rules(RulesError::Io { .. }))
    ));
}

#[test]
fn card_testing_burst_is_declined_by_rule() {
    let e = Engine::new(EngineConfig::default()).unwrap();
    let mut last = Assessment::default();
    for i in 0..6u64 {
        last = screen_one(&e, &cand(u128::from(i), 7, 99, T0 + i * 10 * SEC));
    }
    assert_eq!(last.verdict, Verdict::Decline);
    let rules = e.rules();
    let first = last.reasons[0];
    assert_eq!(rules.rule_of(first).unwrap().name, "card_testing_burst");
    assert!(e.explain_reason(first).contains("card_testing_burst"));
    assert!(last.reasons().any(|r| r == ReasonCode::CARD_TESTING));
    assert!(
        e.explain_reason(ReasonCode::CARD_TESTING)
            .starts_with("card_testing:")
    );
    assert!(e.explain_reason(ReasonCode(4_000)).contains("unknown"));
}

#[test]
fn require_model_without_model_fails_screening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing.model");
    let e = Engine::new(EngineConfig {
        model: Some(path.clone()),
        require_model: true,
        ..EngineConfig::default()
    })
    .unwrap();
    let mut out = Vec::new();
    let err = e.screen(&[cand(1, 1, 100, T0)], &mut out).unwrap_err();
    assert!(matches!(err, ScreenError::ModelMissing(_)), "{err:?}");
    assert!(out.is_empty());
    assert!(e.model_problem().is_some());
    // A corrupt file is missing too.
    std::fs::write(&path, b"CBRSKGBT garbage").unwrap();
    let e = Engine::new(EngineConfig {
        model: Some(path.clone()),
        require_model: true,
        ..EngineConfig::default()
    })
    .unwrap();
    assert!(matches!(
        e.screen(&[cand(1, 1, 100, T0)], &mut out),
        Err(ScreenError::ModelMissing(_))
    ));
    // Once a model loads, screening works.
    small_model().save(&path).unwrap();
    e.load_model(&path).unwrap();
    e.screen(&[cand(1, 1, 100, T0)], &mut out).unwrap();
    assert_eq!(out.len(), 1);
    assert!(e.model_problem().is_none());
    // Without require_model, an engine without a model scores on rules and anomaly.
    let lenient = Engine::new(EngineConfig {
        model: Some(dir.path().join("none")),
        ..EngineConfig::default()
    })
    .unwrap();
    lenient.screen(&[cand(1, 1, 100, T0)], &mut out).unwrap();
}

#[test]
fn model_swaps_and_bad_files_keep_the_running_model() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.model");
    small_model().save(&good).unwrap();
    let e = Engine::new(EngineConfig {
        model: Some(good.clone()),
        require_model: true,
        ..EngineConfig::default()
    })
    .unwrap();
    let v1 = e.model_version().unwrap();
    let big = screen_one(&e, &cand(1, 1, 10_000_000, T0));
    let small = screen_one(&e, &cand(2, 2, 10, T0));
    assert!(big.score > small.score, "{big:?} {small:?}");
    assert!(big.reasons().any(|r| r == ReasonCode::MODEL));

    // Corrupt: flip a byte of the body.
    let mut bytes = std::fs::read(&good).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xFF;
    let corrupt = dir.path().join("corrupt.model");
    std::fs::write(&corrupt, &bytes).unwrap();
    assert!(matches!(e.load_model(&corrupt), Err(EngineError::Model(_))));
    // Truncated, garbage, missing.
    std::fs::write(&corrupt, &bytes[..bytes.len() / 3]).unwrap();
    assert!(e.load_model(&corrupt).is_err());
    std::fs::write(&corrupt, b"not a model").unwrap();
    assert!(e.load_model(&corrupt).is_err());
    assert!(e.load_model(&dir.path().join("nope")).is_err());
    // Incompatible: features this engine does not compute.
    let alien = Model::train(
        vec!["V1".to_string()],
        &[vec![0.0], vec![1.0]],
        &[false, true],
        &Params {
            trees: 2,
            ..Params::default()
        },
        |_, _| {},
    );
    let alien_path = dir.path().join("alien.model");
    alien.save(&alien_path).unwrap();
    assert!(matches!(
        e.load_model(&alien_path),
        Err(EngineError::IncompatibleModel(_))
    ));
    assert_eq!(e.model_version().as_deref(), Some(v1.as_str()));
    let again = screen_one(&e, &cand(3, 3, 10_000_000, T0));
    assert_eq!(again.score, big.score);

    // A different model swaps in without a restart.
    let other = {
        let mut m = small_model();
        m.features.reverse();
        m
    };
    let v2 = e.set_model(other).unwrap();
    assert_ne!(v1, v2);
    assert_eq!(e.stats().model_version, Some(v2));
}

#[test]
fn repeated_high_risk_freezes_once() {
    let e = Engine::new(EngineConfig {
        freeze_after: 3,
        ..EngineConfig::default()
    })
    .unwrap();
    e.set_rules(
        RuleSet::parse(
            "[[rule]]\nname = \"all\"\nwhen = [{ feature = \"amount_log10\", at_least = 0 }]\naction = \"hold\"\n",
        )
        .unwrap(),
    );
    let freezes: Vec<bool> = (0..5u64)
        .map(|i| {
            let a = screen_one(&e, &cand(u128::from(i), 42, 1_000, T0 + i * 600 * SEC));
            assert_eq!(a.verdict, Verdict::Hold);
            a.freeze_debit_account
        })
        .collect();
    assert_eq!(freezes, vec![false, false, true, false, false]);
    assert_eq!(e.stats().frozen, 1);
    // Spread beyond the window: no freeze.
    let freezes: Vec<bool> = (0..5u64)
        .map(|i| {
            screen_one(&e, &cand(u128::from(i), 43, 1_000, T0 + i * 2 * NS_PER_DAY))
                .freeze_debit_account
        })
        .collect();
    assert!(freezes.iter().all(|f| !f));
}

#[test]
fn pending_transfers_are_not_held() {
    let e = Engine::new(EngineConfig::default()).unwrap();
    e.set_rules(
        RuleSet::parse(
            "[[rule]]\nname = \"all\"\nwhen = [{ feature = \"amount_log10\", at_least = 0 }]\naction = \"hold\"\n",
        )
        .unwrap(),
    );
    let mut c = cand(1, 1, 100, T0);
    c.pending = true;
    assert_eq!(screen_one(&e, &c).verdict, Verdict::Approve);
    let strict = Engine::new(EngineConfig {
        hold_pending_as_decline: true,
        ..EngineConfig::default()
    })
    .unwrap();
    strict.set_rules(e.rules().as_ref().clone());
    assert_eq!(screen_one(&strict, &c).verdict, Verdict::Decline);
}

#[test]
fn feedback_moves_scores_in_the_right_direction() {
    for with_model in [false, true] {
        let e = Engine::new(EngineConfig::default()).unwrap();
        if with_model {
            e.set_model(small_model()).unwrap();
        }
        // An unusual transfer: drains 90% of the balance.
        let probe = |id: u128| {
            let mut c = cand(id, 9, 1_000, T0);
            c.debit_available = 1_100;
            let mut out = Vec::new();
            e.screen(&[c], &mut out).unwrap();
            out[0].score
        };
        let s0 = probe(1);
        for _ in 0..30 {
            assert!(e.feedback(1, true));
        }
        let s1 = probe(2);
        assert!(s1 > s0, "fraud feedback: {s0} -> {s1} (model {with_model})");
        for _ in 0..200 {
            assert!(e.feedback(2, false));
        }
        let s2 = probe(3);
        assert!(s2 < s1, "legit feedback: {s1} -> {s2} (model {with_model})");
        assert!(!e.feedback(999, true));
        assert_eq!(e.stats().feedback, 230);
    }
}

#[test]
fn same_inputs_same_assessments() {
    let run = || {
        let e = Engine::new(EngineConfig::default()).unwrap();
        let config = corebank_fraud_sim::SimConfig {
            customers: 60,
            days: 8,
            ..corebank_fraud_sim::SimConfig::default()
        };
        crate::sim::candidates(&config)
            .map(|(c, _)| screen_one(&e, &c))
            .collect::<Vec<_>>()
    };
    let a = run();
    assert!(a.len() > 500);
    assert_eq!(a, run());
    assert!(a.iter().any(|x| x.verdict != Verdict::Approve));
}

#[test]
fn adaptive_hold_threshold_keeps_the_daily_budget() {
    let budget = 50u32;
    let e = Engine::new(EngineConfig {
        daily_review_budget: Some(budget),
        freeze_after: 0,
        ..EngineConfig::default()
    })
    .unwrap();
    e.set_rules(no_rules());
    let mut state = 12_345u64;
    let mut rand = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        state >> 33
    };
    let per_day = 3_000u64;
    let mut held = Vec::new();
    for day in 0..8u64 {
        let mut n = 0;
        for k in 0..per_day {
            let id = u128::from(day * per_day + k);
            let mut c = cand(
                id,
                1_000_000 + id,
                1_000,
                T0 + day * NS_PER_DAY + k * 28 * SEC,
            );
            // The drained share varies continuously: so does the anomaly signal.
            c.debit_available = 1_000 + u128::from(rand() % 2_000);
            let mut out = Vec::new();
            e.screen(&[c], &mut out).unwrap();
            n += u32::from(out[0].verdict == Verdict::Hold);
        }
        held.push(n);
    }
    // Day 0 runs on the configured threshold; later days adapt.
    let lo = f64::from(budget) * 0.7;
    let hi = f64::from(budget) * 1.3;
    for (day, &n) in held.iter().enumerate().skip(1) {
        assert!(
            (lo..=hi).contains(&f64::from(n)),
            "day {day}: held {n}, budget {budget} ({held:?})"
        );
    }
    assert!(e.stats().hold_threshold < 600);
}

#[test]
fn rules_hot_reload_keeps_rules_in_force_on_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rules.toml");
    let one = "[[rule]]\nname = \"big\"\ndescription = \"Big amounts.\"\nwhen = [{ feature = \"amount_log10\", at_least = 6 }]\naction = \"decline\"\n";
    std::fs::write(&path, one).unwrap();
    let e = Engine::new(EngineConfig {
        rules: Some(path.clone()),
        ..EngineConfig::default()
    })
    .unwrap();
    assert_eq!(e.stats().rules, 1);
    assert!(!e.reload_rules_if_changed().unwrap());
    assert_eq!(
        e.explain_reason(ReasonCode::rule(0)),
        "rule big: Big amounts."
    );
    assert_eq!(
        screen_one(&e, &cand(1, 1, 2_000_000, T0)).verdict,
        Verdict::Decline
    );

    let two = format!(
        "{one}\n[[rule]]\nname = \"tiny\"\nwhen = [{{ feature = \"is_tiny\", equals = 1 }}]\nscore = 10\n"
    );
    std::fs::write(&path, &two).unwrap();
    assert!(e.reload_rules_if_changed().unwrap());
    assert_eq!(e.stats().rules, 2);
    assert!(!e.reload_rules_if_changed().unwrap());

    std::fs::write(
        &path,
        "[[rule]]\nname = \"x\"\nwhen = [{ feature = \"bogus\", at_least = 1 }]\nscore = 1\n",
    )
    .unwrap();
    let err = e.reload_rules_if_changed().unwrap_err();
    assert!(err.to_string().contains("bogus"), "{err}");
    assert_eq!(e.stats().rules, 2);
    assert!(e.reload_rules().is_err());
    assert_eq!(e.stats().rules, 2);
    assert_eq!(
        screen_one(&e, &cand(2, 2, 2_000_000, T0)).verdict,
        Verdict::Decline
    );
}

#[test]
fn screen_and_committed_from_several_threads() {
    let e = std::sync::Arc::new(Engine::new(EngineConfig::default()).unwrap());
    let handles: Vec<_> = (0..4u64)
        .map(|t| {
            let e = e.clone();
            std::thread::spawn(move || {
                for i in 0..200u64 {
                    let c = cand(
                        u128::from(t * 1_000 + i),
                        u128::from(t),
                        1_000,
                        T0 + i * SEC,
                    );
                    let mut out = Vec::new();
                    e.screen(&[c], &mut out).unwrap();
                    e.committed(&[c]);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    assert_eq!(e.stats().screened, 800);
}

#[test]
fn a_burst_inside_one_batch_is_seen() {
    let e = Engine::new(EngineConfig::default()).unwrap();
    let batch: Vec<Candidate> = (0..6u64)
        .map(|i| cand(u128::from(i), 7, 99, T0 + i * SEC))
        .collect();
    let mut out = Vec::new();
    e.screen(&batch, &mut out).unwrap();
    assert_eq!(out[0].verdict, Verdict::Approve);
    assert_eq!(out[5].verdict, Verdict::Decline);
    // Screening changed no feature state: the same batch screens the same way.
    let mut again = Vec::new();
    e.screen(&batch, &mut again).unwrap();
    assert_eq!(
        out.iter().map(|a| a.verdict).collect::<Vec<_>>(),
        again.iter().map(|a| a.verdict).collect::<Vec<_>>()
    );
}
