"""Peer "flask-jwt-extended": Flask-JWT-Extended as its docs set it up, on PyMySQL through a DBUtils pool.

- POST /login {"username", "password"} -> {"access_token"}: `create_access_token(identity=str(id))`
  (the docs' basic usage; `sub` must be a string);
- GET /rest-auth: `@jwt_required()`, the user loaded per request by a
  `@jwt.user_lookup_loader` ("Automatic User Loading") and read as `current_user`.

The docs' example loads the user through Flask-SQLAlchemy; a Flask service
on raw SQL (like ours) keeps a pool of PyMySQL connections instead
(DBUtils.PooledDB: one connection per sync worker, kept between requests).
Passwords are werkzeug hashes, as in Flask's tutorial. `flask --app app seed`
makes the table and the bench user. Served as Flask's docs show:
`gunicorn -w 4 app:app` (sync workers).
"""
import os
from datetime import timedelta

import click
import pymysql
from dbutils.pooled_db import PooledDB
from flask import Flask, jsonify, request
from flask_jwt_extended import JWTManager, create_access_token, current_user, jwt_required
from werkzeug.security import check_password_hash, generate_password_hash

USER_TABLE = """CREATE TABLE IF NOT EXISTS user (
    id INT AUTO_INCREMENT PRIMARY KEY,
    username VARCHAR(80) NOT NULL UNIQUE,
    password_hash VARCHAR(255) NOT NULL
) CHARACTER SET utf8mb4"""
INSERT_USER = "INSERT INTO user (username, password_hash) VALUES (%s, %s)"
USER_BY_ID = "SELECT id, username FROM user WHERE id = %s"
LOGIN_ROW = "SELECT id, password_hash FROM user WHERE username = %s"

app = Flask(__name__)
app.config["JWT_SECRET_KEY"] = os.environ["PEER_SECRET"]
app.config["JWT_ACCESS_TOKEN_EXPIRES"] = timedelta(seconds=int(os.environ["PEER_ACCESS_TTL"]))
jwt = JWTManager(app)

# Made in each worker at import (gunicorn does not preload by default): no
# connection is shared across a fork.
pool = PooledDB(
    pymysql, mincached=1, maxcached=4,
    host=os.environ["PEER_DB_HOST"], port=int(os.environ["PEER_DB_PORT"]),
    user=os.environ["PEER_DB_USER"], password=os.environ["PEER_DB_PASSWORD"],
    database=os.environ["PEER_DB_NAME"], charset="utf8mb4",
    cursorclass=pymysql.cursors.DictCursor, autocommit=True,
)


def query_one(sql, params):
    """One row as a dict (or None), on a pooled connection given back at once."""
    conn = pool.connection()
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchone()
    finally:
        conn.close()  # back to the pool


@jwt.user_lookup_loader
def user_lookup_callback(_jwt_header, jwt_data):
    """The user of a verified token, loaded on every protected request (None -> 401)."""
    return query_one(USER_BY_ID, (jwt_data["sub"],))


@app.post("/login")
def login():
    """Exchange a username and password for an access token."""
    body = request.get_json(silent=True) or {}
    row = query_one(LOGIN_ROW, (str(body.get("username", "")),))
    if row is None or not check_password_hash(row["password_hash"], str(body.get("password", ""))):
        return jsonify(msg="Wrong username or password"), 401
    return jsonify(access_token=create_access_token(identity=str(row["id"])))


@app.get("/rest-auth")
@jwt_required()
def rest_auth():
    """The protected resource: who the token's user is."""
    return jsonify(message="You are an authenticated person to see this message",
                   user={"id": current_user["id"], "username": current_user["username"]})


@app.cli.command("seed")
def seed():
    """Create the user table and the user PEER_USERNAME / PEER_PASSWORD."""
    conn = pool.connection()
    try:
        with conn.cursor() as cur:
            cur.execute(USER_TABLE)
            cur.execute(INSERT_USER, (os.environ["PEER_USERNAME"],
                                      generate_password_hash(os.environ["PEER_PASSWORD"])))
    finally:
        conn.close()
    click.echo("seeded")
