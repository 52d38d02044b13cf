"""Authors at /authors[/<id>] and seed 000's POST /author: CRUD, uniques, authorization, pages."""
import re

import pytest

from support import assert_error

ISO_Z = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
AUTHOR_KEYS = {"id", "name", "book", "country", "booker_prize", "created", "updated", "user"}
ACHEBE = {"name": "Chinua Achebe", "book": "Things Fall Apart", "country": "Nigeria", "booker_prize": False}
MANTEL = {"name": "Hilary Mantel", "book": "Wolf Hall", "country": "United Kingdom", "booker_prize": True}


def create(client, person, payload=None, path="/authors"):
    return client.post(path, json=ACHEBE if payload is None else payload, headers=person.headers)


def made(client, person, payload=None):
    response = create(client, person, payload)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


# --- happy paths ------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/authors", "/author"])
def test_create_answers_201_with_location_etag_and_the_author(client, people, path):
    alice = people.alice
    response = create(client, alice, MANTEL, path=path)
    assert response.status_code == 201
    author = response.get_json()
    assert set(author) == AUTHOR_KEYS
    assert {k: author[k] for k in MANTEL} == MANTEL
    assert author["user"] == {"id": alice.id, "username": "alice"}
    assert ISO_Z.fullmatch(author["created"]) and ISO_Z.fullmatch(author["updated"])
    assert response.headers["Location"] == f"/authors/{author['id']}"
    assert response.headers["ETag"] == f'"a{author["id"]}-v1"'
    again = client.get(response.headers["Location"], headers=alice.headers)
    assert again.status_code == 200 and again.get_json() == author
    assert again.headers["Cache-Control"] == "private, no-cache"


def test_seed_000s_client_flow_with_x_access_tokens(client, people):
    """The tutorial posts name/country/book/booker_prize with x-access-tokens, then lists."""
    token = people.alice.headers["Authorization"].split()[1]
    headers = {"x-access-tokens": token}
    response = client.post("/author", json={"name": "Ben Okri", "country": "Nigeria",
                                            "book": "The Famished Road", "booker_prize": True},
                           headers=headers)
    assert response.status_code == 201
    listed = client.get("/authors", headers=headers).get_json()
    assert [(a["name"], a["book"], a["country"], a["booker_prize"]) for a in listed["list_of_authors"]] == [
        ("Ben Okri", "The Famished Road", "Nigeria", True)]
    assert listed["next"] is None
    author_id = listed["list_of_authors"][0]["id"]
    assert client.delete(f"/authors/{author_id}", headers=headers).status_code == 204


def test_booker_prize_defaults_to_false(client, people):
    author = made(client, people.alice, {k: v for k, v in ACHEBE.items() if k != "booker_prize"})
    assert author["booker_prize"] is False


def test_list_holds_only_the_callers_authors_newest_first(client, people):
    first = made(client, people.alice, ACHEBE)
    second = made(client, people.alice, MANTEL)
    made(client, people.bob, ACHEBE)
    response = client.get("/authors", headers=people.alice.headers)
    assert response.status_code == 200
    assert response.get_json() == {"list_of_authors": [second, first], "next": None}


def test_put_replaces_the_author(client, people):
    alice = people.alice
    author = made(client, alice, MANTEL)
    url = f"/authors/{author['id']}"
    response = client.put(url, json={"name": "H. Mantel", "book": "Bring Up the Bodies",
                                     "country": "UK"}, headers=alice.headers)
    assert response.status_code == 200
    changed = response.get_json()
    # booker_prize was not sent: a replacement takes the default.
    assert changed == {**author, "name": "H. Mantel", "book": "Bring Up the Bodies", "country": "UK",
                       "booker_prize": False, "updated": changed["updated"]}
    assert response.headers["ETag"] == f'"a{author["id"]}-v2"'
    assert client.get(url, headers=alice.headers).get_json() == changed


