"""Sign-up, verification, sign-in, tokens, sessions, passwords, MFA, profile and deletion."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pyotp
import pytest
from joserfc import jwt
from joserfc.jwk import OctKey
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from commerce.accounts.tokens import AUDIENCE, ISSUER, TokenSigner
from models import EmailToken, MailOutbox, Order, PlatformRole, User, Wishlist
from tests.conftest import make_settings
from tests.factories import STRONG_PASSWORD, bearer, log_in, mailed_token, sign_up, unique

PROBLEM = "application/problem+json"


def _problem(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["code"] == code, body
    return body


# --- sign-up and verification ---------------------------------------------------------


async def test_sign_up_sends_a_single_use_verification_link(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    username = unique()
    email = f"{username}@Example.COM"
    response = await client.post(
        "/auth/signup",
        json={"username": username, "email": email, "password": STRONG_PASSWORD, "name": "Al"},
    )
    assert response.status_code == 201
    body = response.json()
    assert body["email_verified"] is False
    assert body["roles"] == ["customer"]
    assert STRONG_PASSWORD not in response.text

    stored = await db_session.scalar(select(User).where(User.id == uuid.UUID(body["id"])))
    assert stored is not None
    assert stored.password_hash is not None
    assert stored.password_hash.startswith("$argon2id$")
    assert STRONG_PASSWORD not in stored.password_hash

    token = await mailed_token(db_session, to=body["email"], template="verify_email")
    stored_tokens = (await db_session.scalars(select(EmailToken.token_hash))).all()
    assert token not in stored_tokens, "tokens are stored hashed"
    verified = await client.post("/auth/verify-email", json={"token": token})
    assert verified.status_code == 200
    assert verified.json()["email_verified"] is True
    _problem(await client.post("/auth/verify-email", json={"token": token}), 400, "invalid_token")


async def test_expired_verification_link_is_refused(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    account = await sign_up(client, db_session, verified=False)
    token = await mailed_token(db_session, to=account.email, template="verify_email")
    await db_session.execute(
        update(EmailToken).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
    )
    _problem(await client.post("/auth/verify-email", json={"token": token}), 400, "invalid_token")


async def test_resend_verification_replaces_the_previous_link(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    account = await sign_up(client, db_session, verified=False)
    first = await mailed_token(db_session, to=account.email, template="verify_email")
    resent = await client.post("/auth/verify-email/resend", headers=account.headers)
    assert resent.status_code == 202
    second = await mailed_token(db_session, to=account.email, template="verify_email")
    assert second != first
    _problem(await client.post("/auth/verify-email", json={"token": first}), 400, "invalid_token")
    assert (await client.post("/auth/verify-email", json={"token": second})).status_code == 200
    again = await client.post("/auth/verify-email/resend", headers=account.headers)
    _problem(again, 409, "already_verified")


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short1!", "at least 10 characters"),
        ("password123456", ""),
        ("qwertyuiop123", ""),
        ("{username}-is-my-secret", "do not include your username"),
    ],
)
async def test_weak_passwords_are_refused(
    client: httpx.AsyncClient, password: str, reason: str
) -> None:
    username = unique()
    response = await client.post(
        "/auth/signup",
        json={
            "username": username,
            "email": f"{username}@example.com",
            "password": password.format(username=username),
        },
    )
    body = _problem(response, 422, "weak_password")
    assert reason in str(body["detail"])
    assert body["reasons"]


async def test_email_and_username_are_unique_whatever_the_case(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    account = await sign_up(client, db_session)
    same_email = await client.post(
        "/auth/signup",
        json={
            "username": unique(),
            "email": account.email.upper(),
            "password": STRONG_PASSWORD,
        },
    )
    _problem(same_email, 409, "email_taken")
    same_name = await client.post(
        "/auth/signup",
        json={
            "username": account.username.upper(),
            "email": f"{unique()}@example.com",
            "password": STRONG_PASSWORD,
        },
    )
    _problem(same_name, 409, "username_taken")


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (
            {"username": "ok_name", "email": "not-an-email", "password": STRONG_PASSWORD},
            "invalid_email",
        ),
        (
            {"username": "a", "email": "a@example.com", "password": STRONG_PASSWORD},
            "invalid_username",
        ),
        ({"username": "ok_name", "email": "a@example.com"}, "validation_error"),
        (
            {"username": "ok", "email": "a@example.com", "password": "x", "admin": True},
            "validation_error",
        ),
    ],
)
async def test_bad_sign_up_input_is_a_clear_problem(
    client: httpx.AsyncClient, payload: dict[str, object], code: str
) -> None:
    response = await client.post("/auth/signup", json=payload)
    assert response.status_code in (409, 422)
    assert response.json()["code"] == code


# --- sign-in and tokens ----------------------------------------------------------------


async def test_unknown_user_and_wrong_password_look_identical(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    account = await sign_up(client, db_session)
    wrong = await client.post(
        "/auth/login", json={"email": account.email, "password": "not-the-password"}
    )
    nobody = await client.post(
        "/auth/login", json={"email": f"{unique()}@example.com", "password": "not-the-password"}
    )
    for response in (wrong, nobody):
        _problem(response, 401, "invalid_credentials")

    def comparable(response: httpx.Response) -> dict[str, object]:
        return {k: v for k, v in response.json().items() if k != "request_id"}

    assert comparable(wrong) == comparable(nobody)
    assert wrong.headers.get("www-authenticate") == nobody.headers.get("www-authenticate")


async def test_login_is_case_insensitive_on_email(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    account = await sign_up(client, db_session)
    tokens = await log_in(client, account.email.upper(), account.password)
    assert (await client.get("/me", headers=bearer(tokens["access_token"]))).status_code == 200


def _forge(claims: dict[str, object], key: bytes, kid: str, alg: str = "HS256") -> str:
    now = int(time.time())
    payload = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "nbf": now,
        "exp": now + 300,
        "jti": uuid.uuid4().hex,
        "typ": "access",
        **claims,
    }
    return jwt.encode({"alg": alg, "kid": kid}, payload, OctKey.import_key(key))


async def test_tampered_expired_and_wrong_key_tokens_get_401(
    client: httpx.AsyncClient, db_session: AsyncSession, settings: object
) -> None:
    account = await sign_up(client, db_session)
    me = await client.get("/me", headers=account.headers)
    assert me.status_code == 200
    header, payload, signature = account.access_token.split(".")
    tampered = f"{header}.{payload[:-4]}AAAA.{signature}"
    real_key = b"a-test-signing-key-that-is-long-enough-0123456789"
    sid = None
    from commerce.accounts.tokens import TokenSigner as _Signer

    claims = _Signer(settings).verify(account.access_token, expected="access")  # type: ignore[arg-type]
    sid = str(claims.session_id)
    base = {"sub": account.id, "sid": sid, "scope": "profile", "amr": "pwd"}
    expired = _forge(
        {**base, "exp": int(time.time()) - 60, "iat": int(time.time()) - 700}, real_key, "test-1"
    )
    wrong_key = _forge(base, b"some-other-secret-key-of-enough-length-000000", "test-1")
    unknown_kid = _forge(base, real_key, "not-a-kid")
    wrong_audience = _forge({**base, "aud": "someone-else"}, real_key, "test-1")
    valid_forge = _forge(base, real_key, "test-1")
    unsigned = payload_none = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0." + payload + "."
    assert payload_none == unsigned
    for token in (tampered, expired, wrong_key, unknown_kid, wrong_audience, unsigned, "garbage"):
        response = await client.get("/me", headers=bearer(token))
        _problem(response, 401, "invalid_token")
        assert response.headers["www-authenticate"].startswith("Bearer")
    # The control: a token made the same way with the real key is accepted.
    assert (await client.get("/me", headers=bearer(valid_forge))).status_code == 200
    _problem(await client.get("/me"), 401, "invalid_token")
    _problem(await client.get("/me", headers={"Authorization": "Basic abc"}), 401, "invalid_token")


async def test_signing_keys_rotate_by_kid(database_url: str, temporal_address: str) -> None:
    old = make_settings(database_url, temporal_address, jwt_keys={"k1": "1" * 40})
    both = make_settings(
        database_url,
        temporal_address,
        jwt_keys={"k1": "1" * 40, "k2": "2" * 40},
        jwt_active_kid="k2",
    )
    only_new = make_settings(database_url, temporal_address, jwt_keys={"k2": "2" * 40})
    user, session = uuid.uuid4(), uuid.uuid4()
    token = TokenSigner(old).issue_access(user_id=user, session_id=session, scopes=(), method="pwd")
    assert TokenSigner(both).verify(token, expected="access").subject == user
    new_token = TokenSigner(both).issue_access(
        user_id=user, session_id=session, scopes=(), method="pwd"
    )
    assert jwt.decode(new_token, OctKey.import_key(b"2" * 40)).header["kid"] == "k2"
    from commerce.accounts.tokens import InvalidToken

    with pytest.raises(InvalidToken):
        TokenSigner(only_new).verify(token, expected="access")
    with pytest.raises(InvalidToken):
        TokenSigner(both).verify(token, expected="mfa")


async def test_refresh_rotates_and_reuse_revokes_the_family(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    account = await sign_up(client, db_session)
    first = await client.post("/auth/refresh", json={"refresh_token": account.refresh_token})
    assert first.status_code == 200
    rotated = first.json()
    assert rotated["refresh_token"] != account.refresh_token
    assert (await client.get("/me", headers=bearer(rotated["access_token"]))).status_code == 200

    # The spent token comes back (stolen, or a replay): the whole family dies.
    reuse = await client.post("/auth/refresh", json={"refresh_token": account.refresh_token})
    _problem(reuse, 401, "refresh_token_reused")
    _problem(
        await client.post("/auth/refresh", json={"refresh_token": rotated["refresh_token"]}),
        401,
        "invalid_refresh_token",
    )
    _problem(await client.get("/me", headers=bearer(rotated["access_token"])), 401, "invalid_token")
    _problem(
        await client.post("/auth/refresh", json={"refresh_token": "made-up"}),
        401,
        "invalid_refresh_token",
    )


async def test_logout_ends_this_session_and_logout_all_ends_every_one(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    account = await sign_up(client, db_session)
    other = await log_in(client, account.email, account.password)
    assert (await client.post("/auth/logout", headers=account.headers)).status_code == 204
    _problem(await client.get("/me", headers=account.headers), 401, "invalid_token")
    _problem(
        await client.post("/auth/refresh", json={"refresh_token": account.refresh_token}),
        401,
        "invalid_refresh_token",
    )
    assert (await client.get("/me", headers=bearer(other["access_token"]))).status_code == 200

    third = await log_in(client, account.email, account.password)
    response = await client.post("/auth/logout-all", headers=bearer(third["access_token"]))
    assert response.status_code == 204
    for tokens in (other, third):
        _problem(
            await client.get("/me", headers=bearer(tokens["access_token"])), 401, "invalid_token"
        )


async def test_sessions_are_listed_and_another_users_session_is_not_found(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    alice = await sign_up(client, db_session)
    bob = await sign_up(client, db_session)
    listed = (await client.get("/me/sessions", headers=alice.headers)).json()["items"]
    assert len(listed) == 1
    assert listed[0]["current"] is True
    alice_session = listed[0]["id"]
    _problem(
        await client.delete(f"/me/sessions/{alice_session}", headers=bob.headers), 404, "not_found"
    )
    assert (await client.get("/me", headers=alice.headers)).status_code == 200


# --- passwords --------------------------------------------------------------------------


async def test_password_change_keeps_this_session_and_ends_the_others(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    account = await sign_up(client, db_session)
    elsewhere = await log_in(client, account.email, account.password)
    new = "granite-Lantern-77-hollow-sea"
    wrong = await client.post(
        "/me/password",
        headers=account.headers,
        json={"current_password": "nope", "new_password": new},
    )
    _problem(wrong, 403, "wrong_password")
    changed = await client.post(
        "/me/password",
        headers=account.headers,
        json={"current_password": account.password, "new_password": new},
    )
    assert changed.status_code == 204
    assert (await client.get("/me", headers=account.headers)).status_code == 200
    _problem(
        await client.get("/me", headers=bearer(elsewhere["access_token"])), 401, "invalid_token"
    )
    _problem(
        await client.post(
            "/auth/login", json={"email": account.email, "password": account.password}
        ),
        401,
        "invalid_credentials",
    )
    await log_in(client, account.email, new)
    notices = await db_session.scalar(
        select(MailOutbox.id).where(
            MailOutbox.to_address == account.email, MailOutbox.template == "password_changed"
        )
    )
    assert notices is not None


async def test_password_reset_flow_and_no_account_enumeration(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    account = await sign_up(client, db_session)
    known = await client.post("/auth/password-reset", json={"email": account.email})
    unknown = await client.post("/auth/password-reset", json={"email": f"{unique()}@example.com"})
    assert known.status_code == unknown.status_code == 202
    assert known.json() == unknown.json()

    token = await mailed_token(db_session, to=account.email, template="reset_password")
    new = "copper-Meadow-58-distant-rain"
    weak = await client.post(
        "/auth/password-reset/confirm", json={"token": token, "new_password": "password"}
    )
    _problem(weak, 422, "weak_password")
    # A refused attempt does not spend the link.
    token = await mailed_token(db_session, to=account.email, template="reset_password")
    done = await client.post(
        "/auth/password-reset/confirm", json={"token": token, "new_password": new}
    )
    assert done.status_code == 204, done.text
    _problem(await client.get("/me", headers=account.headers), 401, "invalid_token")
    await log_in(client, account.email, new)
    again = await client.post(
        "/auth/password-reset/confirm", json={"token": token, "new_password": new + "x"}
    )
    _problem(again, 400, "invalid_token")


# --- MFA ----------------------------------------------------------------------------------


async def _enable_mfa(
    client: httpx.AsyncClient, headers: dict[str, str]
) -> tuple[pyotp.TOTP, list[str]]:
    enrol = await client.post("/me/mfa/totp", headers=headers)
    assert enrol.status_code == 201
    body = enrol.json()
    assert body["otpauth_uri"].startswith("otpauth://totp/Emporium:")
    totp = pyotp.TOTP(body["secret"])
    confirmed = await client.post(
        "/me/mfa/totp/confirm", headers=headers, json={"code": totp.now()}
    )
    assert confirmed.status_code == 200, confirmed.text
    codes = confirmed.json()["recovery_codes"]
    assert len(codes) == 10
    assert len(set(codes)) == 10
    return totp, codes


async def test_mfa_login_needs_a_fresh_code_and_refuses_replay(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    account = await sign_up(client, db_session)
    totp, _ = await _enable_mfa(client, account.headers)
    assert (await client.get("/me", headers=account.headers)).json()["mfa_enabled"] is True

    step_one = await client.post(
        "/auth/login", json={"email": account.email, "password": account.password}
    )
    assert step_one.status_code == 200
    challenge = step_one.json()
    assert challenge["mfa_required"] is True
    assert "access_token" not in challenge
    # The challenge is not an access token.
    _problem(await client.get("/me", headers=bearer(challenge["mfa_token"])), 401, "invalid_token")

    # The enrolment burnt the current step; the next one (accepted for clock drift) is fresh.
    code = _next_code(totp)
    done = await client.post(
        "/auth/login/mfa", json={"mfa_token": challenge["mfa_token"], "code": code}
    )
    assert done.status_code == 200, done.text
    replay = await client.post(
        "/auth/login/mfa", json={"mfa_token": challenge["mfa_token"], "code": code}
    )
    _problem(replay, 401, "invalid_mfa_code")
    wrong = await client.post(
        "/auth/login/mfa", json={"mfa_token": challenge["mfa_token"], "code": "000000"}
    )
    _problem(wrong, 401, "invalid_mfa_code")
    _problem(
        await client.post("/auth/login/mfa", json={"mfa_token": "forged", "code": code}),
        401,
        "invalid_mfa_challenge",
    )


def _next_code(totp: pyotp.TOTP) -> str:
    return totp.at(time.time() + 30)


async def test_recovery_codes_work_once(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    account = await sign_up(client, db_session)
    _, codes = await _enable_mfa(client, account.headers)
    challenge = (
        await client.post(
            "/auth/login", json={"email": account.email, "password": account.password}
        )
    ).json()["mfa_token"]
    first = await client.post(
        "/auth/login/mfa", json={"mfa_token": challenge, "recovery_code": codes[0].upper()}
    )
    assert first.status_code == 200
    again = await client.post(
        "/auth/login/mfa", json={"mfa_token": challenge, "recovery_code": codes[0]}
    )
    _problem(again, 401, "invalid_mfa_code")
    other = await client.post(
        "/auth/login/mfa", json={"mfa_token": challenge, "recovery_code": codes[1]}
    )
    assert other.status_code == 200


async def test_disabling_mfa_needs_a_valid_code(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    account = await sign_up(client, db_session)
    totp, _ = await _enable_mfa(client, account.headers)
    _problem(
        await client.request("DELETE", "/me/mfa", headers=account.headers, json={"code": "123456"}),
        401,
        "invalid_mfa_code",
    )
    off = await client.request(
        "DELETE", "/me/mfa", headers=account.headers, json={"code": _next_code(totp)}
    )
    assert off.status_code == 204
    assert (await client.get("/me", headers=account.headers)).json()["mfa_enabled"] is False
    tokens = await log_in(client, account.email, account.password)
    assert "access_token" in tokens


# --- profile and deletion -----------------------------------------------------------------


async def test_profile_edit_and_email_change_needs_verification(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    account = await sign_up(client, db_session)
    new_email = f"{unique()}@example.org"
    patched = await client.patch(
        "/me",
        headers=account.headers,
        json={"name": "Ada Lovelace", "phone": "+44 20 7946 0000", "email": new_email},
    )
    assert patched.status_code == 200
    body = patched.json()
    assert body["name"] == "Ada Lovelace"
    assert body["email"] == account.email, "the address changes only once verified"
    token = await mailed_token(db_session, to=new_email, template="change_email")
    confirmed = await client.post("/me/email/confirm", json={"token": token})
    assert confirmed.status_code == 200
    assert confirmed.json()["email"] == new_email
    assert confirmed.json()["email_verified"] is True
    await log_in(client, new_email, account.password)
    bad_phone = await client.patch("/me", headers=account.headers, json={"phone": "call me maybe"})
    _problem(bad_phone, 422, "validation_error")


async def test_deleting_an_account_erases_personal_data(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    account = await sign_up(client, db_session)
    await client.patch("/me", headers=account.headers, json={"name": "Ada", "phone": "+1 555 0100"})
    created = await client.post("/me/wishlists", headers=account.headers, json={"name": "Gifts"})
    assert created.status_code == 201
    order = Order(
        customer_id=uuid.UUID(account.id),
        idempotency_key="k1",
        request_hash="0" * 64,
        currency="EUR",
        prices_include_tax=False,
        items_subtotal=1000,
        discount_total=0,
        shipping_total=0,
        tax_total=0,
        grand_total=1000,
        contact_email=account.email,
        shipping_address={"name": "Ada", "line1": "1 Main St", "city": "Berlin", "country": "DE"},
        payment_provider="test",
        workflow_id=f"order:{uuid.uuid4()}",
    )
    db_session.add(order)
    await db_session.flush()
    wrong = await client.request("DELETE", "/me", headers=account.headers, json={"password": "x"})
    _problem(wrong, 403, "wrong_password")
    deleted = await client.request(
        "DELETE", "/me", headers=account.headers, json={"password": account.password}
    )
    assert deleted.status_code == 204
    user = await db_session.get(User, uuid.UUID(account.id))
    assert user is not None
    await db_session.refresh(user)
    assert account.email not in (user.email, user.email_key)
    assert account.username not in (user.username, user.username_key)
    assert (user.name, user.phone, user.password_hash) == (None, None, None)
    wishlists = await db_session.scalar(
        select(func.count()).select_from(Wishlist).where(Wishlist.user_id == user.id)
    )
    assert wishlists == 0
    await db_session.refresh(order)
    assert (order.contact_email, order.shipping_address) == (None, {"country": "DE"})
    assert order.grand_total == 1000, "the order itself is kept"
    _problem(await client.get("/me", headers=account.headers), 401, "invalid_token")
    _problem(
        await client.post(
            "/auth/login", json={"email": account.email, "password": account.password}
        ),
        401,
        "invalid_credentials",
    )


# --- roles ----------------------------------------------------------------------------------


async def test_admin_routes_need_the_admin_role(
    client: httpx.AsyncClient, db_session: AsyncSession
) -> None:
    customer = await sign_up(client, db_session)
    admin = await sign_up(client, db_session, role=PlatformRole.ADMIN)
    _problem(await client.get("/admin/mail-outbox", headers=customer.headers), 403, "forbidden")
    outbox = await client.get(
        "/admin/mail-outbox", headers=admin.headers, params={"to": customer.email}
    )
    assert outbox.status_code == 200
    assert {mail["template"] for mail in outbox.json()["items"]} == {"verify_email"}
    promoted = await client.put(
        f"/admin/users/{customer.id}/role", headers=admin.headers, json={"role": "operations"}
    )
    assert promoted.json()["roles"] == ["customer", "operations"]
    _problem(
        await client.put(
            f"/admin/users/{uuid.uuid4()}/role", headers=admin.headers, json={"role": None}
        ),
        404,
        "not_found",
    )
