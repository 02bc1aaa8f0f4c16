//! `sse-bench-host --kind engine|naive [--port P] [--threads T] [--watch-stdin]`: the
//! benchmark host; see [`sse_bench::host`].

fn main() -> std::process::ExitCode {
    sse_bench::host::main(std::env::args().skip(1))
}
