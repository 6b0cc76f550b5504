"""Upstream API answers read within bounds (worker.upstream.bodies), against hostile servers."""
