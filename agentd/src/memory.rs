//! What keeps agentd's resident memory flat while it runs for months: a cap
//! on the runtime's blocking threads and on glibc malloc's arenas. Both are
//! process-wide, so `main` applies them before the runtime starts.
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
/// Every blocking task agentd hands the pool is short: a file append or
/// delete, a log tail, one page of a database read, a retention batch.
/// Tasks beyond this many wait in the pool's queue. Without the cap, the
/// pipelined fill of 10,000 submits grew the pool to about 180 threads, and
/// a steady load then kept them all alive (each idle thread got work
/// before its 10-second keep-alive ran out) while their stacks and malloc
/// arenas grew. Sixteen is 8 per core on the 2-core machines this was
/// measured on, and lets a few slow reads or file operations run at once
/// without queueing the rest behind them.
pub const BLOCKING_THREADS: usize = 16;

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
/// `MALLOC_ARENA_MAX` is set (glibc has then applied it already). Call it
/// before other threads start; elsewhere than on glibc it does nothing.
pub fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets an allocator parameter; M_ARENA_MAX
        // takes any positive count.
        let ok = unsafe { libc::mallopt(libc::M_ARENA_MAX, MALLOC_ARENAS) };
        if ok != 1 {
            tracing::debug!("mallopt(M_ARENA_MAX) refused; malloc keeps its default arenas");
        }
    }
}
