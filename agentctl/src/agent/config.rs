//! The agent's settings: `$XDG_CONFIG_HOME/agentctl/config.toml` (optional:
//! `provider`, `model`, `max_tokens`, `max_tokens_param`,
//! `context_window_tokens`, `[retention] max_age_days`, `[sandbox] mode`,
//! `network`, `writable`, `[background] executor`, `[background.slurm]`),
//! overridden by the environment
//! (docs/agent.md, "Config file" and "Environment"). API keys come from the
//! environment only and are never written anywhere.

use agentd_proto::{Executor, Sandbox, SandboxMode, SlurmOptions};
use anyhow::{Context, bail};
use serde::Deserialize;
use std::path::PathBuf;

/// The Anthropic provider's model when neither `AGENTCTL_MODEL`, `MODEL_ID`
/// nor the config file names one.
pub const DEFAULT_ANTHROPIC_MODEL: &str = "claude-sonnet-4-5";
/// The OpenAI provider's model for api.openai.com when none is named. Any
/// other OpenAI-compatible server is asked which models it serves instead
/// (`GET /models`; see `provider::openai::only_served_model`).
pub const DEFAULT_OPENAI_MODEL: &str = "gpt-5.1";
/// The OpenAI provider's default base URL.
pub const OPENAI_BASE_URL: &str = "https://api.openai.com/v1";
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

/// Which request field carries the output budget of an OpenAI-compatible
/// call. OpenAI's reasoning models refuse `max_tokens` and take
/// `max_completion_tokens`; llama.cpp, Ollama, vLLM and older servers know
/// only `max_tokens`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenParam {
    /// `max_tokens`: the default for every server but api.openai.com.
    MaxTokens,
    /// `max_completion_tokens`: the default for api.openai.com.
    MaxCompletionTokens,
}

impl TokenParam {
    /// The request field's name.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenParam::MaxTokens => "max_tokens",
            TokenParam::MaxCompletionTokens => "max_completion_tokens",
        }
    }

    /// The other field, for error hints.
    pub fn other(self) -> TokenParam {
        match self {
            TokenParam::MaxTokens => TokenParam::MaxCompletionTokens,
            TokenParam::MaxCompletionTokens => TokenParam::MaxTokens,
        }
    }

    /// The default for `base_url`: `max_completion_tokens` for OpenAI's
    /// own API, `max_tokens` for any other server.
    pub fn for_base_url(base_url: &str) -> TokenParam {
        if is_openai_api(base_url) {
            TokenParam::MaxCompletionTokens
        } else {
            TokenParam::MaxTokens
        }
    }
}

impl std::str::FromStr for TokenParam {
    type Err = anyhow::Error;

    fn from_str(s: &str) -> anyhow::Result<TokenParam> {
        match s {
            "max_tokens" => Ok(TokenParam::MaxTokens),
            "max_completion_tokens" => Ok(TokenParam::MaxCompletionTokens),
            other => bail!(
                "unknown max_tokens_param {other:?} (expected max_tokens or max_completion_tokens)"
            ),
        }
    }
}

/// True when `base_url`'s host is OpenAI's own API (`api.openai.com`).
pub fn is_openai_api(base_url: &str) -> bool {
    reqwest::Url::parse(base_url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
        .is_some_and(|h| h == "api.openai.com")
}

/// The file's shape; every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    provider: Option<String>,
    model: Option<String>,
    max_tokens: Option<u32>,
    max_tokens_param: Option<String>,
    context_window_tokens: Option<u64>,
    retention: Option<RetentionFile>,
    sandbox: Option<SandboxFile>,
    background: Option<BackgroundFile>,
}

/// The file's `[background]` table: where `background_run` jobs run
/// (docs/slurm.md, "The agent").
///
/// ```toml
/// [background]
/// executor = "slurm"      # default "local"
/// [background.slurm]      # default resources of those Slurm jobs
/// partition = "debug"
/// cpus = 4
/// mem_bytes = 8589934592
/// time_limit_secs = 3600
/// ```
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct BackgroundFile {
    executor: Option<Executor>,
    slurm: Option<SlurmOptions>,
}

