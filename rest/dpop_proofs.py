"""DPoP on requests: the `DPoP` header at the token endpoints and with bound access tokens.

- Token requests (POST /auth, /login, /refresh): a valid proof binds the
  issued tokens to its key (`cnf.jkt`, `"token_type": "DPoP"`); no proof, plain
  Bearer tokens (unless DPOP_REQUIRED). A bad proof is 400 with the JSON
  error `invalid_dpop_proof` (RFC 9449 section 5), or `use_dpop_nonce` and
  a `DPoP-Nonce` header when DPOP_NONCE is on and the proof lacks the nonce.
- Resources: a bound access token only as `Authorization: DPoP <token>` with a
  proof by the same key whose `ath` is the token's hash; failures are 401
  with `WWW-Authenticate: DPoP error=..., algs=...` (section 7.1).
Each proof's jti is single use across workers and instances
(accounts.dpop.ReplayCache: Redis when configured, else the database).
"""
import time

import redis
from flask import current_app, g, request

from accounts import dpop
from rest.errors import ApiError

# Per-request code reads the objects behind Flask's proxies: a read through a proxy costs
# ~1.3 us, ~0.15 us this way (docs/performance.md, "Flask's proxies and Werkzeug's copies").
_app = current_app._get_current_object

HEADER = "DPoP"
NONCE_HEADER = "DPoP-Nonce"
NONCE_PERIOD = 300  # seconds a server nonce stays fresh (and one period more)
ALGS = " ".join(dpop.ALGORITHMS)
_NOT_YET = object()


def _settings():
    config = current_app.config
    return config["DPOP_MAX_AGE"], config["JWT_LEEWAY"]


def current_nonce() -> str:
    """The nonce proofs must carry now (DPOP_NONCE on)."""
    return dpop.make_nonce(current_app.config["SECRET_KEY"], time.time(), NONCE_PERIOD)


def _nonce_check():
    if not current_app.config["DPOP_NONCE"]:
        return None
    secret, now = current_app.config["SECRET_KEY"], time.time()
    return lambda nonce: dpop.nonce_valid(nonce, secret, now, NONCE_PERIOD)


def replay_cache() -> dpop.ReplayCache:
    """This process's replay cache: on REDIS_URL, or a Redis rate-limit storage, else the database."""
    ext = current_app.extensions
    if "dpop_replay" not in ext:
        config = current_app.config
        url = config["REDIS_URL"] or config["RATELIMIT_STORAGE_URI"]
        client = None
        if url.startswith(("redis://", "rediss://", "unix://")):
            client = redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=1.0)
        ext["dpop_replay"] = dpop.ReplayCache(client, namespace=f"{config['RATELIMIT_KEY_PREFIX']}:"
                                                               f"{config['DB_NAME']}:")
    return ext["dpop_replay"]


def _verify(proof_text, access_token=None) -> dpop.Proof:
    """Verify the proof for this request and claim its jti (ProofError on any failure)."""
    max_age, leeway = _settings()
    now = time.time()
    proof = dpop.verify_proof(proof_text, method=request.method, url=request.base_url, now=now,
                              max_age=max_age, leeway=leeway, access_token=access_token,
                              nonce_ok=_nonce_check())
    replay_cache().claim(proof, max_age + 2 * leeway, now)
    return proof


def _one_proof():
    """The request's single DPoP header value, None when absent; ProofError if repeated."""
    values = request.headers.getlist(HEADER)
    if len(values) > 1:
        raise dpop.ProofError("Send exactly one DPoP header")
    return values[0] if values else None


# --- token requests ------------------------------------------------------------------

def token_request_error(exc: dpop.ProofError) -> ApiError:
    """400 invalid_dpop_proof / use_dpop_nonce at a token endpoint (RFC 9449 sections 5 and 8)."""
    headers = {}
    if exc.error == dpop.USE_NONCE or current_app.config["DPOP_NONCE"]:
        headers[NONCE_HEADER] = current_nonce()
    return ApiError(400, exc.message, error=exc.error, headers=headers)


def token_request_key(bound_to: str | None = None) -> str | None:
    """The jkt to bind the tokens of this token request to, or None for Bearer tokens.

    Verified once per request (the answer is kept on g). `bound_to`: the
    refresh token's cnf.jkt; the proof must then come from that key.
    Raises a 400 ApiError for a bad or missing-but-required proof.
    """
    jkt = g.get("dpop_jkt", _NOT_YET)
    if jkt is _NOT_YET:
        try:
            text = _one_proof()
            if text is None:
                if current_app.config["DPOP_REQUIRED"] or bound_to:
                    raise dpop.ProofError("A DPoP proof is required")
                jkt = None
            else:
                jkt = _verify(text).jkt
        except dpop.ProofError as exc:
            raise token_request_error(exc) from None
        g.dpop_jkt = jkt
    if bound_to is not None and jkt != bound_to:
        raise ApiError(400, "The refresh token is bound to another DPoP key", error="invalid_dpop_proof")
    return jkt


# --- resources -------------------------------------------------------------------------

def resource_error(description: str, error: str = dpop.INVALID_PROOF) -> ApiError:
    """401 with a DPoP challenge (RFC 9449 section 7.1)."""
    challenge = f'DPoP algs="{ALGS}", error="{error}", error_description="{description}"'
    headers = {"WWW-Authenticate": challenge}
    if error == dpop.USE_NONCE or current_app.config["DPOP_NONCE"]:
        headers[NONCE_HEADER] = current_nonce()
    return ApiError(401, description, error=error, headers=headers)


def check_binding(scheme: str, token: str, payload: dict) -> None:
    """Accept a verified access token only as its binding demands; 401 otherwise.

    Bound (cnf.jkt): scheme DPoP and a proof by that key for this request
    and this token. Unbound: never with scheme DPoP, and only without
    DPOP_REQUIRED.
    """
    cnf = payload.get("cnf")
    jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
    if jkt is None:
        if scheme == "dpop":
            raise resource_error("This access token is not DPoP-bound; send it as Bearer",
                                 error="invalid_token")
        if _app().config["DPOP_REQUIRED"]:
            raise resource_error("This service requires DPoP-bound access tokens", error="invalid_token")
        return
    if scheme != "dpop":
        raise resource_error("A DPoP-bound token must be sent as 'Authorization: DPoP <token>' "
                             "with a DPoP proof", error="invalid_token")
    try:
        text = _one_proof()
        if text is None:
            raise dpop.ProofError("A DPoP proof is required with a DPoP-bound token")
        proof = _verify(text, access_token=token)
    except dpop.ProofError as exc:
        raise resource_error(exc.message, exc.error) from None
    if proof.jkt != jkt:
        raise resource_error("The DPoP proof is signed by another key than the token is bound to")
