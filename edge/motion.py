"""Motion inputs in numpy + OpenCV: optical flow, RGBF, the MOMP image and TSN-style stacked flow.

This is the ONE implementation of every motion input, as ``edge/preprocess.py`` is of preprocessing: training
computes them per video through here (``train/data/motion.py`` caches the result) and the runtime computes
them on its window through here, so a deployed model sees the motion input it was trained on
(docs/design.md, "Motion inputs live in the runtime"). No torch: the runtime imports this.

Frames are ``(T, H, W, 3)`` uint8 RGB, as ``train.data.decode.read_video`` returns them. Compute motion at
the resolution training decodes at (``read_video(path, short_side=preprocess.resize)``); the runtime must
resize its frames the same way (``edge.preprocess.resize_short_side``) before calling these functions.

- ``optical_flow``: dense flow between consecutive frames, (T-1, H, W, 2) float32, (dx, dy) in pixels.
- ``rgbf``: Eq. 7 of the asymmetric 3D-CNN paper (Sec. 3.4), (T, H, W, 3) uint8.
- ``momp_image`` / ``momp_images``: Sec. III-A of the MOMP paper, (H, W, 3) uint8 per window of N frames.
- ``scale_flow`` / ``stack_flows`` / ``stacked_flow``: a two-stream flow stream's (2L, H, W) input.
- ``MotionSpec``: which motion input and its parameters, as a dict (cache key, later a bundle field) and
  ``compute(video)``, the per-video array training caches.

Choices where the papers are silent are listed in docs/models.md, "Motion inputs".
"""

from __future__ import annotations

import hashlib
import json
from collections import deque
from dataclasses import asdict, dataclass, field

import cv2
import numpy as np

from edge.errors import EdgeError
from edge.preprocess import resize_short_side

FLOW_METHODS = ("farneback", "tvl1")
KINDS = ("flow", "rgbf", "stacked_flow", "momp")
# RGBF: a frame whose flow magnitudes span less than this (pixels) has no motion contrast; Eq. 7 would be
# 0/0 there (a static frame) or amplify solver noise to the full [0, 1] range, so its map is all zero
RGBF_MIN_RANGE = 1e-3


class TooFewFrames(ValueError):
    """A video too short for a motion input (a MOMP window of N frames, a flow pair): a dataset skips it."""


def _check_frames(frames: np.ndarray, what: str, min_frames: int) -> None:
    if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[3] != 3:
        got = (f"{frames.dtype} array of shape {frames.shape}" if isinstance(frames, np.ndarray)
               else type(frames).__name__)
        raise ValueError(f"{what}: expected frames as a (T, H, W, 3) uint8 RGB array, got {got}")
    if frames.shape[0] < min_frames:
        raise TooFewFrames(f"{what}: needs at least {min_frames} frames, got {frames.shape[0]}")


# ---------------------------------------------------------------------------------------------- optical flow


@dataclass(frozen=True)
class FlowParams:
    """Dense optical flow on grayscale frames (``cv2.COLOR_RGB2GRAY``), each pair computed on its own (no
    initial flow carried over), so the flow of a window equals the same slice of the whole video's flow.

    ``method="farneback"`` (default, in every OpenCV): ``cv2.calcOpticalFlowFarneback(prev, next, None,
    pyr_scale, levels, winsize, iterations, poly_n, poly_sigma, 0)``; the defaults are OpenCV's sample values
    (3-level pyramid halving each level, 15x15 averaging window, 3 iterations per level, degree-2 polynomial
    expansion over 5x5 neighbourhoods with a 1.2 Gaussian).

    ``method="tvl1"``: ``cv2.optflow.DualTVL1OpticalFlow_create(tau, lambda_, theta, nscales, warps, epsilon)``
    (the TV-L1 flow two-stream / TSN works use); needs opencv-contrib (``cv2.optflow``), which the project
    depends on. The defaults are OpenCV's. Far slower than Farneback (docs/results/distill.md).
    """

    method: str = "farneback"
    pyr_scale: float = 0.5
    levels: int = 3
    winsize: int = 15
    iterations: int = 3
    poly_n: int = 5
    poly_sigma: float = 1.2
    tau: float = 0.25
    lambda_: float = 0.15
    theta: float = 0.3
    nscales: int = 5
    warps: int = 5
    epsilon: float = 0.01

    def __post_init__(self) -> None:
        if self.method not in FLOW_METHODS:
            raise ValueError(f"optical flow: method must be one of {', '.join(FLOW_METHODS)}, got {self.method!r}")
        if self.levels < 1 or self.winsize < 1 or self.iterations < 1 or self.nscales < 1 or self.warps < 1:
            raise ValueError("optical flow: levels, winsize, iterations, nscales and warps must be >= 1")
        if self.poly_n not in (5, 7):
            raise ValueError(f"optical flow: poly_n must be 5 or 7 (OpenCV's Farneback), got {self.poly_n}")


