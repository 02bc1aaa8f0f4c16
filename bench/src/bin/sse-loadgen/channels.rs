//! `sse-loadgen channels [options]`: many one-member channels against one big channel.
//!
//! Every client joins channel `bench` and a channel of its own (`user-<i>`, as per-user
//! notification channels are). Per measurement the host publishes R rounds, in one of
//! these modes, and the load generator reads every client until each has its R events:
//!
//! - `one`: one `broadcast` to `bench` per round (one event, N deliveries);
//! - `each`: one `broadcast` to each client's own channel per round (N calls);
//! - `batch`: one `broadcast_many` of those N (channel, event) pairs per round.
//!
//! Deliveries/s = N × R / (last delivery − first send). The modes alternate within each
//! run, so they are compared under the same conditions.

use std::time::Duration;

use sse_bench::{median, raise_nofile_limit, user_channel_request, MIN_EVENT_SIZE};

use super::{
    blame_host, counter, deliver, http_get, json_string, ms, start_and_connect, thousands,
    ClientSetup, Connected, HostOptions, Kind, Samples, Trigger, BETWEEN_RUNS, FD_RESERVE,
    READ_BUFFER,
};

const USAGE: &str = "usage: sse-loadgen channels [--clients N=5000] [--rounds R=50] [--size S=64] \
[--runs K=5] [--modes one,each,batch] [--hosts engine] [--host-cmd NAME=COMMAND]... [--threads T=1] \
[--timeout SECS=60] [--json]";

/// How a round is published (the host's `/channels?mode=`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    One,
    Each,
    Batch,
}

impl Mode {
    const ALL: [Mode; 3] = [Mode::One, Mode::Each, Mode::Batch];

    fn name(self) -> &'static str {
        match self {
            Mode::One => "one",
            Mode::Each => "each",
            Mode::Batch => "batch",
        }
    }

    fn about(self, clients: usize) -> String {
        match self {
            Mode::One => format!("one broadcast to `bench` ({clients} members) per round"),
            Mode::Each => {
                format!("one broadcast to each client's own channel per round ({clients} calls)")
            }
            Mode::Batch => format!(
                "one broadcast_many of {clients} (channel, event) pairs per round (one call)"
            ),
        }
    }
}

struct Opts {
    clients: usize,
    rounds: usize,
    size: usize,
    runs: usize,
    modes: Vec<Mode>,
    hosts: Vec<Kind>,
    threads: usize,
    timeout: Duration,
    json: bool,
}

