"""Procedural photos of products other than castings, with real periodic surface texture.

The noise-type classifier learns "periodic interference" from sinusoids added to photos. Trained on castings
alone it calls real texture periodic too: lathe rings, knurling, brushing, weaves. This module draws such
parts, so the noise model can be trained product-independently and its false "periodic" rate measured on
clean textured parts. It is opt-in (``write_synthetic_dataset(..., products=...)``, ``inspection synth
--products``): the casting default and its seed-0 bytes are untouched.

Contract of :func:`synth_part`: a 2-D ``uint8`` photo ``size`` x ``size``; every random choice comes from
``rng``, so a seed gives the same photo. Each non-casting part covers 50-95% of the frame side at a random
position, on a dark or light background, under a random lighting gradient and a mild optical blur. Lengths
(periods, widths) are in pixels at 160 px and scale with ``size``. Textures are rendered at twice the
resolution and averaged down, so fine periods do not alias into moire that real photos would not show.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence

import cv2
import numpy as np

from inspection.data import ALL_DEFECT_KINDS, DEFECT_KINDS, synth_casting

PRODUCTS = ("casting", "turned", "knurled", "brushed", "tile")
TEXTURED_PRODUCTS = ("turned", "knurled", "brushed", "tile")
_SUPERSAMPLE = 2


def synth_part(
    rng: np.random.Generator, size: int = 160, product: str = "casting", defect: str | None = None
) -> np.ndarray:
    """Draw one photo of ``product``; ``defect`` adds one of ``ALL_DEFECT_KINDS``.

    ``casting`` is :func:`inspection.data.synth_casting`, unchanged. The textured products and their periods
    (pixels at 160 px): ``turned`` lathe-faced disc, rings 2.5-8; ``knurled`` diamond knurl, 3-10 at +/-30-45
    deg; ``brushed`` sheet, fine streaks plus optional rolling marks every 5-16; ``tile`` weave or grouted
    tiles, 6-24.

    Raises:
        ValueError: an unknown product or defect kind.
    """
    if product not in PRODUCTS:
        raise ValueError(f"unknown product {product!r}; expected one of {PRODUCTS}")
    if defect is not None and defect not in ALL_DEFECT_KINDS:
        raise ValueError(f"unknown defect kind {defect!r}; expected one of {ALL_DEFECT_KINDS}")
    if product == "casting":
        return synth_casting(rng, size, defect)
    s = size / 160.0
    n = size * _SUPERSAMPLE
    # Pixel centres of the supersampled grid, in output pixel units.
    ax = (np.arange(n, dtype=np.float32) + 0.5) / _SUPERSAMPLE - 0.5
    xx, yy = np.meshgrid(ax, ax)
    radiance, cover = _DRAW[product](rng, size, s, xx, yy)
    down = (size, size)
    cover1 = cv2.resize(cover, down, interpolation=cv2.INTER_AREA)
    part = cv2.resize(radiance * cover, down, interpolation=cv2.INTER_AREA)

    dark = rng.random() < 0.5
    bg_level = rng.uniform(15, 60) if dark else rng.uniform(165, 225)
    background = bg_level + rng.uniform(2, 8) * _smooth_field(rng, size, 4)
    img = part + background * (1 - cover1)
    # Lighting and optics are drawn before the defect, so a seed gives the same photo with and without one.
    y1, x1 = np.mgrid[0:size, 0:size].astype(np.float32) / size - 0.5
    a = rng.uniform(0, 2 * math.pi)
    gradient = rng.uniform(0.05, 0.35) * (math.cos(a) * x1 + math.sin(a) * y1)
    lighting = 1 + gradient - rng.uniform(0, 0.2) * (x1**2 + y1**2)
    blur = rng.uniform(0.45, 0.8) * s
    if defect is not None:
        _add_defect(img, rng, defect, cover1 > 0.5, background, s)
    img = cv2.GaussianBlur(img * lighting, (0, 0), blur)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def synth_product_samples(
    n: int,
    rng: np.random.Generator,
    size: int = 160,
    products: Sequence[str] = PRODUCTS,
    defect_share: float = 0.5,
    kinds: Sequence[str] = DEFECT_KINDS,
) -> Iterator[tuple[np.ndarray, int, str, str]]:
    """Yield ``n`` photos as ``(image, label, defect_kind_or_ok, product)``, products drawn uniformly."""
    products = check_products(products)
    for _ in range(n):
        product = products[int(rng.integers(len(products)))]
        if rng.random() < defect_share:
            kind = str(rng.choice(kinds))
            yield synth_part(rng, size, product, kind), 1, kind, product
        else:
            yield synth_part(rng, size, product), 0, "ok", product


def check_products(products: Sequence[str]) -> tuple[str, ...]:
    """``products`` as a tuple, refused when empty or when it names a product not in ``PRODUCTS``."""
    products = tuple(products)
    unknown = sorted(set(products) - set(PRODUCTS))
    if unknown or not products:
        raise ValueError(f"unknown or no product(s) {unknown or list(products)}; expected some of {PRODUCTS}")
    return products


# --- shared pieces ----------------------------------------------------------------------------------


def _smooth_field(rng: np.random.Generator, n: int, cells: int) -> np.ndarray:
    """Smooth zero-mean noise of about unit spread on an ``n`` x ``n`` grid, ``cells`` blobs across."""
    coarse = rng.normal(0, 1, (cells + 3, cells + 3)).astype(np.float32)
    big = cv2.resize(coarse, (n * (cells + 3) // cells,) * 2, interpolation=cv2.INTER_CUBIC)
    o = n * 3 // (2 * cells)
    return big[o : o + n, o : o + n]


def _place(
    rng: np.random.Generator, size: int, half_w: float, half_h: float, angle: float = 0.0
) -> tuple[float, float]:
    """A random centre that keeps a part of these half extents, turned by ``angle``, inside the frame.

    A turned part whose bounding box is wider than the frame is centred on that axis, its corners cut.
    """
    c, s = abs(math.cos(angle)), abs(math.sin(angle))
    box_w, box_h = min(half_w * c + half_h * s, size / 2), min(half_w * s + half_h * c, size / 2)
    return rng.uniform(box_w, size - box_w), rng.uniform(box_h, size - box_h)


def _edge(d: np.ndarray, width: float = 0.5) -> np.ndarray:
    """Coverage from a signed distance (negative inside), anti-aliased over about one pixel."""
    return np.clip(0.5 - d / (2 * width), 0, 1).astype(np.float32)


def _rect_distance(u: np.ndarray, v: np.ndarray, half_w: float, half_h: float, corner: float) -> np.ndarray:
    """Signed distance to a rounded rectangle centred at 0 in its own axes ``u``, ``v``."""
    qu, qv = np.abs(u) - half_w + corner, np.abs(v) - half_h + corner
    outside = np.hypot(np.maximum(qu, 0), np.maximum(qv, 0))
    return outside + np.minimum(np.maximum(qu, qv), 0) - corner


def _axes(xx, yy, cx: float, cy: float, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates along and across direction ``angle`` (radians) about the centre ``cx, cy``."""
    c, s = math.cos(angle), math.sin(angle)
    dx, dy = xx - cx, yy - cy
    return dx * c + dy * s, dy * c - dx * s


