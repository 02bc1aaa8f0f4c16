//! Cluster mode against a real `redis-server` (started here on a free port, stopped at
//! the end): opening it with clear errors, and the publish script (numbers, epoch, the
//! channel's stream and its bounds, what the nodes receive).
#![cfg(feature = "cluster")]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use redis::Commands;
use std::sync::atomic::Ordering;

use sse_engine::cluster::{
    open, publish, Broker, Limits, Message, Namespace, Published, Received, Target,
};
use sse_engine::ErrorKind;
use sse_engine::Event;

/// A `redis-server` of this test's own, without persistence.
struct RedisServer {
    child: Child,
    url: String,
}

impl RedisServer {
    fn start() -> RedisServer {
        RedisServer::start_with(&[])
    }

    /// With extra `redis-server` arguments (`PING` must still answer without a
    /// password: the caller's `--requirepass` is checked with `AUTH` below).
    fn start_with(extra: &[&str]) -> RedisServer {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .args(extra)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server (Debian package redis-server; .ci/setup installs it)");
        // Owned from here on: a failed start below still stops the process.
        let server = RedisServer {
            child,
            url: format!("redis://127.0.0.1:{port}/"),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let ping = server
                .client()
                .get_connection()
                .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c));
            // A server with a password answers NOAUTH: it is up.
            if ping.is_ok() || ping.as_ref().is_err_and(|e| e.code() == Some("NOAUTH")) {
                return server;
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not start: {ping:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `SIG<name>` to the server (`STOP`: it stops answering, connections stay).
    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success(), "kill -{name}");
    }

