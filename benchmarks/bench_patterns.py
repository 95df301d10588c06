"""Speed of pattern analysis on a ResNet-50-sized mask set (target: all layers in < 1 s).

Run: python benchmarks/bench_patterns.py
"""

import time

import numpy as np

from simsparse.masks.patterns import analyze
from simsparse.masks.synthetic import make_mask

# ResNet-50 conv/fc weight shapes (torchvision), 25.5 M weights in all
SHAPES = [(64, 3, 7, 7)]
for width, blocks, cin in ((64, 3, 64), (128, 4, 256), (256, 6, 512), (512, 3, 1024)):
    for b in range(blocks):
        in_ch = cin if b == 0 else width * 4
        SHAPES += [(width, in_ch, 1, 1), (width, width, 3, 3), (width * 4, width, 1, 1)]
        if b == 0:
            SHAPES.append((width * 4, in_ch, 1, 1))
SHAPES.append((1000, 2048))


def main() -> None:
    for pattern in ("density=0.1", "2:4", "fanin=16"):
        masks = [make_mask(s, pattern if not pattern.startswith("fanin") or np.prod(s[1:]) >= 16 else "dense", seed=i)
                 for i, s in enumerate(SHAPES)]
        total = sum(m.size for m in masks)
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            for m in masks:
                analyze(m)
            best = min(best, time.perf_counter() - t0)
        print(f"analyze {len(masks)} layers, {total / 1e6:.1f} M weights, pattern {pattern:12s}: "
              f"{best * 1e3:7.1f} ms (target < 1000 ms) -> {'OK' if best < 1 else 'SLOW'}")


if __name__ == "__main__":
    main()
