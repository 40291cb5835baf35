"""The console's models, one file per family; Django and the rest of the code import them from here."""

from .audit import AuditEntry
from .control import ContainerState, ControlRequest
from .ecr import EcrTokenCache
from .gateways import Gateway
from .instances import ContainerInstance
from .pulls import PullJob

__all__ = ["Gateway", "AuditEntry", "ContainerState", "ControlRequest", "ContainerInstance", "EcrTokenCache", "PullJob"]
