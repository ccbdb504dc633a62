//! Model API errors a person can act on: the failure says what happened
//! and names the setting to check (the key's variable for 401/403, the
//! model and base URL for 404, the base URL when the server cannot be
//! reached). The retry loop has already added how many tries were made.

use super::ProviderError;
use crate::agent::config::{Config, ProviderKind};

/// `e` with a hint naming the setting to check, where one helps.
pub fn explain(e: ProviderError, config: &Config) -> ProviderError {
    let (key_var, url_var) = match config.provider {
        ProviderKind::Anthropic => ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL"),
        ProviderKind::OpenAi => ("OPENAI_API_KEY", "OPENAI_BASE_URL"),
    };
    match e {
        ProviderError::Api {
            status: status @ (401 | 403),
            message,
        } => ProviderError::Api {
            status,
            message: format!(
                "{message}; the API key was refused: check {key_var} (it is read from the \
                 environment only)"
            ),
        },
        ProviderError::Api {
            status: 404,
            message,
        } => ProviderError::Api {
            status: 404,
            message: format!(
                "{message}; unknown model {:?} or wrong URL {}: check AGENTCTL_MODEL (or \
                 `model` in the config file) and {url_var}",
                config.model, config.base_url
            ),
        },
        ProviderError::Transport(message)
            if ["connection refused", "cannot resolve", "TLS with"]
                .iter()
                .any(|p| message.starts_with(p)) =>
        {
            ProviderError::Transport(format!("{message}; check {url_var} ({})", config.base_url))
        }
        e => e,
    }
}
