"""Process-level helpers shared by `make run` and the test fixtures."""
