"""db.py's DATETIME decoder: PyMySQL's answers, faster for the form MySQL sends."""
import datetime

import pymysql.converters
import pytest

import db


@pytest.mark.parametrize("value", [
    "2026-11-22 21:48:28", b"2026-11-22 21:48:28", "1970-01-01 00:00:00",
    "2026-11-22 21:48:28.5", "2026-11-22 21:48:28.123456",   # fractions: PyMySQL's path
    "0000-00-00 00:00:00", "2007-02-31 23:06:20",            # illegal: returned as str
    "2007-02-25T23:06:20", "2026-11-22",
])
def test_the_decoder_answers_what_pymysql_answers(value):
    ours, theirs = db._datetime(value), pymysql.converters.convert_datetime(value)
    assert ours == theirs and type(ours) is type(theirs)


def test_datetimes_from_the_server_are_datetimes(app):
    with app.app_context():
        row = db.one("SELECT CAST('2026-11-22 21:48:28' AS DATETIME) AS at,"
                     " CAST('2026-11-22 21:48:28.250' AS DATETIME(3)) AS precise,"
                     " UTC_TIMESTAMP() AS now")
    assert row["at"] == datetime.datetime(2026, 11, 22, 21, 48, 28)
    assert row["precise"] == datetime.datetime(2026, 11, 22, 21, 48, 28, 250000)
    assert isinstance(row["now"], datetime.datetime)