    fn client(&self) -> redis::Client {
        redis::Client::open(self.url.as_str()).unwrap()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const KEEP: Limits = Limits {
    max_events: 1000,
    max_age: Duration::from_secs(300),
};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A Redis of the test's own, a namespace, and connections to run the script with.
struct ScriptRun {
    server: RedisServer,
    ns: Namespace,
    rt: tokio::runtime::Runtime,
    con: redis::aio::MultiplexedConnection,
    plain: redis::Connection,
}

impl ScriptRun {
    fn new(prefix: &str) -> ScriptRun {
        let server = RedisServer::start();
        let rt = runtime();
        let client = server.client();
        let con = rt
            .block_on(client.get_multiplexed_async_connection())
            .unwrap();
        let plain = client.get_connection().unwrap();
        ScriptRun {
            server,
            ns: Namespace::new(prefix).unwrap(),
            rt,
            con,
            plain,
        }
    }

    fn publish(&mut self, channel: &str, payload: &[u8], limits: Limits, epoch: &str) -> Published {
        self.rt
            .block_on(publish(
                &mut self.con,
                &self.ns,
                channel,
                payload,
                limits,
                epoch,
            ))
            .unwrap()
    }

    /// `(id, payload)` of each entry of `channel`'s stream.
    fn stream(&mut self, channel: &str) -> Vec<(String, Vec<u8>)> {
        let reply: redis::streams::StreamRangeReply =
            self.plain.xrange_all(self.ns.stream_key(channel)).unwrap();
        reply
            .ids
            .into_iter()
            .map(|entry| {
                let payload: Vec<u8> = entry.get("p").unwrap();
                (entry.id, payload)
            })
            .collect()
    }

    /// A connection for a subscriber (its `PubSub` unsubscribes when dropped, so the
    /// test subscribes and reads through one).
    fn subscriber(&self) -> redis::Connection {
        let con = self.server.client().get_connection().unwrap();
        con.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        con
    }
}

#[test]
fn publishes_are_numbered_kept_and_sent_atomically() {
    let mut run = ScriptRun::new("t1");
    let mut sub = run.subscriber();
    let mut sub = sub.as_pubsub();
    sub.subscribe(run.ns.topic("a")).unwrap();
    // Binary-safe payloads, with the separator and line breaks in them.
    let payloads: [&[u8]; 3] = [b"one", b"two:with:colons\n", &[0, 255, 10]];
    let mut got = Vec::new();
    for (i, payload) in payloads.iter().enumerate() {
        let channel = if i == 1 { "b" } else { "a" };
        got.push(run.publish(channel, payload, KEEP, "E1"));
    }
    let seqs: Vec<u64> = got.iter().map(|p| p.seq).collect();
    assert_eq!(seqs, [1, 2, 3], "one sequence for the whole namespace");
    assert!(got.iter().all(|p| p.epoch == "E1"));
    // A later candidate epoch does not replace the one Redis has.
    let next = run.publish("a", b"four", KEEP, "E2");
    let expected = Published {
        seq: 4,
        epoch: "E1".into(),
    };
    assert_eq!(next, expected);

    assert_eq!(
        run.stream("a"),
        [
            ("1-0".to_string(), b"one".to_vec()),
            ("3-0".to_string(), vec![0, 255, 10]),
            ("4-0".to_string(), b"four".to_vec()),
        ]
    );
    assert_eq!(
        run.stream("b"),
        [("2-0".to_string(), b"two:with:colons\n".to_vec())]
    );
    // The nodes listening on `a` got its events in order, each with number and epoch.
    let mut messages = Vec::new();
    for _ in 0..3 {
        let msg = sub.get_message().unwrap();
        assert_eq!(msg.get_channel_name(), run.ns.topic("a"));
        messages.push(msg.get_payload_bytes().to_vec());
    }
    assert_eq!(
        messages,
        [
            b"1:E1:one".to_vec(),
            [b"3:E1:".as_slice(), &[0, 255, 10]].concat(),
            b"4:E1:four".to_vec(),
        ]
    );
}

#[test]
fn streams_stay_within_their_count_and_age() {
    let mut run = ScriptRun::new("t2");
    let two = Limits {
        max_events: 2,
        max_age: Duration::from_secs(300),
    };
    for payload in [b"1", b"2", b"3"] {
        run.publish("c", payload, two, "E");
    }
    let ids: Vec<String> = run.stream("c").into_iter().map(|(id, _)| id).collect();
    assert_eq!(ids, ["2-0", "3-0"]);

    // No history: numbered and sent, not kept.
    let none = Limits {
        max_events: 0,
        max_age: Duration::from_secs(300),
    };
    assert_eq!(run.publish("quiet", b"x", none, "E").seq, 4);
    let exists: bool = run.plain.exists(run.ns.stream_key("quiet")).unwrap();
    assert!(!exists);

    // Past the age: entries go at the next publish, and the key expires by itself.
    let short = Limits {
        max_events: 100,
        max_age: Duration::from_millis(300),
    };
    for payload in [b"old1", b"old2"] {
        run.publish("d", payload, short, "E");
    }
    std::thread::sleep(Duration::from_millis(400));
    run.publish("d", b"new", short, "E");
    let left: Vec<Vec<u8>> = run.stream("d").into_iter().map(|(_, p)| p).collect();
    assert_eq!(left, [b"new".to_vec()]);
    let ttl: i64 = run.plain.pttl(run.ns.stream_key("d")).unwrap();
    assert!(ttl > 0 && ttl <= 300, "pttl {ttl}");
}

#[test]
fn a_redis_that_lost_its_data_begins_a_new_epoch() {
    let mut run = ScriptRun::new("t3");
    for payload in [b"a", b"b", b"c"] {
        run.publish("e", payload, KEEP, "OLD");
    }
    // Everything lost (a restart without persistence): a new epoch, numbers from 1.
    redis::cmd("FLUSHALL").exec(&mut run.plain).unwrap();
    let p = run.publish("e", b"d", KEEP, "NEW");
    assert_eq!((p.seq, p.epoch.as_str()), (1, "NEW"));

    // Only the namespace's hash lost (evicted), the stream kept with higher numbers:
    // those entries belong to the old epoch and are dropped, the new one is kept.
    for payload in [b"e", b"f"] {
        run.publish("e", payload, KEEP, "NEW");
    }
    let _: () = run.plain.del(run.ns.meta_key()).unwrap();
    let p = run.publish("e", b"g", KEEP, "NEWER");
    assert_eq!((p.seq, p.epoch.as_str()), (1, "NEWER"));
    assert_eq!(run.stream("e"), [("1-0".to_string(), b"g".to_vec())]);
}

#[test]
fn numbers_up_to_2_pow_53_are_exact_in_the_stream_and_the_message() {
    let mut run = ScriptRun::new("t4");
    let last = (1u64 << 53) - 2;
    let fields = [("e", "E".to_string()), ("s", last.to_string())];
    let _: () = run.plain.hset_multiple(run.ns.meta_key(), &fields).unwrap();
    let mut sub = run.subscriber();
    let mut sub = sub.as_pubsub();
    sub.subscribe(run.ns.topic("big")).unwrap();
    assert_eq!(run.publish("big", b"x", KEEP, "E").seq, (1 << 53) - 1);
    assert_eq!(
        run.stream("big"),
        [("9007199254740991-0".to_string(), b"x".to_vec())]
    );
    let msg = sub.get_message().unwrap();
    assert_eq!(msg.get_payload_bytes(), b"9007199254740991:E:x");
}

#[test]
fn a_namespace_prefix_must_be_printable_without_spaces() {
    for bad in ["", "a b", "tab\t", "é"] {
        let err = Namespace::new(bad).unwrap_err();
        assert!(err.message().contains("cluster prefix"), "{err}");
    }
    let ns = Namespace::new("app:prod").unwrap();
    assert_eq!(ns.meta_key(), "app:prod:meta");
    assert_eq!(ns.stream_key("news"), "app:prod:stream:news");
    assert_eq!(ns.topic("news"), "app:prod:ch:news");
}

#[test]
fn bad_settings_fail_at_open_with_clear_errors() {
    let server = RedisServer::start_with(&["--requirepass", "s3cret"]);
    let port = server.url.rsplit(':').next().unwrap().trim_end_matches('/');
    let rt = runtime();
    let timeout = Duration::from_secs(2);
    let open_err = |url: &str| rt.block_on(open(url, timeout)).map(|_| ()).unwrap_err();

    assert!(rt
        .block_on(open(&format!("redis://:s3cret@127.0.0.1:{port}/"), timeout))
        .is_ok());
    let err = open_err(&format!("redis://:wrong@127.0.0.1:{port}/"));
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(
        err.message().contains("refused the user or password"),
        "{err}"
    );
    assert!(
        !err.message().contains("wrong"),
        "the password is shown: {err}"
    );
    let err = open_err(&format!("redis://127.0.0.1:{port}/"));
    assert!(
        err.message().contains("refused the user or password"),
        "{err}"
    );

    // Nothing listens there: an I/O error, well within the timeout.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = Instant::now();
    let err = open_err(&format!("redis://:s3cret@127.0.0.1:{closed}/"));
    assert_eq!(err.kind(), ErrorKind::Io);
    assert!(err.message().contains("cannot reach Redis"), "{err}");
    assert!(err.message().contains(":***@"), "{err}");
    assert!(started.elapsed() < timeout + Duration::from_secs(1));

    let err = open_err("http://127.0.0.1/");
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
    assert!(err.message().contains("is not valid"), "{err}");
}

/// What a broker's `deliver` got, shared with the test.
type Inbox = std::sync::Arc<std::sync::Mutex<Vec<Received>>>;

fn broker(server: &RedisServer, prefix: &str, queue: usize) -> (Broker, Inbox) {
    let inbox: Inbox = Default::default();
    let sink = inbox.clone();
    let broker = Broker::start(
        &server.url,
        Namespace::new(prefix).unwrap(),
        Duration::from_secs(2),
        queue,
        move |received| sink.lock().unwrap().push(received),
    )
    .unwrap();
    (broker, inbox)
}

fn wait_for_count(inbox: &Inbox, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while inbox.lock().unwrap().len() < n {
        assert!(
            Instant::now() < deadline,
            "got {} of {n}",
            inbox.lock().unwrap().len()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn to_channel(name: &str, data: &str) -> Message {
    Message {
        target: Target::Channel {
            name: name.into(),
            filter: None,
        },
        event: Event::new(data),
    }
}

#[test]
fn brokers_on_one_redis_get_every_event_of_their_channels_once_in_order() {
    let server = RedisServer::start();
    let (a, inbox_a) = broker(&server, "b1", 1000);
    let (b, inbox_b) = broker(&server, "b1", 1000);
    // Another namespace on the same Redis sees nothing of this one.
    let (other_ns, got_other) = broker(&server, "b2", 10);
    a.subscribe("news").unwrap();
    // From inside a tokio runtime too (a Rust host on tokio): no blocking send there.
    runtime().block_on(async { b.subscribe("news") }).unwrap();
    other_ns.subscribe("news").unwrap();
    for i in 0..200 {
        let publisher = if i % 2 == 0 { &a } else { &b };
        publisher
            .publish(&to_channel("news", &format!("e{i}")), KEEP)
            .unwrap();
    }
    a.publish(&to_channel("elsewhere", "x"), KEEP).unwrap();
    a.flush().unwrap();
    b.flush().unwrap();
    wait_for_count(&inbox_a, 200);
    wait_for_count(&inbox_b, 200);
    let got_a = inbox_a.lock().unwrap().clone();
    let got_b = inbox_b.lock().unwrap().clone();
    // Both nodes: the same events in the same order, numbered without holes, one epoch.
    assert_eq!(got_a, got_b);
    let seqs: Vec<u64> = got_a.iter().map(|r| r.seq).collect();
    let mut sorted = seqs.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(seqs, sorted, "in order, each once");
    assert!(got_a.iter().all(|r| r.epoch == got_a[0].epoch));
    let mut data: Vec<String> = got_a.iter().map(|r| r.message.event.data.clone()).collect();
    data.sort();
    let mut expected: Vec<String> = (0..200).map(|i| format!("e{i}")).collect();
    expected.sort();
    assert_eq!(data, expected);
    // Each node's own publishes keep their order.
    let from_a: Vec<&str> = got_a
        .iter()
        .map(|r| r.message.event.data.as_str())
        .filter(|d| d[1..].parse::<u32>().unwrap() % 2 == 0)
        .collect();
    let in_order: Vec<String> = (0..200).step_by(2).map(|i| format!("e{i}")).collect();
    assert_eq!(from_a, in_order);
    assert_eq!(a.stats().published.load(Ordering::Relaxed), 101);
    assert!(got_other.lock().unwrap().is_empty());

    // A foreign message on the topic is counted, not handed on; after unsubscribe
    // nothing more arrives.
    let mut plain = server.client().get_connection().unwrap();
    let _: () = plain
        .publish(Namespace::new("b1").unwrap().topic("news"), "7:E:not ours")
        .unwrap();
    b.unsubscribe("news").unwrap();
    a.publish(&to_channel("news", "last"), KEEP).unwrap();
    a.flush().unwrap();
    wait_for_count(&inbox_a, 201);
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        inbox_a.lock().unwrap().len(),
        201,
        "the foreign message was handed on"
    );
    assert_eq!(inbox_a.lock().unwrap()[200].message.event.data, "last");
    assert_eq!(
        inbox_b.lock().unwrap().len(),
        200,
        "b got an event after unsubscribe"
    );
    assert_eq!(a.stats().foreign.load(Ordering::Relaxed), 1);
    assert_eq!(b.stats().foreign.load(Ordering::Relaxed), 1);

    // Bad input is a clear error, not a publish or a subscription.
    for bad in [String::new(), "x".repeat(2000)] {
        assert_eq!(
            a.subscribe(&bad).unwrap_err().kind(),
            ErrorKind::InvalidArgument
        );
        assert_eq!(
            a.unsubscribe(&bad).unwrap_err().kind(),
            ErrorKind::InvalidArgument
        );
    }
    let to_all = Message {
        target: Target::All,
        event: Event::new("x"),
    };
    let err = a.publish(&to_all, KEEP).unwrap_err();
    assert!(err.message().contains("only channel targets"), "{err}");
}

#[test]
fn a_broker_whose_redis_stops_answering_fills_its_queue_and_says_so() {
    let server = RedisServer::start();
    let (a, inbox) = broker(&server, "b3", 4);
    a.subscribe("c").unwrap();
    server.signal("STOP");
    let mut refused = None;
    for i in 0..50 {
        if let Err(e) = a.publish(&to_channel("c", &format!("{i}")), KEEP) {
            refused = Some((i, e));
            break;
        }
    }
    server.signal("CONT");
    let (accepted, err) = refused.expect("the queue never filled");
    assert_eq!(err.kind(), ErrorKind::LimitReached);
    assert!(err.message().contains("queue"), "{err}");
    // Everything accepted goes out once Redis answers again, in order.
    a.flush().unwrap();
    wait_for_count(&inbox, accepted);
    let data: Vec<String> = inbox
        .lock()
        .unwrap()
        .iter()
        .map(|r| r.message.event.data.clone())
        .collect();
    let expected: Vec<String> = (0..accepted).map(|i| i.to_string()).collect();
    assert_eq!(data, expected);
}

#[test]
fn a_broker_with_bad_settings_does_not_start() {
    let server = RedisServer::start_with(&["--requirepass", "s3cret"]);
    let start = |queue| {
        Broker::start(
            &server.url,
            Namespace::new("b4").unwrap(),
            Duration::from_secs(2),
            queue,
            |_| {},
        )
    };
    let err = start(10).map(|_| ()).unwrap_err();
    assert!(
        err.message().contains("refused the user or password"),
        "{err}"
    );
    let err = start(0).map(|_| ()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::OutOfRange);
}
