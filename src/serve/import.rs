//! `driftd models import --model M --from DIR [--promote]`: registers a model trained
//! elsewhere as a version with trigger `import`, after checking it fits the configured model.
//!
//! `DIR` holds one of two layouts:
//! - **driftd's export** (what `driftd models export` writes): one `*.safetensors` file whose
//!   metadata carries the sidecar, and optionally the `*.json` sidecar beside it (then the two
//!   must agree).
//! - **A PyTorch `state_dict`** of an `nn.Sequential` of `Linear` layers with `ReLU` between
//!   them (none after the last), saved as `state_dict.safetensors`
//!   (`safetensors.torch.save_file(model.state_dict(), …)`) or `state_dict.pt`
//!   (`torch.save(dict(model.state_dict()), …)`: libtorch's reader takes a plain `dict`, not
//!   the `OrderedDict` that `state_dict()` returns),
//!   and `scaler.json`, `{"mean": [...], "scale": [...]}` with one value per feature (as
//!   scikit-learn's `StandardScaler.mean_` / `.scale_`): the network sees
//!   `(x − mean) / scale`. The last layer has one output (binary: a logit, P(label = 1) =
//!   sigmoid) or `n_classes` outputs (multiclass: softmax). Parameter names are
//!   `<prefix><index>.weight|bias`; layers are taken in index order.
//!
//! Either way the weights must be finite, the shapes must chain, the input width must be the
//! model's `n_features` (for an export with categorical vocabularies: its raw features, its
//! categorical positions the model's `categorical_features`; a `state_dict` has none and
//! reads codes as numbers) and the output must fit its task (or have more classes, with
//! `classes = "grow"`). The imported version then serves,
//! and is updated (fine-tuned, ensembled) like one driftd trained.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use sqlx::PgConnection;

use crate::config::{ModelConfig, Task};
use crate::outcomes::Watermark;
use crate::registry::{self, NewVersion};
use crate::train::{Arch, Member, ModelArtifact, NamedTensor, Scaler};

/// The layout found in the directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    DriftdExport,
    StateDict,
}

