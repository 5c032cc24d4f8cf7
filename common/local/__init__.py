"""The local target: the client surface of MLClient (online_endpoints, online_deployments, models,
environments) implemented with processes on 127.0.0.1, so every script runs unchanged with --local."""
