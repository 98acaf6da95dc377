"""Random square crops of photographs, scaled to a side: the data of studies/wallpapers-64.toml.

    python make_crops.py OUT SIDE COUNT SEED PHOTO...

Each photograph is first scaled so that its shorter side is 512 px (Lanczos); then COUNT
crops of a random side between 96 and 256 px at random places are scaled to SIDE x SIDE
(bicubic) and written as PNG. One seeded stream draws every crop, in the order given.
"""

import sys
from pathlib import Path

import numpy as np
from PIL import Image


def main(out: Path, side: int, count: int, seed: int, photos: list[Path]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for path in photos:
        img = Image.open(path).convert("RGB")
        scale = 512 / min(img.size)
        size = (round(img.size[0] * scale), round(img.size[1] * scale))
        pixels = np.asarray(img.resize(size, Image.LANCZOS))
        h, w = pixels.shape[:2]
        name = path.parent.parent.parent.name if path.parent.name == "images" else path.stem
        for i in range(count):
            crop_side = int(rng.integers(96, 257))
            y, x = int(rng.integers(0, h - crop_side + 1)), int(rng.integers(0, w - crop_side + 1))
            crop = Image.fromarray(pixels[y : y + crop_side, x : x + crop_side])
            crop.resize((side, side), Image.BICUBIC).save(out / f"{name}-{i:03d}.png")


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]),
         [Path(p) for p in sys.argv[5:]])  # fmt: skip
