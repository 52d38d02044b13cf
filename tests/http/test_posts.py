"""Posts at /users/<uid>/posts[/<pid>]: CRUD, input rules, authorization, pagination."""
import re

import pytest

from support import assert_error, bearer

ISO_Z = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
POST_KEYS = {"id", "title", "body", "created", "updated", "user"}


def create(client, person, uid=None, title="A title", body="A body", headers=None):
    """POST a post at /users/<uid>/posts (default: the person's own) and return the response."""
    return client.post(f"/users/{uid or person.id}/posts", json={"title": title, "body": body},
                       headers=headers or person.headers)


def made(client, person, **kwargs):
    response = create(client, person, **kwargs)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


# --- happy paths ------------------------------------------------------------------

def test_create_answers_201_with_location_etag_and_the_post(client, people):
    alice = people.alice
    response = create(client, alice, title="Hello", body="World")
    assert response.status_code == 201
    post = response.get_json()
    assert set(post) == POST_KEYS
    assert post["title"] == "Hello" and post["body"] == "World"
    assert post["user"] == {"id": alice.id, "username": "alice"}
    assert ISO_Z.fullmatch(post["created"]) and ISO_Z.fullmatch(post["updated"])
    assert response.headers["Location"] == f"/users/{alice.id}/posts/{post['id']}"
    assert response.headers["ETag"] == f'"p{post["id"]}-v1"'
    again = client.get(response.headers["Location"], headers=alice.headers)
    assert again.status_code == 200
    assert again.get_json() == post
    assert again.headers["ETag"] == response.headers["ETag"]
    assert again.headers["Cache-Control"] == "private, no-cache"


def test_list_is_newest_first_in_an_envelope(client, people):
    alice = people.alice
    first = made(client, alice, title="first")
    second = made(client, alice, title="second")
    made(client, people.bob, title="bob's")
    response = client.get(f"/users/{alice.id}/posts", headers=alice.headers)
    assert response.status_code == 200
    assert response.get_json() == {"posts": [second, first], "next": None}
    assert response.headers["Cache-Control"] == "private, no-cache"


def test_list_of_a_user_without_posts_is_empty(client, people):
    response = client.get(f"/users/{people.alice.id}/posts", headers=people.alice.headers)
    assert response.status_code == 200
    assert response.get_json() == {"posts": [], "next": None}


def test_put_replaces_title_and_body(client, people):
    alice = people.alice
    post = made(client, alice, title="old", body="old body")
    url = f"/users/{alice.id}/posts/{post['id']}"
    response = client.put(url, json={"title": "new", "body": "new body"}, headers=alice.headers)
    assert response.status_code == 200
    changed = response.get_json()
    assert changed == {**post, "title": "new", "body": "new body", "updated": changed["updated"]}
    assert changed["updated"] >= post["created"]
    assert response.headers["ETag"] == f'"p{post["id"]}-v2"'
    assert client.get(url, headers=alice.headers).get_json() == changed


def test_patch_changes_only_the_fields_sent(client, people):
    alice = people.alice
    post = made(client, alice, title="old", body="kept")
    url = f"/users/{alice.id}/posts/{post['id']}"
    response = client.patch(url, json={"title": "new"}, headers=alice.headers)
    assert response.status_code == 200
    assert response.get_json()["title"] == "new"
    assert response.get_json()["body"] == "kept"
    response = client.patch(url, json={"body": "changed"}, headers=alice.headers)
    assert response.get_json()["title"] == "new"
    assert response.get_json()["body"] == "changed"
    assert response.headers["ETag"] == f'"p{post["id"]}-v3"'


def test_delete_answers_204_and_the_post_is_gone(client, people):
    alice = people.alice
    post = made(client, alice)
    url = f"/users/{alice.id}/posts/{post['id']}"
    response = client.delete(url, headers=alice.headers)
    assert response.status_code == 204
    assert response.data == b""
    assert_error(client.get(url, headers=alice.headers), 404, field=None)
    assert_error(client.delete(url, headers=alice.headers), 404, field=None)


