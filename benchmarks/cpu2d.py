"""cpu3d.py's 2D twin: ResNet-18 (ImageNet stem, Report 1's recipe) on BreastMNIST against this CPU's SGEMM rate.

The same measurement as benchmarks/cpu3d.py, in fresh processes, per instruction set (--isa native|avx2):
images/s, GFLOP/s from torch's FLOP counter, fraction of the SGEMM rate measured in the same process,
peak RSS and sys/user time; results in benchmarks/results/cpu2d-<isa>.json.

    before  glibc's defaults, contiguous layout, fp32, every convolution tap computed (medlib before issue 26)
    fp32    allocator tuned, `--preset report1 --amp fp32` (channels_last: `--channels-last auto` on CPU), and a
            1x1 output computed as a matrix product over the taps that meet data (models.conv)
    contiguous  as fp32 in the contiguous layout
    auto    `--amp auto` (bf16 only where the CPU computes it natively)

    python benchmarks/cpu2d.py [--isa native|avx2] [--quick] [--modes before,fp32,contiguous,auto]
        [--load 2 --threads 1,2]
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import cpu3d  # noqa: E402  (the shared measurement, beside this file)

NAME = "cpu2d"
MARKERS = ("<!-- cpu2d:begin -->", "<!-- cpu2d:end -->")
UNIT = "images"
# case -> (preset, overrides, samples for the timed modes, samples for 'before'): BreastMNIST's 546 images
CASES = {
    "resnet18@28 breastmnist": (
        "report1",
        {"dataset": "breastmnist", "model": "resnet18", "stem": "imagenet"},
        546,
        546,
    )
}
MODES = {
    "before": {"amp": "fp32", "channels_last": "off"},
    "fp32": {"amp": "fp32", "channels_last": "auto"},
    "contiguous": {"amp": "fp32", "channels_last": "off"},
    "auto": {"amp": "auto", "channels_last": "auto"},
}


def main(argv=None) -> int:
    child = functools.partial(cpu3d.child_train, cases=CASES, modes=MODES)
    return cpu3d.measure(
        __file__, NAME, CASES, MODES, next(iter(CASES)), "before,fp32,contiguous,auto", child, argv, UNIT, MARKERS
    )


if __name__ == "__main__":
    sys.exit(main())
