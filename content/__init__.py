"""The tutorials' resources: posts (one user, many posts) and authors (the library).

Data functions and their SQL, one module per table; like accounts/, no
flask.request and no HTTP status: refusals are accounts.errors exceptions.
May import db, accounts (users, cache, errors) and the standard library.
"""