def tvl1_available() -> bool:
    """Whether this OpenCV has the contrib module with TV-L1 (``cv2.optflow``)."""
    return hasattr(cv2, "optflow") and hasattr(cv2.optflow, "DualTVL1OpticalFlow_create")


def best_flow_method() -> str:
    """A flow stream's default: TV-L1 (what two-stream, TSN and the Dual-action Stream paper use) where this
    OpenCV has it, Farneback otherwise."""
    return "tvl1" if tvl1_available() else "farneback"


def _flow_fn(params: FlowParams):
    """A function (gray a, gray b) -> flow anchored at a's pixels towards b, (H, W, 2) float32."""
    if params.method == "farneback":
        p = params

        def farneback(a: np.ndarray, b: np.ndarray) -> np.ndarray:
            return cv2.calcOpticalFlowFarneback(a, b, None, p.pyr_scale, p.levels, p.winsize, p.iterations,
                                                p.poly_n, p.poly_sigma, 0)
        return farneback
    if not tvl1_available():
        raise EdgeError(f"optical flow 'tvl1' needs OpenCV's contrib module cv2.optflow (install "
                        f"opencv-contrib-python-headless in place of opencv-python-headless); this OpenCV "
                        f"{cv2.__version__} has none - use method 'farneback'")
    tvl1 = cv2.optflow.DualTVL1OpticalFlow_create(params.tau, params.lambda_, params.theta, params.nscales,
                                                  params.warps, params.epsilon)
    return lambda a, b: tvl1.calc(a, b, None)


def _gray(frames: np.ndarray) -> list[np.ndarray]:
    return [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]


def optical_flow(frames: np.ndarray, params: FlowParams = FlowParams()) -> np.ndarray:
    """Forward flow of each consecutive pair: ``out[t]`` moves frame t's pixels to frame t+1 (so a bar
    moving right by 2 px per frame has ``out[t, ..., 0] ~ +2`` on the bar). (T, H, W, 3) uint8 RGB ->
    (T-1, H, W, 2) float32, channel 0 = dx, channel 1 = dy, in pixels."""
    _check_frames(frames, "optical_flow", 2)
    flow = _flow_fn(params)
    gray = _gray(frames)
    return np.stack([flow(a, b) for a, b in zip(gray[:-1], gray[1:])]).astype(np.float32, copy=False)


# ---------------------------------------------------------------------------------------------------- RGBF


def confidence_map(magnitude: np.ndarray) -> np.ndarray:
    """Eq. 7's movement confidence, ``(|F| - |F|min) / (|F|max - |F|min)`` over one frame, in [0, 1]; all
    zero when the magnitudes span less than ``RGBF_MIN_RANGE`` pixels (a static frame: Eq. 7 is 0/0)."""
    lo, hi = float(magnitude.min()), float(magnitude.max())
    if hi - lo < RGBF_MIN_RANGE:
        return np.zeros_like(magnitude, dtype=np.float32)
    return ((magnitude - lo) / (hi - lo)).astype(np.float32)