/// Where the agent's `background_run` jobs run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Background {
    /// `local` (default) or `slurm`.
    pub executor: Executor,
    /// The resources asked of Slurm (`[background.slurm]`).
    pub slurm: Option<SlurmOptions>,
}

/// The `[background]` table resolved.
///
/// Errors: `[background.slurm]` without `executor = "slurm"`.
fn background_from(file: Option<BackgroundFile>) -> anyhow::Result<Background> {
    let f = file.unwrap_or_default();
    let executor = f.executor.unwrap_or_default();
    if f.slurm.is_some() && executor != Executor::Slurm {
        bail!("[background.slurm] needs [background] executor = \"slurm\"");
    }
    Ok(Background {
        executor,
        slurm: f.slurm,
    })
}

/// The file's `[sandbox]` table: how the agent's `bash` and
/// `background_run` jobs are confined (docs/sandbox.md, "The agent").
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SandboxFile {
    /// `workspace-write` (default), `read-only` or `none`.
    mode: Option<String>,
    /// Whether the commands may use the network (default true).
    network: Option<bool>,
    /// Writable paths beside the workspace; replaces [`default_writable`].
    writable: Option<Vec<String>>,
}

/// The paths the agent's commands may write beside the workspace unless
/// the config file's `[sandbox] writable` says otherwise, so that builds
/// and package managers work: the cargo home and rustup home (`$CARGO_HOME`,
/// `$RUSTUP_HOME`, else `~/.cargo`, `~/.rustup`), the npm cache (`~/.npm`),
/// the user's cache dir (`$XDG_CACHE_HOME`, else `~/.cache`: pip, yarn,
/// pnpm, go-build, sccache…) and the Go module path (`$GOPATH`, else
/// `~/go`); only those that exist, as agentd refuses missing paths.
pub fn default_writable() -> Vec<String> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let var_or_home = |var: &str, sub: &str| {
        std::env::var_os(var)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(sub)))
    };
    [
        var_or_home("CARGO_HOME", ".cargo"),
        var_or_home("RUSTUP_HOME", ".rustup"),
        home.as_ref().map(|h| h.join(".npm")),
        var_or_home("XDG_CACHE_HOME", ".cache"),
        var_or_home("GOPATH", "go"),
    ]
    .into_iter()
    .flatten()
    .filter(|p| p.is_absolute() && p.is_dir())
    .filter_map(|p| p.into_os_string().into_string().ok())
    .collect()
}

/// The sandbox of the agent's commands from the config file's table
/// (defaults: `workspace-write`, network on, [`default_writable`]).
///
/// Errors: an unknown mode; a relative writable path.
fn sandbox_from(file: Option<SandboxFile>) -> anyhow::Result<Sandbox> {
    let file = file.unwrap_or_default();
    let mode = match file.mode {
        Some(m) => m
            .parse::<SandboxMode>()
            .map_err(|e| anyhow::anyhow!("[sandbox] mode: {e}"))?,
        None => SandboxMode::WorkspaceWrite,
    };
    let writable = match file.writable {
        Some(list) => {
            if let Some(rel) = list.iter().find(|p| !std::path::Path::new(p).is_absolute()) {
                bail!("[sandbox] writable: {rel:?} is not an absolute path");
            }
            list
        }
        None => default_writable(),
    };
    Ok(Sandbox {
        mode,
        writable: if mode == SandboxMode::WorkspaceWrite {
            writable
        } else {
            Vec::new()
        },
        network: Some(file.network.unwrap_or(true)),
    })
}

/// The file's `[retention]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RetentionFile {
    max_age_days: Option<u64>,
}

