"""Why a deployment failed: the table of known causes and their fixes."""