impl Layout {
    pub fn as_str(self) -> &'static str {
        match self {
            Layout::DriftdExport => "driftd_export",
            Layout::StateDict => "state_dict",
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScalerFile {
    mean: Vec<f64>,
    scale: Vec<f64>,
}

/// One named parameter as read from a file: shape and row-major values.
pub struct Param {
    pub name: String,
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

fn files_ending(dir: &Path, ext: &str) -> Result<Vec<PathBuf>, String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mut out: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    out.sort();
    Ok(out)
}

/// Reads `dir` into an artifact checked against `model`'s configuration. Uses libtorch to
/// read `state_dict` files: call it off the async runtime.
pub fn read_dir(dir: &Path, model: &ModelConfig) -> Result<(ModelArtifact, Layout), String> {
    let (artifact, layout) = if dir.join("scaler.json").exists() {
        (read_state_dict_dir(dir)?, Layout::StateDict)
    } else {
        (read_export_dir(dir)?, Layout::DriftdExport)
    };
    check_fits(&artifact, model)?;
    Ok((artifact, layout))
}

fn read_export_dir(dir: &Path) -> Result<ModelArtifact, String> {
    let weights = files_ending(dir, "safetensors")?;
    let [file] = weights.as_slice() else {
        return Err(format!(
            "{} should hold one .safetensors file (driftd's export) or scaler.json with state_dict.pt|.safetensors; found {} .safetensors files",
            dir.display(),
            weights.len()
        ));
    };
    let bytes = std::fs::read(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let artifact = ModelArtifact::from_safetensors_bytes(&bytes)
        .map_err(|e| format!("{}: {e}", file.display()))?;
    let sidecar = file.with_extension("json");
    if sidecar.exists() {
        let text = std::fs::read_to_string(&sidecar)
            .map_err(|e| format!("cannot read {}: {e}", sidecar.display()))?;
        let given: crate::train::artifact::Sidecar = serde_json::from_str(&text)
            .map_err(|e| format!("{}: not a driftd sidecar: {e}", sidecar.display()))?;
        if given != artifact.sidecar() {
            return Err(format!(
                "{} disagrees with the sidecar inside {}",
                sidecar.display(),
                file.display()
            ));
        }
    }
    Ok(artifact)
}

fn read_state_dict_dir(dir: &Path) -> Result<ModelArtifact, String> {
    let scaler_path = dir.join("scaler.json");
    let text = std::fs::read_to_string(&scaler_path)
        .map_err(|e| format!("cannot read {}: {e}", scaler_path.display()))?;
    let scaler: ScalerFile = serde_json::from_str(&text).map_err(|e| {
        format!(
            "{}: expected {{\"mean\": [...], \"scale\": [...]}}: {e}",
            scaler_path.display()
        )
    })?;
    let (pt, st) = (
        dir.join("state_dict.pt"),
        dir.join("state_dict.safetensors"),
    );
    let tensors = match (pt.exists(), st.exists()) {
        (true, false) => tch::Tensor::loadz_multi(&pt).map_err(|e| {
            let first = e.to_string().lines().next().unwrap_or_default().to_string();
            format!(
                "cannot read {}: libtorch reads a plain dict of tensors, so save it with \
                 torch.save(dict(net.state_dict()), path) (an OrderedDict does not load), or \
                 use safetensors.torch.save_file and state_dict.safetensors ({first})",
                pt.display()
            )
        })?,
        (false, true) => tch::Tensor::read_safetensors(&st)
            .map_err(|e| format!("cannot read {}: {e}", st.display()))?,
        (true, true) => {
            return Err(format!(
                "{} has both state_dict.pt and state_dict.safetensors; keep one",
                dir.display()
            ))
        }
        (false, false) => {
            return Err(format!(
                "{} has scaler.json but no state_dict.pt or state_dict.safetensors",
                dir.display()
            ))
        }
    };
    let params = tensors
        .into_iter()
        .map(|(name, t)| {
            let shape = t.size().iter().map(|&d| d as usize).collect();
            let flat = t
                .to_kind(tch::Kind::Float)
                .reshape([-1])
                .to_device(tch::Device::Cpu);
            let values = Vec::<f32>::try_from(&flat).map_err(|e| format!("{name}: {e}"))?;
            Ok(Param {
                name,
                shape,
                values,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    from_state_dict(params, &scaler.mean, &scaler.scale)
}

/// The index and kind (`weight`/`bias`) of a `Sequential` parameter name like `net.2.weight`.
fn layer_key(name: &str) -> Option<(usize, &str)> {
    let (rest, kind) = name.rsplit_once('.')?;
    let index = rest.rsplit('.').next()?.parse().ok()?;
    matches!(kind, "weight" | "bias").then_some((index, kind))
}

type Layers = std::collections::BTreeMap<usize, (Option<Param>, Option<Param>)>;

/// The parameters by layer index: `(weight, bias)`.
fn group_layers(params: Vec<Param>) -> Result<Layers, String> {
    let mut layers = Layers::new();
    for p in params {
        let (index, kind) = layer_key(&p.name).ok_or_else(|| {
            format!(
                "parameter `{}` is not `<index>.weight` or `<index>.bias` of an nn.Sequential of Linear and ReLU layers",
                p.name
            )
        })?;
        let slot = layers.entry(index).or_default();
        let place = if kind == "weight" {
            &mut slot.0
        } else {
            &mut slot.1
        };
        *place = Some(p);
    }
    if layers.is_empty() {
        return Err("the state_dict has no parameters".into());
    }
    Ok(layers)
}

/// The layers' widths (`[n_features, hidden…, outputs]`) and tensors, checked to chain and be
/// finite.
fn linear_layers(layers: Layers) -> Result<(Vec<usize>, Vec<NamedTensor>), String> {
    let mut widths = Vec::new();
    let mut tensors = Vec::new();
    for (l, (index, (w, b))) in layers.into_iter().enumerate() {
        let w = w.ok_or_else(|| format!("layer {index} has a bias but no weight"))?;
        let b =
            b.ok_or_else(|| format!("layer {index} has no bias (Linear layers need bias=True)"))?;
        let [out, inp] = w.shape[..] else {
            return Err(format!(
                "{} has shape {:?}; a Linear weight is [out, in]",
                w.name, w.shape
            ));
        };
        if b.shape != [out] {
            return Err(format!(
                "{} has shape {:?}; expected [{out}]",
                b.name, b.shape
            ));
        }
        match widths.last() {
            Some(&prev) if prev != inp => {
                return Err(format!(
                    "{} takes {inp} inputs but the layer before gives {prev}",
                    w.name
                ))
            }
            Some(_) => {}
            None => widths.push(inp),
        }
        widths.push(out);
        for p in [&w, &b] {
            if let Some(i) = p.values.iter().position(|v| !v.is_finite()) {
                return Err(format!("{}: value {i} is not finite", p.name));
            }
        }
        for (p, suffix) in [(w, "weight"), (b, "bias")] {
            tensors.push(NamedTensor {
                name: format!("layers.{l}.{suffix}"),
                shape: p.shape,
                data: p.values,
            });
        }
    }
    Ok((widths, tensors))
}

fn scaler_from(mean: &[f64], scale: &[f64], n_features: usize) -> Result<Scaler, String> {
    if mean.len() != n_features || scale.len() != n_features {
        return Err(format!(
            "scaler.json has {} means and {} scales; the first layer takes {n_features} features",
            mean.len(),
            scale.len()
        ));
    }
    if let Some(j) =
        (0..n_features).find(|&j| !(mean[j].is_finite() && scale[j].is_finite() && scale[j] > 0.0))
    {
        return Err(format!(
            "scaler.json feature {j}: mean {} and scale {} must be finite, the scale positive",
            mean[j], scale[j]
        ));
    }
    Ok(Scaler {
        mean: mean.iter().map(|&m| m as f32).collect(),
        std: scale.iter().map(|&s| s as f32).collect(),
    })
}

/// An artifact from a `Sequential`'s parameters and a scaler.
pub fn from_state_dict(
    params: Vec<Param>,
    mean: &[f64],
    scale: &[f64],
) -> Result<ModelArtifact, String> {
    let (widths, tensors) = linear_layers(group_layers(params)?)?;
    let n_features = widths[0];
    let scaler = scaler_from(mean, scale, n_features)?;
    let n_out = *widths.last().expect("at least one layer");
    let n_classes = if n_out == 1 { 2 } else { n_out };
    let arch = Arch::new(n_features, &widths[1..widths.len() - 1], n_classes);
    let artifact = ModelArtifact::single(
        arch,
        Member {
            scaler,
            weights: tensors,
        },
    );
    artifact.validate().map_err(|e| e.to_string())?;
    Ok(artifact)
}

/// Whether the artifact fits the configured model's features and task.
pub fn check_fits(a: &ModelArtifact, model: &ModelConfig) -> Result<(), String> {
    // Raw features: a model with categorical vocabularies takes codes and encodes them.
    let n_raw = a.encoding.as_ref().map_or(a.arch.n_features, |e| e.n_raw);
    if n_raw != model.n_features {
        return Err(format!(
            "the model takes {n_raw} features; {} is configured with n_features = {}",
            model.name, model.n_features
        ));
    }
    if let Some(e) = &a.encoding {
        let at: Vec<usize> = e.vocabularies.iter().map(|v| v.feature).collect();
        if at != model.categorical_indices() {
            return Err(format!(
                "the model's categorical features are at positions {at:?}; {}'s \
                 categorical_features are at {:?}",
                model.name,
                model.categorical_indices()
            ));
        }
    }
    let (want_classes, what) = match model.task {
        Task::Binary => (2, "one output (a logit: binary task)".to_string()),
        Task::Multiclass => (
            model.n_classes as usize,
            format!("{} outputs (multiclass)", model.n_classes),
        ),
    };
    // A model that learnt classes beyond the configured ones fits a model that may grow.
    let grown = model.classes == crate::domain::Classes::Grow && a.arch.n_classes > want_classes;
    if a.arch.n_classes != want_classes && !grown {
        return Err(format!(
            "the model has {} output(s); {} needs {what}",
            a.arch.n_outputs(),
            model.name
        ));
    }
    for m in &a.members {
        let bad_scaler = m.scaler.mean.iter().any(|v| !v.is_finite())
            || m.scaler.std.iter().any(|v| !(v.is_finite() && *v > 0.0));
        let bad_weight = m
            .weights
            .iter()
            .flat_map(|t| &t.data)
            .any(|v| !v.is_finite());
        if bad_scaler || bad_weight {
            return Err(
                "the model has non-finite weights or scaler values (or a scale ≤ 0)".into(),
            );
        }
    }
    Ok(())
}

/// Registers the model in `dir` as a new version of `model`; the champion with `promote`.
pub async fn import(
    conn: &mut PgConnection,
    model: &ModelConfig,
    dir: &Path,
    promote: bool,
) -> anyhow::Result<(i64, Layout)> {
    let (d, m) = (dir.to_path_buf(), model.clone());
    let (artifact, layout) = tokio::task::spawn_blocking(move || read_dir(&d, &m))
        .await?
        .map_err(|e| anyhow::anyhow!("cannot import {}: {e}", dir.display()))?;
    let version = registry::register(
        conn,
        &NewVersion {
            model: &model.name,
            parent_version: None,
            origin: registry::Origin::Imported,
            n_train_rows: 0,
            n_holdout_rows: 0,
            // Every labelled row is new to a model trained elsewhere.
            cutoff: Watermark::start(),
            holdout_metrics: registry::HoldoutMetrics {
                reason: format!("imported from {} ({})", dir.display(), layout.as_str()),
                ..Default::default()
            },
            artifact: &artifact,
            reference_sample: None,
        },
        promote,
    )
    .await?;
    Ok((version, layout))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn param(name: &str, shape: &[usize], v: f32) -> Param {
        Param {
            name: name.into(),
            shape: shape.to_vec(),
            values: vec![v; shape.iter().product()],
        }
    }

    fn net() -> Vec<Param> {
        net_of(3)
    }

    /// `inputs → 4 relu → 1`.
    fn net_of(inputs: usize) -> Vec<Param> {
        vec![
            param("0.weight", &[4, inputs], 0.1),
            param("0.bias", &[4], 0.0),
            param("2.weight", &[1, 4], -0.2),
            param("2.bias", &[1], 0.3),
        ]
    }

    #[test]
    fn a_sequential_becomes_an_artifact() {
        let a = from_state_dict(net(), &[0.0; 3], &[1.0, 2.0, 0.5]).unwrap();
        assert_eq!(a.arch, Arch::new(3, &[4], 2));
        assert_eq!(a.members[0].scaler.std, vec![1.0, 2.0, 0.5]);
        let p = crate::serve::predictor::Predictor::new(&a)
            .unwrap()
            .predict(&[1.0, 1.0, 1.0]);
        // relu(0.1 · (1 + 0.5 + 2)) = 0.35 per hidden unit; 0.3 − 0.2 · 4 · 0.35 = 0.02.
        let want = 1.0 / (1.0 + (-0.02f32).exp());
        assert!((p.values[0] - want).abs() < 1e-6, "{:?}", p.values);
        let mut named = net();
        for p in &mut named {
            p.name = format!("net.{}", p.name);
        }
        assert!(from_state_dict(named, &[0.0; 3], &[1.0; 3]).is_ok());
    }

    #[test]
    fn bad_state_dicts_say_why() {
        type Case = (Vec<Param>, Vec<f64>, Vec<f64>, &'static str);
        let cases: Vec<Case> = vec![
            (vec![], vec![], vec![], "no parameters"),
            (
                vec![param("0.weight", &[4, 3], 0.1)],
                vec![0.0; 3],
                vec![1.0; 3],
                "no bias",
            ),
            (
                vec![
                    param("0.weight", &[4, 3], 0.1),
                    param("0.bias", &[4], 0.0),
                    param("1.weight", &[1, 5], 0.1),
                    param("1.bias", &[1], 0.0),
                ],
                vec![0.0; 3],
                vec![1.0; 3],
                "takes 5 inputs",
            ),
            (
                vec![
                    param("0.weight", &[4, 3], f32::NAN),
                    param("0.bias", &[4], 0.0),
                ],
                vec![0.0; 3],
                vec![1.0; 3],
                "not finite",
            ),
            (net(), vec![0.0; 2], vec![1.0; 3], "2 means"),
            (net(), vec![0.0; 3], vec![1.0, 0.0, 1.0], "scale positive"),
            (
                vec![param("conv.weight_g", &[1], 0.0)],
                vec![],
                vec![],
                "nn.Sequential",
            ),
            (
                vec![
                    param("0.weight", &[4, 3, 1], 0.1),
                    param("0.bias", &[4], 0.0),
                ],
                vec![0.0; 3],
                vec![1.0; 3],
                "[out, in]",
            ),
        ];
        for (params, mean, scale, says) in cases {
            let err = from_state_dict(params, &mean, &scale)
                .map(|_| ())
                .unwrap_err();
            assert!(err.contains(says), "{says}: {err}");
        }
    }

    #[test]
    fn driftds_own_export_reads_back() {
        let a = from_state_dict(net(), &[0.5; 3], &[2.0; 3]).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("m-v3.safetensors"),
            a.to_safetensors_bytes(),
        )
        .unwrap();
        assert_eq!(read_export_dir(dir.path()).unwrap(), a);
        std::fs::write(dir.path().join("m-v3.json"), a.sidecar_json()).unwrap();
        assert_eq!(read_export_dir(dir.path()).unwrap(), a);
        let other = from_state_dict(net(), &[0.0; 3], &[2.0; 3]).unwrap();
        std::fs::write(dir.path().join("m-v3.json"), other.sidecar_json()).unwrap();
        let err = read_export_dir(dir.path()).unwrap_err();
        assert!(err.contains("disagrees"), "{err}");
        std::fs::write(dir.path().join("m-v4.safetensors"), b"x").unwrap();
        let err = read_export_dir(dir.path()).unwrap_err();
        assert!(err.contains("found 2 .safetensors files"), "{err}");
    }

    #[test]
    fn the_artifact_must_fit_the_configured_model() {
        let cfg = crate::config::Config::from_toml_str(
            "[database]\nurl = \"postgres://x@y/z\"\n[[models]]\nname = \"m\"\nn_features = 3\n[[models]]\nname = \"k\"\nn_features = 3\ntask = \"multiclass\"\nn_classes = 4\n",
            Vec::new(),
        )
        .unwrap();
        let a = from_state_dict(net(), &[0.0; 3], &[1.0; 3]).unwrap();
        assert!(check_fits(&a, &cfg.models[0]).is_ok());
        let err = check_fits(&a, &cfg.models[1]).unwrap_err();
        assert!(err.contains("4 outputs"), "{err}");
        let mut narrow = cfg.models[0].clone();
        narrow.n_features = 5;
        assert!(check_fits(&a, &narrow)
            .unwrap_err()
            .contains("n_features = 5"));
        // A grown model fits a model that may grow, not a fixed one.
        let grown = crate::train::widen::widen(&a, 3).unwrap();
        assert!(check_fits(&grown, &cfg.models[0]).is_ok());
        let mut fixed = cfg.models[0].clone();
        fixed.classes = crate::domain::Classes::Fixed;
        assert!(check_fits(&grown, &fixed)
            .unwrap_err()
            .contains("output(s)"));
    }

    #[test]
    fn a_model_with_vocabularies_fits_by_its_raw_features_and_categorical_positions() {
        let text =
            "[database]\nurl = \"postgres://x@y/z\"\n[[models]]\nname = \"m\"\nn_features = 3\n\
                    feature_names = [\"a\", \"b\", \"c\"]\ncategorical_features = [\"c\"]\n";
        let cfg = crate::config::Config::from_toml_str(text, Vec::new()).unwrap();
        let rows = crate::domain::Dataset {
            x: vec![0.1, 0.2, 7.0, 0.3, 0.1, 9.0, 0.2, 0.4, 7.0],
            n_features: 3,
            y: vec![0.0, 1.0, 0.0],
            ts: vec![1, 2, 3],
            ids: vec![1, 2, 3],
        };
        let enc = crate::train::encoding::Encoding::learn(&[&rows], 3, &[2], 8, None);
        let plain = from_state_dict(
            net_of(enc.width()),
            &vec![0.0; enc.width()],
            &vec![1.0; enc.width()],
        )
        .unwrap();
        let a = ModelArtifact {
            encoding: Some(enc),
            ..plain
        };
        a.validate().unwrap();
        assert!(check_fits(&a, &cfg.models[0]).is_ok());
        let mut numeric = cfg.models[0].clone();
        numeric.categorical_features.clear();
        assert!(check_fits(&a, &numeric)
            .unwrap_err()
            .contains("categorical features are at positions [2]"));
    }
}
