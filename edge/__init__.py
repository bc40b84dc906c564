"""edgewatch on-device runtime: frame -> score -> fuse -> verdict -> escalate -> outputs."""

__version__ = "0.1.0"
