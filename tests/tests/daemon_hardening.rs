//! Hostile input, load and faults: agentd keeps working and loses nothing.
//! Limits tested here are documented in docs/limits.md.

use agentd_proto::methods::*;
use agentd_proto::{Client, JobState, codes};
use agentd_tests::{TestEnv, rpc, run};
use serde_json::{Value, json};
use std::collections::HashSet;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap()
}

async fn reply_to(stream: &mut UnixStream, line: &[u8]) -> Value {
    stream.write_all(line).await.unwrap();
    stream.write_all(b"\n").await.unwrap();
    let mut reader = BufReader::new(stream);
    let mut reply = String::new();
    reader.read_line(&mut reply).await.unwrap();
    serde_json::from_str(&reply).unwrap()
}

#[tokio::test]
async fn deep_nesting_and_bad_bytes_are_parse_errors_not_crashes() {
    let env = TestEnv::new();
    let daemon = env.start_daemon();
    let mut s = UnixStream::connect(&env.socket).await.unwrap();
    let deep = format!("{}{}", "[".repeat(1_000_000), "]".repeat(1_000_000));
    let r = reply_to(&mut s, deep.as_bytes()).await;
    assert_eq!(r["error"]["code"], -32700, "{r}");
    // Bytes that are not UTF-8 but not JSON either: a parse error.
    let r = reply_to(&mut s, b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\xff").await;
    assert_eq!(r["error"]["code"], -32700, "{r}");
    assert_eq!(r["id"], Value::Null, "{r}");
    let r = reply_to(
        &mut s,
        br#"{"jsonrpc":"2.0","id":1,"method":"job.submit","params":{"command":"echo \ud800"}}"#,
    )
    .await;
    assert_eq!(r["error"]["code"], -32700, "{r}");
    let r = reply_to(
        &mut s,
        br#"{"jsonrpc":"2.0","id":2,"method":"daemon.info"}"#,
    )
    .await;
    assert_eq!(r["result"]["pid"], daemon.pid());
}

#[tokio::test]
async fn invalid_utf8_in_a_request_is_invalid_params_naming_the_field() {
    let env = TestEnv::new();
    let daemon = env.start_daemon();
    let mut s = UnixStream::connect(&env.socket).await.unwrap();
    let r = reply_to(&mut s, b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"job.submit\",\"params\":{\"command\":\"echo \xff\xfe\"}}").await;
    assert_eq!(r["id"], 1, "{r}");
    assert_eq!(r["error"]["code"], codes::INVALID_PARAMS, "{r}");
    assert_eq!(r["error"]["data"]["field"], "command", "{r}");
    let msg = r["error"]["message"].as_str().unwrap();
    assert!(msg.contains("params.command is not valid UTF-8"), "{msg}");
    let r = reply_to(&mut s, b"{\"jsonrpc\":\"2.0\",\"id\":\"e\",\"method\":\"job.submit\",\"params\":{\"command\":\"true\",\"env\":{\"A\":\"\xc3\"}}}").await;
    assert_eq!(r["id"], "e", "{r}");
    assert_eq!(r["error"]["data"]["field"], "env", "{r}");
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("params.env.A"),
        "{r}"
    );
    // Nothing was submitted, and the connection still serves.
    let c = daemon.client().await;
    let jobs = c
        .call::<JobList>(&ListParams::default())
        .await
        .unwrap()
        .jobs;
    assert!(jobs.is_empty(), "{jobs:?}");
    let r = reply_to(
        &mut s,
        br#"{"jsonrpc":"2.0","id":2,"method":"daemon.info"}"#,
    )
    .await;
    assert_eq!(r["result"]["pid"], daemon.pid());
}

