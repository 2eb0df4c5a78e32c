//! `corebank risk`: split a labelled CSV, train a model (supervised gradient-boosted
//! trees or the unsupervised anomaly model), evaluate it, show a model file's header.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use corebank_fraud_sim::SimConfig;
use corebank_risk::{
    AnomalyModel, AnomalyParams, Dataset, Model, Params, RiskModel, Scorer, TrainParams, evaluate,
    split_stratified,
};

/// The `risk` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum RiskCommand {
    /// Train a model on a labelled CSV: supervised (gradient-boosted trees, the
    /// default) or unsupervised (anomaly model; never reads the label).
    Train(Box<TrainArgs>),
    /// Score a labelled CSV with a model and print AUPRC, ROC-AUC, recall at 1% and
    /// 0.1% false-positive rate, precision at 80% recall and the confusion matrix.
    Eval(EvalArgs),
    /// Split a labelled CSV into train and test files, stratified by the label.
    Split(SplitArgs),
    /// Print a model file's header: kind, format version, features, parameters and
    /// training figures.
    Info(InfoArgs),
    /// Write synthetic bank traffic with labelled fraud as CSV: the screen's features
    /// of every transfer (to train the screen's model with `risk train`), or with
    /// --raw the simulator's events.
    Simulate(SimulateArgs),
    /// Evaluate the fraud screen on synthetic traffic, per fraud typology: train on one
    /// simulated bank, score another through the whole screen (rules, model, anomaly),
    /// and report recall at under 1% false positives.
    Typologies(TypologiesArgs),
}

/// Arguments of `risk simulate`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example (train the screen's model, then put it in service on a branch):\n  \
corebank risk simulate --customers 2000 --days 60 --seed 7 --out features.csv\n  \
corebank risk train --data features.csv --label is_fraud --ignore typology --out screen.cbr\n  \
corebank client --server 127.0.0.1:8080 --insecure load-model --file screen.cbr"
)]
pub struct SimulateArgs {
    /// Simulated customers.
    #[arg(long, default_value_t = 1_000)]
    pub customers: u32,
    /// Simulated days.
    #[arg(long, default_value_t = 30)]
    pub days: u32,
    /// Seed: the same seed gives the same traffic.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Branches the customers are spread over.
    #[arg(long, default_value_t = 4)]
    pub branches: u16,
    /// Where to write the CSV.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Write the simulator's events (amounts, channels, places, labels) instead of the
    /// screen's features.
    #[arg(long)]
    pub raw: bool,
}

/// Arguments of `risk typologies`.
#[derive(Debug, clap::Args)]
pub struct TypologiesArgs {
    /// Simulated customers of each bank (train and test).
    #[arg(long, default_value_t = 1_000)]
    pub customers: u32,
    /// Simulated days.
    #[arg(long, default_value_t = 60)]
    pub days: u32,
    /// Seed of the training bank.
    #[arg(long, default_value_t = 1)]
    pub train_seed: u64,
    /// Seed of the test bank.
    #[arg(long, default_value_t = 2)]
    pub test_seed: u64,
    /// Boosting rounds of the model.
    #[arg(long, default_value_t = 200)]
    pub trees: usize,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// The kind of model `risk train` builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KindArg {
    /// Gradient-boosted trees trained on the labels.
    Supervised,
    /// Anomaly model (robust Mahalanobis distance + histogram outlier score); the
    /// label column is only excluded from the features, never read.
    Unsupervised,
}

