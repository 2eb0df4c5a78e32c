//! Rules: limits and typology rules as conditions on named features, from a TOML file.
//!
//! ```toml
//! version = 1
//!
//! [[rule]]
//! name = "card_testing_burst"
//! description = "A burst of tiny payments"      # optional
//! when = [{ feature = "tiny_count_1h", at_least = 5 }, { feature = "is_tiny", equals = 1 }]
//! score = 400                                    # optional, 0..=1000, default 0
//! action = "decline"                             # optional: "hold" or "decline"
//! ```
//!
//! A rule hits when every condition of `when` holds (a condition on a missing value
//! never holds). A condition has one or more of `at_least`, `above`, `at_most`,
//! `below`, `equals`; all must hold. Rule `i` (in file order) reports
//! `ReasonCode::rule(i)`. Loading validates everything and names the rule and line of
//! the first error.

// Conditions compare feature values (floats): scores, never money.
#![allow(clippy::float_arithmetic)]

use crate::features::{Feature, FeatureVector};
use corebank_screening::{ReasonCode, Verdict};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The rules compiled into the binary (`rules/default.toml`).
pub const DEFAULT_RULES: &str = include_str!("../rules/default.toml");

/// The forced action of a rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Hold for review at least.
    Hold,
    /// Decline.
    Decline,
}

impl Action {
    /// The verdict the action forces.
    pub fn verdict(self) -> Verdict {
        match self {
            Action::Hold => Verdict::Hold,
            Action::Decline => Verdict::Decline,
        }
    }
}

/// One condition on a feature.
#[derive(Clone, Debug, PartialEq)]
pub struct Condition {
    /// The feature.
    pub feature: Feature,
    /// Inclusive lower bound.
    pub at_least: Option<f64>,
    /// Exclusive lower bound.
    pub above: Option<f64>,
    /// Inclusive upper bound.
    pub at_most: Option<f64>,
    /// Exclusive upper bound.
    pub below: Option<f64>,
    /// Exact value.
    pub equals: Option<f64>,
}

impl Condition {
    /// Whether the condition holds on `value` (never on `NaN`).
    pub fn holds(&self, value: f64) -> bool {
        if value.is_nan() {
            return false;
        }
        self.at_least.is_none_or(|t| value >= t)
            && self.above.is_none_or(|t| value > t)
            && self.at_most.is_none_or(|t| value <= t)
            && self.below.is_none_or(|t| value < t)
            && self.equals.is_none_or(|t| value == t)
    }
}

/// One rule.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    /// Unique name.
    pub name: String,
    /// What it catches.
    pub description: String,
    /// All must hold.
    pub when: Vec<Condition>,
    /// Contribution to the rule score (0..=1000).
    pub score: u16,
    /// Forced action, if any.
    pub action: Option<Action>,
}

impl Rule {
    /// Whether the rule hits on these features.
    pub fn hits(&self, features: &FeatureVector) -> bool {
        self.when
            .iter()
            .all(|c| features.get(c.feature.index()).is_some_and(|&v| c.holds(v)))
    }
}

/// Why a rules file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    /// The file could not be read.
    #[error("rules file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Not valid TOML, or not the expected shape.
    #[error("rules file, line {line}: {message}")]
    Parse {
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A condition names a feature that does not exist.
    #[error("rule {rule:?} (line {line}): unknown feature {feature:?}")]
    UnknownFeature {
        /// The rule.
        rule: String,
        /// Its line.
        line: usize,
        /// The name given.
        feature: String,
    },
    /// A threshold is not usable (not finite, no bound at all, empty range).
    #[error("rule {rule:?} (line {line}): bad threshold on {feature:?}: {reason}")]
    BadThreshold {
        /// The rule.
        rule: String,
        /// Its line.
        line: usize,
        /// The feature.
        feature: String,
        /// Why.
        reason: String,
    },
    /// Anything else wrong with a rule (no condition, score out of range, duplicate name).
    #[error("rule {rule:?} (line {line}): {reason}")]
    BadRule {
        /// The rule.
        rule: String,
        /// Its line.
        line: usize,
        /// Why.
        reason: String,
    },
    /// A version this build does not read.
    #[error("rules file version {0}, this build reads version 1")]
    Version(u32),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default = "one")]
    version: u32,
    #[serde(default)]
    rule: Vec<RawRule>,
}

fn one() -> u32 {
    1
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: toml::Spanned<String>,
    #[serde(default)]
    description: String,
    when: Vec<RawCondition>,
    #[serde(default)]
    score: i64,
    action: Option<Action>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCondition {
    feature: String,
    at_least: Option<f64>,
    above: Option<f64>,
    at_most: Option<f64>,
    below: Option<f64>,
    equals: Option<f64>,
}

/// A validated rules file.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct RuleSet {
    /// The rules, in file order (rule `i` reports `ReasonCode::rule(i)`).
    pub rules: Vec<Rule>,
    /// BLAKE3 of the source text, hex (first 16 digits).
    pub version: String,
}

fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset.min(text.len()))
        .map_or(1, |s| s.bytes().filter(|&b| b == b'\n').count() + 1)
}

impl RuleSet {
    /// The compiled-in default rules.
    pub fn default_rules() -> Result<RuleSet, RulesError> {
        RuleSet::parse(DEFAULT_RULES)
    }

    /// Reads and validates a rules file.
    pub fn load(path: &Path) -> Result<RuleSet, RulesError> {
        let text = std::fs::read_to_string(path).map_err(|source| RulesError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        RuleSet::parse(&text)
    }

    /// Parses and validates rules text.
    pub fn parse(text: &str) -> Result<RuleSet, RulesError> {
        let raw: RawFile = toml::from_str(text).map_err(|e| RulesError::Parse {
            line: e.span().map_or(1, |s| line_of(text, s.start)),
            message: e.message().to_string(),
        })?;
        if raw.version != 1 {
            return Err(RulesError::Version(raw.version));
        }
        if raw.rule.len() > usize::from(u16::MAX - ReasonCode::RULE_BASE) {
            return Err(RulesError::Parse {
                line: 1,
                message: "too many rules".to_string(),
            });
        }
        let mut rules: Vec<Rule> = Vec::with_capacity(raw.rule.len());
        for r in raw.rule {
            let line = line_of(text, r.name.span().start);
            let name = r.name.into_inner();
            let bad = |reason: &str| RulesError::BadRule {
                rule: name.clone(),
                line,
                reason: reason.to_string(),
            };
            if name.is_empty() {
                return Err(bad("empty name"));
            }
            if rules.iter().any(|x| x.name == name) {
                return Err(bad("duplicate rule name"));
            }
            if r.when.is_empty() {
                return Err(bad("no condition in `when`"));
            }
            let score = u16::try_from(r.score)
                .ok()
                .filter(|&s| s <= 1_000)
                .ok_or_else(|| bad("score must be within 0..=1000"))?;
            if score == 0 && r.action.is_none() {
                return Err(bad("a rule needs a score or an action"));
            }
            let mut when = Vec::with_capacity(r.when.len());
            for c in r.when {
                let Some(feature) = Feature::from_name(&c.feature) else {
                    return Err(RulesError::UnknownFeature {
                        rule: name.clone(),
                        line,
                        feature: c.feature,
                    });
                };
                let bounds = [c.at_least, c.above, c.at_most, c.below, c.equals];
                let bad_threshold = |reason: &str| RulesError::BadThreshold {
                    rule: name.clone(),
                    line,
                    feature: c.feature.clone(),
                    reason: reason.to_string(),
                };
                if bounds.iter().all(Option::is_none) {
                    return Err(bad_threshold(
                        "no bound (at_least, above, at_most, below or equals)",
                    ));
                }
                if bounds.iter().flatten().any(|v| !v.is_finite()) {
                    return Err(bad_threshold("not a finite number"));
                }
                let lo = c
                    .at_least
                    .into_iter()
                    .chain(c.above)
                    .fold(f64::MIN, f64::max);
                let hi = c
                    .at_most
                    .into_iter()
                    .chain(c.below)
                    .fold(f64::MAX, f64::min);
                if lo > hi {
                    return Err(bad_threshold("the lower bound is above the upper bound"));
                }
                when.push(Condition {
                    feature,
                    at_least: c.at_least,
                    above: c.above,
                    at_most: c.at_most,
                    below: c.below,
                    equals: c.equals,
                });
            }
            rules.push(Rule {
                name,
                description: r.description,
                when,
                score,
                action: r.action,
            });
        }
        let hash = blake3::hash(text.as_bytes()).to_hex();
        Ok(RuleSet {
            rules,
            version: hash.as_str().get(..16).unwrap_or_default().to_string(),
        })
    }

    /// The indices of the rules that hit.
    pub fn hits<'a>(&'a self, features: &'a FeatureVector) -> impl Iterator<Item = usize> + 'a {
        self.rules
            .iter()
            .enumerate()
            .filter(|(_, r)| r.hits(features))
            .map(|(i, _)| i)
    }

    /// The rule a reason code names.
    pub fn rule_of(&self, code: ReasonCode) -> Option<&Rule> {
        let i = code.0.checked_sub(ReasonCode::RULE_BASE)?;
        self.rules.get(usize::from(i))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::features::FEATURE_COUNT;

    fn vector(pairs: &[(Feature, f64)]) -> FeatureVector {
        let mut f = [f64::NAN; FEATURE_COUNT];
        for (k, v) in pairs {
            f[k.index()] = *v;
        }
        f
    }

    #[test]
    fn default_rules_load() {
        let rules = RuleSet::default_rules().unwrap();
        assert!(rules.rules.len() >= 5);
        assert_eq!(rules.version.len(), 16);
    }

    #[test]
    fn rule_hits_when_all_conditions_hold() {
        let text = r#"
[[rule]]
name = "card_testing_burst"
when = [{ feature = "tiny_count_1h", at_least = 5 }, { feature = "is_tiny", equals = 1 }]
action = "decline"

[[rule]]
name = "big"
when = [{ feature = "amount_ratio_mean", above = 10, below = 1000 }]
score = 300
"#;
        let rules = RuleSet::parse(text).unwrap();
        assert_eq!(rules.rules[0].action, Some(Action::Decline));
        let hit = vector(&[(Feature::TinyCount1h, 5.0), (Feature::IsTiny, 1.0)]);
        assert_eq!(rules.hits(&hit).collect::<Vec<_>>(), vec![0]);
        let miss = vector(&[(Feature::TinyCount1h, 4.0), (Feature::IsTiny, 1.0)]);
        assert!(rules.hits(&miss).next().is_none());
        let big = vector(&[(Feature::AmountRatio, 11.0)]);
        assert_eq!(rules.hits(&big).collect::<Vec<_>>(), vec![1]);
        // Exclusive bounds and missing values.
        assert!(
            rules
                .hits(&vector(&[(Feature::AmountRatio, 10.0)]))
                .next()
                .is_none()
        );
        assert!(rules.hits(&vector(&[])).next().is_none());
        assert_eq!(rules.rule_of(ReasonCode::rule(1)).unwrap().name, "big");
        assert!(rules.rule_of(ReasonCode::rule(2)).is_none());
        assert!(rules.rule_of(ReasonCode::AMOUNT_UNUSUAL).is_none());
    }

    #[test]
    fn unknown_feature_names_rule_and_line() {
        let text = "[[rule]]\nname = \"a\"\nwhen = [{ feature = \"amount_log10\", at_least = 1 }]\nscore = 5\n\n[[rule]]\nname = \"b\"\nwhen = [{ feature = \"nope\", at_least = 1 }]\nscore = 5\n";
        match RuleSet::parse(text) {
            Err(RulesError::UnknownFeature {
                rule,
                line,
                feature,
            }) => {
                assert_eq!(rule, "b");
                assert_eq!(line, 7);
                assert_eq!(feature, "nope");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_thresholds_and_rules_are_rejected() {
        let cases = [
            (
                "[[rule]]\nname = \"a\"\nwhen = [{ feature = \"amount_log10\" }]\nscore = 5\n",
                "no bound",
            ),
            (
                "[[rule]]\nname = \"a\"\nwhen = [{ feature = \"amount_log10\", at_least = 5, below = 2 }]\nscore = 5\n",
                "lower bound",
            ),
            (
                "[[rule]]\nname = \"a\"\nwhen = [{ feature = \"amount_log10\", at_least = nan }]\nscore = 5\n",
                "finite",
            ),
            (
                "[[rule]]\nname = \"a\"\nwhen = [{ feature = \"amount_log10\", at_least = 1 }]\nscore = 5000\n",
                "score",
            ),
            (
                "[[rule]]\nname = \"a\"\nwhen = []\nscore = 5\n",
                "no condition",
            ),
            (
                "[[rule]]\nname = \"a\"\nwhen = [{ feature = \"amount_log10\", at_least = 1 }]\n",
                "score or an action",
            ),
            (
                "[[rule]]\nname = \"a\"\nwhen = [{ feature = \"amount_log10\", at_least = 1 }]\nscore = 1\n[[rule]]\nname = \"a\"\nwhen = [{ feature = \"amount_log10\", at_least = 1 }]\nscore = 1\n",
                "duplicate",
            ),
            (
                "[[rule]]\nname = \"a\"\nwhen = [{ feature = \"amount_log10\", at_least = 1 }]\naction = \"explode\"\n",
                "line 4",
            ),
            ("[[rule]\nname = 1", "line 1"),
            ("version = 2\n", "version 2"),
        ];
        for (text, expected) in cases {
            let err = RuleSet::parse(text).expect_err(text).to_string();
            assert!(err.contains(expected), "{err:?} lacks {expected:?}");
            assert!(err.contains("line") || err.contains("version"), "{err}");
        }
    }

    #[test]
    fn load_missing_file_is_io_error() {
        assert!(matches!(
            RuleSet::load(Path::new("/nonexistent/rules.toml")),
            Err(RulesError::Io { .. })
        ));
    }
}
