"""Procedural image–caption pairs: one to three coloured shapes on a plain background.

Images are rendered with vectorized numpy at the model's image size (thousands per second on one
core); captions describe the main object (shape, colour, size, position, background) and the
others, in several templates with synonyms. An image's label is its main object's colour (every
caption names it, so a small model learns it early) or, with label="shape", its main object's shape.
Everything is a function of the seed.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

from raygap.data.images import TensorImages
from raygap.data.sets import ImageTextSet, ModelInputs, tokenize_unique

SHAPES = ("circle", "square", "triangle", "diamond", "cross", "ring")
SHAPE_WORDS = {
    "circle": ("circle", "disc"),
    "square": ("square", "box"),
    "triangle": ("triangle",),
    "diamond": ("diamond", "rhombus"),
    "cross": ("cross", "plus sign"),
    "ring": ("ring", "hoop"),
}
COLORS = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (50, 80, 230),
    "yellow": (240, 220, 40),
    "purple": (150, 60, 200),
    "orange": (250, 140, 30),
    "white": (245, 245, 245),
    "black": (20, 20, 20),
    "gray": (128, 128, 128),
}
SIZES = (("small", 0.14, ("small", "tiny")), ("medium", 0.2, ("medium", "mid-sized")), ("large", 0.27, ("large", "big")))
POSITIONS = ("top left", "top", "top right", "left", "center", "right", "bottom left", "bottom", "bottom right")
TEMPLATES = (
    "a {size} {color} {shape} {where} on {a_bg} background",
    "{a_color} {shape} {where}",
    "{bg} background with a {size} {color} {shape}",
    "there is {a_color} {shape} {where}",
    "a photo of a {size} {color} {shape}",
)


def _shape_mask(shape: int, dx: np.ndarray, dy: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Pixels inside `SHAPES[shape]` centred at the origin with radius r (dx, dy in pixels, y down)."""
    r = r[:, None, None]
    name = SHAPES[shape]
    if name == "circle":
        return dx**2 + dy**2 <= r**2
    if name == "square":
        return np.maximum(abs(dx), abs(dy)) <= 0.85 * r
    if name == "triangle":
        return (dy <= 0.7 * r) & (abs(dx) <= (dy + r) / 1.7)
    if name == "diamond":
        return abs(dx) + abs(dy) <= r
    if name == "cross":
        return ((abs(dx) <= r / 3) & (abs(dy) <= r)) | ((abs(dy) <= r / 3) & (abs(dx) <= r))
    dist2 = dx**2 + dy**2  # ring
    return (dist2 <= r**2) & (dist2 >= (0.55 * r) ** 2)


def _synonym(words: tuple[str, ...], pick: int) -> str:
    return words[pick % len(words)]


def _article(word: str) -> str:
    return ("an " if word[0] in "aeiou" else "a ") + word


@dataclass(frozen=True)
class _Scenes:
    """What each image shows, as arrays drawn once: slot 0 is the main object, slots 1–2 the extras
    (drawn for every image, shown only where `n_objects` reaches them)."""

    n_objects: np.ndarray
    shape: np.ndarray
    size_id: np.ndarray
    bg: np.ndarray
    color: np.ndarray
    position: np.ndarray
    jitter: np.ndarray
    brightness: np.ndarray


def _draw_scenes(rng: np.random.Generator, size: int, max_objects: int) -> _Scenes:
    """Every image's objects and background in one batch of draws; their order fixes the data set
    for a seed, so it must not change."""
    n_objects = rng.integers(1, max_objects + 1, size)
    shape = rng.integers(0, len(SHAPES), (size, 3))
    size_id = rng.integers(0, len(SIZES), (size, 3))
    bg = rng.integers(0, len(COLORS), size)
    # Object colours differ from the background: draw among the others.
    color = (bg[:, None] + rng.integers(1, len(COLORS), (size, 3))) % len(COLORS)
    # The main object's position is described; the others take distinct cells of the 3×3 grid.
    position = np.argsort(rng.random((size, len(POSITIONS))), axis=1)[:, :3]
    jitter = rng.uniform(-0.06, 0.06, (size, 3, 2))
    brightness = rng.integers(-25, 26, (size, 3, 1))
    return _Scenes(n_objects, shape, size_id, bg, color, position, jitter, brightness)


