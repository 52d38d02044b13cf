"""The HTTP layer: one blueprint per resource, plus auth and errors."""


def register_blueprints(app):
    """Register every blueprint. Add new resources here, one line each."""
    from rest.auth import bp as auth_bp
    from rest.authors import bp as authors_bp
    from rest.docs import bp as docs_bp
    from rest.inputs import PositiveId
    from rest.keys import bp as keys_bp
    from rest.login import bp as login_bp
    from rest.observability import bp as observability_bp
    from rest.pages import bp as pages_bp
    from rest.posts import bp as posts_bp
    from rest.registration import bp as registration_bp
    from rest.sessions import bp as sessions_bp
    from rest.spec import bp as spec_bp
    from rest.users import bp as users_bp

    # `<id:name>` in any route: positive integers only, anything else is a 404.
    app.url_map.converters["id"] = PositiveId
    app.register_blueprint(auth_bp)
    app.register_blueprint(login_bp)
    app.register_blueprint(pages_bp)
    app.register_blueprint(registration_bp)
    app.register_blueprint(users_bp)
    app.register_blueprint(posts_bp)
    app.register_blueprint(authors_bp)
    app.register_blueprint(observability_bp)
    app.register_blueprint(sessions_bp)
    app.register_blueprint(keys_bp)
    app.register_blueprint(spec_bp)
    app.register_blueprint(docs_bp)
