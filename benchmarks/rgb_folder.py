"""Build an RGB class-folder dataset for trying ganaug on colour images, offline.

Fashion-MNIST items (the project's fetched copy in data/raw/fashion-mnist), each drawn in a random
saturated colour at a random place on a random patch of scikit-learn's two bundled photographs
(china.jpg, flower.jpg): <out>/<class_name>/<i>.png at --size px. The label is the item's class;
colour and background carry no label information, so a classifier must learn the shape.

    python benchmarks/rgb_folder.py /tmp/rgb-fashion --per-class 300 --size 64
"""

from __future__ import annotations

import argparse
import colorsys
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.datasets import load_sample_images

from ganaug.data.sources import get_source
from ganaug.params import load_params


def build(out: Path, per_class: int, size: int, seed: int = 0) -> None:
    raw = get_source("fashion-mnist").load(Path("data/raw/fashion-mnist"), load_params().data)
    photos = [np.asarray(p) for p in load_sample_images().images]
    rng = np.random.default_rng(seed)
    item_size = int(round(0.75 * size))
    for c, name in enumerate(raw.classes):
        folder = out / name.replace("/", "-")
        folder.mkdir(parents=True, exist_ok=True)
        for i, idx in enumerate(np.flatnonzero(raw.labels == c)[:per_class]):
            photo = photos[rng.integers(len(photos))]
            y, x = rng.integers(0, photo.shape[0] - 2 * size), rng.integers(0, photo.shape[1] - 2 * size)
            # a 2x-size patch scaled down: the background keeps some texture at every size
            background = np.asarray(
                Image.fromarray(photo[y : y + 2 * size, x : x + 2 * size]).resize((size, size)), np.float32
            )
            item = Image.fromarray(raw.images[idx, :, :, 0]).resize((item_size, item_size), Image.Resampling.BILINEAR)
            alpha = np.zeros((size, size), np.float32)
            oy, ox = rng.integers(0, size - item_size + 1, 2)
            alpha[oy : oy + item_size, ox : ox + item_size] = np.asarray(item, np.float32) / 255
            colour = (
                np.array(colorsys.hsv_to_rgb(rng.random(), 0.6 + 0.4 * rng.random(), 0.7 + 0.3 * rng.random())) * 255
            )
            image = background * (1 - alpha[..., None]) + colour * alpha[..., None]
            Image.fromarray(image.round().clip(0, 255).astype(np.uint8), "RGB").save(folder / f"{i:04d}.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--per-class", type=int, default=300)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not 16 <= args.size <= 200:  # the background is a 2x-size patch of a 427 x 640 photograph
        parser.error(f"--size: expected 16..200 px (got {args.size})")
    build(args.out, args.per_class, args.size, args.seed)
    print(f"{args.out}: {args.per_class} images per class, {args.size} px RGB")


if __name__ == "__main__":
    main()
