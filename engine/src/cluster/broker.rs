//! The broker thread: one thread of its own with a tokio runtime and two Redis
//! connections (scripts; pub/sub). Callers hand it publishes through a bounded queue
//! and never wait for Redis; what arrives on the subscribed topics is decoded and
//! handed to the `deliver` function, in the order Redis sends it.
//!
//! Not built yet (issue 12): reconnecting with backoff, filling holes from the streams
//! after a resubscribe, liveness probes, and holding publishes while Redis is away.
//! Until then a publish Redis refuses is counted in [`BrokerStats::failed`], never
//! dropped silently.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc as std_mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

use futures_util::future::join_all;
use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::{load_script, open, publish, Limits, Message, Namespace, Target};

/// Publishes sent to Redis at once, pipelined on one connection (Redis runs them in
/// the order they were sent, so they keep the queue's order).
const IN_FLIGHT: usize = 256;
use crate::error::{Error, ErrorKind, Result};
use crate::event::validate_channel;

/// An event another node (or this one) published, as it came from Redis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub seq: u64,
    pub epoch: String,
    pub message: Message,
}

/// What the broker did so far.
#[derive(Debug, Default)]
pub struct BrokerStats {
    /// Publishes Redis numbered and sent.
    pub published: AtomicU64,
    /// Publishes Redis refused (or that were lost with the connection).
    pub failed: AtomicU64,
    /// Events received and handed on.
    pub received: AtomicU64,
    /// Messages on our topics that were not this engine's (skipped).
    pub foreign: AtomicU64,
}

/// What goes through the bounded queue, in order.
enum Request {
    Publish {
        channel: String,
        payload: Vec<u8>,
        limits: Limits,
    },
    /// Answered once every publish queued before it is done.
    Flush(std_mpsc::Sender<()>),
}

/// Subscriptions: unbounded (one per channel a node's clients join or leave), and sent
/// without blocking, so any thread may ask, one inside a tokio runtime too.
enum Control {
    Subscribe(String, std_mpsc::Sender<Result<()>>),
    Unsubscribe(String, std_mpsc::Sender<Result<()>>),
}

/// The thread's ends of the two queues.
struct Inboxes {
    inbox: mpsc::Receiver<Request>,
    control: mpsc::UnboundedReceiver<Control>,
}

/// The handle of a running broker thread; dropping it stops the thread.
pub struct Broker {
    namespace: Namespace,
    requests: Option<mpsc::Sender<Request>>,
    control: Option<mpsc::UnboundedSender<Control>>,
    thread: Option<JoinHandle<()>>,
    stats: Arc<BrokerStats>,
}

