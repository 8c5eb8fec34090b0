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
    /// As written in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Task::Binary => "binary",
            Task::Multiclass => "multiclass",
        }
    }

    /// How many classes a model of this task has: 2 for binary, `n_classes` (the configured
    /// count) for multiclass.
    pub fn classes(self, n_classes: u32) -> usize {
        match self {
            Task::Binary => 2,
            Task::Multiclass => n_classes as usize,
        }
    }

    /// The class a prediction names: P(label = 1) ≥ 0.5 for binary, the index for multiclass.
    /// A binary model that grew a class ([`Classes::Grow`]) predicts class indices, and a
    /// prediction above 1 is one.
    pub fn predicted_class(self, prediction: f64) -> u32 {
        match self {
            Task::Binary if prediction <= 1.0 => u32::from(prediction >= 0.5),
            Task::Binary | Task::Multiclass => prediction as u32,
        }
    }
}

/// The most classes a model may grow to: its output layer's width.
pub const MAX_CLASSES: u32 = 1000;

/// What a label the model has no class for means.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Classes {
    /// A new class: the row is kept (an error of the model's, which cannot output it) and the
    /// next update learns it (up to [`MAX_CLASSES`]).
    #[default]
    Grow,
    /// The configured classes are all there are: the row is set aside as `unknown_label`.
    Fixed,
}

impl Classes {
    pub fn as_str(self) -> &'static str {
        match self {
            Classes::Grow => "grow",
            Classes::Fixed => "fixed",
        }
    }
}
