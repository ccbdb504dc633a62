//! agentd: a per-user daemon that runs background jobs for agentctl and LLM
//! agents, keeps their output on disk and their ends in per-session
//! notification queues, and keeps all of it across restarts.
//!
//! The daemon is a library so tests can start it in-process; `main.rs` only
//! parses flags, sets up logging, applies the process-wide caps of
//! [`memory`] and calls [`run`].
//!
//! Modules: [`config`] (flags, env, config file), [`daemon`] (start and
//! stop), [`lock`] (state-dir lock), [`listener`] (socket), [`server`]
//! (accept loop), [`connection`] (framing and JSON-RPC), [`rpc`] (the method
//! table), [`state`] (in-memory table of live jobs, and queues), [`store`]
//! (SQLite; finished jobs are read from it), [`lookup`] (a job by id, from
//! the table or the database), [`memory`] (what keeps the daemon's memory
//! flat: the blocking pool's cap, malloc's arenas), [`executor`] (local or
//! Slurm: how a job runs), [`supervisor`] (processes: spawning shims,
//! watching them, adopting them after a restart), [`spawner`] (the helper
//! process that forks shims), [`shim`] (the per-job supervisor process that
//! keeps a job alive without agentd), [`sandbox`] (a job's Landlock, seccomp
//! and rlimits, applied by its shim), [`timefmt`] (timestamps).

pub mod config;
pub mod connection;
pub mod daemon;
pub mod executor;
pub mod listener;
pub mod lock;
pub mod lookup;
pub mod memory;
pub mod page;
pub mod retention;
pub mod rpc;
pub mod runqueue;
pub mod sandbox;
pub mod server;
pub mod shim;
pub mod spawner;
pub mod state;
pub mod store;
pub mod supervisor;
pub mod timefmt;

pub use config::{Args, Config};
pub use daemon::run;
