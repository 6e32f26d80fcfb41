"""Charts drawn with Pillow alone (no matplotlib): the latent map's scatter,
one dot per image coloured by class, with each class named on the map and
in a legend; and line charts (the time-to-quality curves of `make bench`).

The palette is shared with the explorer page (vaegen serve), so a class has
the same colour in the PNG and in the browser. Imports numpy and Pillow only.
"""

from __future__ import annotations

import colorsys

import numpy as np
from PIL import Image, ImageDraw, ImageFont

# Tableau's ten categorical colours: distinct for most colour-blind readers too.
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf")
UNLABELLED = "#3b6ea5"
# Drawn at twice the size and scaled down: Pillow's dots have no anti-aliasing of their own.
SUPERSAMPLE = 2
MIN_SIZE, MAX_SIZE = 200, 4000


def class_colors(count: int) -> list[str]:
    """`count` distinct colours as '#rrggbb': the ten of PALETTE, then evenly spaced hues."""
    if count <= len(PALETTE):
        return list(PALETTE[:count])
    hues = [colorsys.hsv_to_rgb(i / count, 0.75, 0.85) for i in range(count)]
    return ["#" + "".join(f"{round(255 * c):02x}" for c in rgb) for rgb in hues]


def _rgb(color: str) -> tuple[int, int, int]:
    return tuple(int(color[i : i + 2], 16) for i in (1, 3, 5))


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):  # an old Pillow, or one built without FreeType
        return ImageFont.load_default()


def _scatter_layer(xy: np.ndarray, labels: np.ndarray, colors: list[str], size: int,
                   bounds: tuple[float, float, float, float], dot: float) -> Image.Image:
    """The dots alone, on a transparent square `size` pixels wide (supersampled)."""
    big = size * SUPERSAMPLE
    layer = Image.new("RGBA", (big, big), (255, 255, 255, 0))
    draw = ImageDraw.Draw(layer)
    x0, x1, y0, y1 = bounds
    px = (xy[:, 0] - x0) / (x1 - x0) * big
    py = (1 - (xy[:, 1] - y0) / (y1 - y0)) * big  # y grows upward on the map, downward in the image
    r = dot * SUPERSAMPLE
    fills = [(*_rgb(c), 170) for c in colors] or [(*_rgb(UNLABELLED), 170)]
    # A fixed shuffle: drawn in label order, the last class would cover the others.
    for i in np.random.default_rng(0).permutation(len(xy)):
        fill = fills[labels[i]] if 0 <= labels[i] < len(fills) else (*_rgb(UNLABELLED), 170)
        draw.ellipse([px[i] - r, py[i] - r, px[i] + r, py[i] + r], fill=fill)
    return layer.resize((size, size), Image.Resampling.LANCZOS)


