"""The signed-in user's address book: shipping and billing addresses, one default of each kind.

Addresses are checked and tidied by :mod:`commerce.accounts.address_rules` before they are
stored. While a user has addresses of a kind, exactly one of them is the default (the partial
unique index ``uq_addresses_default_per_kind`` guarantees "at most one"; these services keep
"at least one"), so checkout always has something to preselect.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import fields, replace
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from commerce.accounts.address_rules import AddressInput, FieldProblem, normalize_address
from commerce.errors import Conflict, DomainError, NotFound
from models import Address, AddressKind, User

MAX_ADDRESSES_PER_USER = 50

# The fields an AddressInput and an Address share, in form order.
ADDRESS_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(AddressInput))
_UPDATABLE = frozenset({*ADDRESS_FIELDS, "kind", "is_default"})


class InvalidAddress(DomainError):
    status, code, title = 422, "invalid_address", "The address is not valid"


class AddressLimit(Conflict):
    code, title = "address_limit", "The address book is full"


class DefaultAddressRequired(Conflict):
    code, title = "default_address_required", "A default address is required"


def field_errors(problems: Sequence[FieldProblem]) -> list[dict[str, Any]]:
    """Problems in the shape of the API's request validation errors, so clients handle both
    the same way."""
    return [
        {"loc": ["body", problem.field], "message": problem.message, "type": problem.type}
        for problem in problems
    ]


def _invalid(problems: Sequence[FieldProblem]) -> InvalidAddress:
    return InvalidAddress(
        f"{len(problems)} problem(s) with the address; see `errors`.",
        errors=field_errors(problems),
    )


async def list_addresses(
    session: AsyncSession, *, user_id: uuid.UUID, kind: AddressKind | None = None
) -> list[Address]:
    """The user's addresses, optionally of one kind: defaults first, then the most recently
    updated."""
    query = select(Address).where(Address.user_id == user_id)
    if kind is not None:
        query = query.where(Address.kind == kind)
    query = query.order_by(
        Address.is_default.desc(), Address.updated_at.desc(), Address.created_at.desc(), Address.id
    )
    return list((await session.scalars(query)).all())


async def get_address(
    session: AsyncSession, *, user_id: uuid.UUID, address_id: uuid.UUID
) -> Address:
    """One of the user's addresses.

    Raises ``NotFound`` (404) whether the address does not exist or belongs to someone
    else: the answer must not tell a prober which ids are real.
    """
    address = await session.scalar(
        select(Address).where(Address.id == address_id, Address.user_id == user_id)
    )
    if address is None:
        raise NotFound("No such address in your address book.")
    return address


async def create_address(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    data: AddressInput,
    kind: AddressKind,
    is_default: bool,
) -> Address:
    """Check, tidy and store a new address.

    The first address of a kind becomes the default whatever ``is_default`` says; a new
    default replaces the previous one. Raises ``InvalidAddress`` (422, every problem at once)
    or ``AddressLimit`` (409) at :data:`MAX_ADDRESSES_PER_USER`.
    """
    await _lock_address_book(session, user_id)
    count = await session.scalar(
        select(func.count()).select_from(Address).where(Address.user_id == user_id)
    )
    if (count or 0) >= MAX_ADDRESSES_PER_USER:
        raise AddressLimit(
            f"An address book holds at most {MAX_ADDRESSES_PER_USER} addresses; "
            "delete one you no longer use."
        )
    tidy, problems = normalize_address(data)
    if problems:
        raise _invalid(problems)

    has_default = await _current_default(session, user_id=user_id, kind=kind) is not None
    if is_default and has_default:
        await _clear_default(session, user_id=user_id, kind=kind)
    address = Address(
        id=uuid.uuid4(), user_id=user_id, kind=kind, is_default=is_default or not has_default
    )
    _assign(address, tidy)
    session.add(address)
    await session.flush()
    return address


async def update_address(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    address_id: uuid.UUID,
    changes: Mapping[str, Any],
) -> Address:
    """Change some fields of an address; the merged address is checked as a whole (changing
    the country may make the stored region or postal code wrong).

    ``changes`` holds only the fields sent: any of the address fields, ``kind`` and
    ``is_default``. ``is_default=True`` makes the address the default of its (new) kind.
    ``is_default=False`` cannot leave a kind without a default: it raises
    ``DefaultAddressRequired`` (409) if the address is, or would become, the default. Moving
    the default to the other kind promotes another address of the kind it leaves.
    """
    unknown = set(changes) - _UPDATABLE
    if unknown:
        raise ValueError(f"not address fields: {sorted(unknown)}")

    await _lock_address_book(session, user_id)
    # Looked up before the body is judged: someone else's id is a 404 whatever was sent.
    address = await get_address(session, user_id=user_id, address_id=address_id)
    null = [name for name in ("kind", "is_default") if name in changes and changes[name] is None]
    if null:
        raise _invalid(
            [FieldProblem(name, "This field cannot be null.", "required") for name in null]
        )
    merged = replace(
        _as_input(address), **{name: changes[name] for name in ADDRESS_FIELDS if name in changes}
    )
    tidy, problems = normalize_address(merged)
    if problems:
        raise _invalid(problems)

    old_kind = address.kind
    new_kind = AddressKind(changes.get("kind", old_kind))
    wanted: bool | None = changes.get("is_default")
    was_default = address.is_default
    if wanted:
        becomes_default = True
    elif new_kind == old_kind:
        becomes_default = was_default
    else:
        becomes_default = await _current_default(session, user_id=user_id, kind=new_kind) is None
    if wanted is False and becomes_default:
        raise DefaultAddressRequired(
            "While you have addresses of a kind, one of them is the default: make another "
            "address the default instead."
        )

    # The previous default is cleared first: the unique index is checked row by row.
    if becomes_default and (new_kind != old_kind or not was_default):
        await _clear_default(session, user_id=user_id, kind=new_kind)
    _assign(address, tidy)
    address.kind = new_kind
    address.is_default = becomes_default
    await session.flush()
    if was_default and new_kind != old_kind:
        await _promote_default(session, user_id=user_id, kind=old_kind)
    await _reload_timestamps(session, address)
    return address


async def delete_address(
    session: AsyncSession, *, user_id: uuid.UUID, address_id: uuid.UUID
) -> None:
    """Delete an address. Deleting the default makes the most recently updated remaining
    address of that kind the default."""
    await _lock_address_book(session, user_id)
    address = await get_address(session, user_id=user_id, address_id=address_id)
    kind, was_default = address.kind, address.is_default
    await session.delete(address)
    await session.flush()
    if was_default:
        await _promote_default(session, user_id=user_id, kind=kind)


async def set_default(
    session: AsyncSession, *, user_id: uuid.UUID, address_id: uuid.UUID
) -> Address:
    """Make an address the default of its kind, in place of the previous one."""
    await _lock_address_book(session, user_id)
    address = await get_address(session, user_id=user_id, address_id=address_id)
    if not address.is_default:
        await _clear_default(session, user_id=user_id, kind=address.kind)
        address.is_default = True
        await session.flush()
        await _reload_timestamps(session, address)
    return address


async def _lock_address_book(session: AsyncSession, user_id: uuid.UUID) -> None:
    # Changes to one user's address book take turns: two concurrent "first address" requests
    # would otherwise both make theirs the default (one then failing on the unique index),
    # and concurrent creates could pass the size limit together. NO KEY UPDATE, not UPDATE:
    # it does not block inserts elsewhere that reference the user (sessions, orders).
    await session.execute(select(User.id).where(User.id == user_id).with_for_update(key_share=True))


async def _current_default(
    session: AsyncSession, *, user_id: uuid.UUID, kind: AddressKind
) -> uuid.UUID | None:
    return await session.scalar(
        select(Address.id).where(
            Address.user_id == user_id, Address.kind == kind, Address.is_default
        )
    )


async def _clear_default(session: AsyncSession, *, user_id: uuid.UUID, kind: AddressKind) -> None:
    await session.execute(
        update(Address)
        .where(Address.user_id == user_id, Address.kind == kind, Address.is_default)
        .values(is_default=False)
    )


async def _promote_default(session: AsyncSession, *, user_id: uuid.UUID, kind: AddressKind) -> None:
    successor = await session.scalar(
        select(Address)
        .where(Address.user_id == user_id, Address.kind == kind)
        .order_by(Address.updated_at.desc(), Address.created_at.desc(), Address.id.desc())
        .limit(1)
    )
    if successor is not None:
        successor.is_default = True
        await session.flush()


async def _reload_timestamps(session: AsyncSession, address: Address) -> None:
    # updated_at is set by the database (onupdate=now()), so a flushed UPDATE leaves it
    # expired, and reading an expired attribute would mean lazy I/O, which async forbids.
    await session.refresh(address, attribute_names=["updated_at"])


def _as_input(address: Address) -> AddressInput:
    return AddressInput(**{name: getattr(address, name) for name in ADDRESS_FIELDS})


def _assign(address: Address, tidy: AddressInput) -> None:
    for name in ADDRESS_FIELDS:
        setattr(address, name, getattr(tidy, name))
