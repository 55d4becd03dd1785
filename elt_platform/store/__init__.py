"""Versioned storage: immutable versions, environment pointers, releases and catalogs."""
