"""Workflows call activities through the interfaces in ``workflows.contracts``; the worker runs
the implementations in ``activities/``. These checks keep the two the same shape, so a step a
workflow calls is a step the worker has, under the same name, taking and giving the same types."""

from __future__ import annotations

import inspect
import typing

import pytest
from temporalio import activity

from activities.analytics import RollupActivities
from activities.demo import DemoActivities
from activities.disputes import DisputeActivities
from activities.orders import OrderActivities
from activities.payouts import PayoutActivities
from activities.refunds import RefundActivities
from activities.returns import ReturnActivities
from activities.shipments import ShipmentActivities
from workers.registry import steps_of
from workflows.contracts import (
    analytics,
    demo,
    disputes,
    orders,
    payouts,
    refunds,
    returns,
    shipments,
)

IMPLEMENTATIONS: list[tuple[type, type]] = [
    (DemoActivities, demo.DemoActivities),
    (DisputeActivities, disputes.DisputeActivities),
    (OrderActivities, orders.OrderActivities),
    (PayoutActivities, payouts.PayoutActivities),
    (RollupActivities, analytics.RollupActivities),
    (RefundActivities, refunds.RefundActivities),
    (ReturnActivities, returns.ReturnActivities),
    (ShipmentActivities, shipments.ShipmentActivities),
]


def _declared(cls: type) -> dict[str, object]:
    return {
        name: member
        for name, member in vars(cls).items()
        if hasattr(member, "__temporal_activity_definition")
    }


def _name(fn: object) -> str | None:
    return activity._Definition.must_from_callable(fn).name  # type: ignore[arg-type]


@pytest.mark.parametrize(("implementation", "contract"), IMPLEMENTATIONS, ids=lambda c: c.__name__)
def test_every_declared_step_is_implemented_under_its_name_and_types(
    implementation: type, contract: type
) -> None:
    assert issubclass(implementation, contract)
    declared = _declared(contract)
    assert declared, f"{contract.__name__} declares no activity"
    implemented = _declared(implementation)
    # Every activity the implementation has is declared (no step hidden from workflows) ...
    assert set(implemented) == set(declared)
    for name, interface in declared.items():
        body = implemented[name]
        assert body is not interface, f"{implementation.__name__}.{name} is not implemented"
        # ... under the same Temporal name, taking and giving the same types.
        assert _name(body) == _name(interface) == name
        assert typing.get_type_hints(body) == typing.get_type_hints(interface), name
        assert list(inspect.signature(body).parameters) == list(
            inspect.signature(interface).parameters
        )


def test_an_interface_method_raises_rather_than_pretends() -> None:
    """Called by mistake (an implementation that forgot a step), the interface says so."""
    with pytest.raises(NotImplementedError):
        inspect.getattr_static(orders.OrderActivities, "reserve_inventory")(
            None, orders.OrderRef("x")
        ).send(None)


def test_the_worker_registers_exactly_the_declared_steps() -> None:
    from workers import registry

    class _Deps:
        sessionmaker = None
        providers = None
        storefront_url = "http://shop.test"
        commission_bp = 1000
        clock = None

    registered = registry.activities(_Deps())  # type: ignore[arg-type]
    names = [_name(step) for step in registered]
    declared = [name for _, contract in IMPLEMENTATIONS for name in _declared(contract)]
    assert sorted(names) == sorted(declared)
    assert len(set(names)) == len(names)


def test_steps_of_refuses_a_class_without_a_contract() -> None:
    class Loose:
        @activity.defn
        async def step(self, _: str) -> None: ...

    with pytest.raises(TypeError, match="no one activity contract"):
        steps_of(Loose())
