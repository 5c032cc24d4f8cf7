"""Shared helpers for the deployment scripts: argument handling, workspace, validation, traffic."""
