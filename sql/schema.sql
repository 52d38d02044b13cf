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
  -- No longer written: login failures are counted per name and client address in the
  -- rate-limit storage (accounts/throttle.py). Kept so existing databases need no migration.
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

-- Second factors (issue 15). Each table is owned by one module in accounts/.
-- mfa_totp (accounts/totp.py): the user's authenticator-app secret, encrypted
-- with MFA_ENCRYPTION_KEY. confirmed_at NULL: enrollment started, not yet on.
-- last_step: the last accepted 30-s time step; that step and older are refused.
CREATE TABLE IF NOT EXISTS mfa_totp (
  user_id       INT UNSIGNED NOT NULL,
  secret        VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  confirmed_at  DATETIME     NULL,
  last_step     BIGINT       NULL,
  created       DATETIME     NOT NULL DEFAULT CURRENT_TIMESTAMP,
  PRIMARY KEY (user_id),
  CONSTRAINT fk_mfa_totp_user FOREIGN KEY (user_id) REFERENCES user (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- mfa_recovery_code (accounts/recovery_codes.py): SHA-256 of each one-time code.
CREATE TABLE IF NOT EXISTS mfa_recovery_code (
  id         INT UNSIGNED NOT NULL AUTO_INCREMENT,
  user_id    INT UNSIGNED NOT NULL,
  code_hash  CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  used_at    DATETIME     NULL,
  created    DATETIME     NOT NULL DEFAULT CURRENT_TIMESTAMP,
  PRIMARY KEY (id),
  UNIQUE KEY uq_mfa_recovery_code (user_id, code_hash),
  CONSTRAINT fk_mfa_recovery_code_user FOREIGN KEY (user_id) REFERENCES user (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- mfa_challenge (accounts/mfa.py): a login waiting for its second step. The
-- client holds the mfa_token; only its SHA-256 is stored. Single use, short-lived.
CREATE TABLE IF NOT EXISTS mfa_challenge (
  token_hash  CHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  user_id     INT UNSIGNED NOT NULL,
  first_amr   VARCHAR(16)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  failures    INT UNSIGNED NOT NULL DEFAULT 0,
  expires_at  DATETIME     NOT NULL,
  used_at     DATETIME     NULL,
  PRIMARY KEY (token_hash),
  KEY ix_mfa_challenge_expires (expires_at),
  CONSTRAINT fk_mfa_challenge_user FOREIGN KEY (user_id) REFERENCES user (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- mfa_failure (accounts/mfa.py): failed second steps per account, the same
-- growing delay as failed passwords, kept apart so a right password never clears it.
CREATE TABLE IF NOT EXISTS mfa_failure (
  user_id         INT UNSIGNED NOT NULL,
  failures        INT UNSIGNED NOT NULL DEFAULT 0,
  failed_since    DATETIME     NULL,
  last_failed_at  DATETIME     NULL,
  PRIMARY KEY (user_id),
  CONSTRAINT fk_mfa_failure_user FOREIGN KEY (user_id) REFERENCES user (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- session_auth (accounts/session_auth.py): how a session's user proved who
-- they are (amr, e.g. "pwd otp") and when (auth_time, epoch s). Refresh copies
-- them into every new access token; only POST /auth/reauth moves auth_time.
CREATE TABLE IF NOT EXISTS session_auth (
  family_id  CHAR(32) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  amr        VARCHAR(64)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  auth_time  BIGINT       NOT NULL,
  PRIMARY KEY (family_id),
  CONSTRAINT fk_session_auth_family FOREIGN KEY (family_id) REFERENCES refresh_family (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- webauthn_credential (accounts/passkeys.py): a user's passkeys. sign_count is
-- the authenticator's counter; an assertion must move it forward (unless both are 0).
CREATE TABLE IF NOT EXISTS webauthn_credential (
  id             INT UNSIGNED NOT NULL AUTO_INCREMENT,
  user_id        INT UNSIGNED NOT NULL,
  credential_id  VARBINARY(255) NOT NULL,
  public_key     BLOB           NOT NULL,
  sign_count     BIGINT UNSIGNED NOT NULL DEFAULT 0,
  name           VARCHAR(64)    NOT NULL,
  transports     VARCHAR(255)   CHARACTER SET ascii COLLATE ascii_bin NULL,
  created        DATETIME       NOT NULL DEFAULT CURRENT_TIMESTAMP,
  last_used      DATETIME       NULL,
  PRIMARY KEY (id),
  UNIQUE KEY uq_webauthn_credential_id (credential_id),
  KEY ix_webauthn_credential_user (user_id),
  CONSTRAINT fk_webauthn_credential_user FOREIGN KEY (user_id) REFERENCES user (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- webauthn_challenge (accounts/passkeys.py): a challenge handed to a browser,
-- found again from the clientDataJSON it signed; single use and short-lived.
-- user_id NULL: a passkey login (discoverable credentials).
CREATE TABLE IF NOT EXISTS webauthn_challenge (
  challenge   VARBINARY(64) NOT NULL,
  user_id     INT UNSIGNED NULL,
  purpose     VARCHAR(16) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  expires_at  DATETIME     NOT NULL,
  PRIMARY KEY (challenge),
  KEY ix_webauthn_challenge_expires (expires_at),
  CONSTRAINT fk_webauthn_challenge_user FOREIGN KEY (user_id) REFERENCES user (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Account email (issue 14). `email` is the verified address: unique (the
-- collation compares it without case) and the only one password resets are
-- sent to. `pending_email` is an address given at registration or by a
-- change, waiting for its verification link; it is not unique, so nobody can
-- block an address they do not own, and a 409 never tells whose it is.
CREATE TABLE IF NOT EXISTS user_email (
  user_id        INT UNSIGNED NOT NULL,
  email          VARCHAR(254) NULL,
  pending_email  VARCHAR(254) NULL,
  verified_at    DATETIME     NULL,
  updated        DATETIME     NOT NULL DEFAULT CURRENT_TIMESTAMP,
  PRIMARY KEY (user_id),
  UNIQUE KEY uq_user_email_email (email),
  CONSTRAINT fk_user_email_user FOREIGN KEY (user_id) REFERENCES user (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Single-use tokens mailed to users (password reset, email verification).
-- Only the SHA-256 of the token is stored. `binding` is the SHA-256 of what
-- the token is about when it was issued (the password hash, the address):
-- a token whose binding no longer matches is dead.
CREATE TABLE IF NOT EXISTS one_time_token (
  token_hash  CHAR(64)    CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  user_id     INT UNSIGNED NOT NULL,
  purpose     VARCHAR(20) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  binding     CHAR(64)    CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  created     DATETIME    NOT NULL DEFAULT CURRENT_TIMESTAMP,
  expires_at  DATETIME    NOT NULL,
  PRIMARY KEY (token_hash),
  KEY ix_one_time_token_user (user_id, purpose),
  KEY ix_one_time_token_expires (expires_at),
  CONSTRAINT fk_one_time_token_user FOREIGN KEY (user_id) REFERENCES user (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- The transactional outbox: a request that must send mail writes a row here
-- in the transaction of its change; the sender (accounts/mail_sender.py)
-- claims due rows, delivers them and marks them. A row holds what to send
-- (kind + JSON payload), never a token: tokens are minted at delivery, so no
-- usable link is ever at rest. The payload is wiped once the row is done.
-- state: queued -> sending (leased) -> sent | skipped | failed; a lease that
-- runs out (a crashed sender) puts the row back in play.
CREATE TABLE IF NOT EXISTS mail_outbox (
  id               BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  kind             VARCHAR(40)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  payload          TEXT         NULL,
  state            VARCHAR(10)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL DEFAULT 'queued',
  attempts         INT UNSIGNED NOT NULL DEFAULT 0,
  next_attempt_at  DATETIME     NOT NULL DEFAULT CURRENT_TIMESTAMP,
  lease_until      DATETIME     NULL,
  claim            CHAR(32)     CHARACTER SET ascii COLLATE ascii_bin NULL,
  last_error       VARCHAR(255) NULL,
  created          DATETIME     NOT NULL DEFAULT CURRENT_TIMESTAMP,
  done_at          DATETIME     NULL,
  PRIMARY KEY (id),
  KEY ix_mail_outbox_due (state, next_attempt_at),
  KEY ix_mail_outbox_done (done_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- What happened to an account (logins, throttling, resets, changes...). No
-- foreign key: the history outlives a deleted account (without its username,
-- which is never stored here). `detail` is a reason class, never a secret.
CREATE TABLE IF NOT EXISTS security_event (
  id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  user_id     INT UNSIGNED NULL,
  kind        VARCHAR(40)  CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  detail      VARCHAR(64)  NULL,
  ip          VARCHAR(45)  NULL,
  user_agent  VARCHAR(255) NULL,
  request_id  VARCHAR(64)  NULL,
  created     DATETIME     NOT NULL DEFAULT CURRENT_TIMESTAMP,
  PRIMARY KEY (id),
  KEY ix_security_event_user (user_id, id),
  KEY ix_security_event_created (created)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
