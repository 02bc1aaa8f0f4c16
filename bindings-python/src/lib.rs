//! Python binding of sse-engine (PyO3). Filled in by the Python binding issue.
