-- Schema for the JWT API. Idempotent: safe to run again on a loaded database.
-- Runs unchanged through `mysql DB < sql/schema.sql`, the MySQL container's
-- /docker-entrypoint-initdb.d, `flask --app app init-db` and the tests.
-- Valid on MySQL 8.x and MariaDB 10.11: no 0900 collations, no CHECK reliance,
-- no expression defaults. All times are UTC (the app sets time_zone='+00:00').

-- `user` and its `password` column keep the names from the Flask-JWT/MySQL
-- tutorial, so its seeding statement works as written:
--   insert into user(username, password) values ('roy', 'pbkdf2:sha256:...');
-- `password` holds a hash (argon2id, or a legacy Werkzeug hash that is
-- replaced at the next successful login), never a password.
CREATE TABLE IF NOT EXISTS user (
  id              INT UNSIGNED NOT NULL AUTO_INCREMENT,
  username        VARCHAR(64)  NOT NULL,
  password        VARCHAR(255) NOT NULL,
  is_admin        TINYINT(1)   NOT NULL DEFAULT 0,
  -- Bumped by logout-all, a password change and an admin-flag change: every
  -- token carries the version it was issued under, and identity() rejects
  -- tokens whose version is not the current one.
  token_version   INT UNSIGNED NOT NULL DEFAULT 0,
  -- Login throttling: failures inside the current window and when the window began.
  failed_logins   INT UNSIGNED NOT NULL DEFAULT 0,
  failed_since    DATETIME     NULL,
  last_failed_at  DATETIME     NULL,
  created         DATETIME     NOT NULL DEFAULT CURRENT_TIMESTAMP,
  PRIMARY KEY (id),
  UNIQUE KEY uq_user_username (username)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Seed 002: one user, many posts. `version` drives ETag / If-Match.
CREATE TABLE IF NOT EXISTS post (
  id       INT UNSIGNED NOT NULL AUTO_INCREMENT,
  user_id  INT UNSIGNED NOT NULL,
  title    VARCHAR(200) NOT NULL,
  -- MEDIUMTEXT: the API caps a body at 65535 characters, up to 4 bytes each
  -- in utf8mb4; TEXT holds only 65535 bytes.
  body     MEDIUMTEXT   NOT NULL,
  version  INT UNSIGNED NOT NULL DEFAULT 1,
  created  DATETIME     NOT NULL DEFAULT CURRENT_TIMESTAMP,
  updated  DATETIME     NOT NULL DEFAULT CURRENT_TIMESTAMP,
  PRIMARY KEY (id),
  -- Keyset pagination of one user's posts walks this index.
  KEY ix_post_user_id (user_id, id),
  CONSTRAINT fk_post_user FOREIGN KEY (user_id) REFERENCES user (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Seed 000's library. Name and book are unique per owner: a global unique
-- index would let one user learn, through a 409, what another user stored.
CREATE TABLE IF NOT EXISTS author (
  id            INT UNSIGNED NOT NULL AUTO_INCREMENT,
  user_id       INT UNSIGNED NOT NULL,
  name          VARCHAR(100) NOT NULL,
  book          VARCHAR(200) NOT NULL,
  country       VARCHAR(100) NOT NULL,
  booker_prize  TINYINT(1)   NOT NULL DEFAULT 0,
  version       INT UNSIGNED NOT NULL DEFAULT 1,
  created       DATETIME     NOT NULL DEFAULT CURRENT_TIMESTAMP,
  updated       DATETIME     NOT NULL DEFAULT CURRENT_TIMESTAMP,
  PRIMARY KEY (id),
  UNIQUE KEY uq_author_user_name (user_id, name),
  UNIQUE KEY uq_author_user_book (user_id, book),
  KEY ix_author_user_id (user_id, id),
  CONSTRAINT fk_author_user FOREIGN KEY (user_id) REFERENCES user (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Access tokens revoked one by one (logout). A row lives as long as the token
-- would have; expired rows are purged.
CREATE TABLE IF NOT EXISTS revoked_token (
  jti         CHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  expires_at  DATETIME NOT NULL,
  PRIMARY KEY (jti),
  KEY ix_revoked_token_expires (expires_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- A refresh-token family: one login session. Each exchange rotates
-- current_jti; presenting an older jti (after the grace period) revokes the
-- family. expires_at is absolute: rotation never extends it.
CREATE TABLE IF NOT EXISTS refresh_family (
  id            CHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  user_id       INT UNSIGNED NOT NULL,
  current_jti   CHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  previous_jti  CHAR(32) CHARACTER SET ascii COLLATE ascii_bin NULL,
  rotated_at    DATETIME     NULL,
  created       DATETIME     NOT NULL DEFAULT CURRENT_TIMESTAMP,
  last_used     DATETIME     NOT NULL DEFAULT CURRENT_TIMESTAMP,
  expires_at    DATETIME     NOT NULL,
  revoked_at    DATETIME     NULL,
  user_agent    VARCHAR(255) NULL,
  ip            VARCHAR(45)  NULL,
  PRIMARY KEY (id),
  KEY ix_refresh_family_user (user_id, created),
  KEY ix_refresh_family_expires (expires_at),
  CONSTRAINT fk_refresh_family_user FOREIGN KEY (user_id) REFERENCES user (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Personal access tokens (accounts/personal_tokens.py): only SHA-256 of the
-- token is kept. A token is live while token_version equals its user's (an
-- admin-flag or password change, or logout-all, ends it) and expires_at is
-- ahead. last_used_* are written at most once a minute per token.
CREATE TABLE IF NOT EXISTS personal_token (
  id             INT UNSIGNED NOT NULL AUTO_INCREMENT,
  user_id        INT UNSIGNED NOT NULL,
  name           VARCHAR(100) NOT NULL,
  token_hash     BINARY(32)   NOT NULL,
  scopes         VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  token_version  INT UNSIGNED NOT NULL,
  created        DATETIME     NOT NULL DEFAULT CURRENT_TIMESTAMP,
  expires_at     DATETIME     NOT NULL,
  last_used_at   DATETIME     NULL,
  last_used_ip   VARCHAR(45)  NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uq_personal_token_hash (token_hash),
  UNIQUE KEY uq_personal_token_user_name (user_id, name),
  CONSTRAINT fk_personal_token_user FOREIGN KEY (user_id) REFERENCES user (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- DPoP proof ids already seen (accounts/dpop.py), when no Redis is configured:
-- SHA-256 of key thumbprint and jti; a row outlives the proof's acceptance window, then is purged.
CREATE TABLE IF NOT EXISTS dpop_replay (
  jti_hash    BINARY(32) NOT NULL,
  expires_at  DATETIME   NOT NULL,
  PRIMARY KEY (jti_hash),
  KEY ix_dpop_replay_expires (expires_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
