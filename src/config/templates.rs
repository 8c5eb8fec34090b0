//! `[[model_templates]]`: one block of model settings for every model name in the outcomes
//! table that matches a pattern, so ten thousand tenants need one block and a new tenant needs
//! no restart. A template takes every key of `[[models]]` but `name`; its `pattern` is a glob
//! on the model name (`*` any run of characters, `?` one character, anything else itself).
//! `n_features` may be left out: it then comes from `feature_names`, from
//! `source.feature_columns`, or, for an array column, from the model's first rows.
//!
//! A template is checked at load by building the model it would make, so its errors name
//! their key (`model_templates[0].train.lr`) as a model's would; a discovered model is built
//! the same way and cannot fail on its keys, only on its name.

use super::{ConfigError, ModelConfig, SourceConfig};

/// A glob on model names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamePattern(String);

impl NamePattern {
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() || text.chars().count() > 100 {
            return Err("must be 1 to 100 characters".into());
        }
        Ok(NamePattern(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the whole of `name` matches (`*` may match nothing).
    pub fn matches(&self, name: &str) -> bool {
        let (p, n): (Vec<char>, Vec<char>) = (self.0.chars().collect(), name.chars().collect());
        let (mut i, mut j) = (0, 0);
        // Where the last `*` was, and how much of the name it has taken so far: on a
        // mismatch it takes one more character (the classic linear backtracking glob).
        let mut star: Option<(usize, usize)> = None;
        while j < n.len() {
            match p.get(i) {
                Some('*') => {
                    star = Some((i, j));
                    i += 1;
                }
                Some(&c) if c == '?' || c == n[j] => {
                    i += 1;
                    j += 1;
                }
                _ => match star {
                    Some((si, sj)) => {
                        star = Some((si, sj + 1));
                        i = si + 1;
                        j = sj + 1;
                    }
                    None => return false,
                },
            }
        }
        p[i..].iter().all(|&c| c == '*')
    }
}

/// One `[[model_templates]]` block.
#[derive(Debug, Clone)]
pub struct ModelTemplate {
    pub pattern: NamePattern,
    /// Known from the configuration (`n_features`, `feature_names` or
    /// `source.feature_columns`); `None`: read from the model's first rows.
    pub n_features: Option<usize>,
    /// The block's keys but `pattern`: a `[[models]]` table without its name.
    body: toml::Table,
}

impl ModelTemplate {
    /// Reads block `i`; checks it by building the model it would make.
    pub fn from_table(
        i: usize,
        mut body: toml::Table,
        source: &SourceConfig,
    ) -> Result<Self, ConfigError> {
        let key = |f: &str| format!("model_templates[{i}].{f}");
        if body.contains_key("name") {
            return Err(ConfigError::key(
                key("name"),
                "a template's models are named by the outcomes table: use `pattern`",
            ));
        }
        let pattern = match body.remove("pattern") {
            Some(toml::Value::String(s)) => {
                NamePattern::parse(&s).map_err(|r| ConfigError::key(key("pattern"), r))?
            }
            Some(_) => return Err(ConfigError::key(key("pattern"), "must be a string")),
            None => {
                return Err(ConfigError::key(
                    key("pattern"),
                    "is required (a glob on model names, such as \"tenant-*\")",
                ))
            }
        };
        let n_features = match body.get("n_features") {
            Some(toml::Value::Integer(n)) if *n >= 1 => Some(*n as usize),
            Some(_) => {
                return Err(ConfigError::key(
                    key("n_features"),
                    "must be an integer of at least 1",
                ))
            }
            None => match body.get("feature_names") {
                Some(toml::Value::Array(names)) if !names.is_empty() => Some(names.len()),
                _ => (!source.feature_columns.is_empty()).then_some(source.feature_columns.len()),
            },
        };
        let template = ModelTemplate {
            pattern,
            n_features,
            body,
        };
        // Any width will do for the check when the rows are to tell it.
        let probe = format!("{}-check", template.pattern.as_str());
        template
            .instantiate(&probe, n_features.unwrap_or(1), source)
            .map_err(|(k, reason)| ConfigError::key(key(&k), reason))?;
        Ok(template)
    }

    /// The model this template makes for `name`, with `n_features` unless the template sets
    /// its own. The error is a key relative to the block and its reason.
    pub fn instantiate(
        &self,
        name: &str,
        n_features: usize,
        source: &SourceConfig,
    ) -> Result<ModelConfig, (String, String)> {
        let mut table = self.body.clone();
        table.insert("name".into(), toml::Value::String(name.to_string()));
        let width = self.n_features.unwrap_or(n_features);
        table.insert("n_features".into(), toml::Value::Integer(width as i64));
        let model: ModelConfig = serde_path_to_error::deserialize(toml::Value::Table(table))
            .map_err(|e| (e.path().to_string(), e.into_inner().message().to_string()))?;
        model.validate(source)?;
        Ok(model)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn glob(p: &str) -> NamePattern {
        NamePattern::parse(p).unwrap()
    }

    #[test]
    fn globs_match_whole_names() {
        assert!(glob("tenant-*").matches("tenant-17"));
        assert!(glob("tenant-*").matches("tenant-"));
        assert!(!glob("tenant-*").matches("xtenant-17"));
        assert!(glob("*-eu").matches("shop-eu"));
        assert!(!glob("*-eu").matches("shop-eu-2"));
        assert!(glob("a*b*c").matches("aXXbYYbZc"));
        assert!(!glob("a*b*c").matches("aXXbYY"));
        assert!(glob("r?-*").matches("r1-x"));
        assert!(!glob("r?-*").matches("r12-x"));
        assert!(glob("*").matches(""));
        assert!(glob("exact").matches("exact"));
        assert!(!glob("exact").matches("exactly"));
        assert!(glob("ü*").matches("über"), "characters, not bytes");
    }

    #[test]
    fn an_empty_pattern_is_refused() {
        assert!(NamePattern::parse("").is_err());
    }
}
