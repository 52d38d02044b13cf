"""The baselines: a bare Flask app returning JSON, the smallest answer a Flask view can give.

bench/run.py serves it twice, 4 workers each, in the same rounds as the
service: as "hello" on gunicorn's sync workers (`gunicorn bench.hello:app`),
the ceiling every Flask user knows, which every target divides by; and as
"hello-served" under our own server (`python -m serving bench.hello:app`),
so the distance between our endpoints and our server's ceiling shows too.
"""
from flask import Flask, jsonify

app = Flask(__name__)


@app.get("/hello")
def hello():
    """Answer a small JSON object, like the service's smallest answers."""
    return jsonify(message="hello")
