//! A model's task: what its labels and predictions are.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    /// Label 0/1; prediction is P(label = 1) (a hard 0/1 prediction works too).
    #[default]
    Binary,
    /// Label is a class index; prediction is the predicted class index.
    Multiclass,
}

impl Task {
    /// How many classes a model of this task has: 2 for binary, `n_classes` (the configured
    /// count) for multiclass.
    pub fn classes(self, n_classes: u32) -> usize {
        match self {
            Task::Binary => 2,
            Task::Multiclass => n_classes as usize,
        }
    }

    /// The class a prediction names: P(label = 1) ≥ 0.5 for binary, the index for multiclass.
    pub fn predicted_class(self, prediction: f64) -> u32 {
        match self {
            Task::Binary => u32::from(prediction >= 0.5),
            Task::Multiclass => prediction as u32,
        }
    }
}