def test_unicode_and_the_longest_fields_are_kept_exactly(make_app, people):
    # A 65535-character body of 3-byte characters is ~196 KB of JSON: raise the cap.
    client = make_app(MAX_CONTENT_LENGTH=400_000).test_client()
    alice = people.alice
    title, body = "é" * 200, "€" * 65535
    post = made(client, alice, title=title, body=body)
    stored = client.get(f"/users/{alice.id}/posts/{post['id']}", headers=alice.headers).get_json()
    assert stored["title"] == title and stored["body"] == body
    over = create(client, alice, body="€" * 65536)
    assert_error(over, 400, field="body")


def test_a_body_over_the_request_cap_is_413(client, people):
    response = create(client, people.alice, body="x" * 70_000)
    assert_error(response, 413, field=None)


# --- bad input -------------------------------------------------------------------

BAD_CREATE = [
    ({"body": "b"}, "title"),
    ({"title": "t"}, "body"),
    ({"title": 5, "body": "b"}, "title"),
    ({"title": None, "body": "b"}, "title"),
    ({"title": ["t"], "body": "b"}, "title"),
    ({"title": "t", "body": {"text": "b"}}, "body"),
    ({"title": "t", "body": True}, "body"),
    ({"title": "x" * 201, "body": "b"}, "title"),
    ({"title": "", "body": "b"}, "title"),
    ({"title": "   ", "body": "b"}, "title"),
    ({"title": "t", "body": ""}, "body"),
    ({"name": "seed 002 sends 'name'"}, "name"),
    ({"title": "t", "body": "b", "user_id": 2}, "user_id"),
    ({"title": "t", "body": "b", "id": 7}, "id"),
    ({"title": "t", "body": "b", "created": "2020-01-01T00:00:00Z"}, "created"),
]


@pytest.mark.parametrize("payload, field", BAD_CREATE)
def test_create_refuses_bad_fields_naming_the_field(client, people, payload, field):
    alice = people.alice
    assert_error(client.post(f"/users/{alice.id}/posts", json=payload, headers=alice.headers), 400, field=field)
    assert client.get(f"/users/{alice.id}/posts", headers=alice.headers).get_json()["posts"] == []


@pytest.mark.parametrize("data, content_type, status", [
    ("title=t&body=b", "application/x-www-form-urlencoded", 415),
    ('{"title": "t", "body": "b"}', "text/plain", 415),
    ('{"title": "t", "body": ', "application/json", 400),
    ('["t", "b"]', "application/json", 400),
    ('"t"', "application/json", 400),
    ("", "application/json", 400),
])
def test_create_refuses_bodies_that_are_not_a_json_object(client, people, data, content_type, status):
    alice = people.alice
    response = client.post(f"/users/{alice.id}/posts", data=data, content_type=content_type,
                           headers=alice.headers)
    assert_error(response, status, field=None)


def test_a_lone_surrogate_is_a_400_not_a_500(client, people):
    alice = people.alice
    response = client.post(f"/users/{alice.id}/posts", data='{"title": "\\ud800", "body": "b"}',
                           content_type="application/json", headers=alice.headers)
    assert_error(response, 400, field="title")


BAD_UPDATE = [
    ("put", {"title": "t"}, "body"),
    ("put", {"body": "b"}, "title"),
    ("put", {"title": "t", "body": None}, "body"),
    ("patch", {"title": None}, "title"),
    ("patch", {"body": 3}, "body"),
    ("patch", {"title": "x" * 201}, "title"),
    ("patch", {"title": ""}, "title"),
    ("patch", {"name": "n"}, "name"),
    ("patch", {"title": "t", "version": 9}, "version"),
    ("patch", {}, None),
]


@pytest.mark.parametrize("method, payload, field", BAD_UPDATE)
def test_updates_refuse_bad_fields_and_change_nothing(client, people, method, payload, field):
    alice = people.alice
    post = made(client, alice, title="kept", body="kept")
    url = f"/users/{alice.id}/posts/{post['id']}"
    assert_error(getattr(client, method)(url, json=payload, headers=alice.headers), 400, field=field)
    assert client.get(url, headers=alice.headers).get_json() == post


@pytest.mark.parametrize("method", ["put", "patch"])
def test_updates_refuse_non_json(client, people, method):
    alice = people.alice
    post = made(client, alice)
    url = f"/users/{alice.id}/posts/{post['id']}"
    assert_error(getattr(client, method)(url, data="title=t", headers=alice.headers), 415, field=None)


