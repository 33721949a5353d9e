"""Tenants and API keys.

A key is ``ioc_`` followed by 32 random bytes in URL-safe base64. Only the hex
SHA-256 of the whole key is stored. A request's key is hashed, the row is found by
that hash, and the two hashes are compared once more with
:func:`hmac.compare_digest` before the key is accepted.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from iocscope.service.tables import ApiKey, Tenant

KEY_PREFIX = "ioc_"
# Plan of a tenant created without one.
DEFAULT_PLAN = "free"
KEY_RANDOM_BYTES = 32
# last_used_at is written at most this often per key, to spare the database a
# write on every request.
LAST_USED_RESOLUTION = timedelta(seconds=60)


@dataclass(frozen=True)
class Principal:
    """The tenant and key behind an authenticated request."""

    tenant_id: int
    tenant_name: str
    plan: str
    key_id: int
    webhook_secret: str


@dataclass(frozen=True)
class KeyInfo:
    id: int
    tenant: str
    plan: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


def generate_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(KEY_RANDOM_BYTES)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def key_matches(key: str, stored_hash: str) -> bool:
    """Compare a presented key with a stored hash in constant time."""
    return hmac.compare_digest(hash_key(key), stored_hash)


def now() -> datetime:
    return datetime.now(UTC)


async def ensure_tenant(session: AsyncSession, name: str, plan: str) -> Tenant:
    """Return the tenant called ``name``, creating it on ``plan`` if it is new."""
    tenant = await session.scalar(select(Tenant).where(Tenant.name == name))
    if tenant is not None:
        return tenant
    tenant = Tenant(
        name=name,
        plan=plan,
        webhook_secret=secrets.token_hex(32),
        created_at=now(),
    )
    session.add(tenant)
    await session.flush()
    return tenant


async def create_key(
    sessions: async_sessionmaker[AsyncSession],
    tenant_name: str,
    plan: str | None,
) -> tuple[int, str, str]:
    """Create a key for the tenant; return its id, the key (shown once) and the plan.

    A new tenant starts on ``plan``, or on ``free`` when it is None. An existing
    tenant keeps its plan unless ``plan`` names a different one, in which case the
    tenant moves to that plan.
    """
    key = generate_key()
    async with sessions.begin() as session:
        tenant = await ensure_tenant(session, tenant_name, plan or DEFAULT_PLAN)
        if plan is not None:
            tenant.plan = plan
        row = ApiKey(tenant_id=tenant.id, key_hash=hash_key(key), created_at=now())
        session.add(row)
        await session.flush()
        return row.id, key, tenant.plan


async def list_keys(sessions: async_sessionmaker[AsyncSession]) -> list[KeyInfo]:
    query = (
        select(ApiKey, Tenant)
        .join(Tenant, Tenant.id == ApiKey.tenant_id)
        .order_by(ApiKey.id)
    )
    async with sessions() as session:
        rows = (await session.execute(query)).all()
    return [
        KeyInfo(
            id=key.id,
            tenant=tenant.name,
            plan=tenant.plan,
            created_at=key.created_at,
            last_used_at=key.last_used_at,
            revoked_at=key.revoked_at,
        )
        for key, tenant in rows
    ]


async def revoke_key(sessions: async_sessionmaker[AsyncSession], key_id: int) -> bool:
    """Revoke a key; return False when no unrevoked key has that id."""
    statement = (
        update(ApiKey)
        .where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=now())
    )
    async with sessions.begin() as session:
        result = await session.execute(statement)
    return bool(getattr(result, "rowcount", 0))


async def authenticate(
    sessions: async_sessionmaker[AsyncSession], key: str
) -> Principal | None:
    """Return who owns ``key``, or None for an unknown or revoked key."""
    if not key.startswith(KEY_PREFIX):
        return None
    query = (
        select(ApiKey, Tenant)
        .join(Tenant, Tenant.id == ApiKey.tenant_id)
        .where(ApiKey.key_hash == hash_key(key))
    )
    async with sessions() as session:
        row = (await session.execute(query)).first()
    if row is None:
        return None
    api_key, tenant = row
    if not key_matches(key, api_key.key_hash) or api_key.revoked_at is not None:
        return None
    await _touch(sessions, api_key)
    return Principal(
        tenant_id=tenant.id,
        tenant_name=tenant.name,
        plan=tenant.plan,
        key_id=api_key.id,
        webhook_secret=tenant.webhook_secret,
    )


async def _touch(sessions: async_sessionmaker[AsyncSession], api_key: ApiKey) -> None:
    moment = now()
    last = api_key.last_used_at
    if last is not None and _aware(last) > moment - LAST_USED_RESOLUTION:
        return
    statement = (
        update(ApiKey)
        .where(
            ApiKey.id == api_key.id,
            or_(
                ApiKey.last_used_at.is_(None),
                ApiKey.last_used_at < moment - LAST_USED_RESOLUTION,
            ),
        )
        .values(last_used_at=moment)
    )
    async with sessions.begin() as session:
        await session.execute(statement)


def _aware(moment: datetime) -> datetime:
    """Attach UTC to a naive datetime (SQLite returns stored ones without a zone)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


async def webhook_secret(
    sessions: async_sessionmaker[AsyncSession], tenant_name: str
) -> str | None:
    query = select(Tenant.webhook_secret).where(Tenant.name == tenant_name)
    async with sessions() as session:
        return await session.scalar(query)
