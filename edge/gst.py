"""GStreamer through PyGObject, imported on first use with a clear message when it is missing."""

from __future__ import annotations

from functools import lru_cache
from types import ModuleType

from edge.errors import EdgeError


@lru_cache(maxsize=None)
def gst() -> tuple[ModuleType, ModuleType]:
    """(Gst, GstVideo), initialised once."""
    try:
        import gi

        gi.require_version("Gst", "1.0")
        gi.require_version("GstVideo", "1.0")
        from gi.repository import Gst, GstVideo
    except (ImportError, ValueError) as e:
        raise EdgeError(f"GStreamer Python bindings unavailable ({e}); on Debian/JetPack: apt-get install "
                        "gir1.2-gstreamer-1.0 gir1.2-gst-plugins-base-1.0, then pip install -e .") from None
    Gst.init(None)
    return Gst, GstVideo


def has_element(name: str) -> bool:
    Gst, _ = gst()
    return Gst.ElementFactory.find(name) is not None


def launch(description: str):
    """Gst.parse_launch with a one-line EdgeError for a missing element or a bad description."""
    Gst, _ = gst()
    try:
        return Gst.parse_launch(description)
    except Exception as e:  # GLib.Error: no element "x", syntax error
        raise EdgeError(f"GStreamer cannot build '{description[:80]}...': {e}") from None
