//! `[delivery]` and `[bounces]` of a list file.

use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;

/// How copies are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryMode {
    /// One copy, many recipients per transaction.
    Bulk,
    /// One transaction per member, with the member's own footer and List-Unsubscribe.
    Personalized,
}

/// `[delivery]`, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    /// `delivery.mode` (default bulk).
    pub mode: DeliveryMode,
    /// Envelope sender `NAME-bounces+LOCAL=DOMAIN@LISTDOMAIN` per member (personalized mode
    /// only: a bulk transaction has one envelope sender for many members).
    pub verp: bool,
}

/// `[bounces]`, validated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bounces {
    /// Score at which a member is disabled for delivery.
    pub threshold: f64,
    /// Added per bouncing day for a hard failure.
    pub hard_score: f64,
    /// Added per bouncing day for a soft failure.
    pub soft_score: f64,
    /// A score older than this without a new bounce starts again from zero.
    pub reset_after_secs: u64,
    /// A disabled member is removed after this long without recovery (0: never).
    pub remove_after_secs: u64,
    /// At the threshold send a probe whose envelope sender carries a fresh token; only a
    /// bounce of that probe disables (default). Off, the threshold disables at once, trusting
    /// bounce content that anyone can forge.
    pub probe: bool,
    /// Forward bounces that cannot be understood to the owners (at most per_hour).
    pub forward_unrecognized_per_hour: u64,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDelivery {
    mode: Option<DeliveryMode>,
    verp: Option<Spanned<bool>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBounces {
    threshold: Option<Spanned<f64>>,
    hard_score: Option<Spanned<f64>>,
    soft_score: Option<Spanned<f64>>,
    reset_after_days: Option<Spanned<u64>>,
    remove_after_days: Option<Spanned<u64>>,
    probe: Option<bool>,
    forward_unrecognized_per_hour: Option<Spanned<u64>>,
}

/// Problems as (key, span, sentence).
pub(super) type Problems = Vec<(String, Range<usize>, String)>;

pub(super) fn delivery(raw: &RawDelivery, p: &mut Problems) -> Delivery {
    let mode = raw.mode.unwrap_or(DeliveryMode::Bulk);
    let verp = raw.verp.as_ref().is_some_and(|v| *v.get_ref());
    if let (Some(v), DeliveryMode::Bulk) = (&raw.verp, mode) {
        if *v.get_ref() {
            p.push((
                "delivery.verp".into(),
                v.span(),
                "VERP needs one transaction per member: set delivery.mode = \"personalized\""
                    .into(),
            ));
        }
    }
    Delivery { mode, verp }
}

pub(super) fn bounces(raw: &RawBounces, p: &mut Problems) -> Bounces {
    let score = |v: &Option<Spanned<f64>>, key: &str, default: f64, p: &mut Problems| match v {
        None => default,
        Some(x) if x.get_ref().is_finite() && *x.get_ref() >= 0.0 && *x.get_ref() <= 1000.0 => {
            *x.get_ref()
        }
        Some(x) => {
            p.push((
                key.into(),
                x.span(),
                "must be a number between 0 and 1000".into(),
            ));
            default
        }
    };
    let days = |v: &Option<Spanned<u64>>, key: &str, default: u64, p: &mut Problems| match v {
        None => default,
        Some(x) if *x.get_ref() <= 3650 => *x.get_ref(),
        Some(x) => {
            p.push((
                key.into(),
                x.span(),
                "must be between 0 and 3650 days".into(),
            ));
            default
        }
    };
    let threshold = score(&raw.threshold, "bounces.threshold", 5.0, p);
    if threshold == 0.0 {
        if let Some(t) = &raw.threshold {
            p.push((
                "bounces.threshold".into(),
                t.span(),
                "must be above 0".into(),
            ));
        }
    }
    Bounces {
        threshold: if threshold > 0.0 { threshold } else { 5.0 },
        hard_score: score(&raw.hard_score, "bounces.hard_score", 1.0, p),
        soft_score: score(&raw.soft_score, "bounces.soft_score", 0.5, p),
        reset_after_secs: days(&raw.reset_after_days, "bounces.reset_after_days", 7, p) * 86_400,
        remove_after_secs: days(&raw.remove_after_days, "bounces.remove_after_days", 30, p)
            * 86_400,
        // On by default: a bounce is unauthenticated, so only the bounce of a mail that carried
        // an unguessable token to the member's mailbox may change their delivery.
        probe: raw.probe.unwrap_or(true),
        forward_unrecognized_per_hour: raw
            .forward_unrecognized_per_hour
            .as_ref()
            .map_or(10, |v| *v.get_ref()),
    }
}
