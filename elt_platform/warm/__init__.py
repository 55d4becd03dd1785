"""The warm process: the `elt` entry point, the process that keeps the platform imported between
commands, and the `elt warm` commands that start and stop it."""
