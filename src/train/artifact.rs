//! Model artifacts: architecture + ensemble members (scaler + weights) + averaging layout,
//! serialised as safetensors with a JSON sidecar, and prediction.
//!
//! Safetensors tensor names (all F32, PyTorch `nn.Linear` layout):
//! `members.{m}.layers.{l}.weight` `[out, in]`, `members.{m}.layers.{l}.bias` `[out]`,
//! `members.{m}.scaler.mean` / `.std` `[n_features]`. The header's `__metadata__` carries
//! `driftd.sidecar` (the sidecar JSON), so the bytes alone restore the artifact.
//!
//! Prediction of member `m`: `p_m = out(L_L(relu(… relu(L_1((x − mean_m) / std_m)))))` with
//! `out` = sigmoid (binary: one logit, P(class 1)) or softmax; the model's prediction is
//! `Σ_m weight_m · p_m` (weights sum to 1), in member order, in f32.

use std::collections::{BTreeMap, HashMap};

use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde::{Deserialize, Serialize};
use tch::Device;

use super::encoding::Encoding;
use super::mlp::{forward_proba, Activation, Arch, Linear};
use super::scaler::Scaler;
use super::{Result, TrainError};
use crate::shadow::net::{Dense, Member as NetMember, Network};

const SIDECAR_KEY: &str = "driftd.sidecar";
const FORMAT: &str = "driftd-mlp";

/// A named f32 tensor (row-major).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NamedTensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// One model of an ensemble: its own scaler and weights (`layers.{l}.weight|bias`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Member {
    pub scaler: Scaler,
    pub weights: Vec<NamedTensor>,
}

impl Member {
    pub fn from_layers(scaler: Scaler, layers: &[Linear]) -> Self {
        let mut weights = Vec::with_capacity(2 * layers.len());
        for (l, lin) in layers.iter().enumerate() {
            weights.push(NamedTensor {
                name: format!("layers.{l}.weight"),
                shape: vec![lin.out, lin.inp],
                data: lin.w.clone(),
            });
            weights.push(NamedTensor {
                name: format!("layers.{l}.bias"),
                shape: vec![lin.out],
                data: lin.b.clone(),
            });
        }
        Member { scaler, weights }
    }

    fn tensor(&self, name: &str) -> Result<&NamedTensor> {
        self.weights
            .iter()
            .find(|t| t.name == name)
            .ok_or_else(|| TrainError::Artifact(format!("member has no tensor {name}")))
    }

    /// The layers, checked against `arch`.
    pub fn layers(&self, arch: &Arch) -> Result<Vec<Linear>> {
        if self.scaler.n_features() != arch.n_features || self.scaler.std.len() != arch.n_features {
            return Err(TrainError::Artifact(
                "scaler width differs from n_features".into(),
            ));
        }
        arch.layer_dims()
            .into_iter()
            .enumerate()
            .map(|(l, (inp, out))| {
                let w = self.tensor(&format!("layers.{l}.weight"))?;
                let b = self.tensor(&format!("layers.{l}.bias"))?;
                if w.shape != [out, inp]
                    || w.data.len() != out * inp
                    || b.shape != [out]
                    || b.data.len() != out
                {
                    return Err(TrainError::Artifact(format!(
                        "layer {l}: shapes {:?}/{:?}, expected [{out}, {inp}]/[{out}]",
                        w.shape, b.shape
                    )));
                }
                Ok(Linear {
                    inp,
                    out,
                    w: w.data.clone(),
                    b: b.data.clone(),
                })
            })
            .collect()
    }
}

/// How member predictions are combined: `Σ weights[m] · p_m`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ensemble {
    /// Always `"weighted_mean_proba"`.
    pub method: String,
    /// One weight per member, summing to 1.
    pub weights: Vec<f32>,
}

impl Ensemble {
    pub fn single() -> Self {
        Ensemble {
            method: "weighted_mean_proba".into(),
            weights: vec![1.0],
        }
    }
}

/// A trained model version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelArtifact {
    /// Its inputs: the encoded width when there is an `encoding`.
    pub arch: Arch,
    pub members: Vec<Member>,
    pub ensemble: Ensemble,
    /// Categorical features' vocabularies: raw rows (codes at categorical positions) are
    /// encoded into `arch.n_features` inputs first. `None`: every feature is numeric.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<Encoding>,
}

