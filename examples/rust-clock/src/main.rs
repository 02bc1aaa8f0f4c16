//! The demo: a plain `std` HTTP server that serves one page with an `EventSource`, and
//! hands every `/events` request over to sse-engine. A ticker thread broadcasts the
//! clock and a counter on channel `clock` every second.
//!
//! Run: `cargo run -p sse-demo-clock -- [PORT]` (default 8080), then open the URL it prints.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sse_engine::{http, Config, ConnectOptions, Engine, Event, LifecycleEvent};

const PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>sse-engine demo</title>
<style>body{font:16px system-ui;margin:3em} b{font-size:2em}</style></head>
<body>
<h1>sse-engine demo</h1>
<p>Server time: <b id="time">…</b></p>
<p>Tick #<b id="count">…</b> · <span id="state">connecting</span></p>
<script>
const es = new EventSource('/events');
es.addEventListener('tick', e => {
  const t = JSON.parse(e.data);
  document.getElementById('time').textContent = new Date(t.time_ms).toLocaleTimeString();
  document.getElementById('count').textContent = t.count;
});
es.onopen = () => document.getElementById('state').textContent = 'live';
es.onerror = () => document.getElementById('state').textContent = 'reconnecting';
</script>
</body></html>
"#;

/// Reads the request head (up to 8 KiB, 5 s).
fn read_head(stream: &mut TcpStream) -> Option<String> {
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).ok()?;
        if n == 0 || head.len() + n > 8192 {
            return None;
        }
        head.extend_from_slice(&buf[..n]);
    }
    String::from_utf8(head).ok()
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

fn respond(mut stream: TcpStream, status: &str, content_type: &str, body: &str) {
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

fn serve(engine: &Engine, mut stream: TcpStream) {
    let Some(head) = read_head(&mut stream) else {
        return;
    };
    let path = head.split_whitespace().nth(1).unwrap_or("/");
    match path.split('?').next().unwrap_or("/") {
        "/" => respond(stream, "200 OK", "text/html; charset=utf-8", PAGE),
        "/events" => {
            let options = ConnectOptions {
                channels: vec!["clock".into()],
                // The engine's rule: the header wins, else the query's first value.
                last_event_id: http::last_event_id(
                    header(&head, http::LAST_EVENT_ID_HEADER),
                    path.split_once('?').map(|(_, query)| query),
                ),
                ..Default::default()
            };
            // A refusal that gives the socket back drops (closes) it here.
            if let Err(refused) = engine.connect_fd(stream.into(), &options) {
                eprintln!("hand-over refused: {refused}");
            }
        }
        _ => respond(stream, "404 Not Found", "text/plain", "not found\n"),
    }
}

fn main() {
    let port: u16 = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("PORT").ok())
        .map(|p| p.parse().expect("PORT must be a number"))
        .unwrap_or(8080);
    let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind");
    let engine = Arc::new(
        Engine::start(Config {
            heartbeat: Some(Duration::from_secs(15)),
            retry: Some(2000),
            ..Config::default()
        })
        .expect("start engine"),
    );
    engine
        .on_event(|event| match event {
            LifecycleEvent::Connected { client } => eprintln!("client {client} connected"),
            LifecycleEvent::Disconnected { client, reason } => {
                eprintln!("client {client} left ({})", reason.as_str())
            }
            LifecycleEvent::Gap { client } => {
                eprintln!("client {client} resumed from an id no longer in history")
            }
            // Only stream-mode clients report this; the demo hands sockets over.
            LifecycleEvent::Readable { .. } => {}
        })
        .expect("handler");

    let ticker = engine.clone();
    std::thread::spawn(move || {
        for count in 1u64.. {
            std::thread::sleep(Duration::from_secs(1));
            let time_ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis());
            // No id given: the engine numbers the event, keeps it in the channel's
            // history, and replays what a reconnecting page missed.
            let event =
                Event::new(format!(r#"{{"time_ms":{time_ms},"count":{count}}}"#)).named("tick");
            if ticker.broadcast("clock", &event).is_err() {
                return;
            }
        }
    });

    println!("sse-engine demo: open http://127.0.0.1:{port}/ (Ctrl-C to stop)");
    for stream in listener.incoming().flatten() {
        serve(&engine, stream);
    }
}
