"""Alerts: what a technician is told (headline, lifecycle, notifications) and what they answer."""