#[tokio::test]
async fn mistyped_or_out_of_range_params_name_the_field_not_the_value() {
    let env = TestEnv::new();
    let daemon = env.start_daemon();
    let c = daemon.client().await;
    let cases = [
        (
            "job.submit",
            json!({"command": "true", "tail_bytes": -1}),
            "tail_bytes",
        ),
        (
            "job.submit",
            json!({"command": "true", "timeout_secs": "5"}),
            "timeout_secs",
        ),
        (
            "job.submit",
            json!({"command": "true", "env": {"A": 5}}),
            "env",
        ),
        ("job.output", json!({"id": "abcd", "offset": -1}), "offset"),
        (
            "job.output",
            json!({"id": "abcd", "wait_ms": -1}),
            "wait_ms",
        ),
        ("job.list", json!({"limit": -1}), "limit"),
        ("job.list", json!({"states": ["bogus"]}), "states"),
        ("notifications.peek", json!({"max": -1}), "max"),
        ("notifications.ack", json!({"up_to_seq": -1}), "up_to_seq"),
        (
            "notifications.wait",
            json!({"timeout_ms": -1}),
            "timeout_ms",
        ),
        ("daemon.shutdown", json!({"jobs": "maybe"}), "jobs"),
    ];
    for (method, params, field) in cases {
        let err = c.call_raw(method, params.clone()).await.unwrap_err();
        assert_eq!(
            err.code(),
            Some(codes::INVALID_PARAMS),
            "{method} {params}: {err}"
        );
        let agentd_proto::ClientError::Rpc(rpc) = &err else {
            panic!("{method} {params}: {err}");
        };
        assert_eq!(
            rpc.data,
            Some(json!({ "field": field })),
            "{method} {params}: {err}"
        );
        assert!(rpc.message.contains(field), "{method} {params}: {err}");
    }
    // The daemon is still there (daemon.shutdown was refused).
    assert_eq!(
        c.call::<DaemonInfo>(&Empty {}).await.unwrap().pid,
        daemon.pid()
    );
}

