"""What a deployment's data collection gives: the collector settings and records, the collected data read back on
both targets, and drift."""
