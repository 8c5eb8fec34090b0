//! The **recurring** challengers: the champions that were replaced, the newest `recurring`
//! of them, frozen. A concept that comes back finds its model again: a retired champion that
//! is right more often than the champion on the same newest rows, with significance, is
//! promoted back (as a new version with trigger `shadow`, challenger `recurring`).

use serde::{Deserialize, Serialize};

use super::duel::{Duel, Standing};
use super::net::Network;
use crate::domain::Outcome;

/// A network and the version it served as.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Served {
    pub version: i64,
    pub network: Network,
}

/// A retired champion and its duel with the serving one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Retired {
    pub served: Served,
    pub duel: Duel,
}

impl Retired {
    pub fn new(served: Served) -> Self {
        Retired {
            served,
            duel: Duel::default(),
        }
    }

    /// One row the serving champion predicted, right or not (`champion_right`).
    pub fn observe(&mut self, window: usize, o: &Outcome, champion_right: bool) {
        let net = &self.served.network;
        if o.features.len() != net.n_raw {
            return;
        }
        let prediction = net.predict(&o.features);
        let right = net.class_of(prediction) == o.label;
        self.duel
            .push(window, champion_right, right, prediction as f32, o.label);
    }

    /// Its standing, when it has `min_rows` rows and beats the champion below `alpha`.
    pub fn proven(&self, min_rows: usize, alpha: f64) -> Option<Standing> {
        let s = self.duel.standing();
        (self.duel.len() >= min_rows && s.p_value < alpha).then_some(s)
    }
}
