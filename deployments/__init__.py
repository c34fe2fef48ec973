"""One-command set-up of a Prefect server for hyperexport: ``python -m deployments.bootstrap``."""
