//! Challengers in shadow: learning between updates, scored on every labelled row before
//! learning from it (pure; part of the decision core).
//!
//! The **online** challenger starts as a copy of the champion ([`Network`]) and takes one SGD
//! step per mini-batch of `batch_rows` labelled rows, in the order the rows are read. Each
//! row is predicted by it on arrival, with the weights of the mini-batches before it, so it
//! is judged on rows it has not learnt from, whatever the poll's batch size: the daemon and
//! the backtest, which read different batches, learn and judge the same way.
//!
//! Its verdicts and the champion's (the row's own prediction) on the same rows form a
//! [`duel::Duel`] over the newest `window_rows`. At the end of a mini-batch, once
//! `min_rows` rows are in, a one-sided McNemar test below `alpha` makes a [`Promotion`]: the
//! network as it is then, the newest row it learnt (its cut-off), the evidence. The
//! controller hands it to its driver, which registers it as a version with trigger
//! `shadow`; the challenger then goes on learning from the new champion (itself).
//!
//! Rows predicted by another version than the champion it duels are learnt from but not
//! compared: after a promotion, rows the old champion predicted still arrive.
//!
//! The **recurring** challengers ([`recurring`]) are the last `recurring` champions that
//! were replaced, frozen, each in its own duel with the serving champion; one that proves
//! better is promoted back (the online challenger then starts over from it).
//!
//! Everything is stored in the controller's snapshot, committed with the watermark: each row
//! advances the challenger exactly once, across restarts and takeovers.

pub mod duel;
pub mod evidence;
pub mod net;
pub mod recurring;

use serde::{Deserialize, Serialize};

use crate::domain::{HoldoutTrace, Outcome, Watermark};
pub use duel::{Duel, Standing};
pub use net::Network;
pub use recurring::{Retired, Served};

/// `[models.shadow]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShadowConfig {
    /// Whether the online challenger runs (default off).
    pub enabled: bool,
    /// Its SGD learning rate (on the champion's standardised inputs).
    pub learning_rate: f32,
    /// Rows per SGD step: each is predicted before any of them is learnt from.
    pub batch_rows: usize,
    /// The duel's window: the newest rows both predicted.
    pub window_rows: usize,
    /// The fewest rows in the window before a promotion.
    pub min_rows: usize,
    /// How many replaced champions stay on as recurring challengers (0: none).
    pub recurring: usize,
    /// One-sided McNemar: the challenger is promoted when the p-value that it is no better
    /// than the champion is below this. 0.001 rather than 0.01: on elec2 the online copy
    /// keeps beating a champion that stopped learning, and at 0.01 it was promoted 47-57
    /// times in 43 000 rows for 0.8 points less than without it (README, "Challengers in
    /// shadow"); no promotion on the stationary stream at either.
    pub alpha: f64,
}

impl Default for ShadowConfig {
    fn default() -> Self {
        ShadowConfig {
            enabled: false,
            learning_rate: 0.2,
            batch_rows: 16,
            window_rows: 500,
            min_rows: 200,
            recurring: 0,
            alpha: 0.001,
        }
    }
}

impl ShadowConfig {
    /// The first key that is out of range, and why.
    pub fn invalid(&self) -> Option<(&'static str, &'static str)> {
        if !(self.learning_rate.is_finite()
            && self.learning_rate > 0.0
            && self.learning_rate <= 10.0)
        {
            return Some(("shadow.learning_rate", "must be above 0 and at most 10"));
        }
        if !(1..=10_000).contains(&self.batch_rows) {
            return Some(("shadow.batch_rows", "must be 1 to 10000 rows"));
        }
        if !(10..=100_000).contains(&self.window_rows) {
            return Some(("shadow.window_rows", "must be 10 to 100000 rows"));
        }
        if self.min_rows == 0 || self.min_rows > self.window_rows {
            return Some(("shadow.min_rows", "must be 1 to window_rows"));
        }
        if self.recurring > 16 {
            return Some(("shadow.recurring", "must be at most 16"));
        }
        if !(self.alpha > 0.0 && self.alpha < 0.5) {
            return Some(("shadow.alpha", "must be above 0 and below 0.5"));
        }
        None
    }
}