#[tokio::test]
async fn sixty_four_mib_without_a_newline_does_not_grow_the_daemon() {
    let env = TestEnv::new();
    let daemon = env.start_daemon();
    let before = rss_kib(daemon.pid());
    let mut s = UnixStream::connect(&env.socket).await.unwrap();
    let chunk = vec![b'x'; 1024 * 1024];
    let mut sent = 0;
    for _ in 0..64 {
        if s.write_all(&chunk).await.is_err() {
            break; // the daemon closed the connection at the limit
        }
        sent += 1;
    }
    let mut reply = Vec::new();
    let _ = s.read_to_end(&mut reply).await;
    let reply: Value =
        serde_json::from_slice(reply.split(|&b| b == b'\n').next().unwrap()).unwrap();
    assert_eq!(reply["error"]["code"], -32600);
    assert!(sent >= 8, "the daemon read at least the 8 MiB limit");
    let after = rss_kib(daemon.pid());
    assert!(
        after < before + 24 * 1024,
        "RSS grew from {before} KiB to {after} KiB: more than the 8 MiB line buffer"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_pipelines_without_reading_does_not_grow_the_daemon() {
    let env = TestEnv::new();
    let daemon = env.start_daemon();
    let c = daemon.client().await;
    // Forty jobs make every job.list reply about 16 KB.
    for i in 0..40 {
        let job = c
            .call::<JobSubmit>(&SubmitParams {
                command: format!("true {}", "x".repeat(200)),
                label: Some(format!("job {i}")),
                ..Default::default()
            })
            .await
            .unwrap();
        c.call::<JobWait>(&WaitParams {
            id: job.id,
            timeout_secs: None,
        })
        .await
        .unwrap();
    }
    let before = rss_kib(daemon.pid());
    const REQUESTS: usize = 6_000; // about 100 MB of replies
    let (r, mut w) = UnixStream::connect(&env.socket).await.unwrap().into_split();
    let mut writer = tokio::spawn(async move {
        for id in 0..REQUESTS {
            let line = format!(
                "{{\"jsonrpc\":\"2.0\",\"id\":{id},\"method\":\"job.list\",\"params\":{{\"limit\":1000}}}}\n"
            );
            w.write_all(line.as_bytes()).await.unwrap();
        }
        w
    });
    // While nothing is read, the daemon stops reading too: the writer
    // cannot get its 450 KB of requests through. (Without backpressure the
    // daemon reads them all at once and queues every reply.)
    if tokio::time::timeout(std::time::Duration::from_secs(3), &mut writer)
        .await
        .is_ok()
    {
        panic!("the daemon read all {REQUESTS} requests although no reply was read");
    }
    let during = rss_kib(daemon.pid());
    eprintln!("RSS {before} KiB before, {during} KiB while not reading");
    assert!(
        during < before + 48 * 1024,
        "RSS grew from {before} KiB to {during} KiB while the client did not read"
    );
    // Now the client reads: every request gets its reply.
    let mut reader = BufReader::new(r);
    let mut seen = vec![false; REQUESTS];
    let mut line = String::new();
    for _ in 0..REQUESTS {
        line.clear();
        reader.read_line(&mut line).await.unwrap();
        let id_at = line.find("\"id\":").expect("a reply with an id") + 5;
        let id: usize = line[id_at..]
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(line.contains("\"jobs\":["), "{line}");
        assert!(!seen[id], "reply {id} twice");
        seen[id] = true;
    }
    assert!(seen.iter().all(|&s| s));
    writer.await.unwrap();
    let after = rss_kib(daemon.pid());
    assert!(
        after < before + 48 * 1024,
        "RSS grew from {before} KiB to {after} KiB"
    );
}

#[tokio::test]
async fn a_batch_over_the_limit_is_refused_whole_and_one_at_the_limit_runs() {
    let env = TestEnv::new();
    let daemon = env.start_daemon();
    let mut s = UnixStream::connect(&env.socket).await.unwrap();
    let batch = |n: usize| {
        let items: Vec<Value> = (0..n)
            .map(|i| json!({"jsonrpc":"2.0","id":i,"method":"job.submit","params":{"command":"true"}}))
            .collect();
        serde_json::to_vec(&items).unwrap()
    };
    let r = reply_to(&mut s, &batch(1025)).await;
    assert_eq!(r["id"], Value::Null, "{r}");
    assert_eq!(r["error"]["code"], codes::INVALID_REQUEST, "{r}");
    let c = daemon.client().await;
    assert!(
        c.call::<JobList>(&ListParams::default())
            .await
            .unwrap()
            .jobs
            .is_empty()
    );
    let r = reply_to(&mut s, &batch(1024)).await;
    let replies = r.as_array().expect("one array of replies");
    assert_eq!(replies.len(), 1024);
    assert!(replies.iter().all(|r| r["result"]["id"].is_string()), "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_waiters_on_one_job_all_see_its_output_when_it_comes() {
    let env = TestEnv::new();
    let daemon = env.start_daemon();
    let fifo = env.workdir().join("go");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let c = daemon.client().await;
    // The job prints only when the test writes to the fifo, then keeps
    // running, so a waiter can only return early by seeing the output.
    let job = c
        .call::<JobSubmit>(&SubmitParams {
            command: format!("head -n1 {} && exec sleep 600", fifo.display()),
            ..Default::default()
        })
        .await
        .unwrap();
    const WAITERS: usize = 200; // more than fs.inotify.max_user_instances (128)
    let mut waiters = Vec::new();
    let mut clients = Vec::new();
    for _ in 0..WAITERS {
        let c = std::sync::Arc::new(daemon.client().await);
        let id = job.id.clone();
        clients.push(c.clone());
        waiters.push(tokio::spawn(async move {
            c.call::<JobOutput>(&OutputParams {
                id,
                offset: Some(0),
                limit: None,
                tail: None,
                wait_ms: Some(600_000),
            })
            .await
            .unwrap()
        }));
    }
    // A round trip on every connection: each has read its job.output.
    for c in &clients {
        c.call::<DaemonInfo>(&Empty {}).await.unwrap();
    }
    let write = tokio::task::spawn_blocking(move || std::fs::write(fifo, "hello\n"));
    write.await.unwrap().unwrap();
    // Each waiter must come back with the data, long before its 600 s
    // deadline; one that missed the write would hang until then.
    let all = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        let mut outs = Vec::new();
        for w in waiters {
            outs.push(w.await.unwrap());
        }
        outs
    })
    .await
    .expect("every waiter is woken by the output, not by its deadline");
    for out in all {
        assert_eq!(out.data, "hello\n");
        assert!(!out.complete);
    }
}

#[tokio::test]
async fn a_torn_request_is_closed_after_the_timeout_while_idle_connections_stay() {
    let env = TestEnv::new();
    let config = env.root().join("config/agentd.toml");
    std::fs::write(&config, "torn_request_timeout_secs = 0.5\n").unwrap();
    let daemon = env.start_daemon_with(|c| {
        c.env("AGENTD_CONFIG", &config);
    });
    let idle = daemon.client().await;
    let mut torn = UnixStream::connect(&env.socket).await.unwrap();
    torn.write_all(br#"{"jsonrpc":"2.0","id":1,"meth"#)
        .await
        .unwrap();
    let mut rest = Vec::new();
    let n = torn.read_to_end(&mut rest).await.unwrap();
    assert_eq!(n, 0, "closed without a reply");
    // A connection that sent nothing partial is still served afterwards.
    let info = idle.call::<DaemonInfo>(&Empty {}).await.unwrap();
    assert_eq!(info.pid, daemon.pid());
}

#[tokio::test]
async fn connections_beyond_the_limit_are_refused_cleanly() {
    let env = TestEnv::new();
    let daemon = env.start_daemon();
    let mut held = Vec::new();
    for _ in 0..1024 {
        let mut s = UnixStream::connect(&env.socket).await.unwrap();
        // A round trip proves the daemon accepted and serves this one.
        let r = reply_to(
            &mut s,
            br#"{"jsonrpc":"2.0","id":1,"method":"daemon.info"}"#,
        )
        .await;
        assert!(r["result"].is_object());
        held.push(s);
    }
    let mut extra = UnixStream::connect(&env.socket).await.unwrap();
    let mut reply = String::new();
    BufReader::new(&mut extra)
        .read_line(&mut reply)
        .await
        .unwrap();
    let r: Value = serde_json::from_str(&reply).unwrap();
    assert_eq!(r["error"]["code"], codes::LIMIT_EXCEEDED, "{r}");
    // agentctl and the proto client say why, not that agentd went away.
    let (code, out, err) = run(env.agentctl().arg("jobs"));
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (
            1,
            "",
            "agentctl: too many connections (at most 1024); try again later\n"
        )
    );
    let (code, _, err) = run(env.agentctl().args(["jobs", "--json"]));
    assert_eq!(code, 1);
    let e: Value = serde_json::from_str(&err).unwrap_or_else(|e| panic!("{e}: {err}"));
    assert_eq!(e["error"]["code"], codes::LIMIT_EXCEEDED, "{e}");
    let refused = Client::connect(&env.socket)
        .await
        .unwrap()
        .call::<DaemonInfo>(&Empty {})
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Some(codes::LIMIT_EXCEEDED), "{refused}");
    // Once a connection has closed, its slot is free: the daemon releases
    // it before closing the socket, so seeing the close is enough.
    let mut one = held.pop().unwrap();
    one.shutdown().await.unwrap();
    let mut rest = Vec::new();
    one.read_to_end(&mut rest).await.unwrap();
    let c = daemon.client().await;
    let info = c.call::<DaemonInfo>(&Empty {}).await.unwrap();
    assert_eq!(info.pid, daemon.pid());
}

