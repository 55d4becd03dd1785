"""Launching jobs outside the webserver (CLI, demo, tests) as recorded Dagster runs."""