/// A challenger that proved better than the champion: what the driver registers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Promotion {
    pub challenger: String,
    /// The champion it beat.
    pub champion_version: i64,
    pub network: Network,
    /// The newest row it learnt from.
    pub cutoff: Watermark,
    /// Rows it learnt from since it started from the champion.
    pub rows_learnt: u64,
    pub standing: StandingRecord,
    /// Its predictions on the duel's rows, for the detectors of the version it becomes.
    pub trace: HoldoutTrace,
}

/// [`Standing`], as stored.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StandingRecord {
    pub rows: usize,
    pub champion_accuracy: f64,
    pub challenger_accuracy: f64,
    pub p_value: f64,
}

impl From<Standing> for StandingRecord {
    fn from(s: Standing) -> Self {
        StandingRecord {
            rows: s.rows,
            champion_accuracy: s.champion_accuracy,
            challenger_accuracy: s.challenger_accuracy,
            p_value: s.p_value,
        }
    }
}

/// The online challenger (see the module docs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Online {
    /// The champion version it duels with (and started from, or became).
    pub base_version: i64,
    pub network: Network,
    /// The mini-batch being gathered: raw rows and labels, already predicted.
    #[serde(with = "packed_vec")]
    pending_x: Vec<f32>,
    pending_y: Vec<u32>,
    pub duel: Duel,
    pub rows_learnt: u64,
    /// A promotion made and not yet taken by the driver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    promotion: Option<Box<Promotion>>,
}

/// The challengers of one model, stored in its snapshot.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ShadowState {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub online: Option<Online>,
    /// The serving champion's own network: it retires into `retired` when replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub champion: Option<Served>,
    /// The replaced champions, newest first (at most `recurring` once a row is observed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retired: Vec<Retired>,
    /// A retired champion's promotion made and not yet taken by the driver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    recalled: Option<Box<Promotion>>,
    /// The promotion the driver is carrying out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    promoting: Option<Promoting>,
    /// Rows since the retired champions' duels were last looked at.
    #[serde(default)]
    since_look: usize,
}

impl ShadowState {
    /// The serving `version` is `network`: a challenger of an older champion starts over
    /// from it, and the older champion retires; one that duels this version already (after
    /// a restart, or one that became it) goes on.
    pub fn challenge(&mut self, version: i64, network: Network) {
        if self
            .online
            .as_ref()
            .is_some_and(|o| o.base_version == version)
        {
            if self.champion.is_none() {
                self.champion = Some(Served { version, network });
            }
            return;
        }
        // Its own promotion, registered before a restart that came before the state saying
        // so was stored: it is that version now, and goes on.
        let pending = |p: &Option<Box<Promotion>>| p.as_ref().is_some_and(|p| p.network == network);
        let online_made_it = self.online.as_ref().is_some_and(|o| pending(&o.promotion));
        if online_made_it || pending(&self.recalled) {
            if let Some(o) = self.online.as_mut().filter(|_| !online_made_it) {
                o.promotion = None;
            }
            let _ = self.take_promotion();
            self.promoted(version);
            return;
        }
        self.retire();
        self.online = network
            .is_valid()
            .then(|| Online::new(version, network.clone()));
        self.champion = network.is_valid().then_some(Served { version, network });
    }

    /// The serving champion joins the retired ones (a promotion or an update replaces it);
    /// every retired one duels the next champion from scratch.
    fn retire(&mut self) {
        if let Some(c) = self.champion.take() {
            self.retired.retain(|r| r.served.network != c.network);
            self.retired.insert(0, Retired::new(c));
        }
        self.retired.iter_mut().for_each(|r| r.duel.clear());
        self.recalled = None;
    }