def _object_mask(scenes: _Scenes, sl: slice, slot: int, image_size: int) -> np.ndarray:
    """Pixels covered by object `slot` of the images in `sl` (none where the image has fewer objects)."""
    grid = np.arange(image_size) + 0.5
    radius_frac = np.array([s[1] for s in SIZES])
    present = scenes.n_objects[sl] > slot
    cell = scenes.position[sl, slot]
    cx = ((cell % 3) * 0.25 + 0.25 + scenes.jitter[sl, slot, 0]) * image_size
    cy = ((cell // 3) * 0.25 + 0.25 + scenes.jitter[sl, slot, 1]) * image_size
    r = radius_frac[scenes.size_id[sl, slot]] * image_size
    dx = grid[None, None, :] - cx[:, None, None]
    dy = grid[None, :, None] - cy[:, None, None]
    mask = np.zeros((len(present), image_size, image_size), dtype=bool)
    for s in range(len(SHAPES)):
        rows = (scenes.shape[sl, slot] == s) & present
        if rows.any():
            mask[rows] = _shape_mask(s, dx[rows], dy[rows], r[rows])
    return mask


def _render(scenes: _Scenes, image_size: int, chunk: int) -> np.ndarray:
    """uint8 [n, 3, H, W] images, `chunk` at a time to bound the float temporaries."""
    palette = np.array(list(COLORS.values()), dtype=np.int16)
    size = len(scenes.bg)
    images = np.empty((size, 3, image_size, image_size), dtype=np.uint8)
    for start in range(0, size, chunk):
        sl = slice(start, min(start + chunk, size))
        canvas = np.broadcast_to(palette[scenes.bg[sl]][:, :, None, None], (sl.stop - start, 3, image_size, image_size)).copy()
        # Paint the extra objects first so the main object (slot 0) is always on top.
        for slot in (2, 1, 0):
            mask = _object_mask(scenes, sl, slot, image_size)
            fill = np.clip(palette[scenes.color[sl, slot]] + scenes.brightness[sl, slot], 0, 255)
            canvas = np.where(mask[:, None], fill[:, :, None, None], canvas)
        images[sl] = canvas
    return images


def _write_captions(rng: np.random.Generator, scenes: _Scenes, captions_per_image: int) -> tuple[list[str], np.ndarray]:
    """`captions_per_image` captions per image in distinct templates, and each caption's image."""
    color_names = list(COLORS)
    size = len(scenes.bg)
    # Word choices are drawn as arrays up front: per-caption rng calls would dominate the cost.
    n_captions = size * captions_per_image
    template = np.argsort(rng.random((size, len(TEMPLATES))), axis=1)[:, :captions_per_image].ravel().tolist()
    synonym = rng.integers(0, 2, (n_captions, 5)).tolist()
    shape_l, color_l, size_l = scenes.shape.tolist(), scenes.color.tolist(), scenes.size_id.tolist()
    position_l, bg_l, n_objects_l = scenes.position[:, 0].tolist(), scenes.bg.tolist(), scenes.n_objects.tolist()
    captions, caption_image = [], []
    for j in range(n_captions):
        i, pick = j // captions_per_image, synonym[j]
        shape_words = [_synonym(SHAPE_WORDS[SHAPES[shape_l[i][k]]], pick[k]) for k in range(n_objects_l[i])]
        size_words = SIZES[size_l[i][0]][2]
        text = TEMPLATES[template[j]].format(
            size=_synonym(size_words, pick[3]),
            color=color_names[color_l[i][0]],
            a_color=_article(color_names[color_l[i][0]]),
            shape=shape_words[0],
            where=("in the " if pick[4] else "at the ") + POSITIONS[position_l[i]],
            bg=color_names[bg_l[i]],
            a_bg=_article(color_names[bg_l[i]]),
        )
        extras = "".join(f" and {_article(color_names[color_l[i][k]])} {shape_words[k]}" for k in range(1, n_objects_l[i]))
        captions.append(text + extras)
        caption_image.append(i)
    return captions, np.array(caption_image)


def _add_caption_noise(
    rng: np.random.Generator, captions: list[str], caption_image: np.ndarray, size: int, captions_per_image: int, caption_noise: float
) -> None:
    """Replace each caption, with probability `caption_noise`, by one of another image's captions
    (a mismatched pair), in place; donors are the clean captions, never already swapped ones."""
    if caption_noise > 0 and size > 1:
        noisy = np.flatnonzero(rng.random(len(captions)) < caption_noise)
        donors = (caption_image[noisy] + rng.integers(1, size, len(noisy))) % size
        originals = list(captions)
        for j, donor in zip(noisy, donors):
            captions[j] = originals[donor * captions_per_image + rng.integers(captions_per_image)]


def generate(
    size: int,
    image_size: int,
    seed: int = 0,
    captions_per_image: int = 1,
    caption_noise: float = 0.0,
    max_objects: int = 3,
    label: str = "color",
    chunk: int = 2048,
) -> tuple[np.ndarray, list[str], np.ndarray, np.ndarray]:
    """Return (images uint8 [n, 3, H, W], captions, caption_image [n·c], labels [n])."""
    rng = np.random.default_rng(seed)
    scenes = _draw_scenes(rng, size, max_objects)
    images = _render(scenes, image_size, chunk)
    captions, caption_image = _write_captions(rng, scenes, captions_per_image)
    _add_caption_noise(rng, captions, caption_image, size, captions_per_image, caption_noise)
    return images, captions, caption_image, (scenes.color if label == "color" else scenes.shape)[:, 0].copy()


def class_names(label: str = "color") -> list[str]:
    """Names of the label classes, phrased to fill "a photo of a {label}."."""
    return [f"{c} shape" for c in COLORS] if label == "color" else list(SHAPES)


# A study's trials (in reused trial processes) and the bench draw the same synthetic sets again
# and again; drawing 1,024 images at 224 px takes seconds. Nothing downstream writes into them.
_generate_cached = functools.lru_cache(maxsize=4)(generate)


def load(source, bundle: ModelInputs, train: bool) -> ImageTextSet:
    """A `synthetic` source at `bundle`'s image size, captions tokenized."""
    pixels, captions, caption_image, labels = _generate_cached(
        size=source.size,
        image_size=bundle.image_size,
        seed=source.seed,
        captions_per_image=source.captions_per_image,
        caption_noise=source.caption_noise,
        max_objects=source.max_objects,
        label=source.label,
    )
    return ImageTextSet(
        images=TensorImages(pixels, bundle.preprocess.mean, bundle.preprocess.std),
        tokens=tokenize_unique(captions, bundle.tokenize),
        caption_image=torch.from_numpy(caption_image),
        labels=torch.from_numpy(labels),
        class_names=class_names(source.label),
    )