impl Broker {
    /// Connects to `url` (failing within `timeout` with a clear error) and starts the
    /// thread. `queue`: publishes that may wait for Redis before [`Broker::publish`]
    /// fails with `LimitReached` (besides the at most `IN_FLIGHT` (256) being sent).
    pub fn start(
        url: &str,
        namespace: Namespace,
        timeout: Duration,
        queue: usize,
        deliver: impl Fn(Received) + Send + 'static,
    ) -> Result<Broker> {
        if queue == 0 {
            return Err(Error::new(
                ErrorKind::OutOfRange,
                "cluster queue must be at least 1",
            ));
        }
        let (requests, inbox) = mpsc::channel(queue);
        let (control, control_inbox) = mpsc::unbounded_channel();
        let (started_tx, started_rx) = std_mpsc::channel();
        let stats = Arc::new(BrokerStats::default());
        let thread_stats = stats.clone();
        let url = url.to_string();
        let thread_namespace = namespace.clone();
        let thread = std::thread::Builder::new()
            .name("sse-cluster".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = started_tx.send(Err(Error::new(
                            ErrorKind::Io,
                            format!("cluster: no runtime: {e}"),
                        )));
                        return;
                    }
                };
                runtime.block_on(run(
                    url,
                    thread_namespace,
                    timeout,
                    Inboxes {
                        inbox,
                        control: control_inbox,
                    },
                    started_tx,
                    thread_stats,
                    deliver,
                ));
            })
            .map_err(|e| Error::new(ErrorKind::Io, format!("cluster: no thread: {e}")))?;
        let started = started_rx.recv().unwrap_or_else(|_| {
            Err(Error::new(
                ErrorKind::Io,
                "cluster: the broker thread ended at start",
            ))
        });
        if let Err(e) = started {
            let _ = thread.join();
            return Err(e);
        }
        Ok(Broker {
            namespace,
            requests: Some(requests),
            control: Some(control),
            thread: Some(thread),
            stats,
        })
    }

    pub fn stats(&self) -> &BrokerStats {
        &self.stats
    }

    /// Queues `message` for its channel's stream and topic. `LimitReached` when the
    /// queue is full (Redis is slower than the callers), `ShutDown` when the broker
    /// stopped, `InvalidArgument` for a target other than a channel (users, clients and
    /// every client go through the node channels, not built yet: docs/cluster.md).
    pub fn publish(&self, message: &Message, limits: Limits) -> Result<()> {
        let Target::Channel { name: channel, .. } = &message.target else {
            return Err(Error::invalid(
                "cluster: only channel targets are published through Redis so far",
            ));
        };
        let payload = message.encode()?;
        let request = Request::Publish {
            channel: channel.clone(),
            payload,
            limits,
        };
        self.queue()?.try_send(request).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => Error::new(
                ErrorKind::LimitReached,
                "cluster: the queue of publishes waiting for Redis is full",
            ),
            mpsc::error::TrySendError::Closed(_) => stopped(),
        })
    }

    /// Listens on `channel`'s topic; returns once Redis confirmed it.
    pub fn subscribe(&self, channel: &str) -> Result<()> {
        validate_channel(channel)?;
        let (tx, rx) = std_mpsc::channel();
        self.control(Control::Subscribe(self.namespace.topic(channel), tx))?;
        rx.recv().unwrap_or_else(|_| Err(stopped()))
    }

    /// Stops listening on `channel`'s topic; returns once Redis confirmed it.
    pub fn unsubscribe(&self, channel: &str) -> Result<()> {
        validate_channel(channel)?;
        let (tx, rx) = std_mpsc::channel();
        self.control(Control::Unsubscribe(self.namespace.topic(channel), tx))?;
        rx.recv().unwrap_or_else(|_| Err(stopped()))
    }

    /// Returns once every publish queued before it went to Redis (or failed).
    pub fn flush(&self) -> Result<()> {
        let (tx, rx) = std_mpsc::channel();
        let mut request = Request::Flush(tx);
        // Behind the publishes: wait for a free place (the thread frees them).
        loop {
            match self.queue()?.try_send(request) {
                Ok(()) => break,
                Err(mpsc::error::TrySendError::Full(back)) => {
                    request = back;
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(mpsc::error::TrySendError::Closed(_)) => return Err(stopped()),
            }
        }
        rx.recv().map_err(|_| stopped())
    }

    fn queue(&self) -> Result<&mpsc::Sender<Request>> {
        self.requests.as_ref().ok_or_else(stopped)
    }

    fn control(&self, control: Control) -> Result<()> {
        let sender = self.control.as_ref().ok_or_else(stopped)?;
        sender.send(control).map_err(|_| stopped())
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        // Closing the queue ends the thread once it has done what was queued.
        self.requests = None;
        self.control = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn stopped() -> Error {
    Error::new(ErrorKind::ShutDown, "cluster: the broker has stopped")
}

/// A new epoch, should this node be the one to begin it: 16 hex digits, random.
fn epoch_candidate() -> String {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    hasher.write_u32(std::process::id());
    format!("{:016x}", hasher.finish())
}

/// `"<seq>:<epoch>:<payload>"` as the script publishes it.
fn parse_published(bytes: &[u8]) -> Option<(u64, String, Message)> {
    let mut parts = bytes.splitn(3, |b| *b == b':');
    let seq = std::str::from_utf8(parts.next()?).ok()?.parse().ok()?;
    let epoch = std::str::from_utf8(parts.next()?).ok()?.to_string();
    let message = Message::decode(parts.next()?).ok()?;
    Some((seq, epoch, message))
}

async fn run(
    url: String,
    namespace: Namespace,
    timeout: Duration,
    inboxes: Inboxes,
    started: std_mpsc::Sender<Result<()>>,
    stats: Arc<BrokerStats>,
    deliver: impl Fn(Received),
) {
    let connections = async {
        let mut scripts = open(&url, timeout).await?;
        load_script(&mut scripts).await.map_err(|e| {
            Error::new(
                ErrorKind::Io,
                format!("cluster: loading the publish script: {e}"),
            )
        })?;
        let client = redis::Client::open(url.as_str())
            .map_err(|e| Error::invalid(format!("cluster url: {e}")))?;
        let pubsub = tokio::time::timeout(timeout, client.get_async_pubsub())
            .await
            .map_err(|_| Error::new(ErrorKind::Io, "cluster: pub/sub connection timed out"))?
            .map_err(|e| Error::new(ErrorKind::Io, format!("cluster: pub/sub connection: {e}")))?;
        Ok::<_, Error>((scripts, pubsub))
    };
    let (scripts, pubsub) = match connections.await {
        Ok(c) => c,
        Err(e) => {
            let _ = started.send(Err(e));
            return;
        }
    };
    let _ = started.send(Ok(()));
    let Inboxes {
        mut inbox,
        mut control,
    } = inboxes;
    let (mut sink, mut messages) = pubsub.split();
    let epoch = epoch_candidate();
    loop {
        // One queue keeps a node's publishes in order, and a flush after them; the
        // three sources take turns (no `biased`), so arrivals are not starved by a
        // steady stream of publishes.
        tokio::select! {
            request = inbox.recv() => {
                let Some(first) = request else { return };
                let mut batch = vec![first];
                while batch.len() < IN_FLIGHT {
                    match inbox.try_recv() {
                        Ok(request) => batch.push(request),
                        Err(_) => break,
                    }
                }
                let calls = batch.iter().filter_map(|request| match request {
                    Request::Publish { channel, payload, limits } => {
                        let mut con = scripts.clone();
                        let (namespace, epoch) = (&namespace, &epoch);
                        Some(async move {
                            publish(&mut con, namespace, channel, payload, *limits, epoch).await
                        })
                    }
                    Request::Flush(_) => None,
                });
                for done in join_all(calls).await {
                    let counter = if done.is_ok() { &stats.published } else { &stats.failed };
                    counter.fetch_add(1, Ordering::Relaxed);
                }
                // A flush answers once the publishes queued before it are done.
                for request in batch {
                    if let Request::Flush(reply) = request {
                        let _ = reply.send(());
                    }
                }
            }
            control = control.recv() => {
                let Some(control) = control else { return };
                match control {
                    Control::Subscribe(topic, reply) => {
                        let done = sink.subscribe(&topic).await.map_err(|e| {
                            Error::new(ErrorKind::Io, format!("cluster: subscribe {topic}: {e}"))
                        });
                        let _ = reply.send(done);
                    }
                    Control::Unsubscribe(topic, reply) => {
                        let done = sink.unsubscribe(&topic).await.map_err(|e| {
                            Error::new(ErrorKind::Io, format!("cluster: unsubscribe {topic}: {e}"))
                        });
                        let _ = reply.send(done);
                    }
                }
            }
            message = messages.next() => {
                let Some(message) = message else { return };
                match parse_published(message.get_payload_bytes()) {
                    Some((seq, epoch, message)) => {
                        stats.received.fetch_add(1, Ordering::Relaxed);
                        deliver(Received { seq, epoch, message });
                    }
                    None => {
                        stats.foreign.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
    }
}
