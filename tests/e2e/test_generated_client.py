"""A storefront developer's first hour: a Python client generated from /openapi.json by
openapi-python-client, used as it comes, to sign up, fill a cart and check out.

The client is generated fresh from the app's schema on every run, so a schema change that
breaks generated clients (a clashing name, an undocumented answer, an operation id that
changes) breaks this test. The platform is the real one: the API in-process over HTTP
semantics, a real worker, PostgreSQL and Temporal.
"""

from __future__ import annotations

import importlib
import json
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from tests.conftest import make_settings
from tests.factories import STRONG_PASSWORD, mailed_token
from tests.order_harness import BERLIN, platform

pytestmark = pytest.mark.slow

PACKAGE = "emporium_client"


@pytest.fixture
def generated(tmp_path: Path, openapi_schema: dict[str, object]) -> Iterator[ModuleType]:
    """The client package, generated into ``tmp_path`` and importable."""
    schema = tmp_path / "openapi.json"
    schema.write_text(json.dumps(openapi_schema))
    generator = shutil.which("openapi-python-client", path=str(Path(sys.executable).parent))
    assert generator is not None, "openapi-python-client is a dev dependency"
    run = subprocess.run(
        [
            generator,
            "generate",
            "--path",
            str(schema),
            "--meta",
            "none",
            "--output-path",
            str(tmp_path / PACKAGE),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    sys.path.insert(0, str(tmp_path))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(tmp_path))
        for name in [name for name in sys.modules if name.split(".")[0] == PACKAGE]:
            del sys.modules[name]


@pytest.fixture
def openapi_schema() -> dict[str, object]:
    settings = make_settings("postgresql://unused@127.0.0.1/unused", "127.0.0.1:7233")
    return create_app(settings).openapi()


async def test_a_generated_client_signs_up_fills_a_cart_and_checks_out(
    generated: ModuleType,
    fresh_database_url: str,
    temporal_env: WorkflowEnvironment,
    temporal_address: str,
) -> None:
    models = importlib.import_module(f"{PACKAGE}.models")
    auth = importlib.import_module(f"{PACKAGE}.api.auth")
    carts = importlib.import_module(f"{PACKAGE}.api.carts")
    checkout = importlib.import_module(f"{PACKAGE}.api.checkout")
    orders = importlib.import_module(f"{PACKAGE}.api.orders")
    for module in (
        "auth.sign_up",
        "auth.verify_email",
        "auth.log_in",
        "carts.add_item",
        "carts.set_shipping_address",
        "checkout.place_order",
        "orders.read_order",
    ):
        importlib.import_module(f"{PACKAGE}.api.{module}")

    async with platform(fresh_database_url, temporal_env.client, temporal_address) as p:
        # The generated clients' own httpx clients, over the in-process app.
        http = {"transport": httpx.ASGITransport(app=p.app)}
        anonymous = generated.Client(base_url="http://testserver", httpx_args=http)

        username = f"gen{uuid.uuid4().hex[:10]}"
        email = f"{username}@example.com"
        user = await auth.sign_up.asyncio(
            client=anonymous,
            body=models.SignUp(username=username, email=email, password=STRONG_PASSWORD),
        )
        assert isinstance(user, models.UserRead), user
        async with p.sessionmaker() as session:
            token = await mailed_token(session, to=email, template="verify_email")
        verified = await auth.verify_email.asyncio_detailed(
            client=anonymous, body=models.TokenRequest(token=token)
        )
        assert verified.status_code == 200, verified.content
        tokens = await auth.log_in.asyncio(
            client=anonymous, body=models.Login(email=email, password=STRONG_PASSWORD)
        )
        assert isinstance(tokens, models.TokenPairRead), tokens

        shopper = generated.AuthenticatedClient(
            base_url="http://testserver", token=tokens.access_token, httpx_args=http
        )
        address = await carts.set_shipping_address.asyncio(
            client=shopper, body=models.ShippingAddress.from_dict(BERLIN)
        )
        assert isinstance(address, models.CartRead), address
        cart = await carts.add_item.asyncio(
            client=shopper, body=models.CartItemAdd(variant_id=p.shop.tee, quantity=2)
        )
        assert isinstance(cart, models.CartRead), cart
        lines = [line for vendor in cart.vendors for line in vendor.lines]
        assert [(line.variant_id, line.quantity) for line in lines] == [(p.shop.tee, 2)]

        placed = await checkout.place_order.asyncio_detailed(
            client=shopper,
            body=models.CheckoutCreate(payment_provider="test", payment_token="tok_ok"),
            idempotency_key=f"gen-{uuid.uuid4()}",
        )
        assert placed.status_code in (201, 202), placed.content
        assert isinstance(placed.parsed, models.CheckoutRead)
        order_id = placed.parsed.order_id

        await p.wait_for(str(order_id), "confirmed")
        order = await orders.read_order.asyncio(order_id, client=shopper)
        assert isinstance(order, models.OrderRead), order
        assert order.status == "confirmed"
        assert isinstance(cart.subtotal, models.Money)
        assert order.items_subtotal.amount == cart.subtotal.amount == 2 * 2500
        assert order.items_subtotal.currency == cart.subtotal.currency == "EUR"