@pytest.mark.parametrize("path", [
    "/users/0/posts", "/users/-1/posts", "/users/abc/posts", "/users/1.5/posts",
    "/users/99999999999/posts", "/users/1/posts/0", "/users/1/posts/x", "/users/1/posts/-3",
])
def test_ids_that_are_not_positive_integers_are_a_json_404(client, people, path):
    assert_error(client.get(path, headers=people.admin.headers), 404, field=None)


# --- authorization ---------------------------------------------------------------

ROUTES = [("get", ""), ("post", ""), ("get", "/1"), ("put", "/1"), ("patch", "/1"), ("delete", "/1")]


@pytest.mark.parametrize("method, suffix", ROUTES)
def test_anonymous_callers_get_401(client, people, method, suffix):
    post = made(client, people.alice)
    suffix = suffix.replace("1", str(post["id"]))
    response = getattr(client, method)(f"/users/{people.alice.id}/posts{suffix}",
                                       json={"title": "t", "body": "b"})
    body = assert_error(response, 401, field=None)
    assert body["error"] == "Authorization Required"
    assert "WWW-Authenticate" in response.headers


@pytest.mark.parametrize("method, suffix", ROUTES)
def test_a_bad_token_is_401(client, people, method, suffix):
    response = getattr(client, method)(f"/users/{people.alice.id}/posts{suffix}",
                                       json={"title": "t", "body": "b"},
                                       headers=bearer("not-a-token"))
    assert_error(response, 401, field=None)


@pytest.mark.parametrize("method", ["get", "put", "patch", "delete"])
def test_another_user_cannot_reach_a_post_even_knowing_its_id(client, people, method):
    alice, bob = people.alice, people.bob
    post = made(client, alice, title="mine", body="mine")
    url = f"/users/{alice.id}/posts/{post['id']}"
    missing = getattr(client, method)(f"/users/{alice.id}/posts/999999", json={"title": "t", "body": "b"},
                                      headers=bob.headers)
    hidden = getattr(client, method)(url, json={"title": "t", "body": "b"}, headers=bob.headers)
    # The same answer as for a post that does not exist: nothing is revealed.
    assert assert_error(hidden, 404, field=None) == assert_error(missing, 404, field=None)
    assert client.get(url, headers=alice.headers).get_json() == post


def test_another_user_cannot_list_or_create_posts_of_someone_else(client, people):
    alice, bob = people.alice, people.bob
    made(client, alice)
    listed = client.get(f"/users/{alice.id}/posts", headers=bob.headers)
    nobody = client.get("/users/999999/posts", headers=bob.headers)
    assert assert_error(listed, 404, field=None) == assert_error(nobody, 404, field=None)
    assert_error(create(client, alice, headers=bob.headers), 404, field=None)
    assert len(client.get(f"/users/{alice.id}/posts", headers=alice.headers).get_json()["posts"]) == 1


@pytest.mark.parametrize("method", ["get", "put", "patch", "delete"])
def test_a_post_is_only_reachable_under_its_own_users_path(client, people, method):
    """Even for its owner's token or an admin's: /users/<bob>/posts/<alice's post> is a 404."""
    alice, bob = people.alice, people.bob
    post = made(client, alice, title="mine", body="mine")
    for caller in (alice, bob, people.admin):
        response = getattr(client, method)(f"/users/{bob.id}/posts/{post['id']}",
                                           json={"title": "t", "body": "b"}, headers=caller.headers)
        assert_error(response, 404, field=None)
    assert client.get(f"/users/{alice.id}/posts/{post['id']}", headers=alice.headers).get_json() == post


def test_an_admin_can_do_everything_to_anyones_posts(client, people):
    alice, admin = people.alice, people.admin
    made(client, alice, title="by alice")
    created = made(client, alice, headers=admin.headers, title="by admin for alice")
    assert created["user"] == {"id": alice.id, "username": "alice"}
    listed = client.get(f"/users/{alice.id}/posts", headers=admin.headers).get_json()
    assert [p["title"] for p in listed["posts"]] == ["by admin for alice", "by alice"]
    assert all(p["user"] == {"id": alice.id, "username": "alice"} for p in listed["posts"])
    url = f"/users/{alice.id}/posts/{created['id']}"
    assert client.get(url, headers=admin.headers).get_json() == created
    response = client.put(url, json={"title": "T", "body": "B"}, headers=admin.headers)
    assert response.status_code == 200 and response.get_json()["title"] == "T"
    response = client.patch(url, json={"body": "B2"}, headers=admin.headers)
    assert response.status_code == 200 and response.get_json()["body"] == "B2"
    assert client.get(url, headers=alice.headers).get_json()["body"] == "B2"
    assert client.delete(url, headers=admin.headers).status_code == 204
    assert_error(client.get(url, headers=alice.headers), 404, field=None)