/// Architecture as written in the sidecar.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SidecarArch {
    pub n_features: usize,
    /// Hidden layer widths.
    pub layers: Vec<usize>,
    pub activation: Activation,
    pub n_classes: usize,
    /// `"sigmoid"` (one logit, P(class 1)) or `"softmax"`.
    pub output: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SidecarMember {
    pub scaler: Scaler,
    /// Names of this member's tensors in the safetensors file.
    pub tensors: Vec<String>,
}

/// The JSON sidecar: everything but the weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sidecar {
    pub format: String,
    pub version: u32,
    pub arch: SidecarArch,
    pub members: Vec<SidecarMember>,
    pub ensemble: Ensemble,
    /// The categorical vocabularies (see [`ModelArtifact::encoding`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<Encoding>,
}

/// Predictions for `n` rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Predictions {
    pub n_classes: usize,
    /// Binary: `n` values P(class 1). Multiclass: `n × n_classes` row-major.
    pub proba: Vec<f32>,
    /// Most probable class per row (binary: P(class 1) ≥ 0.5).
    pub labels: Vec<u32>,
}

impl Predictions {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Row `i`'s prediction as the outcomes table holds it: P(class 1) for a two-class
    /// model, the predicted class index otherwise.
    pub fn stored(&self, i: usize) -> f64 {
        if self.n_classes <= 2 {
            f64::from(self.proba[i])
        } else {
            f64::from(self.labels[i])
        }
    }

    /// What the estimate reads of row `i`'s prediction: P(class 1) for a two-class model,
    /// the predicted class's probability otherwise.
    pub fn confidence(&self, i: usize) -> f64 {
        if self.n_classes <= 2 {
            f64::from(self.proba[i])
        } else {
            f64::from(self.prob(i, self.labels[i] as usize))
        }
    }

    /// Probability of class `c` for row `i`.
    pub fn prob(&self, i: usize, c: usize) -> f32 {
        if self.n_classes <= 2 {
            if c == 1 {
                self.proba[i]
            } else {
                1.0 - self.proba[i]
            }
        } else {
            self.proba[i * self.n_classes + c]
        }
    }
}

impl ModelArtifact {
    /// A single-model artifact.
    pub fn single(arch: Arch, member: Member) -> Self {
        ModelArtifact {
            arch,
            members: vec![member],
            ensemble: Ensemble::single(),
            encoding: None,
        }
    }

