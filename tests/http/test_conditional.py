"""ETag, If-None-Match (304) and If-Match (412) on posts and authors, and races under real HTTP."""
import threading

import pytest
from werkzeug.serving import make_server

from support import assert_error, bearer, call

RACERS = 20


class Post:
    prefix = "p"
    change = {"title": "changed"}
    replacement = {"title": "replaced", "body": "replaced"}

    @staticmethod
    def create(client, who, n=0):
        response = client.post(f"/users/{who.id}/posts", json={"title": f"t{n}", "body": "b"},
                               headers=who.headers)
        assert response.status_code == 201
        return response.headers["Location"], response.headers["ETag"]


class Author:
    prefix = "a"
    change = {"country": "changed"}
    replacement = {"name": "replaced", "book": "replaced", "country": "replaced"}

    @staticmethod
    def create(client, who, n=0):
        response = client.post("/authors", json={"name": f"n{n}", "book": f"b{n}", "country": "c"},
                               headers=who.headers)
        assert response.status_code == 201
        return response.headers["Location"], response.headers["ETag"]


@pytest.fixture(params=[Post, Author], ids=["post", "author"])
def kind(request):
    return request.param


def with_header(person, name, value):
    return {**person.headers, name: value}


def assert_412(response):
    body = assert_error(response, 412, "Precondition Failed")
    assert "If-Match" in body["description"]


# --- ETag and If-None-Match -------------------------------------------------------

def test_the_etag_is_strong_and_changes_with_every_write(client, people, kind):
    alice = people.alice
    url, tag = kind.create(client, alice)
    row_id = url.rsplit("/", 1)[1]
    assert tag == f'"{kind.prefix}{row_id}-v1"'
    assert client.get(url, headers=alice.headers).headers["ETag"] == tag
    patched = client.patch(url, json=kind.change, headers=alice.headers)
    assert patched.headers["ETag"] == f'"{kind.prefix}{row_id}-v2"'
    put = client.put(url, json=kind.replacement, headers=alice.headers)
    assert put.headers["ETag"] == f'"{kind.prefix}{row_id}-v3"'
    assert client.get(url, headers=alice.headers).headers["ETag"] == put.headers["ETag"]


@pytest.mark.parametrize("header", ["{tag}", "W/{tag}", "*", '"x1-v1", {tag}'])
def test_if_none_match_naming_the_current_tag_is_304_without_a_body(client, people, kind, header):
    alice = people.alice
    url, tag = kind.create(client, alice)
    response = client.get(url, headers=with_header(alice, "If-None-Match", header.format(tag=tag)))
    assert response.status_code == 304
    assert response.data == b""
    assert response.headers["ETag"] == tag
    assert response.headers["Cache-Control"] == "private, no-cache"


def test_if_none_match_with_a_stale_tag_answers_the_new_representation(client, people, kind):
    alice = people.alice
    url, old = kind.create(client, alice)
    new = client.patch(url, json=kind.change, headers=alice.headers).headers["ETag"]
    response = client.get(url, headers=with_header(alice, "If-None-Match", old))
    assert response.status_code == 200
    assert response.headers["ETag"] == new
    assert response.get_json()["id"] == int(url.rsplit("/", 1)[1])


def test_if_none_match_never_bypasses_authorization(client, people, kind):
    url, tag = kind.create(client, people.alice)
    assert client.get(url, headers={"If-None-Match": tag}).status_code == 401
    response = client.get(url, headers=with_header(people.bob, "If-None-Match", tag))
    assert response.status_code == 404


# --- If-Match ---------------------------------------------------------------------

@pytest.mark.parametrize("method", ["put", "patch"])
def test_if_match_with_the_current_tag_writes(client, people, kind, method):
    alice = people.alice
    url, tag = kind.create(client, alice)
    payload = kind.replacement if method == "put" else kind.change
    response = getattr(client, method)(url, json=payload, headers=with_header(alice, "If-Match", tag))
    assert response.status_code == 200
    assert response.headers["ETag"] != tag


@pytest.mark.parametrize("header", ["*", '"x9-v9", {tag}', "{tag}, {tag}"])
def test_if_match_star_or_a_list_naming_the_current_tag_writes(client, people, kind, header):
    alice = people.alice
    url, tag = kind.create(client, alice)
    response = client.patch(url, json=kind.change,
                            headers=with_header(alice, "If-Match", header.format(tag=tag)))
    assert response.status_code == 200


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_if_match_with_a_stale_tag_is_412_and_changes_nothing(client, people, kind, method):
    alice = people.alice
    url, old = kind.create(client, alice)
    client.patch(url, json=kind.change, headers=alice.headers)
    before = client.get(url, headers=alice.headers)
    payload = kind.replacement if method == "put" else kind.change
    assert_412(getattr(client, method)(url, json=payload, headers=with_header(alice, "If-Match", old)))
    after = client.get(url, headers=alice.headers)
    assert after.get_json() == before.get_json()
    assert after.headers["ETag"] == before.headers["ETag"]