fn parse_args(args: &[String]) -> Result<Opts, String> {
    let mut opts = Opts {
        clients: 5000,
        rounds: 50,
        size: 64,
        runs: 5,
        modes: Mode::ALL.to_vec(),
        hosts: vec![Kind::Engine],
        threads: 1,
        timeout: Duration::from_secs(60),
        json: false,
    };
    let mut hosts = HostOptions::default();
    let mut hosts_given = false;
    let mut args = args.iter().cloned();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        let number = |name: &str, v: String| {
            v.replace('_', "")
                .parse::<usize>()
                .map_err(|e| format!("bad {name} {v:?}: {e}"))
        };
        match arg.as_str() {
            "--clients" => opts.clients = number(&arg, value(&arg)?)?,
            "--rounds" => opts.rounds = number(&arg, value(&arg)?)?,
            "--size" => opts.size = number(&arg, value(&arg)?)?,
            "--runs" => opts.runs = number(&arg, value(&arg)?)?,
            "--threads" => opts.threads = number(&arg, value(&arg)?)?,
            "--timeout" => opts.timeout = Duration::from_secs(number(&arg, value(&arg)?)? as u64),
            "--modes" => {
                opts.modes = value(&arg)?
                    .split(',')
                    .filter(|m| !m.is_empty())
                    .map(|m| {
                        Mode::ALL
                            .into_iter()
                            .find(|mode| mode.name() == m)
                            .ok_or(format!("unknown mode {m:?} (one, each, batch)"))
                    })
                    .collect::<Result<_, _>>()?
            }
            "--hosts" | "--host-cmd" => {
                hosts_given |= arg == "--hosts";
                hosts.take(&arg, value(&arg)?)?
            }
            "--json" => opts.json = true,
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    if hosts_given || !hosts.external.is_empty() {
        // Without --hosts: the engine host, then the --host-cmd hosts.
        if !hosts_given {
            hosts.names = Some(
                std::iter::once("engine".to_string())
                    .chain(hosts.external.iter().map(|h| h.name.clone()))
                    .collect(),
            );
        }
        opts.hosts = hosts.kinds()?;
    }
    if opts.clients == 0 || opts.rounds == 0 || opts.runs == 0 || opts.modes.is_empty() {
        return Err("--clients, --rounds, --runs and --modes must be non-zero".into());
    }
    if opts
        .hosts
        .iter()
        .any(|k| matches!(k, Kind::Naive | Kind::Floor))
    {
        return Err("the channels scenario needs the engine (engine or a --host-cmd host)".into());
    }
    if opts.size < MIN_EVENT_SIZE {
        return Err(format!(
            "--size must be at least {MIN_EVENT_SIZE} (the timestamp and a space)"
        ));
    }
    if opts.clients * opts.rounds > 10_000_000 {
        return Err("--clients × --rounds must stay under 10,000,000".into());
    }
    Ok(opts)
}

/// One measurement: one mode, R rounds.
struct Measure {
    mode: Mode,
    rate: f64,
    seconds: f64,
    /// The host's own time spent publishing (its answer's `seconds`).
    publish_seconds: f64,
    /// Events the host published (its answer's `published`).
    published: u64,
    /// Frames per `sendmsg` (engine counters), when the host reports them.
    frames_per_call: Option<f64>,
    p50_ns: u64,
    p99_ns: u64,
}

struct HostReport {
    kind: Kind,
    measures: Vec<Measure>,
}

impl HostReport {
    fn of(&self, mode: Mode) -> impl Iterator<Item = &Measure> {
        self.measures.iter().filter(move |m| m.mode == mode)
    }

    fn median_rate(&self, mode: Mode) -> f64 {
        median(&self.of(mode).map(|m| m.rate).collect::<Vec<_>>())
    }

    fn median_of(&self, mode: Mode, f: impl Fn(&Measure) -> Option<f64>) -> Option<f64> {
        let values: Vec<f64> = self.of(mode).filter_map(f).collect();
        (!values.is_empty()).then(|| median(&values))
    }
}

pub fn run(args: &[String]) -> Result<(), String> {
    let opts = parse_args(args)?;
    let (soft, _) = raise_nofile_limit().map_err(|e| format!("RLIMIT_NOFILE: {e}"))?;
    if opts.clients as u64 + FD_RESERVE > soft {
        return Err(format!(
            "{} clients need {} file descriptors; RLIMIT_NOFILE allows {soft}",
            opts.clients,
            opts.clients as u64 + FD_RESERVE
        ));
    }
    println!(
        "sse-loadgen channels: {} clients, each in channel `bench` and in a one-member channel \
         of its own; {} rounds × {} B per measurement, {} run(s), hosts: {}",
        opts.clients,
        opts.rounds,
        opts.size,
        opts.runs,
        opts.hosts
            .iter()
            .map(|k| k.name())
            .collect::<Vec<_>>()
            .join(",")
    );
    for mode in &opts.modes {
        println!("  {:<6} {}", mode.name(), mode.about(opts.clients));
    }
    let mut reports = Vec::new();
    for &kind in &opts.hosts {
        reports.push(bench_host(kind, &opts)?);
    }
    print_summary(&opts, &reports);
    if opts.json {
        println!("{}", json(&opts, &reports));
    }
    Ok(())
}

fn trigger(mode: Mode, rounds: usize, opts: &Opts) -> Trigger {
    Trigger {
        path: format!(
            "/channels?mode={}&clients={}&rounds={rounds}&size={}",
            mode.name(),
            opts.clients,
            opts.size
        ),
        per_client: rounds,
        timeout: opts.timeout,
    }
}

/// `name value` from the host's answer.
fn answer_value(answer: &str, name: &str) -> Option<f64> {
    answer.lines().find_map(|line| {
        let (key, value) = line.split_once(' ')?;
        (key == name).then(|| value.trim().parse().ok()).flatten()
    })
}

fn stats(port: u16) -> String {
    http_get(port, "/stats")
        .map(|body| body.trim().replace('\n', ", "))
        .unwrap_or_default()
}

fn bench_host(kind: Kind, opts: &Opts) -> Result<HostReport, String> {
    let tag = kind.name();
    let setup = ClientSetup {
        request: &user_channel_request,
        ..ClientSetup::PLAIN
    };
    let Connected {
        mut host,
        mut poll,
        mut events,
        mut clients,
        ..
    } = start_and_connect(kind, opts.threads, opts.clients, &setup)?;
    let mut buf = vec![0u8; READ_BUFFER];
    let mut samples = Samples {
        latencies: Vec::with_capacity(opts.clients * opts.rounds),
        arrivals: Vec::with_capacity(opts.clients * opts.rounds),
        ..Samples::default()
    };
    // A warm-up of each mode (two rounds, not measured): the host's channels, history
    // rings and code paths exist before the first measurement.
    for &mode in &opts.modes {
        deliver(
            &mut poll,
            &mut events,
            &mut clients,
            &mut host,
            &trigger(mode, 2, opts),
            &mut buf,
            &mut samples,
        )
        .map_err(|e| blame_host(&mut host, format!("warm-up {}: {e}", mode.name())))?;
    }
    let mut measures = Vec::new();
    for run in 0..opts.runs {
        for &mode in &opts.modes {
            std::thread::sleep(BETWEEN_RUNS);
            let before = stats(host.port);
            let (r, answer) = deliver(
                &mut poll,
                &mut events,
                &mut clients,
                &mut host,
                &trigger(mode, opts.rounds, opts),
                &mut buf,
                &mut samples,
            )
            .map_err(|e| blame_host(&mut host, format!("{}: {e}", mode.name())))?;
            let after = stats(host.port);
            let delta = |name| counter(&after, name)?.checked_sub(counter(&before, name)?);
            let frames_per_call = match (delta("frames_queued"), delta("write_calls")) {
                (Some(frames), Some(calls)) if calls > 0 => Some(frames as f64 / calls as f64),
                _ => None,
            };
            let m = Measure {
                mode,
                rate: r.rate,
                seconds: r.seconds,
                publish_seconds: answer_value(&answer, "seconds").unwrap_or(f64::NAN),
                published: answer_value(&answer, "published").map_or(0, |v| v as u64),
                frames_per_call,
                p50_ns: r.since_start_p50_ns,
                p99_ns: r.since_start_p99_ns,
            };
            println!(
                "[{tag}] run {} {:<5}: {} deliveries in {:.3} s = {}/s; host published {} events \
                 in {:.3} s ({:.2} µs each); {} frames per sendmsg; from start p50 {} p99 {}",
                run + 1,
                mode.name(),
                r.deliveries,
                r.seconds,
                thousands(r.rate),
                m.published,
                m.publish_seconds,
                per_event_us(&m),
                m.frames_per_call
                    .map_or("?".to_string(), |f| format!("{f:.1}")),
                ms(m.p50_ns),
                ms(m.p99_ns),
            );
            measures.push(m);
        }
    }
    // Stop the host first: its side closes first and keeps the TIME_WAIT entries.
    drop(host);
    drop(clients);
    Ok(HostReport { kind, measures })
}

fn per_event_us(m: &Measure) -> f64 {
    m.publish_seconds * 1e6 / m.published.max(1) as f64
}

fn print_summary(opts: &Opts, reports: &[HostReport]) {
    println!();
    println!(
        "summary: {} clients × {} rounds × {} B, {} run(s); medians over runs (min – max of deliveries/s)",
        opts.clients, opts.rounds, opts.size, opts.runs
    );
    println!(
        "deliveries/s = clients × rounds / (last delivery − first send); \"vs one\" = this mode ÷ \
         the one-channel mode of the same host; caller µs/event = the host's publishing time ÷ \
         events published"
    );
    println!(
        "{:<12} {:<5} {:>12} {:>25} {:>7} {:>16} {:>16} {:>9} {:>9}",
        "host",
        "mode",
        "deliveries/s",
        "(min – max)",
        "vs one",
        "caller µs/event",
        "frames/sendmsg",
        "p50",
        "p99"
    );
    for r in reports {
        let one = r.median_rate(Mode::One);
        for &mode in &opts.modes {
            let rates: Vec<f64> = r.of(mode).map(|m| m.rate).collect();
            let lo = rates.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = rates.iter().copied().fold(0.0, f64::max);
            let rate = r.median_rate(mode);
            let vs_one = if opts.modes.contains(&Mode::One) && one > 0.0 {
                format!("{:.2}×", rate / one)
            } else {
                "-".into()
            };
            let opt = |v: Option<f64>, digits: usize| {
                v.filter(|v| v.is_finite())
                    .map_or("?".to_string(), |v| format!("{v:.digits$}"))
            };
            println!(
                "{:<12} {:<5} {:>12} {:>25} {:>7} {:>16} {:>16} {:>9} {:>9}",
                r.kind.name(),
                mode.name(),
                thousands(rate),
                format!("({} – {})", thousands(lo), thousands(hi)),
                vs_one,
                opt(r.median_of(mode, |m| Some(per_event_us(m))), 2),
                opt(r.median_of(mode, |m| m.frames_per_call), 1),
                ms(r.median_of(mode, |m| Some(m.p50_ns as f64)).unwrap_or(0.0) as u64),
                ms(r.median_of(mode, |m| Some(m.p99_ns as f64)).unwrap_or(0.0) as u64),
            );
        }
    }
}

fn json(opts: &Opts, reports: &[HostReport]) -> String {
    let hosts: Vec<String> = reports
        .iter()
        .map(|r| {
            let measures: Vec<String> = r
                .measures
                .iter()
                .map(|m| {
                    format!(
                        "{{\"mode\":\"{}\",\"deliveries_per_s\":{:.0},\"seconds\":{:.6},\
                         \"publish_seconds\":{:.6},\"published\":{},\"frames_per_sendmsg\":{},\
                         \"since_start_p50_ns\":{},\"since_start_p99_ns\":{}}}",
                        m.mode.name(),
                        m.rate,
                        m.seconds,
                        if m.publish_seconds.is_finite() {
                            m.publish_seconds
                        } else {
                            0.0
                        },
                        m.published,
                        m.frames_per_call
                            .map_or("null".to_string(), |f| format!("{f:.2}")),
                        m.p50_ns,
                        m.p99_ns
                    )
                })
                .collect();
            let medians: Vec<String> = opts
                .modes
                .iter()
                .map(|&mode| format!("\"{}\":{:.0}", mode.name(), r.median_rate(mode)))
                .collect();
            format!(
                "{{\"kind\":{},\"median_deliveries_per_s\":{{{}}},\"measures\":[{}]}}",
                json_string(r.kind.name()),
                medians.join(","),
                measures.join(",")
            )
        })
        .collect();
    format!(
        "{{\"bench\":\"sse_channels\",\"clients\":{},\"rounds\":{},\"size\":{},\"runs\":{},\"hosts\":[{}]}}",
        opts.clients,
        opts.rounds,
        opts.size,
        opts.runs,
        hosts.join(",")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn options() {
        let opts = parse_args(&args(&[])).unwrap();
        assert_eq!(opts.hosts, vec![Kind::Engine]);
        assert_eq!(opts.modes, Mode::ALL.to_vec());
        let opts = parse_args(&args(&["--modes", "each", "--host-cmd", "n=node x.js"])).unwrap();
        assert_eq!(opts.modes, vec![Mode::Each]);
        assert_eq!(opts.hosts.len(), 2);
        assert_eq!(opts.hosts[1].name(), "n");
        assert!(parse_args(&args(&["--modes", "all"])).is_err());
        assert!(parse_args(&args(&["--hosts", "naive"])).is_err());
        assert!(parse_args(&args(&["--size", "5"])).is_err());
    }

    #[test]
    fn host_answer() {
        let answer = "published 250000\nseconds 0.125000\n";
        assert_eq!(answer_value(answer, "published"), Some(250000.0));
        assert_eq!(answer_value(answer, "seconds"), Some(0.125));
        assert_eq!(answer_value(answer, "late"), None);
    }
}