def rgbf(frames: np.ndarray, params: FlowParams = FlowParams(), prev: np.ndarray | None = None) -> np.ndarray:
    """RGBF frames (asymmetric 3D-CNN paper, Sec. 3.4, Eq. 7)::

        RGBF[x, y, c] = RGB[x, y, c] * (|F|[x, y] - |F|min) / (|F|max - |F|min),   c = 1, 2, 3     (7)

    with |F| the flow magnitude and its min / max taken over the frame (per-frame normalisation, as the
    paper says). The paper does not say which flow belongs to a frame; we use the *backward* flow, from
    frame t to frame t-1, computed on frame t's pixel grid: it marks where the moving parts are in frame t,
    and it is causal, so a streaming runtime gets frame t's RGBF as soon as frame t arrives. The first
    frame has no previous one: it uses its flow towards frame 1 (the same magnitudes, other direction), or,
    when ``prev`` (the frame before ``frames[0]``) is given, its flow towards ``prev``; with ``prev`` a
    window's RGBF equals the same slice of the whole video's, which is what training caches.

    (T, H, W, 3) uint8 RGB -> (T, H, W, 3) uint8, rounded to nearest: RGBF frames are images the model's
    usual preprocessing (``edge.preprocess.Preprocess``) takes in place of RGB frames.
    """
    _check_frames(frames, "rgbf", 1 if prev is not None else 2)
    if prev is not None:
        _check_frames(prev[None], "rgbf (prev)", 1)
        if prev.shape != frames.shape[1:]:
            raise ValueError(f"rgbf: prev has shape {prev.shape}, the frames {frames.shape[1:]}")
    flow = _flow_fn(params)
    gray = _gray(frames)
    before = [cv2.cvtColor(prev, cv2.COLOR_RGB2GRAY) if prev is not None else gray[1]] + gray[:-1]
    out = np.empty_like(frames)
    for t, (g, b) in enumerate(zip(gray, before)):
        f = flow(g, b)
        conf = confidence_map(np.sqrt(f[..., 0] * f[..., 0] + f[..., 1] * f[..., 1]))
        out[t] = np.rint(frames[t].astype(np.float32) * conf[..., None]).clip(0, 255).astype(np.uint8)
    return out


# ------------------------------------------------------------------------------------------- stacked flow


def scale_flow(flow: np.ndarray, bound: float = 20.0) -> np.ndarray:
    """TSN's flow images: each component clipped to [-bound, bound] pixels and mapped linearly to [0, 255],
    ``round(255 * (clip(v) + bound) / (2 * bound))`` (0 px -> 128, +bound -> 255). (..., 2) float -> uint8."""
    if bound <= 0:
        raise ValueError(f"scale_flow: bound must be > 0, got {bound}")
    flow = np.asarray(flow)
    if flow.ndim < 1 or flow.shape[-1] != 2:
        raise ValueError(f"scale_flow: expected (..., 2) flow, got shape {flow.shape}")
    v = (np.clip(flow.astype(np.float32), -bound, bound) + bound) * (255.0 / (2 * bound))
    return np.rint(v).astype(np.uint8)


def stack_flows(scaled: np.ndarray) -> np.ndarray:
    """L scaled flow fields (L, H, W, 2) uint8 -> a flow stream's input (2L, H, W) float32, channels
    interleaved x0, y0, x1, y1, ... (TSN's order), values 0..255 (the model's normalisation, e.g. mean 128,
    comes after, as for RGB)."""
    if scaled.dtype != np.uint8 or scaled.ndim != 4 or scaled.shape[3] != 2:
        raise ValueError(f"stack_flows: expected (L, H, W, 2) uint8 scaled flow, got {scaled.dtype} {scaled.shape}")
    length, h, w, _ = scaled.shape
    return np.ascontiguousarray(scaled.transpose(0, 3, 1, 2).reshape(2 * length, h, w), dtype=np.float32)


def stacked_flow(frames: np.ndarray, params: FlowParams = FlowParams(), bound: float = 20.0) -> np.ndarray:
    """L + 1 frames -> the L flow fields between them, TSN-scaled (``scale_flow``) and stacked
    (``stack_flows``): (2L, H, W) float32 in [0, 255]. Quantised to integers as TSN's stored flow images
    are, so the cached per-video form (uint8) gives exactly the same input."""
    _check_frames(frames, "stacked_flow", 2)
    return stack_flows(scale_flow(optical_flow(frames, params), bound))


# ---------------------------------------------------------------------------------------------- MOMP image


