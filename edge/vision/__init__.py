"""Vision heads on top of the image encoder: zero-shot labels, few-shot examples, normal baseline.

``score_image`` / ``VisionScorer`` (pipeline.py) run them together on one frame; the other
modules are pure numpy and know nothing about files or onnxruntime.
"""
