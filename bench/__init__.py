"""``edgewatch bench``: INT8 vs FP32 ONNX vs PyTorch speed, memory and size; the sensor path."""
