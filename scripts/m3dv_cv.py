"""Report 2's comparison as k-fold CV on the 372 labelled M3DV cubes: prints per-fold and mean ± std test AUC/ACC.

Usage: python scripts/m3dv_cv.py --model baseline3d --epochs 15 [--mixup 0.2] [--folds 5] [--only 0 1] [--out runs/m3dv]
"""
import argparse

import medlib
from medlib.engine import cv


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--model", default="densenet3d")
    p.add_argument("--epochs", type=int, default=26)
    p.add_argument("--mixup", type=float, default=0.2)
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--only", type=int, nargs="*", default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="runs/m3dv")
    a = p.parse_args()
    cfg = medlib.make_config("report2", model=a.model, epochs=a.epochs, mixup_alpha=a.mixup, folds=a.folds, seed=a.seed)
    runs, table = cv.cross_validate(cfg, out=a.out, only=a.only)
    print(table.to_string(index=False))
    print("mean ± std:", cv.summary(table).to_dict())
    if a.only is None:
        print("out-of-fold:", cv.out_of_fold(runs))


if __name__ == "__main__":
    main()
