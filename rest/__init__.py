"""The HTTP layer: one blueprint per resource, plus auth and errors."""


def register_blueprints(app):
    """Register every blueprint. Add new resources here, one line each."""
    from rest.auth import bp as auth_bp

    app.register_blueprint(auth_bp)
