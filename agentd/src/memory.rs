//! What keeps agentd's resident memory flat while it runs for months: a cap
//! on the runtime's blocking threads and on glibc malloc's arenas. Both are
//! process-wide, so `main` applies them before the runtime starts. Beside
//! them, the share of those threads a submit's path checks may take.
//!
//! Measured with `agentd-bench --only-steady` (10 `true` jobs a second
//! after a pipelined fill of 10,000 jobs, default retention; 2-core VM,
//! docs/benchmarks.md), RSS slope per job over the run:
//!
//! | build | threads | RSS slope |
//! | --- | --- | --- |
//! | tokio's defaults | 183 | +792 B/job (300 s) |
//! | [`BLOCKING_THREADS`] | 20 | +122 B/job (300 s) |
//! | and `MALLOC_ARENA_MAX=2` in the environment | 20 | +4.1 B/job (400 s) |
//! | and 2 malloc arenas ([`limit_malloc_arenas`]) | 20 | +3.9 B/job (600 s) |

/// Most threads of the runtime's blocking pool (tokio's default: 512).
///
/// The blocking tasks agentd hands the pool are short (a file append or
/// delete, a log tail, one page of a database read, a retention batch),
/// but for one kind: a submit's checks of the paths it names (`cwd`,
/// sandbox `writable`), which can hang on a dead network mount. Those take
/// at most [`USER_PATH_CHECKS`] threads at once, so agentd's own work
/// (recording ends, reading logs and the database) always has the rest.
/// Tasks beyond this many wait in the pool's queue. Without the cap, the
/// pipelined fill of 10,000 submits grew the pool to about 180 threads, and
/// a steady load then kept them all alive (each idle thread got work
/// before its 10-second keep-alive ran out) while their stacks and malloc
/// arenas grew. Sixteen is 8 per core on the 2-core machines this was
/// measured on, and lets a few slow reads or file operations run at once
/// without queueing the rest behind them.
pub const BLOCKING_THREADS: usize = 16;

/// Blocking threads that the path checks of submits may hold at once:
/// half of [`BLOCKING_THREADS`].
pub const USER_PATH_CHECKS: usize = BLOCKING_THREADS / 2;

/// How long a submit waits for a turn at [`USER_PATH_CHECKS`] before it is
/// refused (-32003), in seconds. Checks take a millisecond or so; waiting
/// this long means earlier ones hang.
pub const USER_PATH_WAIT_SECS: u64 = 30;

static USER_PATHS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(USER_PATH_CHECKS);

/// A turn at checking the paths a submit names; hold it for the blocking
/// task that checks them. `None` when none came free within
/// [`USER_PATH_WAIT_SECS`].
pub async fn user_path_turn() -> Option<tokio::sync::SemaphorePermit<'static>> {
    let wait = std::time::Duration::from_secs(USER_PATH_WAIT_SECS);
    tokio::time::timeout(wait, USER_PATHS.acquire())
        .await
        .ok()
        .and_then(Result::ok)
}

/// Most malloc arenas, when the environment does not say
/// (`MALLOC_ARENA_MAX`): 2, where glibc's default is 8 per core.
///
/// Each thread that allocates gets an arena of its own up to that limit,
/// and memory freed in one arena is not reused by another: with 16
/// arenas, RSS crept up by about 120 bytes per job under a steady load;
/// with 2 it stayed flat (table above). agentd's threads do little
/// allocation at once (requests are small, reads are paged), so two
/// arenas are not contended here.
pub const MALLOC_ARENAS: i32 = 2;

/// Caps glibc malloc's arenas at [`MALLOC_ARENAS`], unless
/// `MALLOC_ARENA_MAX` is set or `GLIBC_TUNABLES` names
/// `glibc.malloc.arena_max` (glibc has then applied it already). Call it
/// before other threads start; elsewhere than on glibc it does nothing.
pub fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none()
        && !std::env::var("GLIBC_TUNABLES").is_ok_and(|t| t.contains("glibc.malloc.arena_max"))
    {
        // SAFETY: mallopt only sets an allocator parameter; M_ARENA_MAX
        // takes any positive count.
        let ok = unsafe { libc::mallopt(libc::M_ARENA_MAX, MALLOC_ARENAS) };
        if ok != 1 {
            tracing::debug!("mallopt(M_ARENA_MAX) refused; malloc keeps its default arenas");
        }
    }
}
