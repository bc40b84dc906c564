"""Where verdicts go after history: MQTT (+ Home Assistant discovery), HTTP API, metrics, status page."""
