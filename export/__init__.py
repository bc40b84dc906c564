"""edgewatch export (workstation only): checkpoint -> ONNX -> INT8 -> verified model bundle."""
