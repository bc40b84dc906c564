"""The long-running service: its config, the check loop, wiring from config, triggers, sd_notify, install."""
