"""Measuring fusion and escalation on labelled recordings: labels, the oracle cloud, the figures."""
