"""Every email's words are a template in commerce/notifications/templates/; these checks keep
the templates and the code that names them in step."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from types import SimpleNamespace

import jinja2
import pytest

from commerce.notifications.mail import compose, verify_email

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "commerce" / "notifications" / "templates"


def _named_in_code() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "commerce").rglob("*.py"):
        text = path.read_text()
        names |= set(re.findall(r'compose\(\s*"([a-z_]+)"', text))
        for prefix, suffix in re.findall(r'compose\(\s*f"([a-z_]*)\{[a-z_]+\}([a-z_]*)"', text):
            names |= {
                p.stem
                for p in TEMPLATES.glob("*.txt")
                if p.stem.startswith(prefix) and p.stem.endswith(suffix)
            }
    return names


def test_every_template_is_used_and_every_used_template_exists() -> None:
    files = {path.stem for path in TEMPLATES.glob("*.txt")}
    included = {"order_closed"}  # the shared body of order_cancelled and order_payment_failed
    named = _named_in_code()
    assert named - files == set()
    assert files - included - named == set()


@pytest.mark.parametrize("path", sorted(TEMPLATES.glob("*.txt")), ids=lambda p: p.stem)
def test_a_template_starts_with_its_subject_or_includes_one(path: Path) -> None:
    text = path.read_text()
    assert text.startswith("Subject: ") or re.fullmatch(r'\{% include "[a-z_]+\.txt" %\}', text)


def test_a_message_is_the_subject_line_and_the_body() -> None:
    message = verify_email(
        to="ada@example.com",
        username="ada",
        token="t0k",
        storefront_url="https://shop.example/",
        expires_hours=1,
    )
    assert message.subject == "Confirm your email address"
    assert message.template == "verify_email"
    assert message.text.startswith("Hi ada,\n\nWelcome to Emporium!")
    assert "https://shop.example/account/verify-email?token=t0k\n" in message.text
    assert "The link works for 1 hour.\n" in message.text
    assert message.text.endswith("The Emporium team\n")


def test_a_missing_value_is_an_error_not_a_blank() -> None:
    with pytest.raises(jinja2.UndefinedError):
        compose("password_changed", to="ada@example.com")


def test_money_and_ids_use_the_shared_forms() -> None:
    order = SimpleNamespace(
        id=uuid.UUID("1f2e3d4c-0000-4000-8000-000000000000"), grand_total=150000, currency="JPY"
    )
    message = compose(
        "order_cancelled", to="a@example.com", order=order, paid=False, reason="x", title="t"
    )
    assert message.subject == "Order 1F2E3D4C t"
    assert "the 150000 JPY held on your payment method" in message.text
