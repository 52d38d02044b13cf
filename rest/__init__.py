"""The HTTP layer: one blueprint per resource, plus auth and errors."""


def register_blueprints(app):
    """Register every blueprint. Add new resources here, one line each."""
    from rest.auth import bp as auth_bp
    from rest.inputs import PositiveId

    # `<id:name>` in any route: positive integers only, anything else is a 404.
    app.url_map.converters["id"] = PositiveId
    app.register_blueprint(auth_bp)
