"""Fusion: evidence from vision and sensors -> one verdict per asset (``fuse``), held steady over
checks (``persistence``), as the config says (``config``)."""