    /// One labelled row, in poll order; `champion_right` is whether its own prediction was.
    pub fn observe(&mut self, cfg: &ShadowConfig, o: &Outcome, champion_right: bool) {
        if let Some(online) = self.online.as_mut() {
            online.observe(cfg, o, champion_right);
        }
        self.retired.truncate(cfg.recurring);
        let Some(champion) = &self.champion else {
            return;
        };
        let compared = o.model_version.is_none_or(|v| v == champion.version);
        if !compared || self.retired.is_empty() || self.recalled.is_some() {
            return;
        }
        for r in &mut self.retired {
            r.observe(cfg.window_rows, o, champion_right);
        }
        self.since_look += 1;
        if self.since_look >= cfg.batch_rows {
            self.since_look = 0;
            self.consider_recall(cfg, o);
        }
    }

    /// Every `batch_rows` rows: the retired champion with the strongest evidence, if any.
    fn consider_recall(&mut self, cfg: &ShadowConfig, o: &Outcome) {
        let Some(champion) = &self.champion else {
            return;
        };
        let best = self
            .retired
            .iter()
            .filter_map(|r| r.proven(cfg.min_rows, cfg.alpha).map(|s| (r, s)))
            .min_by(|a, b| a.1.p_value.total_cmp(&b.1.p_value));
        if let Some((r, standing)) = best {
            self.recalled = Some(Box::new(Promotion {
                challenger: RECURRING.into(),
                champion_version: champion.version,
                network: r.served.network.clone(),
                cutoff: Watermark {
                    labeled_at: o.labeled_at,
                    id: o.id,
                },
                rows_learnt: 0,
                standing: standing.into(),
                trace: r.duel.trace(),
            }));
        }
    }

    /// The promotion made, if any, for the driver to carry out: the online challenger's
    /// first, else a retired champion's.
    pub fn take_promotion(&mut self) -> Option<Promotion> {
        let online = self.online.as_mut().and_then(|o| o.promotion.take());
        let recalled = online.is_none();
        let p = online.or_else(|| self.recalled.take())?;
        self.promoting = Some(Promoting {
            network: p.network.clone(),
            recalled,
        });
        Some(*p)
    }

    /// The promotion taken is now champion `version`: the champion it replaced retires, a
    /// recalled champion leaves the retired ones, and the online challenger duels `version`
    /// (starting over from it when it was a retired one).
    pub fn promoted(&mut self, version: i64) {
        let Some(Promoting { network, recalled }) = self.promoting.take() else {
            return;
        };
        self.retire();
        self.retired.retain(|r| r.served.network != network);
        match self.online.as_mut() {
            Some(o) if !recalled => {
                o.base_version = version;
                o.duel.clear();
            }
            _ => self.online = Some(Online::new(version, network.clone())),
        }
        self.champion = Some(Served { version, network });
    }

    /// A promotion could not be carried out, or another update changed the champion
    /// meanwhile: the evidence is gathered again.
    pub fn promotion_dropped(&mut self) {
        self.promoting = None;
        self.recalled = None;
        if let Some(o) = self.online.as_mut() {
            o.promotion = None;
            o.duel.clear();
        }
        self.retired.iter_mut().for_each(|r| r.duel.clear());
    }

    /// How the online challenger and the champion stand now.
    pub fn standing(&self) -> Option<Standing> {
        self.online.as_ref().map(|o| o.duel.standing())
    }

    /// The retired champion closest to a promotion (lowest p-value), as it stands.
    pub fn recurring_standing(&self) -> Option<Standing> {
        self.retired
            .iter()
            .map(|r| r.duel.standing())
            .filter(|s| s.rows > 0)
            .min_by(|a, b| a.p_value.total_cmp(&b.p_value))
    }
}

/// A promotion taken by the driver: the network it promotes, and whether a retired
/// champion's (else the online challenger's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Promoting {
    network: Network,
    recalled: bool,
}

/// The challenger name of a retired champion's promotion (and of its metric series).
pub const RECURRING: &str = "recurring";