#[tokio::test]
async fn oversized_env_and_command_are_refused_naming_the_field() {
    let env = TestEnv::new();
    let daemon = env.start_daemon();
    let c = daemon.client().await;
    let big = "x".repeat(200 * 1024);
    let err = c
        .call_raw("job.submit", json!({"command": big}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(codes::INVALID_PARAMS));
    assert!(err.to_string().contains("command"), "{err}");
    let err = c
        .call_raw(
            "job.submit",
            json!({"command": "true", "env": {"BIG": big}}),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(codes::INVALID_PARAMS));
    assert!(err.to_string().contains("env"), "{err}");
    let err = c
        .call_raw(
            "job.submit",
            json!({"command": "true", "label": "l".repeat(4097)}),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(codes::INVALID_PARAMS));
    assert!(err.to_string().contains("label"), "{err}");
    let many: serde_json::Map<String, Value> = (0..20)
        .map(|i| (format!("V{i}"), json!("y".repeat(100 * 1024))))
        .collect();
    let err = c
        .call_raw("job.submit", json!({"command": "true", "env": many}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(codes::INVALID_PARAMS));
    let err = c
        .call_raw(
            "job.submit",
            json!({"command": "true", "env": {"A=B": "x"}}),
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(codes::INVALID_PARAMS));
}

#[tokio::test]
async fn kill_9_during_a_burst_of_pipelined_submits_loses_no_acknowledged_job() {
    let env = TestEnv::new();
    let daemon = env.start_daemon();
    let (r, mut w) = UnixStream::connect(&env.socket).await.unwrap().into_split();
    let lines: Vec<u8> = (0..3000)
        .flat_map(|i| {
            let mut l = serde_json::to_vec(&json!({"jsonrpc":"2.0","id":i,"method":"job.submit","params":{"command":"true","session":"burst"}})).unwrap();
            l.push(b'\n');
            l
        })
        .collect();
    let writer = tokio::spawn(async move {
        let _ = w.write_all(&lines).await;
        w
    });
    let mut reader = BufReader::new(r);
    let mut acked = HashSet::new();
    let mut line = String::new();
    while acked.len() < 300 {
        line.clear();
        reader.read_line(&mut line).await.unwrap();
        let v: Value = serde_json::from_str(&line).unwrap();
        acked.insert(v["result"]["id"].as_str().unwrap().to_string());
    }
    let pid = daemon.pid();
    daemon.kill9();
    // Replies already on their way count as acknowledged too.
    loop {
        line.clear();
        match reader.read_line(&mut line).await {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                if let Ok(v) = serde_json::from_str::<Value>(&line)
                    && let Some(id) = v["result"]["id"].as_str()
                {
                    acked.insert(id.to_string());
                }
            }
        }
    }
    let _ = writer.await;
    assert!(!agentd_tests::is_alive(pid));
    let daemon = env.start_daemon();
    let c = daemon.client().await;
    let known: HashSet<String> = c
        .call::<JobList>(&ListParams::default())
        .await
        .unwrap()
        .jobs
        .into_iter()
        .map(|j| j.id)
        .collect();
    let missing: Vec<_> = acked.difference(&known).collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged jobs lost: {missing:?}",
        missing.len()
    );
}

