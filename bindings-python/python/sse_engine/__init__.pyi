from ._engine import DEFAULT_CLOSE_TIMEOUT as DEFAULT_CLOSE_TIMEOUT
from ._engine import Engine as Engine
from ._engine import EngineConfig as EngineConfig
from ._engine import Stats as Stats
from ._native import DISCONNECT_REASONS as DISCONNECT_REASONS
from ._native import ClientNotFoundError as ClientNotFoundError
from ._native import EngineClosedError as EngineClosedError
from ._native import LimitReachedError as LimitReachedError

__version__: str
__all__ = [
    "Engine",
    "EngineConfig",
    "Stats",
    "EngineClosedError",
    "LimitReachedError",
    "ClientNotFoundError",
    "DISCONNECT_REASONS",
    "DEFAULT_CLOSE_TIMEOUT",
    "__version__",
]