/// Default `[retention] max_age_days`: transcripts untouched for longer
/// are removed (the same default as agentd's finished jobs).
pub const DEFAULT_MAX_AGE_DAYS: u64 = 30;

/// Resolved settings for one run.
#[derive(Clone)]
pub struct Config {
    /// Provider to call.
    pub provider: ProviderKind,
    /// Model id sent with every request.
    pub model: String,
    /// True when the user named the model (`AGENTCTL_MODEL`, `MODEL_ID` or
    /// the config file); false when `model` is the provider's default.
    pub model_named: bool,
    /// Output token budget per call.
    pub max_tokens: u32,
    /// The field that carries `max_tokens` in OpenAI-compatible requests
    /// (config `max_tokens_param`, else [`TokenParam::for_base_url`]).
    pub max_tokens_param: TokenParam,
    /// API base URL without a trailing slash (`https://api.anthropic.com`,
    /// `https://api.openai.com/v1`).
    pub base_url: String,
    /// The API key; optional for OpenAI-compatible local servers.
    pub api_key: Option<String>,
    /// The model's context window in tokens: the file's
    /// `context_window_tokens`, else [`super::context::default_window`]
    /// for the model.
    pub context_window_tokens: u64,
    /// How the `bash` and `background_run` jobs are confined: the file's
    /// `[sandbox]`, else `workspace-write` with the network on and
    /// [`default_writable`]; `--sandbox` on `ask`/`chat` overrides the mode.
    pub sandbox: Sandbox,
    /// Where `background_run` jobs run (`[background]`).
    pub background: Background,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("provider", &self.provider)
            .field("model", &self.model)
            .field("max_tokens", &self.max_tokens)
            .field("max_tokens_param", &self.max_tokens_param)
            .field("base_url", &self.base_url)
            .field("context_window_tokens", &self.context_window_tokens)
            .field("sandbox", &self.sandbox)
            .field("background", &self.background)
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

/// The config file's contents, or the defaults when there is none.
fn read_file() -> anyhow::Result<FileConfig> {
    Ok(match config_path() {
        Some(path) if path.is_file() => {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            toml::from_str::<FileConfig>(&text)
                .with_context(|| format!("invalid config file {}", path.display()))?
        }
        _ => FileConfig::default(),
    })
}

/// `[retention] max_age_days` of the config file (default
/// [`DEFAULT_MAX_AGE_DAYS`]; 0 keeps transcripts forever). Needs no API key.
///
/// Errors: the file is not valid TOML of the expected shape.
pub fn retention_max_age_days() -> anyhow::Result<u64> {
    Ok(read_file()?
        .retention
        .and_then(|r| r.max_age_days)
        .unwrap_or(DEFAULT_MAX_AGE_DAYS))
}

impl Config {
    /// Reads the config file (if any) and the environment.
    ///
    /// Errors: the file is not valid TOML of the expected shape; the
    /// provider name is unknown; the Anthropic provider has no key.
    pub fn load() -> anyhow::Result<Config> {
        let mut file = read_file()?;
        let sandbox = sandbox_from(file.sandbox.take())?;
        let background = background_from(file.background.take())?;
        let provider_name = env("AGENTCTL_PROVIDER")
            .or(file.provider)
            .unwrap_or_else(|| "anthropic".into());
        let provider = match provider_name.to_ascii_lowercase().as_str() {
            "anthropic" => ProviderKind::Anthropic,
            "openai" => ProviderKind::OpenAi,
            other => bail!("unknown provider {other:?} (expected anthropic or openai)"),
        };
        let named = env("AGENTCTL_MODEL")
            .or_else(|| env("MODEL_ID"))
            .or(file.model);
        let model_named = named.is_some();
        let model = named.unwrap_or_else(|| {
            match provider {
                ProviderKind::Anthropic => DEFAULT_ANTHROPIC_MODEL,
                ProviderKind::OpenAi => DEFAULT_OPENAI_MODEL,
            }
            .into()
        });
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
                env("OPENAI_BASE_URL").unwrap_or_else(|| OPENAI_BASE_URL.into()),
                env("OPENAI_API_KEY"),
            ),
        };
        let max_tokens_param = match file.max_tokens_param {
            Some(name) => name.parse()?,
            None => TokenParam::for_base_url(&base_url),
        };
        let context_window_tokens = file
            .context_window_tokens
            .filter(|&n| n > 0)
            .unwrap_or_else(|| super::context::default_window(&model));
        Ok(Config {
            provider,
            context_window_tokens,
            model,
            model_named,
            max_tokens,
            max_tokens_param,
            base_url: base_url.trim_end_matches('/').to_string(),
            api_key,
            sandbox,
            background,
        })
    }

    /// Applies `ask`/`chat`'s `--sandbox MODE`: the mode replaces the
    /// config's (writable paths are kept only for `workspace-write`).
    /// Turning the sandbox off says so on stderr, loudly, once.
    pub fn apply_sandbox_flag(&mut self, mode: Option<SandboxMode>) {
        let Some(mode) = mode else {
            return;
        };
        if mode != SandboxMode::WorkspaceWrite {
            self.sandbox.writable.clear();
        } else if self.sandbox.writable.is_empty() {
            self.sandbox.writable = default_writable();
        }
        self.sandbox.mode = mode;
        if mode == SandboxMode::None {
            eprintln!(
                "agentctl: WARNING: --sandbox none: the model's commands run with all your rights \
                 (they can write anywhere you can{})",
                if self.sandbox.network_allowed() {
                    ""
                } else {
                    "; the network stays off as configured"
                }
            );
        }
    }

    /// True when no model was named and the server is an OpenAI-compatible
    /// one other than api.openai.com, whose models only the server knows:
    /// then the model is asked of it (`GET /models`).
    pub fn model_from_server(&self) -> bool {
        self.provider == ProviderKind::OpenAi && !self.model_named && !is_openai_api(&self.base_url)
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
    fn only_openai_s_own_api_defaults_to_max_completion_tokens() {
        for (url, want) in [
            ("https://api.openai.com/v1", TokenParam::MaxCompletionTokens),
            (
                "https://API.OpenAI.com/v1/",
                TokenParam::MaxCompletionTokens,
            ),
            ("http://127.0.0.1:8080/v1", TokenParam::MaxTokens),
            ("http://localhost:11434/v1", TokenParam::MaxTokens),
            (
                "https://api.openai.com.example.net/v1",
                TokenParam::MaxTokens,
            ),
            ("not a url", TokenParam::MaxTokens),
        ] {
            assert_eq!(TokenParam::for_base_url(url), want, "{url}");
        }
        assert!("max_tokens".parse::<TokenParam>().is_ok());
        let err = "max_output_tokens".parse::<TokenParam>().unwrap_err();
        assert!(err.to_string().contains("max_completion_tokens"), "{err}");
    }

    #[test]
    fn the_agent_sandbox_defaults_to_workspace_write_with_the_network_on() {
        let s = sandbox_from(None).unwrap();
        assert_eq!(s.mode, SandboxMode::WorkspaceWrite);
        assert_eq!(s.network, Some(true));
        let s = sandbox_from(Some(SandboxFile {
            mode: Some("read-only".into()),
            network: Some(false),
            writable: Some(vec!["/x".into()]),
        }))
        .unwrap();
        assert_eq!(
            (s.mode, s.network, s.writable.len()),
            (SandboxMode::ReadOnly, Some(false), 0)
        );
        let e = sandbox_from(Some(SandboxFile {
            writable: Some(vec!["rel".into()]),
            ..Default::default()
        }))
        .unwrap_err();
        assert!(e.to_string().contains("not an absolute path"), "{e}");
        assert!(
            sandbox_from(Some(SandboxFile {
                mode: Some("off".into()),
                ..Default::default()
            }))
            .is_err()
        );
    }

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
