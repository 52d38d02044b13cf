"""The HTTP layer: request parsing, errors, middleware, and one blueprint per URL family.

It may import accounts/, content/, config and db's exceptions; it runs no SQL
itself. Low modules (errors, middleware, inputs, json_body, responses, pagination,
conditional, token_auth, rate_limits) never import a blueprint module.
Blueprints, by the URLs they answer:
  login      /auth, /login, /rest-auth, / (the login page)
  public     /public
  sessions   /refresh, /logout, /logout-all, /sessions
  users      /users, /register, /signup
  posts      /users/<uid>/posts
  authors    /authors, /author
  jwks       /.well-known/jwks.json
  openapi    /openapi.json
  health     /healthz, /readyz, /metrics
  docs       /docs (Swagger UI)
  password_reset   /password/forgot, /password/reset, /reset-password (page)
  email            /email/verify, /email/verify/resend, /verify-email (page)
  security_events  /users/<id>/events, /events
  personal_tokens  /tokens
  oauth      /introspect, /revoke, /.well-known/oauth-authorization-server
  mfa        /mfa, /mfa/totp, /mfa/recovery-codes, /auth/mfa, /auth/reauth
  webauthn   /webauthn/* (passkeys)
"""


def register_blueprints(app):
    """Register every blueprint. Add new resources here, one line each."""
    from rest import authors, docs, health, jwks, login, openapi, posts, public, sessions, users
    from rest import oauth, personal_tokens
    from rest import mfa, webauthn  # second factors (issue 15)
    from rest.inputs import PositiveId

    # `<id:name>` in any route: positive integers only, anything else is a 404.
    app.url_map.converters["id"] = PositiveId
    for module in (login, public, users, posts, authors, sessions, jwks, openapi, health, docs):
        app.register_blueprint(module.bp)
    # Account email (issue 14): password reset, email verification, security events.
    from rest import email, password_reset, security_events
    for module in (password_reset, email, security_events):
        app.register_blueprint(module.bp)
    app.register_blueprint(personal_tokens.bp)  # /tokens
    app.register_blueprint(oauth.bp)  # /introspect, /revoke, /.well-known/oauth-authorization-server
    for module in (mfa, webauthn):
        app.register_blueprint(module.bp)
