"""Request and response bodies of the address book and saved payment methods.

Length limits here only keep absurd input out. The real rules (per field, per country, and
the screening for card numbers) are in the services, which report every problem at once with
a message a shopper can act on; so, for instance, an empty name gets through to be reported
there together with a bad postal code.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from api.schemas.pagination import Page
from commerce.accounts.address_rules import AddressInput
from models import Address, AddressKind, SavedPaymentMethod

_TEXT = 500  # a few times the widest column
_CODE = 100  # country, postal code, phone


class AddressCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: AddressKind
    name: str = Field(max_length=_TEXT)
    company: str | None = Field(default=None, max_length=_TEXT)
    line1: str = Field(max_length=_TEXT)
    line2: str | None = Field(default=None, max_length=_TEXT)
    city: str = Field(max_length=_TEXT)
    region: str | None = Field(
        default=None,
        max_length=_TEXT,
        description="Required in some countries (US state, CA province, ...): code or name",
    )
    postal_code: str | None = Field(default=None, max_length=_CODE)
    country: str = Field(max_length=_CODE, description="ISO 3166-1 alpha-2 (alpha-3 accepted)")
    phone: str | None = Field(default=None, max_length=_CODE)
    is_default: bool = Field(
        default=False, description="The first address of a kind is the default anyway"
    )

    def to_domain(self) -> AddressInput:
        return AddressInput(
            name=self.name,
            company=self.company,
            line1=self.line1,
            line2=self.line2,
            city=self.city,
            region=self.region,
            postal_code=self.postal_code,
            country=self.country,
            phone=self.phone,
        )


class AddressUpdate(BaseModel):
    """Only the fields sent change; the resulting address is checked as a whole."""

    model_config = ConfigDict(extra="forbid")
    kind: AddressKind | None = None
    name: str | None = Field(default=None, max_length=_TEXT)
    company: str | None = Field(default=None, max_length=_TEXT)
    line1: str | None = Field(default=None, max_length=_TEXT)
    line2: str | None = Field(default=None, max_length=_TEXT)
    city: str | None = Field(default=None, max_length=_TEXT)
    region: str | None = Field(default=None, max_length=_TEXT)
    postal_code: str | None = Field(default=None, max_length=_CODE)
    country: str | None = Field(default=None, max_length=_CODE)
    phone: str | None = Field(default=None, max_length=_CODE)
    is_default: bool | None = Field(
        default=None,
        description="true makes this the default; false is refused for the default "
        "(make another address the default instead)",
    )


class AddressRead(BaseModel):
    id: uuid.UUID
    kind: AddressKind
    name: str
    company: str | None
    line1: str
    line2: str | None
    city: str
    region: str | None
    postal_code: str | None
    country: str
    phone: str | None
    is_default: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_domain(cls, address: Address) -> AddressRead:
        return cls(
            id=address.id,
            kind=address.kind,
            name=address.name,
            company=address.company,
            line1=address.line1,
            line2=address.line2,
            city=address.city,
            region=address.region,
            postal_code=address.postal_code,
            country=address.country,
            phone=address.phone,
            is_default=address.is_default,
            created_at=address.created_at,
            updated_at=address.updated_at,
        )


class PaymentMethodCreate(BaseModel):
    """What the provider's client-side SDK returned (a Stripe PaymentMethod, a PayPal vault
    token). Never card details: anything that looks like a card number is refused."""

    model_config = ConfigDict(extra="forbid")
    # Plain strings, not enums or patterns: a card number pasted into any of them must reach
    # the service's screening and be refused as such ("raw_card_data"), not as a bad enum.
    provider: str = Field(max_length=_CODE, description="stripe or paypal")
    provider_token: str = Field(max_length=_TEXT, description="pm_... or a PayPal vault token")
    brand: str | None = Field(default=None, max_length=_CODE)
    last4: str | None = Field(default=None, max_length=_CODE)
    exp_month: int | None = None
    exp_year: int | None = None


class PaymentMethodRead(BaseModel):
    # No provider_token. It is not a secret to its owner, but no client needs it back:
    # checkout names a saved method by our `id` and looks the token up server-side, which is
    # also where ownership is checked. Not returning it keeps a leaked access token or a
    # logged response from handing out tokens that, with a leaked provider key, charge a card.
    id: uuid.UUID
    provider: str
    brand: str | None
    last4: str | None
    exp_month: int | None
    exp_year: int | None
    created_at: datetime

    @classmethod
    def from_domain(cls, method: SavedPaymentMethod) -> PaymentMethodRead:
        return cls(
            id=method.id,
            provider=method.provider,
            brand=method.brand,
            last4=method.last4,
            exp_month=method.exp_month,
            exp_year=method.exp_year,
            created_at=method.created_at,
        )


class AddressList(Page[AddressRead]):
    """Comes whole: `next_cursor` is always null."""


class PaymentMethodList(Page[PaymentMethodRead]):
    """Comes whole: `next_cursor` is always null."""
