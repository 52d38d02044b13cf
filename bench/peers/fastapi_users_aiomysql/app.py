"""Peer "fastapi-users": the full example of fastapi-users' docs (SQLAlchemy), on MariaDB through aiomysql.

- POST /auth/register {"email", "password"} -> 201 (the bench's user is made through it);
- POST /auth/jwt/login (form: username=<email>, password) -> {"access_token", "token_type": "bearer"};
- GET /rest-auth: `Depends(current_active_user)`, which decodes the JWT and
  loads the user through the user manager and a new session, every request.

Served as FastAPI's and uvicorn's docs say: `uvicorn app:app --workers 4`
(uvloop and httptools from uvicorn[standard]). The lifespan creates the
tables, as in the docs; bench/peers creates them once before the four
workers start, so that their create_all only finds them there.
"""
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from db import User, create_db_and_tables
from schemas import UserCreate, UserRead, UserUpdate
from users import auth_backend, current_active_user, fastapi_users


@asynccontextmanager
async def lifespan(app: FastAPI):
    await create_db_and_tables()
    yield


app = FastAPI(lifespan=lifespan)

app.include_router(fastapi_users.get_auth_router(auth_backend), prefix="/auth/jwt", tags=["auth"])
app.include_router(fastapi_users.get_register_router(UserRead, UserCreate), prefix="/auth", tags=["auth"])
app.include_router(fastapi_users.get_reset_password_router(), prefix="/auth", tags=["auth"])
app.include_router(fastapi_users.get_verify_router(UserRead), prefix="/auth", tags=["auth"])
app.include_router(fastapi_users.get_users_router(UserRead, UserUpdate), prefix="/users", tags=["users"])


@app.get("/rest-auth")
async def rest_auth(user: User = Depends(current_active_user)):
    """The protected resource: who the token's user is."""
    return {"message": "You are an authenticated person to see this message",
            "user": {"id": str(user.id), "email": user.email}}