def test_patch_changes_only_the_fields_sent(client, people):
    alice = people.alice
    author = made(client, alice, ACHEBE)
    url = f"/authors/{author['id']}"
    response = client.patch(url, json={"booker_prize": True}, headers=alice.headers)
    assert response.status_code == 200
    assert response.get_json() == {**author, "booker_prize": True, "updated": response.get_json()["updated"]}
    response = client.patch(url, json={"country": "NG"}, headers=alice.headers)
    assert response.get_json()["country"] == "NG" and response.get_json()["booker_prize"] is True


def test_delete_answers_204_and_the_author_is_gone(client, people):
    alice = people.alice
    author = made(client, alice)
    url = f"/authors/{author['id']}"
    response = client.delete(url, headers=alice.headers)
    assert response.status_code == 204 and response.data == b""
    assert_error(client.get(url, headers=alice.headers), 404, field=None)
    assert_error(client.delete(url, headers=alice.headers), 404, field=None)


# --- uniques --------------------------------------------------------------------

@pytest.mark.parametrize("change, field", [
    ({"book": "Another Book"}, "name"),
    ({"name": "Someone Else"}, "book"),
    ({"name": "chinua achebe", "book": "Another Book"}, "name"),  # the collation ignores case
])
def test_a_duplicate_name_or_book_is_409_naming_the_field(client, people, change, field):
    alice = people.alice
    made(client, alice, ACHEBE)
    assert_error(create(client, alice, {**ACHEBE, **change}), 409, field=field)
    assert len(client.get("/authors", headers=alice.headers).get_json()["list_of_authors"]) == 1


def test_uniques_are_per_owner(client, people):
    made(client, people.alice, ACHEBE)
    author = made(client, people.bob, ACHEBE)
    assert author["user"]["username"] == "bob"


@pytest.mark.parametrize("method, change, field", [
    ("patch", {"name": "Hilary Mantel"}, "name"),
    ("patch", {"book": "Wolf Hall"}, "book"),
    ("put", MANTEL, "name"),
])
def test_an_update_into_a_duplicate_is_409_and_changes_nothing(client, people, method, change, field):
    alice = people.alice
    made(client, alice, MANTEL)
    author = made(client, alice, ACHEBE)
    url = f"/authors/{author['id']}"
    assert_error(getattr(client, method)(url, json=change, headers=alice.headers), 409, field=field)
    assert client.get(url, headers=alice.headers).get_json() == author


def test_an_update_keeping_its_own_name_is_no_conflict(client, people):
    alice = people.alice
    author = made(client, alice, ACHEBE)
    response = client.put(f"/authors/{author['id']}", json=ACHEBE, headers=alice.headers)
    assert response.status_code == 200


# --- bad input -------------------------------------------------------------------

BAD_CREATE = [
    ({k: v for k, v in ACHEBE.items() if k != "name"}, "name"),
    ({k: v for k, v in ACHEBE.items() if k != "book"}, "book"),
    ({k: v for k, v in ACHEBE.items() if k != "country"}, "country"),
    ({**ACHEBE, "name": 1}, "name"),
    ({**ACHEBE, "name": None}, "name"),
    ({**ACHEBE, "book": ["b"]}, "book"),
    ({**ACHEBE, "country": False}, "country"),
    ({**ACHEBE, "name": "x" * 101}, "name"),
    ({**ACHEBE, "book": "x" * 201}, "book"),
    ({**ACHEBE, "country": "x" * 101}, "country"),
    ({**ACHEBE, "name": " "}, "name"),
    ({**ACHEBE, "booker_prize": "true"}, "booker_prize"),
    ({**ACHEBE, "booker_prize": 1}, "booker_prize"),
    ({**ACHEBE, "booker_prize": 0}, "booker_prize"),
    ({**ACHEBE, "booker_prize": None}, "booker_prize"),
    ({**ACHEBE, "title": "The"}, "title"),
    ({**ACHEBE, "user_id": 1}, "user_id"),
    ({**ACHEBE, "id": 1}, "id"),
    ({**ACHEBE, "admin": True}, "admin"),
]