def test_an_admin_gets_404_for_a_user_that_does_not_exist(client, people):
    admin = people.admin
    assert_error(client.get("/users/999999/posts", headers=admin.headers), 404, field=None)
    assert_error(create(client, admin, uid=999999), 404, field=None)


def test_a_deleted_users_token_can_no_longer_write(app, client, people):
    import db
    alice = people.alice
    with app.app_context():
        db.execute("DELETE FROM user WHERE id = %s", (alice.id,))
        db.close_db()
    assert_error(create(client, alice), 401, field=None)


# --- pagination ------------------------------------------------------------------

def _insert_posts(app, uid, count):
    import db
    with app.app_context():
        for i in range(count):
            db.execute("INSERT INTO post (user_id, title, body) VALUES (%s, %s, %s)", (uid, f"t{i}", "b"))
        db.close_db()


def test_walking_every_page_returns_every_post_once_newest_first(app, client, people):
    alice = people.alice
    _insert_posts(app, alice.id, 25)
    _insert_posts(app, people.bob.id, 3)
    seen, sizes, url = [], [], f"/users/{alice.id}/posts?limit=10"
    while url:
        page = client.get(url, headers=alice.headers).get_json()
        sizes.append(len(page["posts"]))
        seen += [p["id"] for p in page["posts"]]
        url = page["next"] and f"/users/{alice.id}/posts?limit=10&cursor={page['next']}"
    assert sizes == [10, 10, 5]
    assert len(seen) == len(set(seen)) == 25
    assert seen == sorted(seen, reverse=True)


def test_an_exact_last_page_has_no_next(app, client, people):
    alice = people.alice
    _insert_posts(app, alice.id, 4)
    page = client.get(f"/users/{alice.id}/posts?limit=2", headers=alice.headers).get_json()
    page = client.get(f"/users/{alice.id}/posts?limit=2&cursor={page['next']}",
                      headers=alice.headers).get_json()
    assert len(page["posts"]) == 2 and page["next"] is None


def test_the_default_page_is_20_and_the_cap_is_100(app, client, people):
    alice = people.alice
    _insert_posts(app, alice.id, 101)
    default = client.get(f"/users/{alice.id}/posts", headers=alice.headers).get_json()
    assert len(default["posts"]) == 20 and default["next"]
    most = client.get(f"/users/{alice.id}/posts?limit=100", headers=alice.headers).get_json()
    assert len(most["posts"]) == 100 and most["next"]


@pytest.mark.parametrize("query, field", [
    ("limit=101", "limit"), ("limit=0", "limit"), ("limit=-1", "limit"), ("limit=abc", "limit"),
    ("limit=", "limit"), ("cursor=not-a-cursor", "cursor"), ("cursor=", "cursor"), ("cursor=MA", "cursor"),
    # "MTA" is the cursor for id 10: junk around it must not decode to the same id.
    ("cursor=M!T*A", "cursor"), ("cursor=MTA%3D%3D", "cursor"), ("cursor=MT.A", "cursor"),
])
def test_bad_page_arguments_are_400(client, people, query, field):
    alice = people.alice
    assert_error(client.get(f"/users/{alice.id}/posts?{query}", headers=alice.headers), 400, field=field)


def test_a_user_deleted_during_the_request_is_404_not_500(client, people, monkeypatch):
    """The foreign key refuses the INSERT when the owner vanished after the token check."""
    import db
    from rest import inputs
    alice = people.alice
    read_body = inputs.json_object

    def body_then_delete_alice():
        body = read_body()
        db.execute("DELETE FROM user WHERE id = %s", (alice.id,))
        return body

    monkeypatch.setattr(inputs, "json_object", body_then_delete_alice)
    assert_error(create(client, alice), 404, field=None)
