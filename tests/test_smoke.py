from support import bearer


def test_roy_from_the_tutorial_logs_in(client, make_user, login):
    make_user("roy", password="roy", password_hash="pbkdf2:sha256:150000$k1Ud5dzh$d0347f416e89ea486b33c988c9be65730329b2dd6d712f73c9920103a006a82e")
    token = login("roy", "roy")
    response = client.get("/rest-auth", headers=bearer(token, "JWT"))
    assert response.status_code == 200
    assert response.get_json()["user"]["username"] == "roy"
