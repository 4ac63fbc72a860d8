"""medlib: reproduce, explain and outdo two course reports on medical image classification (MedMNIST, M3DV)."""
from .config import TrainConfig, make_config
from .engine import fit, load_model, load_run
from .version import __version__

__all__ = ["TrainConfig", "make_config", "fit", "load_model", "load_run", "__version__"]
