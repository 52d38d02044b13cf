"""Peer "fastapi": a bare FastAPI endpoint, FastAPI's first-steps app answering like bench/hello.py.

Served as FastAPI's and uvicorn's deployment docs say: `uvicorn app:app --workers 4`,
uvloop and httptools installed (uvicorn[standard]). No database, no token: the
ceiling a FastAPI user knows, beside bare Flask's.
"""
from fastapi import FastAPI

app = FastAPI()


@app.get("/hello")
async def hello():
    """Answer the same small JSON object as bench/hello.py."""
    return {"message": "hello"}
