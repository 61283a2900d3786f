"""Adaptive wrappers for attacking defences end to end: EOT and BPDA."""