@pytest.mark.parametrize("header", [
    "W/{tag}",          # weak tags never match If-Match (strong comparison)
    "garbage",
    "",
    '"{prefix}{id}-v999"',
    '"{prefix}{other}-v1"',  # the current tag of another row
    '"{prefix}{id}-v1x"',
    '"{prefix}{id}-v99999999999"',
])
def test_if_match_that_does_not_name_the_current_tag_is_412(client, people, kind, header):
    alice = people.alice
    url, tag = kind.create(client, alice, n=1)
    other_url, _ = kind.create(client, alice, n=2)
    value = header.format(tag=tag, prefix=kind.prefix, id=url.rsplit("/", 1)[1],
                          other=other_url.rsplit("/", 1)[1])
    assert_412(client.patch(url, json=kind.change, headers=with_header(alice, "If-Match", value)))
    assert client.get(url, headers=alice.headers).headers["ETag"] == tag


def test_delete_with_the_current_tag_deletes(client, people, kind):
    alice = people.alice
    url, tag = kind.create(client, alice)
    response = client.delete(url, headers=with_header(alice, "If-Match", tag))
    assert response.status_code == 204
    assert client.get(url, headers=alice.headers).status_code == 404


def test_if_match_on_a_missing_or_hidden_row_is_404_not_412(client, people, kind):
    alice, bob = people.alice, people.bob
    url, tag = kind.create(client, alice)
    for method in ("put", "patch", "delete"):
        response = getattr(client, method)(url, json=kind.replacement, headers=with_header(bob, "If-Match", tag))
        assert response.status_code == 404, method
    client.delete(url, headers=alice.headers)
    for method in ("put", "patch", "delete"):
        response = getattr(client, method)(url, json=kind.replacement, headers=with_header(alice, "If-Match", tag))
        assert response.status_code == 404, method


def test_a_bad_body_is_400_before_any_precondition(client, people, kind):
    alice = people.alice
    url, _ = kind.create(client, alice)
    response = client.patch(url, json={"nope": 1}, headers=with_header(alice, "If-Match", '"stale"'))
    assert response.status_code == 400 and response.get_json()["field"] == "nope"


def test_without_if_match_the_last_write_wins(client, people, kind):
    alice = people.alice
    url, old = kind.create(client, alice)
    first = client.patch(url, json=kind.change, headers=alice.headers)
    second = client.put(url, json=kind.replacement, headers=alice.headers)
    assert first.status_code == second.status_code == 200
    assert client.get(url, headers=alice.headers).get_json() == second.get_json()


# --- races over real HTTP ---------------------------------------------------------

def race(base, requests):
    """Send every (method, path, headers, body) at once from its own thread; return the answers."""
    barrier = threading.Barrier(len(requests))
    answers = [None] * len(requests)

    def run(i, request):
        barrier.wait(timeout=30)
        method, path, headers, body = request
        answers[i] = call(method, base + path, headers=headers, body=body)

    threads = [threading.Thread(target=run, args=(i, r)) for i, r in enumerate(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert all(answer is not None for answer in answers), "a racer did not finish"
    return answers


@pytest.fixture
def threaded_server(app):
    """The test app under Werkzeug's threaded server: every racer is served at once."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=10)


def _one_wins_the_if_match_race(base, headers, uid):
    status, answer_headers, post = call("POST", f"{base}/users/{uid}/posts", headers=headers,
                                        body={"title": "start", "body": "b"})
    assert status == 201, post
    url, tag = answer_headers["Location"], answer_headers["ETag"]
    answers = race(base, [("PATCH", url, {**headers, "If-Match": tag}, {"title": f"racer {i}"})
                          for i in range(RACERS)])
    statuses = sorted(status for status, _, _ in answers)
    assert statuses == [200] + [412] * (RACERS - 1), statuses
    assert all(body["status_code"] == 412 for status, _, body in answers if status == 412)
    winner = next(body for status, _, body in answers if status == 200)
    status, final_headers, final = call("GET", base + url, headers=headers)
    assert final["title"] == winner["title"]
    assert final_headers["ETag"] == f'"p{post["id"]}-v2"'


def test_concurrent_if_match_updates_of_one_post_let_exactly_one_win(threaded_server, people):
    _one_wins_the_if_match_race(threaded_server, people.alice.headers, people.alice.id)


@pytest.mark.live
def test_the_same_race_under_gunicorn(live_server):
    """Two gunicorn workers on the seeded database: alice's demo account."""
    status, _, body = call("POST", live_server.url + "/auth",
                           body={"username": "alice", "password": "alice-demo-password"})
    assert status == 200, body
    headers = bearer(body["access_token"])
    status, _, me = call("GET", live_server.url + "/rest-auth", headers=headers)
    assert status == 200, me
    _one_wins_the_if_match_race(live_server.url, headers, me["user"]["id"])


def test_concurrent_creates_of_one_author_give_one_201_and_409s(threaded_server, people):
    payload = {"name": "Arundhati Roy", "book": "The God of Small Things", "country": "India"}
    answers = race(threaded_server, [("POST", "/authors", people.alice.headers, payload)] * RACERS)
    statuses = sorted(status for status, _, _ in answers)
    assert statuses == [201] + [409] * (RACERS - 1), statuses
    assert {body["field"] for status, _, body in answers if status == 409} <= {"name", "book"}
    status, _, listed = call("GET", threaded_server + "/authors", headers=people.alice.headers)
    assert len(listed["list_of_authors"]) == 1
