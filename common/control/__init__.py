"""The control plane as both targets' clients share it: lookups (lookups.py), long-running operations (waiting.py),
the endpoint's read-modify-write (endpoint_update.py), failed deployments' reports (failures.py) and what goes over
the wire (wire.py)."""
