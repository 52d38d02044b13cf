"""The user table and sessions: fastapi-users' SQLAlchemy configuration page, on aiomysql.

As its docs: a declarative `User(SQLAlchemyBaseUserTableUUID, Base)`,
`create_async_engine(DATABASE_URL)` (SQLAlchemy's default pool), an
`async_sessionmaker(engine, expire_on_commit=False)`, one session per
request through `get_async_session`, and `get_user_db` yielding a
`SQLAlchemyUserDatabase`. Only the URL differs: `mysql+aiomysql://` instead
of the docs' SQLite example.
"""
import os
from collections.abc import AsyncGenerator

from fastapi import Depends
from fastapi_users.db import SQLAlchemyBaseUserTableUUID, SQLAlchemyUserDatabase
from sqlalchemy import URL
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase

DATABASE_URL = URL.create(
    "mysql+aiomysql",
    username=os.environ["PEER_DB_USER"], password=os.environ["PEER_DB_PASSWORD"] or None,
    host=os.environ["PEER_DB_HOST"], port=int(os.environ["PEER_DB_PORT"]),
    database=os.environ["PEER_DB_NAME"], query={"charset": "utf8mb4"},
)


class Base(DeclarativeBase):
    pass


class User(SQLAlchemyBaseUserTableUUID, Base):
    pass


engine = create_async_engine(DATABASE_URL)
async_session_maker = async_sessionmaker(engine, expire_on_commit=False)


async def create_db_and_tables():
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)


async def get_async_session() -> AsyncGenerator[AsyncSession, None]:
    async with async_session_maker() as session:
        yield session


async def get_user_db(session: AsyncSession = Depends(get_async_session)):
    yield SQLAlchemyUserDatabase(session, User)