#[test]
fn a_corrupt_or_newer_database_is_refused_not_replaced() {
    let env = TestEnv::new();
    std::fs::create_dir_all(&env.state_dir).unwrap();
    let db = env.state_dir.join("agentd.db");
    std::fs::write(&db, vec![0x5a; 64 * 1024]).unwrap();
    let (code, _, stderr) = run(&mut env.command(agentd_tests::bin("agentd")));
    assert_ne!(code, 0);
    assert!(stderr.contains("agentd.db"), "{stderr}");
    assert_eq!(
        std::fs::read(&db).unwrap(),
        vec![0x5a; 64 * 1024],
        "the file is untouched"
    );

    std::fs::remove_file(&db).unwrap();
    drop(env.start_daemon());
    let status = std::process::Command::new("python3")
        .args(["-c", "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('PRAGMA user_version=99'); c.commit()"])
        .arg(&db)
        .status()
        .unwrap();
    assert!(status.success());
    let (code, _, stderr) = run(&mut env.command(agentd_tests::bin("agentd")));
    assert_ne!(code, 0);
    assert!(stderr.contains("schema version 99"), "{stderr}");
}

#[tokio::test]
async fn a_full_state_dir_fails_submits_clearly_keeps_reads_and_recovers() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: needs root to mount a small tmpfs");
        return;
    }
    let env = TestEnv::new();
    std::fs::create_dir_all(&env.state_dir).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"])
        .arg(&env.state_dir)
        .status()
        .unwrap();
    assert!(mounted.success());
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&self.0)
                .status();
        }
    }
    let _unmount = Unmount(env.state_dir.clone());
    let daemon = env.start_daemon();
    let c: Client = daemon.client().await;
    let first = c
        .call::<JobSubmit>(&SubmitParams {
            command: "echo before".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    c.call::<JobWait>(&WaitParams {
        id: first.id.clone(),
        timeout_secs: None,
    })
    .await
    .unwrap();
    // Fill the file system.
    let filler = env.state_dir.join("filler");
    let _ = std::fs::write(&filler, vec![0u8; 8 * 1024 * 1024]);
    let err = c
        .call::<JobSubmit>(&SubmitParams {
            command: "echo during".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(codes::INTERNAL_ERROR), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("No space left") || msg.contains("disk is full"),
        "{msg}"
    );
    // Reads keep working.
    assert_eq!(rpc::get(&c, &first.id).await.state, JobState::Succeeded);
    assert_eq!(rpc::output(&c, &first.id).await, "before\n");
    // Space returns: submits work again.
    std::fs::remove_file(&filler).unwrap();
    let again = c
        .call::<JobSubmit>(&SubmitParams {
            command: "echo after".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let again = c
        .call::<JobWait>(&WaitParams {
            id: again.id,
            timeout_secs: None,
        })
        .await
        .unwrap();
    assert_eq!(again.state, JobState::Succeeded);
    drop(c);
    drop(daemon);
}

/// Runs `mount ARGS`; false when it fails (no mount, no permission).
fn mount(args: &[&std::ffi::OsStr]) -> bool {
    std::process::Command::new("mount")
        .args(args)
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[tokio::test]
async fn a_read_only_state_dir_fails_submits_clearly_keeps_reads_and_recovers() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: needs root to bind-mount the state dir read-only");
        return;
    }
    let env = TestEnv::new();
    let daemon = env.start_daemon();
    let c: Client = daemon.client().await;
    let first = c
        .call::<JobSubmit>(&SubmitParams {
            command: "echo before".into(),
            session: Some("ro".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    c.call::<JobWait>(&WaitParams {
        id: first.id.clone(),
        timeout_secs: None,
    })
    .await
    .unwrap();
    // The state dir turns read-only under the running daemon: a read-only
    // bind mount over itself. (A plain `remount,ro` is refused with EBUSY
    // while the daemon holds its database open for writing; the bind mount
    // leaves already open files writable, and refuses every new file.)
    let dir = env.state_dir.as_os_str();
    if !mount(&["--bind".as_ref(), dir, dir]) {
        eprintln!("skipped: mount --bind is unavailable here");
        return;
    }
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&self.0)
                .status();
        }
    }
    let _unmount = Unmount(env.state_dir.clone());
    assert!(mount(&["-o".as_ref(), "remount,bind,ro".as_ref(), dir]));
    assert!(
        std::fs::write(env.state_dir.join("probe"), "x").is_err(),
        "read-only now"
    );

    let err = c
        .call::<JobSubmit>(&SubmitParams {
            command: "echo during".into(),
            session: Some("ro".into()),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(codes::INTERNAL_ERROR), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("Read-only file system"), "{msg}");
    assert!(msg.contains(&env.state_dir.display().to_string()), "{msg}");
    // Reads keep working, and the refused submit left no job.
    let jobs = c
        .call::<JobList>(&ListParams::default())
        .await
        .unwrap()
        .jobs;
    assert_eq!(jobs.len(), 1, "{jobs:?}");
    assert_eq!(rpc::get(&c, &first.id).await.state, JobState::Succeeded);
    assert_eq!(rpc::output(&c, &first.id).await, "before\n");
    let notes = c
        .call::<NotificationsPeek>(&PeekParams {
            session: Some("ro".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .notifications;
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].job_id, first.id);

    // Writable again: submits work again, with no restart.
    assert!(mount(&["-o".as_ref(), "remount,bind,rw".as_ref(), dir]));
    let again = c
        .call::<JobSubmit>(&SubmitParams {
            command: "echo after".into(),
            session: Some("ro".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let again = c
        .call::<JobWait>(&WaitParams {
            id: again.id,
            timeout_secs: None,
        })
        .await
        .unwrap();
    assert_eq!(again.state, JobState::Succeeded);
    drop(c);
    drop(daemon);
}

#[test]
fn starting_on_a_read_only_state_dir_is_refused_with_a_message() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: needs root to bind-mount the state dir read-only");
        return;
    }
    let env = TestEnv::new();
    drop(env.start_daemon()); // a state dir with a database in it
    let dir = env.state_dir.as_os_str();
    if !mount(&["--bind".as_ref(), dir, dir]) {
        eprintln!("skipped: mount --bind is unavailable here");
        return;
    }
    let unmount = || {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(dir)
            .status();
    };
    assert!(mount(&["-o".as_ref(), "remount,bind,ro".as_ref(), dir]));
    let (code, _, stderr) = run(&mut env.command(agentd_tests::bin("agentd")));
    unmount();
    assert_ne!(code, 0, "{stderr}");
    assert!(stderr.contains("Read-only file system"), "{stderr}");
    assert!(
        stderr.contains(&env.state_dir.display().to_string()),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_clients_with_fifty_mixed_requests_each_see_no_error() {
    let env = TestEnv::new();
    let daemon = env.start_daemon();
    let mut tasks = Vec::new();
    for k in 0..100 {
        let c = daemon.client().await;
        tasks.push(tokio::spawn(async move {
            let session = format!("load-{k}");
            let mut submitted = Vec::new();
            for i in 0..50 {
                match i % 5 {
                    0 | 1 => {
                        let job = c
                            .call::<JobSubmit>(&SubmitParams {
                                command: format!("echo {k}-{i}"),
                                session: Some(session.clone()),
                                ..Default::default()
                            })
                            .await
                            .unwrap();
                        submitted.push(job.id);
                    }
                    2 => {
                        c.call::<JobList>(&ListParams {
                            session: Some(session.clone()),
                            ..Default::default()
                        })
                        .await
                        .unwrap();
                    }
                    3 => {
                        c.call::<NotificationsPeek>(&PeekParams {
                            session: Some(session.clone()),
                            ..Default::default()
                        })
                        .await
                        .unwrap();
                    }
                    _ => {
                        let id = submitted.last().unwrap().clone();
                        c.call::<JobGet>(&IdParams { id }).await.unwrap();
                    }
                }
            }
            for id in &submitted {
                c.call::<JobWait>(&WaitParams {
                    id: id.clone(),
                    timeout_secs: None,
                })
                .await
                .unwrap();
            }
            let notes = c
                .call::<NotificationsDrain>(&DrainParams {
                    session: Some(session),
                    max: None,
                })
                .await
                .unwrap()
                .notifications;
            let mut ids: Vec<_> = notes.iter().map(|n| n.job_id.clone()).collect();
            ids.sort();
            submitted.sort();
            assert_eq!(ids, submitted, "exactly one notification per submitted job");
            submitted.len()
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    assert_eq!(total, 2000);
    let info = daemon
        .client()
        .await
        .call::<DaemonInfo>(&Empty {})
        .await
        .unwrap();
    assert_eq!(info.jobs.total, 2000);
}
