"""What the instance page shows of its container: the state its gateway's agent last reported, never a daemon."""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.models import ContainerInstance, ContainerState

from .spec import SpecErrors, build_spec, spec_values


@dataclass
class Panel:
    instance: ContainerInstance
    #: None: the agent has not reported this instance's container yet.
    state: ContainerState | None
    up_to_date: bool | None = None

    @property
    def gateway(self):
        return self.instance.gateway

    @property
    def stale(self) -> bool:
        """The gateway is offline: what is shown is what its agent said last."""
        return not self.gateway.online


def panel(instance: ContainerInstance) -> Panel:
    row = ContainerState.objects.filter(instance=instance, gateway_id=instance.gateway_id).first()
    result = Panel(instance=instance, state=row)
    if row is not None and row.exists:
        try:
            wanted = build_spec(spec_values(instance), name=instance.name).settings_hash(instance.pull_reference)
            result.up_to_date = row.settings_hash == wanted
        except SpecErrors:
            result.up_to_date = None
    return result
