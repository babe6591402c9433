"""Entry points: the supervisor behind `make run`, the CLI, the service processes."""
