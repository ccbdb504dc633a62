//! The agent's settings: `$XDG_CONFIG_HOME/agentctl/config.toml` (optional:
//! `provider`, `model`, `max_tokens`), overridden by the environment
//! (DESIGN.md, "Paths and environment"). API keys come from the
//! environment only and are never written anywhere.

use anyhow::{Context, bail};
use serde::Deserialize;
use std::path::PathBuf;

/// Default model when neither `AGENTCTL_MODEL`, `MODEL_ID` nor the config
/// file names one.
pub const DEFAULT_MODEL: &str = "claude-sonnet-4-5";
/// Default output budget per model call, in tokens.
pub const DEFAULT_MAX_TOKENS: u32 = 8192;
/// Variables holding API keys: read here, then kept out of every job's
/// environment.
pub const KEY_VARS: [&str; 2] = ["ANTHROPIC_API_KEY", "OPENAI_API_KEY"];

/// Which wire API the model speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProviderKind {
    /// Anthropic Messages API.
    Anthropic,
    /// OpenAI-compatible chat completions (OpenAI, llama.cpp, Ollama, vLLM).
    OpenAi,
}

/// The file's shape; every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    provider: Option<String>,
    model: Option<String>,
    max_tokens: Option<u32>,
}

/// Resolved settings for one run.
#[derive(Clone)]
pub struct Config {
    /// Provider to call.
    pub provider: ProviderKind,
    /// Model id sent with every request.
    pub model: String,
    /// Output token budget per call.
    pub max_tokens: u32,
    /// API base URL without a trailing slash (`https://api.anthropic.com`,
    /// `https://api.openai.com/v1`).
    pub base_url: String,
    /// The API key; optional for OpenAI-compatible local servers.
    pub api_key: Option<String>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("provider", &self.provider)
            .field("model", &self.model)
            .field("max_tokens", &self.max_tokens)
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// `$XDG_CONFIG_HOME/agentctl/config.toml`, when a home can be found.
pub fn config_path() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "agentctl").map(|d| d.config_dir().join("config.toml"))
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

impl Config {
    /// Reads the config file (if any) and the environment.
    ///
    /// Errors: the file is not valid TOML of the expected shape; the
    /// provider name is unknown; the Anthropic provider has no key.
    pub fn load() -> anyhow::Result<Config> {
        let file = match config_path() {
            Some(path) if path.is_file() => {
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                toml::from_str::<FileConfig>(&text)
                    .with_context(|| format!("invalid config file {}", path.display()))?
            }
            _ => FileConfig::default(),
        };
        let provider_name = env("AGENTCTL_PROVIDER")
            .or(file.provider)
            .unwrap_or_else(|| "anthropic".into());
        let provider = match provider_name.to_ascii_lowercase().as_str() {
            "anthropic" => ProviderKind::Anthropic,
            "openai" => ProviderKind::OpenAi,
            other => bail!("unknown provider {other:?} (expected anthropic or openai)"),
        };
        let model = env("AGENTCTL_MODEL")
            .or_else(|| env("MODEL_ID"))
            .or(file.model)
            .unwrap_or_else(|| DEFAULT_MODEL.into());
        let max_tokens = file.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS);
        let (base_url, api_key) = match provider {
            ProviderKind::Anthropic => {
                let key = env("ANTHROPIC_API_KEY").context(
                    "ANTHROPIC_API_KEY is not set (or set AGENTCTL_PROVIDER=openai for an \
                     OpenAI-compatible server)",
                )?;
                (
                    env("ANTHROPIC_BASE_URL").unwrap_or_else(|| "https://api.anthropic.com".into()),
                    Some(key),
                )
            }
            ProviderKind::OpenAi => (
                env("OPENAI_BASE_URL").unwrap_or_else(|| "https://api.openai.com/v1".into()),
                env("OPENAI_API_KEY"),
            ),
        };
        Ok(Config {
            provider,
            model,
            max_tokens,
            base_url: base_url.trim_end_matches('/').to_string(),
            api_key,
        })
    }
}

/// The environment a job gets (sent as `job.submit`'s `env`): ours,
/// without API keys and without agentctl's test hooks. agentd lays this
/// overlay over its own environment, so the keys must never be in it; an
/// agentd that has keys in its own environment keeps them from jobs itself.
pub fn job_env() -> std::collections::BTreeMap<String, String> {
    job_env_from(std::env::vars())
}

/// [`job_env`] from the given variables.
fn job_env_from(
    vars: impl IntoIterator<Item = (String, String)>,
) -> std::collections::BTreeMap<String, String> {
    vars.into_iter()
        .filter(|(k, _)| !KEY_VARS.contains(&k.as_str()) && !k.starts_with("AGENTCTL_TEST_"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_job_overlay_never_carries_api_keys() {
        let vars = [
            ("ANTHROPIC_API_KEY", "sk-ant"),
            ("OPENAI_API_KEY", "sk-oa"),
            ("AGENTCTL_TEST_CRASH_AFTER_PERSIST", "1"),
            ("PATH", "/bin"),
            ("ANTHROPIC_BASE_URL", "http://x"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()));
        let env = job_env_from(vars);
        assert_eq!(
            env.keys().collect::<Vec<_>>(),
            ["ANTHROPIC_BASE_URL", "PATH"]
        );
    }
}
