//! Loading: the only file of `config` that reads files (the config file and the secret
//! files it names), once, at load. The rest of `config` is types and checks, which the core
//! uses; `tests/it/architecture.rs` checks that only this file touches the filesystem.

use std::path::Path;

use super::{
    deserialize_with_overrides, overrides, Config, ConfigError, DatabaseConfig, ModelTemplate,
    Secret,
};

impl Config {
    /// Reads the file, applies `DRIFTD_*__*` overrides from `env`, and validates.
    pub fn load(
        path: &Path,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml_str(&text, env)
    }

    pub fn from_toml_str(
        text: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let file: toml::Value = text
            .parse::<toml::Table>()
            .map(toml::Value::Table)
            .map_err(|e| ConfigError::Syntax(e.message().to_string()))?;
        let overrides = overrides(env)?;
        let mut cfg = deserialize_with_overrides(&file, &overrides)?;
        cfg.resolve_secrets()?;
        cfg.validate()?;
        cfg.source.categorical = cfg.categorical_positions()?;
        cfg.model_templates = std::mem::take(&mut cfg.template_tables)
            .into_iter()
            .enumerate()
            .map(|(i, t)| ModelTemplate::from_table(i, t, &cfg.source))
            .collect::<Result<_, _>>()?;
        Ok(cfg)
    }

    /// Reads the token files (the database password file is read only by the commands that
    /// connect, [`Config::database`]).
    fn resolve_secrets(&mut self) -> Result<(), ConfigError> {
        if let Some(path) = &self.http.admin_token_file {
            let tok =
                read_secret_file(path).map_err(|r| ConfigError::key("http.admin_token_file", r))?;
            self.http.admin_token = Some(tok);
        }
        if let Some(path) = &self.http.read_token_file {
            let tok =
                read_secret_file(path).map_err(|r| ConfigError::key("http.read_token_file", r))?;
            self.http.read_token = Some(tok);
        }
        Ok(())
    }

    /// The `[database]` section, for the commands that connect, with the password read from
    /// `password_file` now (the other commands never read it). The error names the key.
    pub fn database(&self) -> Result<DatabaseConfig, ConfigError> {
        let mut db = self.database.clone().ok_or_else(|| {
            ConfigError::key(
                "database.url",
                "is required by this command: add a [database] section with url = \"postgres://…\"",
            )
        })?;
        if let Some(path) = &db.password_file {
            let pw = read_secret_file(path)
                .map_err(|r| ConfigError::key("database.password_file", r))?;
            db.password = Some(pw);
        }
        Ok(db)
    }

    /// What `check-config` warns about without failing: a secret file that `driftd run`
    /// would need and that cannot be read here (it may exist only inside the service).
    pub fn secret_warnings(&self) -> Vec<String> {
        let db_file = self
            .database
            .as_ref()
            .and_then(|d| d.password_file.as_ref());
        db_file
            .and_then(|path| read_secret_file(path).err())
            .map(|why| {
                format!("config key `database.password_file`: {why} (commands that connect to the database need it)")
            })
            .into_iter()
            .collect()
    }
}

fn read_secret_file(path: &Path) -> Result<Secret, String> {
    let s = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let s = s.trim_end_matches(['\n', '\r']).to_string();
    if s.is_empty() {
        return Err(format!("{} is empty", path.display()));
    }
    Ok(Secret(s))
}
