//! The method table of protocol v1 (docs/protocol.md, "Methods"): params decoded
//! into their typed struct, handed to the handler of their method family
//! (`daemon`, `job`, `notifications`), the result encoded back.

mod daemon;
mod job;
mod notifications;
pub mod params;
mod queue;
mod remove;

use crate::daemon::Daemon;
use agentd_proto::methods::*;
use agentd_proto::{Method, RpcError, codes};
use serde_json::Value;
use serde_json::value::RawValue;
use std::future::Future;
use std::sync::Arc;

/// Runs one method. Unknown methods get -32601; params that do not decode
/// get -32602 naming the field; when not `accepting` (the request arrived
/// after shutdown began), everything but `daemon.info` gets -32005.
pub async fn dispatch(
    d: &Arc<Daemon>,
    method: &str,
    params: Option<Value>,
    accepting: bool,
) -> Result<Box<RawValue>, RpcError> {
    if !accepting && method != DaemonInfo::NAME {
        return Err(RpcError::new(
            codes::SHUTTING_DOWN,
            "agentd is shutting down and takes no new requests",
        ));
    }
    match method {
        DaemonInfo::NAME => call::<DaemonInfo, _>(params, |_| daemon::info(d)).await,
        DaemonShutdown::NAME => call::<DaemonShutdown, _>(params, |p| daemon::shutdown(d, p)).await,
        JobSubmit::NAME => call::<JobSubmit, _>(params, |p| job::submit(d, p)).await,
        JobGet::NAME => call::<JobGet, _>(params, |p| job::get(d, p)).await,
        JobList::NAME => call::<JobList, _>(params, |p| job::list(d, p)).await,
        JobOutput::NAME => call::<JobOutput, _>(params, |p| job::output(d, p)).await,
        JobKill::NAME => call::<JobKill, _>(params, |p| job::kill(d, p)).await,
        JobWait::NAME => call::<JobWait, _>(params, |p| job::wait(d, p)).await,
        JobRemove::NAME => call::<JobRemove, _>(params, |p| remove::remove(d, p)).await,
        JobPrune::NAME => call::<JobPrune, _>(params, |p| remove::prune(d, p)).await,
        JobPause::NAME => call::<JobPause, _>(params, |p| queue::pause(d, p)).await,
        JobResume::NAME => call::<JobResume, _>(params, |p| queue::resume(d, p)).await,
        JobGroupSet::NAME => call::<JobGroupSet, _>(params, |p| queue::group_set(d, p)).await,
        JobGroupList::NAME => call::<JobGroupList, _>(params, |p| queue::group_list(d, p)).await,
        NotificationsPeek::NAME => {
            call::<NotificationsPeek, _>(params, |p| notifications::peek(d, p)).await
        }
        NotificationsAck::NAME => {
            call::<NotificationsAck, _>(params, |p| notifications::ack(d, p)).await
        }
        NotificationsDrain::NAME => {
            call::<NotificationsDrain, _>(params, |p| notifications::drain(d, p)).await
        }
        NotificationsWait::NAME => {
            call::<NotificationsWait, _>(params, |p| notifications::wait(d, p)).await
        }
        other => Err(RpcError::method_not_found(other)),
    }
}

async fn call<M, Fut>(
    params: Option<Value>,
    handler: impl FnOnce(M::Params) -> Fut,
) -> Result<Box<RawValue>, RpcError>
where
    M: Method,
    Fut: Future<Output = Result<M::Result, RpcError>>,
{
    let params = params::decode::<M::Params>(params)?;
    let result = handler(params).await?;
    Ok(serde_json::value::to_raw_value(&result).expect("results always serialise"))
}
