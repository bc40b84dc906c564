"""The built-in demo: real solar-cell images and bearing vibration replayed through the real service."""
