"""Azure's side: its errors and activity log, the SKU list, quota and capacity, autoscale, the workspace and the
MLClient, and the client surface both targets implement."""