    /// The same model in plain Rust, for the shadow challengers to learn from
    /// (`crate::shadow`).
    pub fn to_network(&self) -> Result<Network> {
        self.validate()?;
        let members = self
            .members
            .iter()
            .map(|m| {
                let layers = m
                    .layers(&self.arch)?
                    .into_iter()
                    .map(|l| Dense {
                        inp: l.inp,
                        out: l.out,
                        w: l.w,
                        b: l.b,
                    })
                    .collect();
                Ok(NetMember {
                    mean: m.scaler.mean.clone(),
                    std: m.scaler.std.clone(),
                    layers,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Network {
            n_classes: self.arch.n_classes,
            n_raw: self
                .encoding
                .as_ref()
                .map_or(self.arch.n_features, |e| e.n_raw),
            encoding: self.encoding.clone(),
            members,
            member_weights: self.ensemble.weights.clone(),
        })
    }

    /// A shadow challenger's network as a version (the inverse of [`Self::to_network`]).
    pub fn from_network(n: &Network) -> Result<Self> {
        let first = n
            .members
            .first()
            .ok_or_else(|| TrainError::Artifact("a network without members".into()))?;
        let (last, hidden) = first
            .layers
            .split_last()
            .ok_or_else(|| TrainError::Artifact("a member without layers".into()))?;
        let hidden: Vec<usize> = hidden.iter().map(|l| l.out).collect();
        let n_features = first.layers[0].inp;
        debug_assert!(last.out == if n.n_classes <= 2 { 1 } else { n.n_classes });
        let members = n
            .members
            .iter()
            .map(|m| {
                let layers: Vec<Linear> = m
                    .layers
                    .iter()
                    .map(|l| Linear {
                        inp: l.inp,
                        out: l.out,
                        w: l.w.clone(),
                        b: l.b.clone(),
                    })
                    .collect();
                let scaler = Scaler {
                    mean: m.mean.clone(),
                    std: m.std.clone(),
                };
                Member::from_layers(scaler, &layers)
            })
            .collect();
        let artifact = ModelArtifact {
            arch: Arch::new(n_features, &hidden, n.n_classes),
            members,
            ensemble: Ensemble {
                method: "weighted_mean_proba".into(),
                weights: n.member_weights.clone(),
            },
            encoding: n.encoding.clone(),
        };
        artifact.validate()?;
        Ok(artifact)
    }

    pub fn validate(&self) -> Result<()> {
        self.arch
            .validate()
            .map_err(|e| TrainError::Artifact(e.to_string()))?;
        if self.members.is_empty() || self.members.len() != self.ensemble.weights.len() {
            return Err(TrainError::Artifact(format!(
                "{} members but {} ensemble weights",
                self.members.len(),
                self.ensemble.weights.len()
            )));
        }
        let s: f32 = self.ensemble.weights.iter().sum();
        if (s - 1.0).abs() > 1e-4 || self.ensemble.weights.iter().any(|w| w.is_nan() || *w < 0.0) {
            return Err(TrainError::Artifact(format!("ensemble weights sum to {s}")));
        }
        for m in &self.members {
            m.layers(&self.arch)?;
        }
        if let Some(e) = &self.encoding {
            if e.width() != self.arch.n_features
                || e.vocabularies.iter().any(|v| v.feature >= e.n_raw)
            {
                return Err(TrainError::Artifact(format!(
                    "the categorical encoding gives {} inputs, the network takes {}",
                    e.width(),
                    self.arch.n_features
                )));
            }
        }
        Ok(())
    }

    pub fn sidecar(&self) -> Sidecar {
        Sidecar {
            format: FORMAT.into(),
            version: 1,
            arch: SidecarArch {
                n_features: self.arch.n_features,
                layers: self.arch.hidden.clone(),
                activation: self.arch.activation,
                n_classes: self.arch.n_classes,
                output: self.arch.output().into(),
            },
            members: self
                .members
                .iter()
                .enumerate()
                .map(|(m, mem)| SidecarMember {
                    scaler: mem.scaler.clone(),
                    tensors: mem
                        .weights
                        .iter()
                        .map(|t| format!("members.{m}.{}", t.name))
                        .collect(),
                })
                .collect(),
            ensemble: self.ensemble.clone(),
            encoding: self.encoding.clone(),
        }
    }

    /// The sidecar as pretty JSON.
    pub fn sidecar_json(&self) -> String {
        serde_json::to_string_pretty(&self.sidecar()).expect("sidecar serialises")
    }

    /// All tensors by safetensors name.
    pub fn named_tensors(&self) -> BTreeMap<String, (Vec<usize>, &[f32])> {
        let mut out = BTreeMap::new();
        for (m, mem) in self.members.iter().enumerate() {
            for t in &mem.weights {
                out.insert(
                    format!("members.{m}.{}", t.name),
                    (t.shape.clone(), t.data.as_slice()),
                );
            }
            let f = mem.scaler.n_features();
            out.insert(
                format!("members.{m}.scaler.mean"),
                (vec![f], mem.scaler.mean.as_slice()),
            );
            out.insert(
                format!("members.{m}.scaler.std"),
                (vec![f], mem.scaler.std.as_slice()),
            );
        }
        out
    }

    /// The safetensors file contents (written by the `safetensors` crate: tensors sorted by
    /// name, the sidecar in the header's metadata).
    pub fn to_safetensors_bytes(&self) -> Vec<u8> {
        let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = self
            .named_tensors()
            .into_iter()
            .map(|(name, (shape, data))| {
                (
                    name,
                    shape,
                    data.iter().flat_map(|v| v.to_le_bytes()).collect(),
                )
            })
            .collect();
        let views = bytes.iter().map(|(name, shape, data)| {
            let view = TensorView::new(Dtype::F32, shape.clone(), data)
                .expect("the shape is the tensor's own");
            (name.as_str(), view)
        });
        let metadata = HashMap::from([
            (
                SIDECAR_KEY.to_string(),
                serde_json::to_string(&self.sidecar()).unwrap(),
            ),
            ("format".to_string(), "pt".to_string()),
        ]);
        safetensors::serialize(views, &Some(metadata))
            .expect("F32 views of matching shapes serialise")
    }

    /// Parses [`ModelArtifact::to_safetensors_bytes`] output (any safetensors file of F32
    /// tensors whose metadata carries the sidecar).
    pub fn from_safetensors_bytes(bytes: &[u8]) -> Result<Self> {
        let bad = |m: String| TrainError::Artifact(m);
        let (_, header) = SafeTensors::read_metadata(bytes)
            .map_err(|e| bad(format!("safetensors header: {e:?}")))?;
        let sidecar_str = header
            .metadata()
            .as_ref()
            .and_then(|m| m.get(SIDECAR_KEY))
            .ok_or_else(|| bad("no driftd.sidecar metadata".into()))?;
        let sidecar: Sidecar =
            serde_json::from_str(sidecar_str).map_err(|e| bad(format!("sidecar: {e}")))?;
        let file =
            SafeTensors::deserialize(bytes).map_err(|e| bad(format!("safetensors: {e:?}")))?;
        let mut tensors: BTreeMap<String, NamedTensor> = BTreeMap::new();
        for (name, view) in file.tensors() {
            if view.dtype() != Dtype::F32 {
                return Err(bad(format!("{name}: only F32 tensors are supported")));
            }
            let data = view
                .data()
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                .collect();
            let tensor = NamedTensor {
                name: name.clone(),
                shape: view.shape().to_vec(),
                data,
            };
            tensors.insert(name, tensor);
        }
        Self::from_sidecar_and_tensors(&sidecar, tensors)
    }

    /// Rebuilds an artifact from a sidecar and its tensors (safetensors names).
    fn from_sidecar_and_tensors(
        sidecar: &Sidecar,
        mut tensors: BTreeMap<String, NamedTensor>,
    ) -> Result<Self> {
        if sidecar.format != FORMAT {
            return Err(TrainError::Artifact(format!(
                "unknown format {}",
                sidecar.format
            )));
        }
        let arch = Arch {
            n_features: sidecar.arch.n_features,
            hidden: sidecar.arch.layers.clone(),
            activation: sidecar.arch.activation,
            n_classes: sidecar.arch.n_classes,
        };
        let mut members = Vec::with_capacity(sidecar.members.len());
        for (m, sm) in sidecar.members.iter().enumerate() {
            let prefix = format!("members.{m}.");
            let mut weights = Vec::with_capacity(sm.tensors.len());
            for full in &sm.tensors {
                let t = tensors
                    .remove(full)
                    .ok_or_else(|| TrainError::Artifact(format!("missing tensor {full}")))?;
                let short = full.strip_prefix(&prefix).ok_or_else(|| {
                    TrainError::Artifact(format!("tensor {full} outside {prefix}"))
                })?;
                weights.push(NamedTensor {
                    name: short.to_string(),
                    ..t
                });
            }
            // The scaler tensors, when present, must agree with the sidecar.
            let mut scaler = sm.scaler.clone();
            if let (Some(mean), Some(std)) = (
                tensors.remove(&format!("{prefix}scaler.mean")),
                tensors.remove(&format!("{prefix}scaler.std")),
            ) {
                scaler = Scaler {
                    mean: mean.data,
                    std: std.data,
                };
            }
            members.push(Member { scaler, weights });
        }
        let art = ModelArtifact {
            arch,
            members,
            ensemble: sidecar.ensemble.clone(),
            encoding: sidecar.encoding.clone(),
        };
        art.validate()?;
        Ok(art)
    }
}

/// Predicted probabilities and labels of `artifact` for raw (unscaled, not encoded) rows `x`
/// (`[n, n_features]` row-major).
pub fn predict(artifact: &ModelArtifact, x: &[f32]) -> Result<Predictions> {
    predict_on(artifact, x, Device::Cpu)
}

pub(crate) fn predict_on(
    artifact: &ModelArtifact,
    x: &[f32],
    device: Device,
) -> Result<Predictions> {
    match &artifact.encoding {
        Some(e) if x.len() % e.n_raw.max(1) != 0 => Err(TrainError::InvalidInput(format!(
            "{} values is not a multiple of {} features",
            x.len(),
            e.n_raw
        ))),
        Some(e) => predict_encoded(artifact, &e.encode(x), device),
        None => predict_encoded(artifact, x, device),
    }
}

/// [`predict_on`] for rows already encoded (the inputs of `arch`).
pub(crate) fn predict_encoded(
    artifact: &ModelArtifact,
    x: &[f32],
    device: Device,
) -> Result<Predictions> {
    let arch = &artifact.arch;
    let f = arch.n_features;
    if x.len() % f != 0 {
        return Err(TrainError::InvalidInput(format!(
            "{} values is not a multiple of {f} features",
            x.len()
        )));
    }
    if artifact.members.len() != artifact.ensemble.weights.len() || artifact.members.is_empty() {
        return Err(TrainError::Artifact(
            "members and ensemble weights disagree".into(),
        ));
    }
    let n = x.len() / f;
    let width = if arch.is_binary() { 1 } else { arch.n_classes };
    let mut proba = vec![0f32; n * width];
    for (member, &wgt) in artifact.members.iter().zip(&artifact.ensemble.weights) {
        let layers = member.layers(arch)?;
        let p = forward_proba(arch, &layers, &member.scaler.transform(x), device)?;
        for (acc, v) in proba.iter_mut().zip(p) {
            *acc += wgt * v;
        }
    }
    let labels = if arch.is_binary() {
        proba.iter().map(|&p| u32::from(p >= 0.5)).collect()
    } else {
        proba
            .chunks_exact(width)
            .map(|row| {
                (0..width)
                    .max_by(|&a, &b| row[a].total_cmp(&row[b]).then(b.cmp(&a)))
                    .unwrap() as u32
            })
            .collect()
    };
    Ok(Predictions {
        n_classes: arch.n_classes,
        proba,
        labels,
    })
}

/// Binary: P(class 1) per row. Multiclass: `n × n_classes` probabilities row-major (use
/// [`predict`] for the argmax labels too).
pub fn predict_proba(artifact: &ModelArtifact, x: &[f32]) -> Result<Vec<f32>> {
    Ok(predict(artifact, x)?.proba)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::mlp::he_init;
    use crate::train::synth::{make_classification, Concept};

    fn artifact(n_classes: usize, members: usize) -> (ModelArtifact, Vec<f32>) {
        let c = Concept::new(3, 6, 4, n_classes);
        let d = make_classification(&c, 40, 0, 4);
        let arch = Arch::new(6, &[7, 5], n_classes);
        let ms: Vec<Member> = (0..members)
            .map(|m| {
                let mut s = crate::train::Scaler::fit(&d.x, 6);
                s.mean[0] += m as f32;
                Member::from_layers(s, &he_init(&arch, 10 + m as u64))
            })
            .collect();
        let w = vec![1.0 / members as f32; members];
        (
            ModelArtifact {
                arch,
                members: ms,
                ensemble: Ensemble {
                    method: "weighted_mean_proba".into(),
                    weights: w,
                },
                encoding: None,
            },
            d.x,
        )
    }

    #[test]
    fn safetensors_roundtrip_identical_predictions() {
        for (nc, nm) in [(2, 1), (2, 3), (4, 2)] {
            let (a, x) = artifact(nc, nm);
            a.validate().unwrap();
            let bytes = a.to_safetensors_bytes();
            let b = ModelArtifact::from_safetensors_bytes(&bytes).unwrap();
            assert_eq!(a, b);
            let pa = predict(&a, &x).unwrap();
            let pb = predict(&b, &x).unwrap();
            assert_eq!(pa, pb);
            assert_eq!(pa.len(), 40);
            assert_eq!(pa.proba.len(), if nc == 2 { 40 } else { 160 });
            if nc > 2 {
                for row in pa.proba.chunks(nc) {
                    assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
                }
            }
            let side: Sidecar = serde_json::from_str(&a.sidecar_json()).unwrap();
            assert_eq!(side.members.len(), nm);
            assert_eq!(side.members[0].tensors[0], "members.0.layers.0.weight");
            assert_eq!(
                side.arch.output,
                if nc == 2 { "sigmoid" } else { "softmax" }
            );
        }
        assert!(ModelArtifact::from_safetensors_bytes(b"garbage").is_err());
        let (a, _) = artifact(2, 1);
        let mut bytes = a.to_safetensors_bytes();
        bytes.truncate(bytes.len() - 4);
        assert!(ModelArtifact::from_safetensors_bytes(&bytes).is_err());
    }

    /// The shadow challengers' plain-Rust network is the same model: it round-trips, and
    /// predicts what libtorch predicts (to rounding).
    #[test]
    fn the_shadow_network_is_the_same_model() {
        for (nc, nm) in [(2, 1), (2, 3), (4, 2)] {
            let (a, x) = artifact(nc, nm);
            let net = a.to_network().unwrap();
            assert!(net.is_valid());
            assert_eq!(ModelArtifact::from_network(&net).unwrap(), a);
            let torch = predict(&a, &x).unwrap();
            for (i, row) in x.chunks(6).enumerate() {
                let ours = net.predict(row);
                let theirs = torch.stored(i);
                assert!(
                    (ours - theirs).abs() < 1e-5,
                    "{nc}/{nm} row {i}: {ours} vs {theirs}"
                );
            }
        }
    }

    /// Writes an artifact, inputs and predictions, and checks them in PyTorch with
    /// `scripts/export_check.py` (run when `DRIFTD_PYTHON` names a python with torch).
    #[test]
    fn pytorch_export_check() {
        let Ok(python) = std::env::var("DRIFTD_PYTHON") else {
            eprintln!("DRIFTD_PYTHON not set: skipping the PyTorch export check");
            return;
        };
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/export_check.py");
        let dir = std::env::temp_dir().join(format!("driftd-export-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (nc, nm) in [(2, 1), (2, 3), (3, 2)] {
            let (a, x) = artifact(nc, nm);
            let p = predict(&a, &x).unwrap();
            let st = dir.join(format!("m{nc}_{nm}.safetensors"));
            let side = dir.join(format!("m{nc}_{nm}.json"));
            let inp = dir.join(format!("in{nc}_{nm}.json"));
            let exp = dir.join(format!("exp{nc}_{nm}.json"));
            std::fs::write(&st, a.to_safetensors_bytes()).unwrap();
            std::fs::write(&side, a.sidecar_json()).unwrap();
            let rows: Vec<&[f32]> = x.chunks(6).collect();
            std::fs::write(
                &inp,
                serde_json::to_string(&serde_json::json!({ "x": rows })).unwrap(),
            )
            .unwrap();
            let expected = if nc == 2 {
                serde_json::json!({ "proba": p.proba, "labels": p.labels })
            } else {
                let rows: Vec<&[f32]> = p.proba.chunks(nc).collect();
                serde_json::json!({ "proba": rows, "labels": p.labels })
            };
            std::fs::write(&exp, serde_json::to_string(&expected).unwrap()).unwrap();
            let out = std::process::Command::new(&python)
                .arg(script)
                .args([&st, &side, &inp, &exp])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "export_check failed for {nc} classes, {nm} members:\n{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            // A corrupted expectation must fail the check.
            let mut wrong = p.proba.clone();
            wrong[0] += 1e-3;
            let wrong_json = if nc == 2 {
                serde_json::json!({ "proba": wrong })
            } else {
                serde_json::json!({ "proba": wrong.chunks(nc).collect::<Vec<_>>() })
            };
            std::fs::write(&exp, serde_json::to_string(&wrong_json).unwrap()).unwrap();
            let out = std::process::Command::new(&python)
                .arg(script)
                .args([&st, &side, &inp, &exp])
                .output()
                .unwrap();
            assert!(
                !out.status.success(),
                "export_check accepted a wrong prediction"
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
