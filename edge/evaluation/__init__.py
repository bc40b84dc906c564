"""Measuring fusion and escalation on labelled recordings: labels, the oracle cloud, the figures.

It scores no frame itself: it reads the verdicts (and frames) the service stored, judged by the one
check path (``edge.service.check.assess``), and asks the oracle cloud about them.
"""
