"""Progress bars: tqdm.auto (a widget in Jupyter, text elsewhere), without the warning it prints at import when
ipywidgets is not installed (the text bar it falls back to is fine)."""
import warnings

from tqdm import TqdmWarning

with warnings.catch_warnings():
    warnings.simplefilter("ignore", TqdmWarning)
    from tqdm.auto import tqdm

__all__ = ["tqdm"]
