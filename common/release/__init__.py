"""Releasing a new deployment safely: traffic plans and the mirror, the rollback history, metrics, the staged
rollout and the shadow comparison."""
