"""Progress bars: tqdm.auto (a widget in Jupyter, text elsewhere), without the warning it prints at import when
ipywidgets is not installed.

In a Jupyter kernel without ipywidgets (the notebooks extra installs it), tqdm's text bars are no fallback: their
cursor-up codes are not interpreted there, so two nested bars pile up as a pink stderr block that reads like an
error and is saved into the notebook. There the bars are off (`tqdm.write` still prints); install ipywidgets
(`pip install "medlib[notebooks]"`) for widget bars."""

import sys
import warnings

from tqdm import TqdmWarning


def text_bars_in_jupyter() -> bool:
    """True in a Jupyter kernel where tqdm.auto would fall back to text bars (ipywidgets missing)."""
    if "ipykernel" not in sys.modules:
        return False
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        return True
    return False


with warnings.catch_warnings():
    warnings.simplefilter("ignore", TqdmWarning)
    from tqdm.auto import tqdm as _auto

if text_bars_in_jupyter():

    class tqdm(_auto):  # noqa: N801 (tqdm's own name)
        def __init__(self, *args, **kwargs):
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)
else:
    tqdm = _auto

__all__ = ["tqdm", "text_bars_in_jupyter"]
