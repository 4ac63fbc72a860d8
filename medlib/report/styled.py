"""Reproducible styled tables: a pandas Styler with a fixed id, numbers as people write them, a plain-text repr.

The same numbers give the same output on every machine, so nbval can compare notebook outputs as text. Styling
only: the tables are computed in `tables` and their cells formatted by `medlib.results.fmt` (mean ± std) and its
`EMPTY`; `number` is how a StyledTable shows a float cell that is still a number.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
from pandas.io.formats.style import Styler

from ..results import EMPTY

# A medlib number is coloured against Report 1's when it differs by at least this much (AUC/ACC points).
MARGIN = 0.01
GOOD, BAD, MUTED = "background-color: #d8f0d8", "background-color: #f6d5d5", "color: #999"


def number(x, digits: int = 3) -> str:
    """A float as people write it: `digits` decimals (more below 1, keeping `digits` significant ones), without
    trailing zeros: 0.2, -16.2, 0.877, 0.000123, 15. NaN is shown as an en dash."""
    x = float(x)
    if not math.isfinite(x):
        return EMPTY if math.isnan(x) else str(x)
    a = abs(x)
    decimals = digits if a >= 1 or a == 0 else max(digits, digits - 1 - math.floor(math.log10(a)))
    text = f"{x:.{decimals}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text == "-0" else text


def _cell(value, digits: int) -> str:
    """Floats through `number`; everything else as pandas would show it."""
    if isinstance(value, (float, np.floating)):
        return number(value, digits)
    return str(value)


class StyledTable(Styler):
    """A Styler whose HTML and text are reproducible: a fixed table id instead of a random one, and a
    plain-text repr of the shown values instead of `<Styler at 0x...>`. Floats show `precision` decimals
    without trailing zeros (see `number`), not pandas' six."""

    def __init__(self, data: pd.DataFrame, name: str = "table", precision: int = 3, **kw):
        super().__init__(data, uuid=name.replace(" ", "_"), cell_ids=False, **kw)
        self.format(lambda v: _cell(v, precision))
        self.set_table_styles([{"selector": "th", "props": "text-align: center;"}], overwrite=False)

    def __repr__(self) -> str:
        with pd.option_context("display.width", 200, "display.max_columns", 50):
            text = self.data.to_string(na_rep=EMPTY, index=not all(getattr(self, "hide_index_", [False])))
        if not self.caption:
            return text
        caption = re.sub(r"<[^>]+>", "", re.sub(r"<br\s*/?>", "\n", self.caption))  # the HTML caption as plain text
        return f"{caption}\n{text}"


def style(df: pd.DataFrame, name: str, caption: str | None = None, precision: int = 3) -> StyledTable:
    """Any DataFrame as a reproducible StyledTable (fixed id, plain-text repr)."""
    st = StyledTable(df, name=name, precision=precision)
    if caption:
        st.set_caption(caption)
    return st
