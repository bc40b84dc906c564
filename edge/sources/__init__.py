"""Frame sources: cameras (picamera2, V4L2/RTSP, HTTP snapshot) and folder replay."""
