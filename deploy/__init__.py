"""Deployment files: Compose, Kubernetes, Prometheus, Grafana (see deploy/README.md)."""
