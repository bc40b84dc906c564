"""Frame sources: cameras (picamera2, V4L2/RTSP, HTTP snapshot) and folder replay.

``plugins.make_camera(config)`` builds the plug-in for a camera config; each plug-in module is
imported only when a camera of its type is configured, so PyAV and picamera2 stay optional.
"""