@pytest.mark.parametrize("payload, field", BAD_CREATE)
def test_create_refuses_bad_fields_naming_the_field(client, people, payload, field):
    assert_error(create(client, people.alice, payload), 400, field=field)
    assert client.get("/authors", headers=people.alice.headers).get_json()["list_of_authors"] == []


def test_the_longest_fields_are_accepted(client, people):
    payload = {"name": "n" * 100, "book": "b" * 200, "country": "c" * 100, "booker_prize": True}
    author = made(client, people.alice, payload)
    assert {k: author[k] for k in payload} == payload


@pytest.mark.parametrize("data, content_type, status", [
    ("name=x&book=y&country=z", "application/x-www-form-urlencoded", 415),
    ('{"name": "x"', "application/json", 400),
    ('[1, 2]', "application/json", 400),
    ("null", "application/json", 400),
])
def test_create_refuses_bodies_that_are_not_a_json_object(client, people, data, content_type, status):
    response = client.post("/authors", data=data, content_type=content_type, headers=people.alice.headers)
    assert_error(response, status, field=None)


def test_a_body_over_the_request_cap_is_413(client, people):
    assert_error(create(client, people.alice, {**ACHEBE, "book": "x" * 70_000}), 413, field=None)


BAD_UPDATE = [
    ("put", {"name": "n", "book": "b"}, "country"),
    ("put", {"name": "n", "country": "c", "booker_prize": True}, "book"),
    ("patch", {"booker_prize": "yes"}, "booker_prize"),
    ("patch", {"booker_prize": None}, "booker_prize"),
    ("patch", {"name": None}, "name"),
    ("patch", {"country": "x" * 101}, "country"),
    ("patch", {"nationality": "x"}, "nationality"),
    ("patch", {}, None),
]


@pytest.mark.parametrize("method, payload, field", BAD_UPDATE)
def test_updates_refuse_bad_fields_and_change_nothing(client, people, method, payload, field):
    alice = people.alice
    author = made(client, alice)
    url = f"/authors/{author['id']}"
    assert_error(getattr(client, method)(url, json=payload, headers=alice.headers), 400, field=field)
    assert client.get(url, headers=alice.headers).get_json() == author


@pytest.mark.parametrize("path", ["/authors/0", "/authors/-1", "/authors/abc", "/authors/4294967296"])
def test_ids_that_are_not_positive_integers_are_a_json_404(client, people, path):
    assert_error(client.get(path, headers=people.admin.headers), 404, field=None)


# --- authorization ---------------------------------------------------------------

ROUTES = [("get", "/authors"), ("post", "/authors"), ("post", "/author"), ("get", "/authors/1"),
          ("put", "/authors/1"), ("patch", "/authors/1"), ("delete", "/authors/1")]


@pytest.mark.parametrize("method, path", ROUTES)
def test_anonymous_callers_get_401_and_nothing_is_written(client, people, method, path):
    author = made(client, people.alice, MANTEL)
    response = getattr(client, method)(path.replace("1", str(author["id"])), json=ACHEBE)
    assert assert_error(response, 401, field=None)["error"] == "Authorization Required"
    listed = client.get("/authors", headers=people.alice.headers).get_json()["list_of_authors"]
    assert listed == [author]


@pytest.mark.parametrize("method", ["get", "put", "patch", "delete"])
def test_another_user_cannot_reach_an_author_even_knowing_its_id(client, people, method):
    alice, bob = people.alice, people.bob
    author = made(client, alice)
    hidden = getattr(client, method)(f"/authors/{author['id']}", json=MANTEL, headers=bob.headers)
    missing = getattr(client, method)("/authors/999999", json=MANTEL, headers=bob.headers)
    assert assert_error(hidden, 404, field=None) == assert_error(missing, 404, field=None)
    assert client.get(f"/authors/{author['id']}", headers=alice.headers).get_json() == author