@dataclass(frozen=True)
class MompParams:
    """MOMP image parameters (MOMP paper, Sec. III-A). ``n``: frames averaged into one image (N; the paper's
    best is 9, Sec. IV-A-2). ``bins``: d, unsigned orientations over [0, pi). ``cell``: side of the cell C
    (odd, centred on p) and ``sigma`` its Gaussian. ``stride``: frames between the starts of a video's
    windows (``momp_images``; "partially-overlapping" in Sec. IV-A-1: N // 2 by default)."""

    n: int = 9
    bins: int = 3
    cell: int = 7
    sigma: float = 2.0
    stride: int = 4

    def __post_init__(self) -> None:
        if self.n < 3:
            raise ValueError(f"MOMP: n (N) must be >= 3 (one frame triplet), got {self.n}")
        if self.bins < 1:
            raise ValueError(f"MOMP: bins (d) must be >= 1, got {self.bins}")
        if self.cell < 1 or self.cell % 2 == 0:
            raise ValueError(f"MOMP: cell must be odd and >= 1 (centred on the pixel), got {self.cell}")
        if self.sigma <= 0 or self.stride < 1:
            raise ValueError(f"MOMP: sigma must be > 0 and stride >= 1, got {self.sigma}, {self.stride}")


def _haar_gradient(channel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First-level 2x2 Haar responses of one channel (float64): gx = (right column - left column) / 2,
    gy = (bottom row - top row) / 2 of each 2x2 block, at the block's top-left pixel; the last row and
    column repeat their neighbours so the maps keep (H, W)."""
    c = np.pad(channel, ((0, 1), (0, 1)), mode="edge")
    a, b, d, e = c[:-1, :-1], c[:-1, 1:], c[1:, :-1], c[1:, 1:]
    return (b + e - a - d) * 0.5, (d + e - a - b) * 0.5


def _oriented_cells(frame: np.ndarray, p: MompParams, kernel: np.ndarray) -> np.ndarray:
    """Steps (1) and (2) for one frame: (3, d, H, W) float64, v_i(p)^K for every channel K and bin i."""
    out = np.empty((3, p.bins, *frame.shape[:2]), np.float64)
    for k in range(3):
        gx, gy = _haar_gradient(frame[..., k].astype(np.float64))
        mag = np.sqrt(gx * gx + gy * gy)
        ang = np.mod(np.arctan2(gy, gx), np.pi)  # unsigned orientation in [0, pi)
        idx = np.minimum((ang * (p.bins / np.pi)).astype(np.int64), p.bins - 1)
        for i in range(p.bins):
            m_i = np.where(idx == i, mag, 0.0)
            out[k, i] = cv2.sepFilter2D(m_i, cv2.CV_64F, kernel, kernel, borderType=cv2.BORDER_REFLECT_101)
    return out


def _triplet(before: np.ndarray, mid: np.ndarray, after: np.ndarray, p: MompParams) -> np.ndarray:
    """Step (3) on one triplet's oriented cells (each (3, d, H, W)): (H, W, 3) float64, |SSD1 - SSD2|."""
    ssd1 = np.zeros((3, *mid.shape[2:]))
    ssd2 = np.zeros_like(ssd1)
    for i in range(p.bins):  # explicit sums: the same float operations in every window and in the stream
        d1 = before[:, i] - mid[:, i]
        d2 = after[:, i] - mid[:, i]
        ssd1 += d1 * d1
        ssd2 += d2 * d2
    return np.abs(ssd1 - ssd2).transpose(1, 2, 0)


def _gaussian(p: MompParams) -> np.ndarray:
    return cv2.getGaussianKernel(p.cell, p.sigma, cv2.CV_64F)  # g_j, sums to 1


def _triplet_images(frames: np.ndarray, p: MompParams) -> np.ndarray:
    """Step (3) on every triplet (t-1, t, t+1): (T-2, H, W, 3) float64, I_t^K = |SSD1^K - SSD2^K|."""
    kernel = _gaussian(p)
    v = [_oriented_cells(f, p, kernel) for f in frames]
    return np.stack([_triplet(v[t - 1], v[t], v[t + 1], p) for t in range(1, len(frames) - 1)])


def _normalised(triplets: np.ndarray) -> np.ndarray:
    """The window's average of its triplet images, min-max normalised to [0, 255] over the whole image (all
    three channels together, keeping their relative strength), rounded to uint8; all zero if constant."""
    mean = triplets.sum(axis=0) / len(triplets)
    lo, hi = float(mean.min()), float(mean.max())
    if not hi > lo:
        return np.zeros(mean.shape, np.uint8)
    return np.rint((mean - lo) * (255.0 / (hi - lo))).clip(0, 255).astype(np.uint8)


def momp_image(frames: np.ndarray, params: MompParams = MompParams()) -> np.ndarray:
    """The MOMP image of one window of exactly N = ``params.n`` frames (MOMP paper, Sec. III-A).

    For each RGB channel K of each frame (the image is computed per channel, not on gray):

    (1) gradient by Haar features (2x2 blocks), magnitude m(p) and unsigned orientation phi(p) quantised into
        d bins: ``m(p)^K = [m_1(p)^K, ..., m_d(p)^K]`` with m_i(p) = m(p) if phi(p) falls in bin i, else 0;
    (2) Gaussian-weighted accumulation over the cell C centred on p, on each orientation:
        ``v_i(p)^K = sum_{p_j in C} g_j * m_i(p_j)^K``,  ``v(p)^K = [v_1(p)^K, ..., v_d(p)^K]``;
    (3) for each triplet of frames (t-1, t, t+1), at every pixel:
        ``SSD1^K = sum_{j=1..d} [v_j(p)_{t-1}^K - v_j(p)_t^K]^2``,
        ``SSD2^K = sum_{j=1..d} [v_j(p)_{t+1}^K - v_j(p)_t^K]^2``,
        ``I^K = |SSD1^K - SSD2^K|``.

    The N - 2 triplet images of the window are averaged ("the average of some consecutive frames") and
    min-max normalised to [0, 255] (the paper's last step). The paper gives the formulas without equation
    numbers; the three steps are its items (1)-(3). (N, H, W, 3) uint8 RGB -> (H, W, 3) uint8.
    """
    _check_frames(frames, "momp_image", params.n)
    if len(frames) != params.n:
        raise ValueError(f"momp_image: expected exactly N={params.n} frames (one window), got {len(frames)}; "
                         "momp_images slides windows over a whole video")
    return _normalised(_triplet_images(frames, params))


def momp_images(video: np.ndarray, params: MompParams = MompParams()) -> np.ndarray:
    """MOMP images of a whole video's windows of N frames starting every ``params.stride`` frames (the
    last partial window dropped): (K, H, W, 3) uint8, ``out[k] == momp_image(video[k*stride : k*stride+N])``
    exactly. Each triplet image is computed once and shared by the windows that contain it."""
    _check_frames(video, f"momp_images (N={params.n})", params.n)
    trip = _triplet_images(video, params)
    starts = range(0, len(video) - params.n + 1, params.stride)
    return np.stack([_normalised(trip[s : s + params.n - 2]) for s in starts])


# ------------------------------------------------------------------------------------------ the spec


@dataclass(frozen=True)
class MotionSpec:
    """Which motion input a model takes and its parameters: ``to_dict`` is the cache key (and what a bundle
    manifest will carry); ``compute(video)`` is the per-video array training caches:

    - ``flow``: ``optical_flow`` (T-1, H, W, 2) float32;
    - ``rgbf``: ``rgbf`` (T, H, W, 3) uint8 - a window [s, e) is ``rgbf(video[s:e], prev=video[s-1])``;
    - ``stacked_flow``: ``scale_flow(optical_flow)`` (T-1, H, W, 2) uint8 - L stacked fields starting at
      frame s are ``stack_flows(cached[s:s+L]) == stacked_flow(video[s:s+L+1])``;
    - ``momp``: ``momp_images`` (K, H, W, 3) uint8.
    """

    kind: str
    flow: FlowParams = field(default_factory=FlowParams)
    momp: MompParams = field(default_factory=MompParams)
    bound: float = 20.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"motion: kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if self.bound <= 0:
            raise ValueError(f"motion: bound must be > 0, got {self.bound}")

    def to_dict(self) -> dict:
        """Only the parameters the kind uses, so e.g. a MOMP parameter change does not invalidate flow."""
        d: dict = {"kind": self.kind}
        if self.kind != "momp":
            d["flow"] = asdict(self.flow)
        if self.kind == "stacked_flow":
            d["bound"] = self.bound
        if self.kind == "momp":
            d["momp"] = asdict(self.momp)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> MotionSpec:
        return cls(kind=str(d["kind"]), flow=FlowParams(**d.get("flow", {})), momp=MompParams(**d.get("momp", {})),
                   bound=float(d.get("bound", 20.0)))

    def key(self) -> str:
        """A short stable hash of ``to_dict`` (12 hex digits)."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:12]

    def compute(self, video: np.ndarray) -> np.ndarray:
        """The whole video's motion input (what training caches); ``MotionStream`` gives the same online."""
        if self.kind == "flow":
            return optical_flow(video, self.flow)
        if self.kind == "rgbf":
            return rgbf(video, self.flow)
        if self.kind == "stacked_flow":
            return scale_flow(optical_flow(video, self.flow), self.bound)
        return momp_images(video, self.momp)


# ------------------------------------------------------------------------------------- the live stream

# the motion inputs that replace a model's images: RGBF and MOMP images, and TSN-scaled flow fields (a flow
# stream's 2-channel images); raw float flow feeds no model
STREAMED = ("rgbf", "momp", "stacked_flow")


class MotionStream:
    """A live stream's motion images, one frame at a time: ``push(frame)`` returns the images that frame
    completes, so that pushing a video's frames gives exactly ``spec.compute(video)`` (``rgbf``: one image per
    frame, the first two together once the second arrives, since frame 0's flow looks ahead to frame 1;
    ``momp``: one per window of N frames, every ``stride`` frames; ``stacked_flow``: from the second frame on,
    the scaled flow field from the frame before to it). Frames are (H, W, 3) uint8 RGB at the
    size training computed motion at (``edge.preprocess.resize_short_side`` to the preprocessing's
    ``resize``). Each frame's flow or oriented cells are computed once."""

    def __init__(self, spec: MotionSpec) -> None:
        if spec.kind not in STREAMED:
            raise EdgeError(f"motion: the runtime computes {', '.join(STREAMED)} inputs, not {spec.kind!r}")
        self.spec = spec
        self.seen = 0
        self._prev: np.ndarray | None = None
        self._kernel = _gaussian(spec.momp)
        self._cells: deque[np.ndarray] = deque(maxlen=3)
        self._triplets: deque[np.ndarray] = deque(maxlen=spec.momp.n - 2)

    def push(self, frame: np.ndarray) -> list[np.ndarray]:
        self.seen += 1
        if self.spec.kind == "stacked_flow":
            return self._flow(frame)
        return self._rgbf(frame) if self.spec.kind == "rgbf" else self._momp(frame)

    def _flow(self, frame: np.ndarray) -> list[np.ndarray]:
        prev, self._prev = self._prev, frame
        if prev is None:
            return []
        return [scale_flow(optical_flow(np.stack([prev, frame]), self.spec.flow)[0], self.spec.bound)]

    def _rgbf(self, frame: np.ndarray) -> list[np.ndarray]:
        prev, self._prev = self._prev, frame
        if prev is None:
            return []
        if self.seen == 2:
            return list(rgbf(np.stack([prev, frame]), self.spec.flow))
        return [rgbf(frame[None], self.spec.flow, prev=prev)[0]]

    def _momp(self, frame: np.ndarray) -> list[np.ndarray]:
        p = self.spec.momp
        self._cells.append(_oriented_cells(frame, p, self._kernel))
        if len(self._cells) == 3:
            self._triplets.append(_triplet(*self._cells, p))
        if self.seen < p.n or (self.seen - p.n) % p.stride:
            return []
        return [_normalised(np.stack(self._triplets))]


class FrameFeed:
    """Camera frames -> the images a model's clip window takes: the frames themselves, or, for a model with a
    motion input (a bundle's ``motion``), the motion images each frame completes, computed at the size
    training computed them at (the shorter side resized to the preprocessing's ``resize``)."""

    def __init__(self, motion: MotionSpec | None, resize: int) -> None:
        self.stream = MotionStream(motion) if motion is not None else None
        self.resize = resize

    def __call__(self, rgb: np.ndarray) -> list[np.ndarray]:
        if self.stream is None:
            return [rgb]
        return self.stream.push(resize_short_side(rgb, self.resize))


__all__ = ["best_flow_method", "FLOW_METHODS", "KINDS", "STREAMED", "FlowParams", "FrameFeed", "TooFewFrames", "MompParams", "MotionSpec", "MotionStream",
           "confidence_map", "momp_image", "momp_images", "optical_flow", "rgbf", "scale_flow", "stack_flows", "stacked_flow", "tvl1_available"]
