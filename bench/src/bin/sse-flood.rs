//! `sse-flood [--clients N=50] [--seconds S=5] [--size B=64] [--threads T=1] [--json]`
//!
//! The flood case: one thread calls `broadcast` on one channel as fast as it can while N
//! clients read that channel over loopback. Meanwhile a quiet channel gets one event
//! every 20 ms (its client measures the latency), `clients()` is called every 100 ms
//! (its latency), and the process's resident memory is sampled. A reactor that applies
//! commands without writing, or an unbounded command queue, shows here as a quiet-channel
//! latency of seconds, flood readers that get nothing, and memory that keeps growing.
//! The engine runs in this process (the host is the publisher thread).

use std::io::{BufRead, BufReader, Read};
use std::net::{TcpListener, TcpStream};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sse_bench::{quantile, rss_bytes};
use sse_engine::{Config, ConnectOptions, Engine, Event};

const USAGE: &str =
    "usage: sse-flood [--clients N=50] [--seconds S=5] [--size B=64] [--threads T=1] [--json]";
const QUIET_EVERY: Duration = Duration::from_millis(20);
const QUERY_EVERY: Duration = Duration::from_millis(100);

struct Options {
    clients: usize,
    seconds: u64,
    size: usize,
    threads: usize,
    json: bool,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        clients: 50,
        seconds: 5,
        size: 64,
        threads: 1,
        json: false,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| -> Result<u64, String> {
            let v = it.next().ok_or(format!("{name} needs a value"))?;
            v.parse::<u64>()
                .ok()
                .filter(|n| *n > 0)
                .ok_or(format!("{name}: {v:?} is not a positive integer"))
        };
        match arg.as_str() {
            "--clients" => o.clients = value("--clients")? as usize,
            "--seconds" => o.seconds = value("--seconds")?,
            "--size" => o.size = value("--size")? as usize,
            "--threads" => o.threads = value("--threads")? as usize,
            "--json" => o.json = true,
            "--help" | "-h" => return Err(String::new()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if o.clients > 10_000 {
        return Err("--clients: at most 10000".into());
    }
    Ok(o)
}

fn socket_pair(listener: &TcpListener) -> (TcpStream, TcpStream) {
    let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (server, _) = listener.accept().unwrap();
    (client, server)
}

fn hand_over(engine: &Engine, listener: &TcpListener, channel: &str) -> TcpStream {
    let (client, server) = socket_pair(listener);
    let options = ConnectOptions {
        channels: vec![channel.into()],
        ..Default::default()
    };
    engine.connect_fd(server.into(), &options).unwrap();
    client
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn run(o: &Options) -> Result<(), String> {
    let engine = Arc::new(
        Engine::start(Config {
            threads: o.threads,
            heartbeat: None,
            // The readers keep up; what is measured is the reactor's turn, not slow drops.
            max_queue_bytes: 256 * 1024 * 1024,
            ..Config::default()
        })
        .map_err(|e| e.to_string())?,
    );
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let received = Arc::new(AtomicU64::new(0));
    let mut readers = Vec::new();
    for _ in 0..o.clients {
        let mut stream = hand_over(&engine, &listener, "flood");
        let received = received.clone();
        readers.push(std::thread::spawn(move || {
            let mut buf = vec![0u8; 256 * 1024];
            while let Ok(n) = stream.read(&mut buf) {
                if n == 0 {
                    break;
                }
                received.fetch_add(n as u64, Ordering::Relaxed);
            }
        }));
    }
    let base = Instant::now();
    let quiet_latencies = Arc::new(Mutex::new(Vec::<u64>::new()));
    let quiet_reader = {
        let stream = hand_over(&engine, &listener, "quiet");
        let latencies = quiet_latencies.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines() {
                let Ok(line) = line else { break };
                if let Some(sent) = line.strip_prefix("data: ") {
                    let sent = Duration::from_nanos(sent.parse().unwrap_or(0));
                    let latency = base.elapsed().saturating_sub(sent);
                    latencies.lock().unwrap().push(latency.as_nanos() as u64);
                }
            }
        })
    };

    let rss_before = rss_bytes(std::process::id()).unwrap_or(0);
    let flooding = Arc::new(AtomicBool::new(true));
    let published = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let publisher = {
        let (engine, flooding) = (engine.clone(), flooding.clone());
        let (published, refused) = (published.clone(), refused.clone());
        let event = Event::new("x".repeat(o.size));
        std::thread::spawn(move || {
            while flooding.load(Ordering::Relaxed) {
                match engine.broadcast("flood", &event) {
                    Ok(_) => published.fetch_add(1, Ordering::Relaxed),
                    Err(_) => refused.fetch_add(1, Ordering::Relaxed),
                };
            }
        })
    };

    let start = Instant::now();
    let end = start + Duration::from_secs(o.seconds);
    let mut queries = Vec::new();
    let mut rss_peak = rss_before;
    let mut next_query = start;
    let mut quiet_sent = 0u64;
    while Instant::now() < end {
        let sent = base.elapsed().as_nanos().to_string();
        engine
            .broadcast("quiet", &Event::new(sent))
            .map_err(|e| e.to_string())?;
        quiet_sent += 1;
        if Instant::now() >= next_query {
            let asked = Instant::now();
            engine.clients().map_err(|e| e.to_string())?;
            queries.push(asked.elapsed().as_nanos() as u64);
            next_query += QUERY_EVERY;
        }
        rss_peak = rss_peak.max(rss_bytes(std::process::id()).unwrap_or(0));
        std::thread::sleep(QUIET_EVERY);
    }
    let flood_time = start.elapsed();
    let received_during = received.load(Ordering::Relaxed);
    flooding.store(false, Ordering::Relaxed);
    publisher.join().map_err(|_| "the publisher panicked")?;
    let drained_at = Instant::now();
    let published = published.load(Ordering::Relaxed);
    let frame = Event::new("x".repeat(o.size))
        .with_id("0000000000000-0000000")
        .encode()
        .map_err(|e| e.to_string())?
        .len() as u64;
    // Wait until the readers have (about) everything, so late delivery is visible.
    let want = published * o.clients as u64 * (frame - 8);
    while received.load(Ordering::Relaxed) < want && drained_at.elapsed() < Duration::from_secs(60)
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    let drain_time = drained_at.elapsed();
    let engine = Arc::try_unwrap(engine).map_err(|_| "engine still shared")?;
    engine
        .shutdown(Duration::from_secs(2))
        .map_err(|e| e.to_string())?;
    for reader in readers {
        let _ = reader.join();
    }
    let _ = quiet_reader.join();

    let mut quiet = quiet_latencies.lock().unwrap().clone();
    quiet.sort();
    queries.sort();
    let q = |v: &[u64], p: f64| quantile(v, p) as f64 / 1e6;
    let secs = flood_time.as_secs_f64();
    let delivered_per_s = received_during as f64 / frame as f64 / secs;
    let grown_mib = (rss_peak.saturating_sub(rss_before)) as f64 / 1048576.0;
    if o.json {
        println!(
            "{{\"scenario\":\"flood\",\"clients\":{},\"seconds\":{secs:.3},\"size\":{},\"threads\":{},\
\"broadcasts_per_s\":{:.0},\"refused\":{},\"deliveries_per_s_during\":{delivered_per_s:.0},\
\"quiet_sent\":{quiet_sent},\"quiet_received\":{},\"quiet_p50_ms\":{:.3},\"quiet_p99_ms\":{:.3},\
\"quiet_max_ms\":{:.3},\"query_p50_ms\":{:.3},\"query_max_ms\":{:.3},\"rss_growth_mib\":{grown_mib:.1},\
\"drain_after_ms\":{:.1}}}",
            o.clients,
            o.size,
            o.threads,
            published as f64 / secs,
            refused.load(Ordering::Relaxed),
            quiet.len(),
            q(&quiet, 0.5),
            q(&quiet, 0.99),
            q(&quiet, 1.0),
            q(&queries, 0.5),
            q(&queries, 1.0),
            ms(drain_time),
        );
    } else {
        println!(
            "flood: {} clients, {} B events, {} reactor thread(s), {secs:.1} s",
            o.clients, o.size, o.threads
        );
        println!(
            "  broadcasts accepted      {:>12.0}/s  ({} refused)",
            published as f64 / secs,
            refused.load(Ordering::Relaxed)
        );
        println!("  deliveries during flood  {delivered_per_s:>12.0}/s");
        println!(
            "  quiet channel latency    p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms  ({} of {quiet_sent} arrived)",
            q(&quiet, 0.5),
            q(&quiet, 0.99),
            q(&quiet, 1.0),
            quiet.len()
        );
        println!(
            "  clients() latency        p50 {:.2} ms  max {:.2} ms",
            q(&queries, 0.5),
            q(&queries, 1.0)
        );
        println!("  RSS growth (peak)        {grown_mib:.1} MiB");
        println!(
            "  backlog delivered        {:.0} ms after the flood stopped",
            ms(drain_time)
        );
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = match parse(&args) {
        Ok(o) => o,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("sse-flood: {e}");
            }
            eprintln!("{USAGE}");
            return if e.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            };
        }
    };
    match run(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sse-flood: {e}");
            ExitCode::FAILURE
        }
    }
}
