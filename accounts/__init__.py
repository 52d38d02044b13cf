"""The auth domain: users, passwords, tokens, sessions, mail. No HTTP here."""