def _sign(rng: np.random.Generator) -> float:
    return 1.0 if rng.random() < 0.5 else -1.0


def _grain(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> np.ndarray:
    return cv2.GaussianBlur(rng.normal(0, 1, shape).astype(np.float32), (0, 0), sigma)


# --- the products: each returns (radiance, coverage) on the supersampled grid -------------------------


def _turned(rng, size, s, xx, yy):
    """A faced disc: tool-nose scallops in rings, feed irregularity, chatter, the bow-tie highlight, a bore."""
    r_out = 0.5 * size * rng.uniform(0.5, 0.95)
    cx, cy = _place(rng, size, r_out, r_out)
    dx, dy = xx - cx, yy - cy
    dist, theta = np.hypot(dx, dy), np.arctan2(dy, dx)
    period = rng.uniform(2.5, 8) * s  # finer rings would be lost in the optics' blur
    # Radial profile on a fine 1-D grid: the local feed drifts, single rings cut deeper, broad bands of wear.
    step = 0.1
    r = np.arange(0, r_out + 3, step, dtype=np.float32)
    drift = cv2.resize(
        rng.normal(0, 1, (1, 12)).astype(np.float32), (r.size, 1), interpolation=cv2.INTER_CUBIC
    )
    phase = np.cumsum((1 + rng.uniform(0.03, 0.1) * drift[0]) * step / period)
    ring = phase.astype(np.int32)
    n_rings = int(ring[-1]) + 1
    depth = rng.lognormal(0, 0.2, n_rings) * np.where(rng.random(n_rings) < 0.05, 1.8, 1.0)
    frac = phase - ring
    sawtooth = (frac - 0.5) * 2  # the lit and shaded flanks of each scallop
    groove = np.exp(-(((frac - rng.uniform(0.3, 0.7)) / 0.12) ** 2))
    bands = cv2.resize(
        rng.normal(0, 1, (1, 8)).astype(np.float32), (r.size, 1), interpolation=cv2.INTER_CUBIC
    )
    profile = depth[ring] * (sawtooth - rng.uniform(0.3, 1.0) * groove) + 0.3 * bands[0]
    chatter_amp = rng.uniform(0, 0.15) * period if rng.random() < 0.5 else 0.0  # tool vibration
    chatter = chatter_amp * np.sin(int(rng.integers(3, 14)) * theta + rng.uniform(0, 2 * math.pi))
    tex = np.interp(dist + chatter, r, profile).astype(np.float32)

    light = rng.uniform(0, 2 * math.pi)
    along = np.cos(theta - light)
    amp = rng.uniform(14, 34)
    metal = rng.uniform(95, 170)
    # Rings scatter light sideways: a bright band through the centre, across the light (the "bow-tie").
    bowtie = rng.uniform(20, 60) * np.exp(-(np.cos(theta - light) ** 2) / rng.uniform(0.02, 0.15))
    img = metal + amp * (0.45 + 0.55 * np.abs(along)) * tex + bowtie
    img += 3.0 * _grain(rng, xx.shape, 0.7 * _SUPERSAMPLE)
    # Centre bore with a chamfer, and a chamfer at the rim.
    r_bore = r_out * rng.uniform(0.08, 0.25)
    chamfer = rng.uniform(1.0, 2.5) * s
    img = np.where(dist < r_bore + chamfer, metal + rng.uniform(-40, 45) * along, img)
    img = np.where(dist < r_bore, rng.uniform(5, 35), img)
    rim = rng.uniform(1.0, 3.0) * s
    img = np.where(dist > r_out - rim, metal + rng.uniform(-35, 40) * along, img)
    return img.astype(np.float32), _edge(dist - r_out)


def _knurled(rng, size, s, xx, yy):
    """A knurled face: pyramids between two crossed ridge families, each facet lit by its slope."""
    if rng.random() < 0.5:
        r_out = 0.5 * size * rng.uniform(0.5, 0.95)
        cx, cy = _place(rng, size, r_out, r_out)
        d_part = np.hypot(xx - cx, yy - cy) - r_out
    else:
        half_w, half_h = (0.5 * size * rng.uniform(0.5, 0.95, 2)).tolist()
        cx, cy = _place(rng, size, half_w, half_h)
        d_part = _rect_distance(xx - cx, yy - cy, half_w, half_h, rng.uniform(1, 6) * s)
    margin = rng.uniform(2, 8) * s
    period = rng.uniform(3, 10) * s
    axis, half_angle = rng.uniform(0, math.pi), math.radians(rng.uniform(30, 45))
    warp = 0.06 * _smooth_field(rng, xx.shape[0], 5)
    a1, a2 = axis + half_angle, axis - half_angle
    u = _axes(xx, yy, cx, cy, a1)[0] / period + warp
    v = _axes(xx, yy, cx, cy, a2)[0] / period - warp
    fu, fv = u - np.floor(u), v - np.floor(v)
    # Triangle waves: 1 on a ridge line, 0 in a groove; a pyramid is where both are high.
    tu, tv = 1 - 2 * np.abs(fu - 0.5), 1 - 2 * np.abs(fv - 0.5)
    height = np.minimum(tu, tv)
    light = rng.uniform(0, 2 * math.pi)
    # Slope of the active facet along the light: sign of the triangle wave times its family's direction.
    su = -np.sign(fu - 0.5) * math.cos(a1 - light)
    sv = -np.sign(fv - 0.5) * math.cos(a2 - light)
    slope = np.where(tu < tv, su, sv)
    worn = height > rng.uniform(0.75, 0.98)  # flattened tips
    metal = rng.uniform(90, 160)
    img = metal + rng.uniform(25, 50) * np.where(worn, 0.4, slope) - rng.uniform(15, 40) * (1 - height) ** 2
    img += 3.0 * _grain(rng, xx.shape, 0.7 * _SUPERSAMPLE)
    img = np.where(d_part > -margin, metal + rng.uniform(-20, 30), img)  # smooth chamfered border
    return img.astype(np.float32), _edge(d_part)


def _brushed(rng, size, s, xx, yy):
    """A brushed or rolled plate: fine streaks of varied length and contrast, optional rolling marks."""
    half_w, half_h = (0.5 * size * rng.uniform(0.5, 0.95, 2)).tolist()
    tilt = math.radians(rng.uniform(-8, 8))
    cx, cy = _place(rng, size, half_w, half_h, tilt)
    n = xx.shape[0]
    # Streaks are drawn horizontally on a square big enough for any rotation, then turned into place.
    m = int(np.ceil(n * 1.45))
    streaks = np.zeros((m, m), np.float32)
    for cells in (2, 5, 14):  # along the streaks: long, medium and short streaks
        coarse = rng.normal(0, 1, (m, cells)).astype(np.float32)
        coarse *= rng.lognormal(0, 0.5, (m, 1)).astype(np.float32)  # some streaks deeper than others
        streaks += cv2.resize(coarse, (m, m), interpolation=cv2.INTER_CUBIC) * rng.uniform(0.4, 1.0)
    for _ in range(int(rng.integers(20, 60))):  # individual deeper scratches
        y, x0 = rng.uniform(0, m), rng.uniform(-0.3, 1.0) * m
        x1 = x0 + rng.uniform(0.05, 0.6) * m
        p0, p1 = (int(x0 * 16), int(y * 16)), (int(x1 * 16), int(y * 16))
        cv2.line(streaks, p0, p1, _sign(rng) * rng.uniform(1, 4), 1, cv2.LINE_AA, shift=4)
    streaks /= streaks.std() + 1e-6
    if rng.random() < 0.5:  # rolling (chatter) marks across the streaks at a regular pitch
        pitch = rng.uniform(5, 16) * s * _SUPERSAMPLE
        col = np.arange(m, dtype=np.float32) / pitch + 0.05 * rng.normal(0, 1, m).cumsum() / np.sqrt(m)
        marks = np.exp(-(((col - np.round(col)) / rng.uniform(0.12, 0.3)) ** 2)).astype(np.float32)
        streaks += (
            rng.uniform(0.3, 0.9) * marks[None, :] * (1 + 0.3 * rng.normal(0, 1, (m, 1)).astype(np.float32))
        )
    angle = rng.uniform(-180, 180)
    rot = cv2.getRotationMatrix2D((m / 2, m / 2), angle, 1.0)
    rot[:, 2] += (n / 2 - m / 2) + np.array([cx - size / 2, cy - size / 2]) * _SUPERSAMPLE
    rotated = cv2.warpAffine(streaks, rot, (n, n), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    d_part = _rect_distance(*_axes(xx, yy, cx, cy, tilt), half_w, half_h, rng.uniform(0, 4) * s)
    metal = rng.uniform(90, 190)
    sheen = rng.uniform(5, 20) * _smooth_field(rng, n, 3)
    img = metal + rng.uniform(6, 16) * rotated + sheen
    edge = rng.uniform(1, 2.5) * s  # a sheared edge catches the light differently
    img = np.where(d_part > -edge, metal + rng.uniform(-30, 30), img)
    return img.astype(np.float32), _edge(d_part)


def _tile(rng, size, s, xx, yy):
    """A ceramic tile of small grouted tiles, or a woven tile (plain or basket weave), with speckle."""
    half_w, half_h = (0.5 * size * rng.uniform(0.5, 0.95, 2)).tolist()
    phi = math.radians(rng.uniform(-30, 30))
    cx, cy = _place(rng, size, half_w, half_h, phi)
    n = xx.shape[0]
    period = rng.uniform(6, 24) * s
    d_part = _rect_distance(*_axes(xx, yy, cx, cy, phi), half_w, half_h, rng.uniform(0, 3) * s)
    warp = 0.02 * _smooth_field(rng, n, 6)
    u, v = _axes(xx, yy, cx, cy, phi + math.radians(rng.uniform(-3, 3)))  # the pattern sits slightly askew
    u, v = u / period + warp, v / period - warp
    base = rng.uniform(80, 200)
    if rng.random() < 0.5:
        if rng.random() < 0.4:  # running bond: every other row offset by half a tile
            u = u + 0.5 * (np.floor(v) % 2)
        iu, iv = np.floor(u), np.floor(v)
        fu, fv = u - iu, v - iv
        shade = rng.normal(0, rng.uniform(3, 10), (64, 64)).astype(np.float32)
        img = base + shade[(iu % 64).astype(np.intp), (iv % 64).astype(np.intp)]
        light, bevel = rng.uniform(0, 2 * math.pi), 0.12
        lit = math.cos(light) * (
            np.clip((bevel - fu) / bevel, 0, 1) - np.clip((fu - 1 + bevel) / bevel, 0, 1)
        )
        lit += math.sin(light) * (
            np.clip((bevel - fv) / bevel, 0, 1) - np.clip((fv - 1 + bevel) / bevel, 0, 1)
        )
        img += rng.uniform(10, 30) * lit
        half_grout = rng.uniform(0.03, 0.08)
        in_grout = (np.abs(fu - 0.5) > 0.5 - half_grout) | (np.abs(fv - 0.5) > 0.5 - half_grout)
        img = np.where(in_grout, base + _sign(rng) * rng.uniform(30, 70), img)
    else:
        k = 1 if rng.random() < 0.6 else 2  # threads per block: plain weave or basket weave
        u2, v2 = 2 * u, 2 * v  # thread coordinates: two threads per period
        iu, iv = np.floor(u2), np.floor(v2)
        fu, fv = u2 - iu, v2 - iv
        weft_on_top = (np.floor(iu / k) + np.floor(iv / k)) % 2 == 0
        across = np.where(weft_on_top, fv, fu)
        along = np.where(weft_on_top, (iu % k + fu) / k, (iv % k + fv) / k)  # 0..1 over the block
        bulge = np.sqrt(np.clip(1 - (2 * across - 1) ** 2, 0, 1))  # a round thread seen from above
        dip = np.sqrt(np.sin(math.pi * along))  # the thread dives under its neighbour at the block's ends
        twist = np.sin(2 * math.pi * (2 * across + 3 * k * along))  # the yarn's twist as slanted fibres
        # Each yarn has its own tone, and warp and weft may differ.
        yarn = rng.normal(0, rng.uniform(2, 8), (2, 64)).astype(np.float32)
        tone = np.where(weft_on_top, yarn[0][(iv % 64).astype(np.intp)], yarn[1][(iu % 64).astype(np.intp)])
        tone += np.where(weft_on_top, rng.uniform(-15, 15), 0.0)
        img = (base + tone) * (0.45 + 0.55 * bulge * dip) + rng.uniform(3, 8) * twist * bulge
    speckle = rng.random(xx.shape) < rng.uniform(0.002, 0.01)
    img = img + rng.uniform(-50, 50) * speckle + 3.0 * _grain(rng, xx.shape, 0.6 * _SUPERSAMPLE)
    border = rng.uniform(0.5, 3) * s
    img = np.where(d_part > -border, base + rng.uniform(-25, 25), img)
    return img.astype(np.float32), _edge(d_part)


_DRAW: dict[str, Callable[..., tuple[np.ndarray, np.ndarray]]] = {
    "turned": _turned,
    "knurled": _knurled,
    "brushed": _brushed,
    "tile": _tile,
}


# --- defects ----------------------------------------------------------------------------------------


def _add_defect(
    img: np.ndarray, rng: np.random.Generator, kind: str, part: np.ndarray, background: np.ndarray, s: float
) -> None:
    """Draw ``kind`` simply on the part (``part``: bool mask), in place: a generic look, not a product's."""
    inner = cv2.erode(part.astype(np.uint8), np.ones((3, 3), np.uint8), iterations=max(1, round(6 * s)))
    ys, xs = np.nonzero(inner if inner.any() else part)
    edge_ys, edge_xs = np.nonzero(
        part & ~cv2.erode(part.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    )
    yy, xx = np.mgrid[0 : img.shape[0], 0 : img.shape[1]].astype(np.float32)

    def at(ys_, xs_) -> tuple[float, float, np.ndarray]:
        i = int(rng.integers(len(ys_)))
        return float(xs_[i]), float(ys_[i]), np.hypot(xx - xs_[i], yy - ys_[i])

    level = float(np.median(img[part]))
    if kind in ("blowhole", "pinholes", "shrinkage"):
        lo, hi = {"blowhole": (3.0, 6.0), "pinholes": (1.2, 2.2), "shrinkage": (6.0, 10.0)}[kind]
        for _ in range(int(rng.integers(4, 10)) if kind == "pinholes" else 1):
            _, _, d = at(ys, xs)
            hole = d < rng.uniform(lo, hi) * s
            if kind == "shrinkage":  # an irregular sunken patch
                hole &= _grain(rng, img.shape, 2.0 * s) > 0.1
            img[hole] = rng.uniform(10, 40) if kind != "shrinkage" else img[hole] - rng.uniform(45, 70)
    elif kind in ("crack", "scratch"):
        x, y, _ = at(ys, xs)
        a, pts = rng.uniform(0, 2 * math.pi), [(x, y)]
        steps, turn, step = (int(rng.integers(6, 12)), 0.5, 4.0) if kind == "crack" else (1, 0.0, 60.0)
        for _ in range(steps):
            a += rng.normal(0, turn) if turn else 0.0
            x, y = x + step * s * math.cos(a), y + step * s * math.sin(a)
            pts.append((x, y))
        line = np.zeros(img.shape, np.float32)
        poly = [np.round(np.array(pts) * 4).astype(np.int32)]
        cv2.polylines(line, poly, False, 1.0, max(1, round(1.2 * s)), cv2.LINE_AA, shift=2)
        sign = -1.0 if kind == "crack" else _sign(rng)
        img += sign * rng.uniform(50, 80) * line * part
    elif kind == "missing_material":  # a bite out of the edge shows the background
        _, _, d = at(edge_ys, edge_xs)
        bite = d < rng.uniform(6, 14) * s
        img[bite] = background[bite]
    elif kind in ("burr", "inclusion"):
        _, _, d = at(*((edge_ys, edge_xs) if kind == "burr" else (ys, xs)))
        rad = rng.uniform(2.0, 4.0) * s
        if kind == "inclusion":
            img[(d < 2.2 * rad) & (_grain(rng, img.shape, s) > 0.15)] = level - rng.uniform(40, 60)
        img[d < rad] = rng.uniform(200, 235)
