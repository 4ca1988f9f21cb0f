"""What the account services need, built once per process from settings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from commerce.accounts.passwords import PasswordPolicy
from commerce.accounts.ratelimit import Limit, LoginGuard, RateLimiter
from commerce.accounts.tokens import TokenSigner
from core.clock import SYSTEM_CLOCK, Clock
from core.settings import Settings

# Per-IP and per-account budgets (scaled by EMPORIUM_RATE_LIMIT_SCALE).
LOGIN_PER_IP = Limit("login-ip", 30, 60)
LOGIN_PER_ACCOUNT = Limit("login-account", 20, 60)
SIGNUP_PER_IP = Limit("signup-ip", 10, 3600)
RESET_PER_IP = Limit("reset-ip", 10, 3600)
RESET_PER_ACCOUNT = Limit("reset-account", 3, 3600)
MFA_PER_USER = Limit("mfa-user", 10, 300)
MFA_PER_IP = Limit("mfa-ip", 30, 300)
VERIFY_PER_IP = Limit("verify-ip", 30, 3600)
OIDC_PER_IP = Limit("oidc-ip", 30, 300)


@dataclass(frozen=True)
class AccountsContext:
    settings: Settings
    signer: TokenSigner
    passwords: PasswordPolicy
    limiter: RateLimiter
    login_guard: LoginGuard

    @classmethod
    def build(
        cls,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        clock: Clock = SYSTEM_CLOCK,
    ) -> AccountsContext:
        """``clock`` is what the token signer and the limiters check time against: the one
        the API reads each request's ``now`` from."""
        return cls(
            settings=settings,
            signer=TokenSigner(settings, clock=clock),
            passwords=PasswordPolicy(
                memory_kib=settings.password_hash_memory_kib,
                time_cost=settings.password_hash_time_cost,
            ),
            limiter=RateLimiter(sessionmaker, scale=settings.rate_limit_scale, clock=clock),
            login_guard=LoginGuard(
                sessionmaker,
                threshold=settings.login_lockout_threshold,
                base_lock=timedelta(seconds=settings.login_lockout_base_s),
                clock=clock,
            ),
        )
