"""The one rule set for usernames and new passwords (registration, updates, CLI)."""
import re
from pathlib import Path

USERNAME = re.compile(r"[A-Za-z0-9_.-]{3,32}")
USERNAME_RULE = "3 to 32 characters: letters, digits, '.', '_' or '-'"
PASSWORD_MIN_LENGTH = 8
# A short list of the passwords attackers try first (OWASP ASVS: refuse them).
_COMMON = frozenset(
    line.strip().lower()
    for line in (Path(__file__).parent / "common_passwords.txt").read_text().splitlines()
    if line.strip() and not line.startswith("#")
)


def username_problem(username):
    """Return why `username` is not acceptable for a new account, or None."""
    if not isinstance(username, str):
        return "must be a string"
    if not USERNAME.fullmatch(username):
        return f"must be {USERNAME_RULE}"
    return None


def password_problem(password, max_length):
    """Return why `password` is not acceptable as a new password, or None."""
    if not isinstance(password, str):
        return "must be a string"
    if len(password) < PASSWORD_MIN_LENGTH:
        return f"must be at least {PASSWORD_MIN_LENGTH} characters"
    if len(password) > max_length:
        return f"must be at most {max_length} characters"
    if password.lower() in _COMMON:
        return "is too common; choose another"
    return None
