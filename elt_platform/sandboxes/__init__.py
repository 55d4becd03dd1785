"""Analyst sandboxes: zero-copy creation, masking, selective rebuild, diff, experiment records."""
