"""End-to-end tests on real engines built by tests/e2e/toolchain.sh."""
