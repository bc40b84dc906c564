"""Run by Debian's python3 (GStreamer bindings): serve a live test pattern at rtsp://127.0.0.1:PORT/cam.

    /usr/bin/python3 bench/rtsp/serve.py PORT h264|mjpeg
"""

import sys

try:
    import gi

    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstRtspServer
except (ImportError, ValueError) as exc:
    sys.exit(f"GStreamer's RTSP server is not installed ({exc}): apt-get install python3-gi "
             "gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-good gstreamer1.0-plugins-ugly")

SOURCE = "videotestsrc is-live=true pattern=ball ! video/x-raw,width=320,height=240,framerate=10/1"
ENCODERS = {
    "h264": "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=10 ! rtph264pay name=pay0 pt=96",
    "mjpeg": "videoconvert ! video/x-raw,format=I420 ! jpegenc ! rtpjpegpay name=pay0 pt=26",
}


def main() -> None:
    port, codec = sys.argv[1], sys.argv[2]
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(f"( {SOURCE} ! {ENCODERS[codec]} )")
    factory.set_shared(True)
    server.get_mount_points().add_factory("/cam", factory)
    server.attach(None)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
