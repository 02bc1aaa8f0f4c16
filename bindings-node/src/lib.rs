//! Node.js binding of sse-engine (napi-rs). Filled in by the Node binding issue.
