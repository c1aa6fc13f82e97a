"""A tiny RTSP server for the reconnect tests: ``python rtsp_server.py PORT`` serves a live H.264 test
pattern at rtsp://127.0.0.1:PORT/cam (loopback only) until it is killed. Prints "ready" once listening."""

import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

PIPELINE = ("( videotestsrc is-live=true ! video/x-raw,width=64,height=48,framerate=15/1 ! "
            "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=15 ! rtph264pay name=pay0 pt=96 )")


def main(port: int) -> None:
    Gst.init(None)
    server = GstRtspServer.RTSPServer(address="127.0.0.1", service=str(port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(PIPELINE)
    factory.set_shared(True)
    server.get_mount_points().add_factory("/cam", factory)
    if server.attach(None) == 0:
        sys.exit(f"cannot listen on 127.0.0.1:{port}")
    print("ready", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main(int(sys.argv[1]))
