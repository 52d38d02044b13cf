"""app.Service: Flask that remembers which functions are synchronous, and otherwise behaves as Flask."""
import flask


def test_a_sync_view_is_returned_as_is_and_remembered(app):
    view = app.view_functions["login.rest_auth"]
    assert app.ensure_sync(view) is view
    assert view in app._sync_functions
    assert app.ensure_sync(view) is view


def test_a_coroutine_function_is_wrapped_every_time_and_never_remembered(app, monkeypatch):
    async def later():
        return "done"

    monkeypatch.setattr(flask.Flask, "async_to_sync", lambda self, func: ("wrapped", func))
    assert app.ensure_sync(later) == ("wrapped", later)
    assert app.ensure_sync(later) == ("wrapped", later)
    assert later not in app._sync_functions


class Handler:
    def method(self):
        return "ran"


def test_bound_methods_pass_through_unremembered(app):
    # A bound method may be made anew at each request (a class-based view's
    # dispatch_request): remembering them would grow without bound.
    before = set(app._sync_functions)
    bound = Handler().method
    assert app.ensure_sync(bound) == bound
    assert app.ensure_sync(bound)() == "ran"
    assert app._sync_functions == before


def test_requests_still_run_their_views_and_teardowns(client, app):
    torn_down = []
    app.teardown_appcontext(lambda exc: torn_down.append(exc))
    for _ in range(2):
        response = client.get("/public")
        assert response.status_code == 200
        assert response.get_json() == {"message": "This is a public page"}
    assert torn_down == [None, None]
