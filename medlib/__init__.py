"""medlib: reproduce, explain and outdo two course reports on medical image classification (MedMNIST, M3DV)."""
__version__ = "0.2.0"

from .config import TrainConfig, make_config  # noqa: E402
from .engine import fit, load_model, load_run  # noqa: E402

__all__ = ["TrainConfig", "make_config", "fit", "load_model", "load_run", "__version__"]
