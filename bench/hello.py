"""The baseline: a bare Flask app returning JSON, served exactly like the service.

bench/run.py starts it under the same gunicorn settings as the service, so
every figure can be read as a fraction of "Flask and gunicorn doing nothing".
"""
from flask import Flask, jsonify

app = Flask(__name__)


@app.get("/hello")
def hello():
    """Answer a small JSON object, like the service's smallest answers."""
    return jsonify(message="hello")
