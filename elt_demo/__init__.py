"""The demo beside the platform: synthetic shop data, the demo payments API, `elt demo` and
benchmarks."""