def test_an_admin_can_read_change_and_delete_anyones_author(client, people):
    alice, admin = people.alice, people.admin
    author = made(client, alice)
    url = f"/authors/{author['id']}"
    assert client.get(url, headers=admin.headers).get_json() == author
    response = client.patch(url, json={"booker_prize": True}, headers=admin.headers)
    assert response.status_code == 200
    assert response.get_json()["user"] == {"id": alice.id, "username": "alice"}
    response = client.put(url, json=MANTEL, headers=admin.headers)
    assert response.status_code == 200 and response.get_json()["name"] == "Hilary Mantel"
    assert client.get(url, headers=alice.headers).get_json()["name"] == "Hilary Mantel"
    assert client.delete(url, headers=admin.headers).status_code == 204
    assert_error(client.get(url, headers=alice.headers), 404, field=None)


def test_an_admin_update_into_the_owners_duplicate_is_409(client, people):
    alice, admin = people.alice, people.admin
    made(client, alice, MANTEL)
    author = made(client, alice, ACHEBE)
    made(client, admin, ACHEBE | {"name": "Other", "book": "Other"})
    assert_error(client.patch(f"/authors/{author['id']}", json={"book": "Wolf Hall"}, headers=admin.headers), 409, field="book")
    # The admin's own rows do not collide with alice's.
    response = client.patch(f"/authors/{author['id']}", json={"name": "Other"}, headers=admin.headers)
    assert response.status_code == 200


def test_admins_list_their_own_authors_and_anyones_with_user_id(client, people):
    alice, bob, admin = people.alice, people.bob, people.admin
    mine = made(client, alice)
    assert client.get("/authors", headers=admin.headers).get_json()["list_of_authors"] == []
    listed = client.get(f"/authors?user_id={alice.id}", headers=admin.headers).get_json()
    assert listed == {"list_of_authors": [mine], "next": None}
    assert_error(client.get(f"/authors?user_id={alice.id}", headers=bob.headers), 404, field=None)
    assert_error(client.get("/authors?user_id=999999", headers=admin.headers), 404, field=None)
    own = client.get(f"/authors?user_id={alice.id}", headers=alice.headers).get_json()
    assert own["list_of_authors"] == [mine]


@pytest.mark.parametrize("value", ["0", "abc", "-1", "", "1.0", "99999999999"])
def test_a_bad_user_id_filter_is_400(client, people, value):
    assert_error(client.get(f"/authors?user_id={value}", headers=people.admin.headers), 400, field="user_id")


# --- pagination ------------------------------------------------------------------

def test_walking_every_page_returns_every_author_once(app, client, people):
    import db
    alice = people.alice
    with app.app_context():
        for i in range(23):
            db.execute("INSERT INTO author (user_id, name, book, country) VALUES (%s, %s, %s, 'X')",
                       (alice.id, f"name {i}", f"book {i}"))
        db.close_db()
    seen, sizes, url = [], [], "/authors?limit=7"
    while url:
        page = client.get(url, headers=alice.headers).get_json()
        sizes.append(len(page["list_of_authors"]))
        seen += [a["id"] for a in page["list_of_authors"]]
        url = page["next"] and f"/authors?limit=7&cursor={page['next']}"
    assert sizes == [7, 7, 7, 2]
    assert len(set(seen)) == 23 and seen == sorted(seen, reverse=True)


@pytest.mark.parametrize("query, field", [
    ("limit=101", "limit"), ("limit=0", "limit"), ("limit=x", "limit"), ("cursor=%%%", "cursor"),
])
def test_bad_page_arguments_are_400(client, people, query, field):
    assert_error(client.get(f"/authors?{query}", headers=people.alice.headers), 400, field=field)


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