def _name_clusters(draw: ImageDraw.ImageDraw, xy: np.ndarray, labels: np.ndarray, classes: list[str],
                   colors: list[str], origin: tuple[int, int], size: int,
                   bounds: tuple[float, float, float, float]) -> None:
    """Each class's name at the median of its dots, outlined in white so it reads over them."""
    x0, x1, y0, y1 = bounds
    font_size = max(14, size // 28)
    font, placed = _font(font_size), []
    for k, name in enumerate(classes):
        points = xy[labels == k]
        if not len(points):
            continue
        mx, my = np.median(points, axis=0)
        at = [origin[0] + (mx - x0) / (x1 - x0) * size, origin[1] + (1 - (my - y0) / (y1 - y0)) * size]
        # Two clusters can share a centre (4 and 9 often do): move the later name below the other.
        while any(abs(at[0] - px) < font_size * (len(name) + len(other)) * 0.35 and abs(at[1] - py) < font_size * 1.1
                  for px, py, other in placed):
            at[1] += font_size * 1.2
        placed.append((at[0], at[1], name))
        draw.text(tuple(at), name, fill=_rgb(colors[k]), font=font, anchor="mm", stroke_width=3, stroke_fill="white")


def _legend(draw: ImageDraw.ImageDraw, classes: list[str], colors: list[str], left: int, top: int,
            font_size: int) -> None:
    font = _font(font_size)
    row = round(font_size * 1.6)
    for k, (name, color) in enumerate(zip(classes, colors, strict=True)):
        y = top + k * row
        draw.ellipse([left, y + 2, left + font_size - 2, y + font_size], fill=_rgb(color))
        draw.text((left + font_size + 8, y + font_size // 2 + 1), name, fill=(40, 40, 40), font=font, anchor="lm")


def _vertical_caption(picture: Image.Image, text: str, at: tuple[int, int], length: int, band: int,
                      font: ImageFont.ImageFont, fill: tuple[int, int, int]) -> None:
    """`text` read bottom to top, centred in a band `band` pixels wide and `length`
    long whose top left is `at` (a y axis's caption)."""
    vertical = Image.new("RGBA", (length, band), (255, 255, 255, 0))
    ImageDraw.Draw(vertical).text((length // 2, band // 2), text, fill=fill, font=font, anchor="mm")
    rotated = vertical.rotate(90, expand=True)
    picture.paste(rotated, at, rotated)


def scatter_map(xy: np.ndarray, labels: np.ndarray, classes: list[str], *, bounds: tuple[float, float, float, float],
                size: int = 640, title: str = "", axes: tuple[str, str] = ("", "")) -> Image.Image:
    """A scatter of the points xy [N, 2] inside `bounds` (x_min, x_max, y_min,
    y_max) on a white RGB picture: a plot `size` pixels square, a title above,
    axis captions, and a legend on the right naming `classes` (labels 0..K-1;
    none, and every dot has one colour)."""
    size = int(min(max(size, MIN_SIZE), MAX_SIZE))
    xy = np.asarray(xy, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    colors = class_colors(len(classes))
    font_size = max(12, size // 40)
    pad, top = font_size * 2, font_size * 3
    legend_width = (max((len(c) for c in classes), default=0) * font_size * 0.62 + font_size * 3) if classes else 0
    picture = Image.new("RGB", (pad * 2 + size + round(legend_width), top + size + pad * 2), "white")
    draw = ImageDraw.Draw(picture)
    draw.text((pad, font_size), title, fill=(20, 20, 20), font=_font(round(font_size * 1.2)))
    draw.rectangle([pad - 1, top - 1, pad + size, top + size], outline=(200, 200, 200))
    dot = max(1.2, size / 400)
    dots = _scatter_layer(xy, labels, colors, size, bounds, dot)
    picture.paste(dots, (pad, top), dots)
    if classes:
        _name_clusters(draw, xy, labels, classes, colors, (pad, top), size, bounds)
        _legend(draw, classes, colors, pad * 2 + size - font_size, top, font_size)
    small = _font(font_size)
    draw.text((pad + size // 2, top + size + pad), axes[0], fill=(90, 90, 90), font=small, anchor="mm")
    _vertical_caption(picture, axes[1], (pad - font_size * 2, top), size, font_size * 2, small, (90, 90, 90))
    return picture


def axis_ticks(low: float, high: float, count: int = 6) -> list[float]:
    """Round tick values covering [low, high]: steps of 1, 2 or 5 times a power of ten."""
    raw = (high - low) / max(count, 1)
    power = 10 ** np.floor(np.log10(raw)) if raw > 0 else 1.0
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    return [float(v) for v in np.arange(np.ceil(low / step) * step, high + step * 1e-9, step)]


def line_chart(series: dict[str, list[tuple[float, float]]], *, x_range: tuple[float, float],
               y_range: tuple[float, float], title: str = "", axes: tuple[str, str] = ("", ""),
               guides: dict[str, float] | None = None, size: tuple[int, int] = (760, 440)) -> Image.Image:
    """Lines through each series' (x, y) points, a dot on each point, on a white
    RGB picture: a title above, ticks and captions on both axes, a legend on
    the right. `guides` draws dashed horizontal lines (label -> y). Points
    outside the ranges are clipped to the frame."""
    width, height = (int(min(max(s, MIN_SIZE), MAX_SIZE)) for s in size)
    font_size = max(12, height // 30)
    font, small = _font(font_size), _font(round(font_size * 0.9))
    legend_width = max((font.getlength(n) for n in series), default=0) + font_size * 4
    left, top, bottom = font_size * 5, font_size * 3, font_size * 4
    picture = Image.new("RGB", (left + width + round(legend_width), top + height + bottom), "white")
    draw = ImageDraw.Draw(picture)
    draw.text((left, font_size), title, fill=(20, 20, 20), font=_font(round(font_size * 1.2)))
    (x0, x1), (y0, y1) = x_range, y_range

    def at(x: float, y: float) -> tuple[float, float]:
        x, y = min(max(x, x0), x1), min(max(y, y0), y1)
        return left + (x - x0) / (x1 - x0) * width, top + (1 - (y - y0) / (y1 - y0)) * height

    for x in axis_ticks(x0, x1):
        px, _ = at(x, y0)
        draw.line([px, top, px, top + height], fill=(235, 235, 235))
        draw.text((px, top + height + font_size * 0.4), f"{x:g}", fill=(90, 90, 90), font=small, anchor="ma")
    for y in axis_ticks(y0, y1):
        _, py = at(x0, y)
        draw.line([left, py, left + width, py], fill=(235, 235, 235))
        draw.text((left - font_size * 0.4, py), f"{y:g}", fill=(90, 90, 90), font=small, anchor="rm")
    draw.rectangle([left, top, left + width, top + height], outline=(170, 170, 170))
    for label, y in (guides or {}).items():
        _, py = at(x0, y)
        for sx in range(left, left + width, 12):
            draw.line([sx, py, min(sx + 6, left + width), py], fill=(120, 120, 120))
        draw.text((left + width - 4, py - 3), label, fill=(90, 90, 90), font=small, anchor="rd")
    colors = class_colors(len(series))
    for points, color in zip(series.values(), colors, strict=True):
        xy = [at(x, y) for x, y in points]
        if len(xy) > 1:
            draw.line(xy, fill=_rgb(color), width=3, joint="curve")
        for px, py in xy:
            draw.ellipse([px - 4, py - 4, px + 4, py + 4], fill=_rgb(color))
    _legend(draw, list(series), colors, left + width + font_size, top, font_size)
    draw.text((left + width / 2, top + height + font_size * 2.2), axes[0], fill=(60, 60, 60), font=font, anchor="ma")
    _vertical_caption(picture, axes[1], (font_size // 2, top), height, font_size * 2, font, (60, 60, 60))
    return picture
