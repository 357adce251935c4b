"""Private helpers shared across rtplan subpackages. Not public API."""
