//! `sse-cluster [--events N=100000] [--size S=64] [--channels 1,100] [--runs R=3]`:
//! publish throughput through one Redis, and what Redis does per event.
//!
//! Starts its own `redis-server` (free port, no persistence) and two brokers of one
//! namespace: a publisher and a subscriber, like two nodes. The publisher queues N
//! events of S bytes, round-robin over C channels, as fast as its queue takes them;
//! the subscriber holds every channel. Events/s = N / (last arrival − first publish);
//! latency = arrival − publish time (carried in the data). Redis commands per event
//! come from `INFO commandstats` before and after.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sse_bench::{median, now_ns};
use sse_engine::cluster::{Broker, Limits, Message, Namespace, Target};
use sse_engine::{ErrorKind, Event};

const USAGE: &str =
    "usage: sse-cluster [--events N=100000] [--size S=64] [--channels 1,100] [--runs R=3]";

struct Opts {
    events: usize,
    size: usize,
    channels: Vec<usize>,
    runs: usize,
}

fn parse_args() -> Result<Opts, String> {
    let mut opts = Opts {
        events: 100_000,
        size: 64,
        channels: vec![1, 100],
        runs: 3,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let value = args.get(i + 1).ok_or(USAGE)?;
        let number = |v: &str| v.parse::<usize>().map_err(|e| format!("{}: {e}", args[i]));
        match args[i].as_str() {
            "--events" => opts.events = number(value)?,
            "--size" => opts.size = number(value)?,
            "--runs" => opts.runs = number(value)?,
            "--channels" => {
                opts.channels = value.split(',').map(number).collect::<Result<_, _>>()?
            }
            _ => return Err(USAGE.into()),
        }
        i += 2;
    }
    if opts.events == 0 || opts.runs == 0 || opts.channels.contains(&0) || opts.size < 20 {
        return Err(format!("{USAGE} (events, runs, channels >= 1; size >= 20)"));
    }
    Ok(opts)
}

struct Redis(Child, u16);

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_redis() -> Result<Redis, String> {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| format!("redis-server: {e}"))?;
    let redis = Redis(child, port);
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return Err("redis-server did not start".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(redis)
}

/// Total calls of every command, from `INFO commandstats`.
fn command_calls(port: u16) -> Result<u64, String> {
    let out = Command::new("redis-cli")
        .args(["-p", &port.to_string(), "INFO", "commandstats"])
        .output()
        .map_err(|e| format!("redis-cli: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text
        .lines()
        .filter_map(|l| {
            l.split("calls=")
                .nth(1)?
                .split(',')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum())
}

struct Run {
    per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    commands_per_event: f64,
}

fn one_run(redis: &Redis, prefix: &str, opts: &Opts, channels: usize) -> Result<Run, String> {
    let url = format!("redis://127.0.0.1:{}/", redis.1);
    let ns = Namespace::new(prefix).map_err(|e| e.to_string())?;
    let arrivals: Arc<Mutex<Vec<(u64, u64)>>> =
        Arc::new(Mutex::new(Vec::with_capacity(opts.events)));
    let sink = arrivals.clone();
    let timeout = Duration::from_secs(5);
    let subscriber = Broker::start(&url, ns.clone(), timeout, 16, move |r| {
        let sent: u64 = r.message.event.data[..19].parse().unwrap_or(0);
        sink.lock().unwrap().push((sent, now_ns()));
    })
    .map_err(|e| e.to_string())?;
    let names: Vec<String> = (0..channels).map(|i| format!("c{i}")).collect();
    for name in &names {
        subscriber.subscribe(name).map_err(|e| e.to_string())?;
    }
    let publisher = Broker::start(&url, ns, timeout, 10_000, |_| {}).map_err(|e| e.to_string())?;
    let limits = Limits {
        max_events: 1000,
        max_age: Duration::from_secs(300),
    };
    let calls_before = command_calls(redis.1)?;
    let started = now_ns();
    for i in 0..opts.events {
        let name = &names[i % channels];
        let mut data = now_ns().to_string();
        data.push(' ');
        data.extend(std::iter::repeat_n(
            'x',
            opts.size.saturating_sub(data.len()),
        ));
        let message = Message {
            target: Target::Channel {
                name: name.clone(),
                filter: None,
            },
            event: Event::new(data),
        };
        loop {
            match publisher.publish(&message, limits) {
                Ok(()) => break,
                // The queue is full: Redis is the bottleneck; let it have the CPU.
                Err(e) if e.kind() == ErrorKind::LimitReached => {
                    std::thread::sleep(Duration::from_micros(200))
                }
                Err(e) => return Err(e.to_string()),
            }
        }
    }
    publisher.flush().map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(60);
    while arrivals.lock().unwrap().len() < opts.events {
        if Instant::now() > deadline {
            return Err(format!(
                "only {} of {} events arrived",
                arrivals.lock().unwrap().len(),
                opts.events
            ));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let calls = command_calls(redis.1)? - calls_before;
    let arrivals = arrivals.lock().unwrap();
    let last = arrivals.iter().map(|a| a.1).max().unwrap_or(started);
    let mut latencies: Vec<f64> = arrivals
        .iter()
        .map(|(sent, at)| at.saturating_sub(*sent) as f64 / 1e6)
        .collect();
    latencies.sort_by(f64::total_cmp);
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    Ok(Run {
        per_second: opts.events as f64 / ((last - started) as f64 / 1e9),
        p50_ms: at(0.5),
        p99_ms: at(0.99),
        // The commands the run made, less the subscriber's SUBSCRIBEs and the two INFOs.
        commands_per_event: calls.saturating_sub(channels as u64 + 1) as f64 / opts.events as f64,
    })
}

fn main() {
    let opts = parse_args().unwrap_or_else(|e| {
        eprintln!("sse-cluster: {e}");
        std::process::exit(2);
    });
    let redis = start_redis().unwrap_or_else(|e| {
        eprintln!("sse-cluster: {e}");
        std::process::exit(1);
    });
    println!(
        "sse-cluster: {} events × {} B through one redis-server, publisher and subscriber brokers, {} run(s)",
        opts.events, opts.size, opts.runs
    );
    println!("channels  events/s (median, min – max)       p50        p99   Redis commands/event");
    for &channels in &opts.channels {
        let mut runs = Vec::new();
        for r in 0..opts.runs {
            match one_run(&redis, &format!("bench{channels}-{r}"), &opts, channels) {
                Ok(run) => runs.push(run),
                Err(e) => {
                    eprintln!("sse-cluster: {channels} channel(s), run {}: {e}", r + 1);
                    std::process::exit(1);
                }
            }
        }
        let rates: Vec<f64> = runs.iter().map(|r| r.per_second).collect();
        let min = rates.iter().copied().fold(f64::INFINITY, f64::min);
        let max = rates.iter().copied().fold(0.0, f64::max);
        let p50: Vec<f64> = runs.iter().map(|r| r.p50_ms).collect();
        let p99: Vec<f64> = runs.iter().map(|r| r.p99_ms).collect();
        let cmds: Vec<f64> = runs.iter().map(|r| r.commands_per_event).collect();
        println!(
            "{channels:>8}  {:>9.0} ({min:.0} – {max:.0})  {:>7.1} ms {:>7.1} ms   {:.2}",
            median(&rates),
            median(&p50),
            median(&p99),
            median(&cmds)
        );
    }
}
