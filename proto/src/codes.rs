//! JSON-RPC error codes: the five the JSON-RPC 2.0 specification defines and
//! the application codes of docs/protocol.md ("Errors").

/// Invalid JSON was received (JSON-RPC 2.0 §5.1).
pub const PARSE_ERROR: i64 = -32700;
/// The JSON sent is not a valid request object, or a line exceeded
/// [`crate::codec::MAX_LINE_BYTES`].
pub const INVALID_REQUEST: i64 = -32600;
/// The method does not exist.
pub const METHOD_NOT_FOUND: i64 = -32601;
/// Invalid method parameters; the message names the field.
pub const INVALID_PARAMS: i64 = -32602;
/// An internal error of the daemon (storage failure, ...).
pub const INTERNAL_ERROR: i64 = -32603;
/// No job has the given id or prefix.
pub const JOB_NOT_FOUND: i64 = -32001;
/// The id prefix matches more than one job.
pub const AMBIGUOUS_ID: i64 = -32002;
/// A limit was exceeded: job count, output request size, connections.
pub const LIMIT_EXCEEDED: i64 = -32003;
/// The job cannot be spawned (bad cwd, ...).
pub const CANNOT_SPAWN: i64 = -32004;
/// The daemon is shutting down and takes no new work.
pub const SHUTTING_DOWN: i64 = -32005;
/// The job is running or queued and the operation (`job.remove`) needs a
/// finished job; `error.data` has its `id` and `state`.
pub const JOB_NOT_FINISHED: i64 = -32006;