/// Arguments of `risk info`.
#[derive(Debug, clap::Args)]
pub struct InfoArgs {
    /// The model file.
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `risk train`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  corebank risk train --data train.csv --label Class --out model.cbr --ignore Time"
)]
pub struct TrainArgs {
    /// The CSV with a header row.
    #[arg(long, value_name = "FILE")]
    pub data: PathBuf,
    /// The label column (0/1).
    #[arg(long, value_name = "COLUMN")]
    pub label: String,
    /// Where to write the model file.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// Columns to leave out (ids), separated by commas.
    #[arg(long, value_name = "COL,...", value_delimiter = ',')]
    pub ignore: Vec<String>,
    /// Which model to train.
    #[arg(long, value_enum, default_value = "supervised")]
    pub model_kind: KindArg,
    /// Seed of the sampling (training is deterministic: the same data, settings and
    /// seed give the same model; only the recorded training time differs).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Supervised: boosting rounds per booster [default: 200].
    #[arg(long)]
    pub trees: Option<usize>,
    /// Supervised: maximum depth of a tree [default: 6].
    #[arg(long)]
    pub max_depth: Option<usize>,
    /// Supervised: learning rate [default: 0.1].
    #[arg(long)]
    pub learning_rate: Option<String>,
    /// Supervised: bins per feature, at most 255 [default: 255].
    #[arg(long)]
    pub max_bins: Option<usize>,
    /// Supervised: L2 regularisation of leaf values [default: 3].
    #[arg(long)]
    pub lambda: Option<String>,
    /// Supervised: minimum hessian sum in a child [default: 1].
    #[arg(long)]
    pub min_child_weight: Option<String>,
    /// Supervised: fraction of rows sampled per tree [default: 1].
    #[arg(long)]
    pub subsample: Option<String>,
    /// Supervised: fraction of features sampled per tree [default: 1].
    #[arg(long)]
    pub colsample: Option<String>,
    /// Supervised: weight of positive rows [default: 1].
    #[arg(long)]
    pub scale_pos_weight: Option<String>,
    /// Supervised: differently seeded boosters averaged [default: 1].
    #[arg(long)]
    pub ensemble: Option<usize>,
    /// Supervised: bound on a leaf's step in log-odds, 0 = none [default: 0].
    #[arg(long)]
    pub max_delta_step: Option<String>,
    /// Unsupervised: share of rows nearest the centre that estimate the covariance
    /// [default: 0.98].
    #[arg(long)]
    pub core_fraction: Option<String>,
    /// Unsupervised: bins per feature of the histogram outlier score [default: 20].
    #[arg(long)]
    pub hbos_bins: Option<usize>,
    /// Print one JSON object describing the trained model (no progress bar).
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `risk eval`.
#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// The model file.
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,
    /// The CSV with a header row.
    #[arg(long, value_name = "FILE")]
    pub data: PathBuf,
    /// The label column (0/1).
    #[arg(long, value_name = "COLUMN")]
    pub label: String,
    /// Columns to leave out, separated by commas.
    #[arg(long, value_name = "COL,...", value_delimiter = ',')]
    pub ignore: Vec<String>,
    /// Score at or above which a row is flagged (for the confusion matrix).
    #[arg(long, default_value = "0.5")]
    pub threshold: String,
    /// Print one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `risk split`.
#[derive(Debug, clap::Args)]
pub struct SplitArgs {
    /// The CSV with a header row.
    #[arg(long, value_name = "FILE")]
    pub data: PathBuf,
    /// The label column (0/1).
    #[arg(long, value_name = "COLUMN")]
    pub label: String,
    /// Fraction of each class sent to the test file.
    #[arg(long, default_value = "0.3")]
    pub test_fraction: String,
    /// Shuffle seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// The train file to write.
    #[arg(long, value_name = "FILE")]
    pub train: PathBuf,
    /// The test file to write.
    #[arg(long, value_name = "FILE")]
    pub test: PathBuf,
}

/// Runs a `risk` subcommand.
pub fn run(command: RiskCommand) -> anyhow::Result<ExitCode> {
    match command {
        RiskCommand::Train(a) => train(*a),
        RiskCommand::Eval(a) => eval(a),
        RiskCommand::Split(a) => split(a),
        RiskCommand::Info(a) => info(a),
        RiskCommand::Simulate(a) => simulate(a),
        RiskCommand::Typologies(a) => typologies(a),
    }
}

fn sim_config(customers: u32, days: u32, seed: u64, branches: u16) -> anyhow::Result<SimConfig> {
    anyhow::ensure!(customers > 0, "--customers must be at least 1");
    anyhow::ensure!(days > 0, "--days must be at least 1");
    Ok(SimConfig {
        seed,
        customers,
        days,
        branches: branches.max(1),
        ..SimConfig::default()
    })
}

fn simulate(args: SimulateArgs) -> anyhow::Result<ExitCode> {
    let config = sim_config(args.customers, args.days, args.seed, args.branches)?;
    let file = std::fs::File::create(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let mut out = std::io::BufWriter::new(file);
    let rows = if args.raw {
        corebank_fraud_sim::write_csv(corebank_fraud_sim::Simulator::new(config), &mut out)?
    } else {
        corebank_risk_engine::export_features(&config, &mut out)?
    };
    std::io::Write::flush(&mut out)?;
    eprintln!(
        "wrote {rows} transfers to {} ({})",
        args.out.display(),
        if args.raw {
            "the simulator's events; the label column is is_fraud"
        } else {
            "the screen's features; label is_fraud, ignore typology"
        }
    );
    Ok(ExitCode::SUCCESS)
}

fn typologies(args: TypologiesArgs) -> anyhow::Result<ExitCode> {
    let train = sim_config(args.customers, args.days, args.train_seed, 4)?;
    let test = sim_config(args.customers, args.days, args.test_seed, 4)?;
    anyhow::ensure!(
        args.train_seed != args.test_seed,
        "the training and test banks need different seeds"
    );
    let params = Params {
        trees: args.trees,
        ..Params::default()
    };
    let started = Instant::now();
    let report = corebank_risk_engine::evaluate_typologies(&train, &test, &params)?;
    let seconds = started.elapsed().as_secs_f64();
    if args.json {
        let rows: Vec<serde_json::Value> = report
            .rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "typology": r.typology, "fraudulent": r.fraudulent,
                    "caught": r.caught, "recall": r.recall,
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({
                "typologies": rows,
                "normal": report.normal,
                "false_positives": report.false_positives,
                "fpr": report.fpr,
                "auprc": report.auprc,
                "roc_auc": report.roc_auc,
                "recall_at_01pct_fpr": report.recall_at_01pct_fpr,
                "fraudulent": report.fraudulent,
                "caught": report.caught,
                "train_rows": report.train_rows,
                "seconds": seconds,
            })
        );
    } else {
        print!("{report}");
        println!("({seconds:.1} s)");
    }
    Ok(ExitCode::SUCCESS)
}

fn number(text: &str, what: &str) -> anyhow::Result<f64> {
    text.parse::<f64>()
        .ok()
        .filter(|x| x.is_finite())
        .with_context(|| format!("{what}: {text:?} is not a number"))
}

fn opt_number(text: Option<&String>, what: &str, default: f64) -> anyhow::Result<f64> {
    text.map_or(Ok(default), |t| number(t, what))
}

fn progress_bar(hidden: bool) -> indicatif::ProgressBar {
    if hidden {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(0);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{msg} [{elapsed_precise}] {wide_bar} {pos}/{len} (eta {eta})",
    ) {
        bar.set_style(style);
    }
    bar
}

fn train(a: TrainArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let data = Dataset::read(&a.data, &a.label, &a.ignore)?;
    let read_in = started.elapsed();
    if !a.json {
        eprintln!(
            "read {} rows x {} features in {:.1?}",
            data.rows.len(),
            data.columns.len(),
            read_in
        );
    }
    let names: Vec<String> = data.columns.iter().map(|c| c.name.clone()).collect();
    let bar = progress_bar(a.json);
    let tick = |done: usize, total: usize| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    };
    let fit_started = Instant::now();
    let mut model = match a.model_kind {
        KindArg::Supervised => {
            let d = Params::default();
            let params = Params {
                trees: a.trees.unwrap_or(d.trees),
                max_depth: a.max_depth.unwrap_or(d.max_depth),
                learning_rate: opt_number(
                    a.learning_rate.as_ref(),
                    "--learning-rate",
                    d.learning_rate,
                )?,
                lambda: opt_number(a.lambda.as_ref(), "--lambda", d.lambda)?,
                min_child_weight: opt_number(
                    a.min_child_weight.as_ref(),
                    "--min-child-weight",
                    d.min_child_weight,
                )?,
                max_bins: a.max_bins.unwrap_or(d.max_bins),
                subsample: opt_number(a.subsample.as_ref(), "--subsample", d.subsample)?,
                colsample: opt_number(a.colsample.as_ref(), "--colsample", d.colsample)?,
                scale_pos_weight: opt_number(
                    a.scale_pos_weight.as_ref(),
                    "--scale-pos-weight",
                    d.scale_pos_weight,
                )?,
                ensemble: a.ensemble.unwrap_or(d.ensemble),
                max_delta_step: opt_number(
                    a.max_delta_step.as_ref(),
                    "--max-delta-step",
                    d.max_delta_step,
                )?,
                seed: a.seed,
            };
            anyhow::ensure!(
                (2..=255).contains(&params.max_bins),
                "--max-bins must be within 2..=255"
            );
            anyhow::ensure!(
                params.subsample > 0.0 && params.subsample <= 1.0,
                "--subsample must be within (0, 1]"
            );
            anyhow::ensure!(
                params.colsample > 0.0 && params.colsample <= 1.0,
                "--colsample must be within (0, 1]"
            );
            bar.set_message("training trees");
            RiskModel::Supervised(Model::train(names, &data.rows, &data.labels, &params, tick))
        }
        KindArg::Unsupervised => {
            let d = AnomalyParams::default();
            let params = AnomalyParams {
                core_fraction: opt_number(
                    a.core_fraction.as_ref(),
                    "--core-fraction",
                    d.core_fraction,
                )?,
                hbos_bins: a.hbos_bins.unwrap_or(d.hbos_bins),
                seed: a.seed,
                ..d
            };
            anyhow::ensure!(
                params.core_fraction > 0.0 && params.core_fraction <= 1.0,
                "--core-fraction must be within (0, 1]"
            );
            bar.set_message("fitting anomaly model");
            // the trainer gets the features only: the label is never read
            RiskModel::Unsupervised(AnomalyModel::train(names, &data.rows, &params, tick))
        }
    };
    bar.finish_and_clear();
    let seconds = fit_started.elapsed().as_secs_f64();
    model.set_categories(data.columns.iter().map(|c| c.categories.clone()).collect());
    {
        let info = model.info_mut();
        info.training_seconds = seconds;
        // for the record only (the anomaly model never saw it)
        info.positives = data.labels.iter().filter(|&&l| l).count() as u64;
    }
    model.save(&a.out)?;
    if a.json {
        println!("{}", header_json(&model));
    } else {
        eprintln!(
            "wrote {} ({} model, seed {}) in {:.1?} (training {seconds:.1}s)",
            a.out.display(),
            model.kind(),
            a.seed,
            started.elapsed()
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn header_json(model: &RiskModel) -> serde_json::Value {
    let h = model.header();
    let params = match &h.params {
        TrainParams::Supervised(p) => serde_json::json!({
            "trees": p.trees, "max_depth": p.max_depth, "learning_rate": p.learning_rate,
            "lambda": p.lambda, "min_child_weight": p.min_child_weight,
            "max_bins": p.max_bins, "subsample": p.subsample, "colsample": p.colsample,
            "scale_pos_weight": p.scale_pos_weight, "ensemble": p.ensemble,
            "max_delta_step": p.max_delta_step, "seed": p.seed,
        }),
        TrainParams::Unsupervised(p) => serde_json::json!({
            "core_fraction": p.core_fraction, "core_steps": p.core_steps, "ridge": p.ridge,
            "hbos_bins": p.hbos_bins, "weight_distance": p.weight_distance,
            "weight_hbos": p.weight_hbos, "max_rows": p.max_rows, "seed": p.seed,
        }),
    };
    serde_json::json!({
        "kind": h.kind.to_string(),
        "format_version": corebank_risk::FORMAT_VERSION,
        "features": h.features,
        "categorical": h.categories.iter().map(Option::is_some).collect::<Vec<_>>(),
        "params": params,
        "training": {
            "rows": h.training.rows,
            "positives": h.training.positives,
            "seed": h.training.seed,
            "training_seconds": h.training.training_seconds,
        },
    })
}

fn info(a: InfoArgs) -> anyhow::Result<ExitCode> {
    let model = RiskModel::load(&a.model)?;
    let v = header_json(&model);
    if a.json {
        println!("{v}");
    } else {
        println!("{}", serde_json::to_string_pretty(&v)?);
    }
    Ok(ExitCode::SUCCESS)
}

fn eval(a: EvalArgs) -> anyhow::Result<ExitCode> {
    let threshold = number(&a.threshold, "--threshold")?;
    let model = RiskModel::load(&a.model)?;
    let data = Dataset::read(&a.data, &a.label, &a.ignore)?;
    let (features, categories) = (model.features(), model.categories());
    // Each model feature: its column in this file and the recoding of categories.
    let mut map = Vec::with_capacity(features.len());
    for (k, name) in features.iter().enumerate() {
        let j = data
            .columns
            .iter()
            .position(|c| &c.name == name)
            .with_context(|| format!("the model needs column {name:?}, not in the data"))?;
        let recode: Option<Vec<f64>> = match (&data.columns[j].categories, categories.get(k)) {
            (Some(here), Some(Some(trained))) => Some(
                here.iter()
                    .map(|c| {
                        trained.iter().position(|t| t == c).map_or(f64::NAN, |p| {
                            f64::from(u32::try_from(p).unwrap_or(u32::MAX))
                        })
                    })
                    .collect(),
            ),
            _ => None,
        };
        map.push((j, recode));
    }
    let started = Instant::now();
    let mut row = vec![0.0; map.len()];
    let scores: Vec<f64> = data
        .rows
        .iter()
        .map(|r| {
            for (slot, (j, recode)) in row.iter_mut().zip(&map) {
                let x = r[*j];
                *slot = match recode {
                    Some(codes) if !x.is_nan() => format!("{x}")
                        .parse::<usize>()
                        .ok()
                        .and_then(|c| codes.get(c).copied())
                        .unwrap_or(f64::NAN),
                    _ => x,
                };
            }
            model.score(&row)
        })
        .collect();
    let elapsed = started.elapsed();
    let m = evaluate(&scores, &data.labels, threshold);
    let per_row_ns = elapsed.as_nanos() / (scores.len().max(1) as u128);
    if a.json {
        let out = serde_json::json!({
            "model_kind": model.kind().to_string(),
            "rows": scores.len(),
            "positives": m.positives,
            "negatives": m.negatives,
            "auprc": m.auprc,
            "roc_auc": m.roc_auc,
            "recall_at_1pct_fpr": m.recall_at_1pct_fpr,
            "recall_at_01pct_fpr": m.recall_at_01pct_fpr,
            "precision_at_80pct_recall": m.precision_at_80pct_recall,
            "threshold": threshold,
            "confusion": {
                "tp": m.confusion.tp, "fp": m.confusion.fp,
                "tn": m.confusion.tn, "fn": m.confusion.fn_,
            },
            "scoring_ns_per_row": u64::try_from(per_row_ns).unwrap_or(u64::MAX),
        });
        println!("{out}");
    } else {
        println!("model                     {}", model.kind());
        println!(
            "rows                      {} ({} positive)",
            scores.len(),
            m.positives
        );
        println!("AUPRC                     {:.4}", m.auprc);
        println!("ROC-AUC                   {:.4}", m.roc_auc);
        println!("recall at 1% FPR          {:.4}", m.recall_at_1pct_fpr);
        println!("recall at 0.1% FPR        {:.4}", m.recall_at_01pct_fpr);
        println!(
            "precision at 80% recall   {:.4}",
            m.precision_at_80pct_recall
        );
        println!("confusion at threshold {threshold}:");
        println!("                 flagged   passed");
        println!(
            "  fraud       {:>10} {:>8}",
            m.confusion.tp, m.confusion.fn_
        );
        println!("  legitimate  {:>10} {:>8}", m.confusion.fp, m.confusion.tn);
        println!("scoring: {per_row_ns} ns per row");
    }
    Ok(ExitCode::SUCCESS)
}

fn split(a: SplitArgs) -> anyhow::Result<ExitCode> {
    let fraction = number(&a.test_fraction, "--test-fraction")?;
    let text = std::fs::read_to_string(&a.data)
        .with_context(|| format!("cannot read {}", a.data.display()))?;
    let data = Dataset::parse(&text, &a.label, &[])?;
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header = lines.next().unwrap_or_default();
    let body: Vec<&str> = lines.collect();
    let (train, test) = split_stratified(&data.labels, fraction, a.seed);
    for (path, idx) in [(&a.train, &train), (&a.test, &test)] {
        let mut out = String::with_capacity(text.len());
        out.push_str(header);
        out.push('\n');
        for &i in idx {
            out.push_str(body.get(i).copied().unwrap_or_default());
            out.push('\n');
        }
        std::fs::write(path, out).with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("wrote {} rows to {}", idx.len(), path.display());
    }
    Ok(ExitCode::SUCCESS)
}
