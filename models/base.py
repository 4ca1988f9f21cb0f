"""Declarative base: naming convention for constraints, UUID keys, timestamps."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import DateTime, Enum, MetaData, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Constraint names are stable across autogenerate runs and readable in error messages
# (the API maps known unique violations to problem codes by constraint name).
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UUIDPrimaryKey:
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)


class Timestamps:
    """Bookkeeping: when the database wrote the row, by its own clock. Never a business time
    and never compared with the application's ``now`` (core/clock.py); a time that decides
    something (expiry, deadlines, availability) is a column of its own, set from ``now``."""

    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True),
        server_default=func.now(),  # noqa: TID251
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True),
        server_default=func.now(),  # noqa: TID251
        onupdate=func.now(),  # noqa: TID251
    )


def pg_enum(enum_class: type[enum.Enum], name: str) -> Enum:
    """A native PostgreSQL enum storing the members' (lower-case) values."""
    return Enum(
        enum_class,
        name=name,
        values_callable=lambda members: [member.value for member in members],
        validate_strings=True,
    )