impl Online {
    fn new(version: i64, network: Network) -> Self {
        Online {
            base_version: version,
            network,
            pending_x: Vec::new(),
            pending_y: Vec::new(),
            duel: Duel::default(),
            rows_learnt: 0,
            promotion: None,
        }
    }

    fn observe(&mut self, cfg: &ShadowConfig, o: &Outcome, champion_right: bool) {
        if o.features.len() != self.network.n_raw {
            return;
        }
        let prediction = self.network.predict(&o.features);
        let class = self.network.class_of(prediction);
        let compared = o.model_version.is_none_or(|v| v == self.base_version);
        if compared && self.promotion.is_none() {
            let right = class == o.label;
            self.duel.push(
                cfg.window_rows,
                champion_right,
                right,
                prediction as f32,
                o.label,
            );
        }
        self.pending_x.extend_from_slice(&o.features);
        self.pending_y.push(o.label);
        if self.pending_y.len() >= cfg.batch_rows {
            self.network
                .learn(&self.pending_x, &self.pending_y, cfg.learning_rate);
            self.rows_learnt += self.pending_y.len() as u64;
            self.pending_x.clear();
            self.pending_y.clear();
            self.consider_promotion(
                cfg,
                Watermark {
                    labeled_at: o.labeled_at,
                    id: o.id,
                },
            );
        }
    }

    /// At the end of a mini-batch: a promotion, if the duel shows enough evidence.
    fn consider_promotion(&mut self, cfg: &ShadowConfig, cutoff: Watermark) {
        if self.promotion.is_some() || self.duel.len() < cfg.min_rows {
            return;
        }
        let standing = self.duel.standing();
        if standing.p_value >= cfg.alpha {
            return;
        }
        self.promotion = Some(Box::new(Promotion {
            challenger: "online".into(),
            champion_version: self.base_version,
            network: self.network.clone(),
            cutoff,
            rows_learnt: self.rows_learnt,
            standing: standing.into(),
            trace: self.duel.trace(),
        }));
    }
}

/// `Vec<f32>` as base64 of the values' little-endian bytes (exact).
pub(crate) mod packed_vec {
    use std::collections::VecDeque;

    use serde::{Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[f32], s: S) -> Result<S::Ok, S::Error> {
        let q: VecDeque<f32> = v.iter().copied().collect();
        crate::domain::packed::f32s::serialize(&q, s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f32>, D::Error> {
        crate::domain::packed::f32s::deserialize(d).map(Vec::from)
    }
}

/// `VecDeque<u8>` as base64.
pub(crate) mod packed_bytes {
    use std::collections::VecDeque;

    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;
    use serde::de::Error;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &VecDeque<u8>, s: S) -> Result<S::Ok, S::Error> {
        let (a, b) = v.as_slices();
        s.serialize_str(&STANDARD.encode([a, b].concat()))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<VecDeque<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD
            .decode(text)
            .map(VecDeque::from)
            .map_err(|e| D::Error::custom(format!("not base64: {e}")))
    }
}

#[cfg(test)]
mod tests;

/// Networks for the tests of the core.
#[cfg(test)]
pub(crate) mod testing {
    use super::net::{Dense, Member};
    use super::Network;

    /// A binary network that knows nothing yet (every weight zero: P(class 1) = 0.5).
    pub(crate) fn blank(n_raw: usize, hidden: usize) -> Network {
        let w = |n: usize| {
            (0..n)
                .map(|i| ((i * 7 % 11) as f32 / 11.0 - 0.45) * 0.5)
                .collect()
        };
        Network {
            n_classes: 2,
            n_raw,
            encoding: None,
            members: vec![Member {
                mean: vec![0.0; n_raw],
                std: vec![1.0; n_raw],
                layers: vec![
                    Dense {
                        inp: n_raw,
                        out: hidden,
                        w: w(n_raw * hidden),
                        b: vec![0.0; hidden],
                    },
                    Dense {
                        inp: hidden,
                        out: 1,
                        w: vec![0.0; hidden],
                        b: vec![0.0],
                    },
                ],
            }],
            member_weights: vec![1.0],
        }
    }
}
