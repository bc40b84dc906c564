"""Sensor analytics: pure numpy/scipy functions from samples to features, no I/O."""
