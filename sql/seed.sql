-- Demo data: enough to try every endpoint. Idempotent. NOT for production:
-- these passwords are public.
--   roy   / roy                   (the tutorial's user and its legacy pbkdf2 hash;
--                                  upgraded to argon2id at the first login)
--   alice / alice-demo-password   (a second user, to see authorization refuse)
--   admin / admin-demo-password   (admin flag set)

INSERT IGNORE INTO user (username, password) VALUES
  ('roy', 'pbkdf2:sha256:150000$k1Ud5dzh$d0347f416e89ea486b33c988c9be65730329b2dd6d712f73c9920103a006a82e');
INSERT IGNORE INTO user (username, password) VALUES
  ('alice', '$argon2id$v=19$m=19456,t=2,p=1$IhkZkM4zvfLWVvnzUIIGPQ$Tj02Is1RHCac1Eo/mtvDSJD2DY2speUMuvBCz39ph2s');
INSERT IGNORE INTO user (username, password, is_admin) VALUES
  ('admin', '$argon2id$v=19$m=19456,t=2,p=1$HW1XzbeSPRw/3PgGdiSx7w$B68BY8ge0lx5BCXEcaF9nhKwAK9pNW5/fZC5D+g4sbI', 1);

INSERT INTO post (user_id, title, body)
  SELECT u.id, 'Hello from roy', 'The first post of the demo data.' FROM user u
  WHERE u.username = 'roy'
    AND NOT EXISTS (SELECT 1 FROM post p WHERE p.user_id = u.id AND p.title = 'Hello from roy');
INSERT INTO post (user_id, title, body)
  SELECT u.id, 'Tokens, properly', 'Short-lived access tokens, rotating refresh tokens.' FROM user u
  WHERE u.username = 'roy'
    AND NOT EXISTS (SELECT 1 FROM post p WHERE p.user_id = u.id AND p.title = 'Tokens, properly');
INSERT INTO post (user_id, title, body)
  SELECT u.id, 'Alice writes', 'Roy cannot read or change this post.' FROM user u
  WHERE u.username = 'alice'
    AND NOT EXISTS (SELECT 1 FROM post p WHERE p.user_id = u.id AND p.title = 'Alice writes');

INSERT IGNORE INTO author (user_id, name, book, country, booker_prize)
  SELECT id, 'Arundhati Roy', 'The God of Small Things', 'India', 1 FROM user WHERE username = 'roy';
INSERT IGNORE INTO author (user_id, name, book, country, booker_prize)
  SELECT id, 'Hilary Mantel', 'Wolf Hall', 'United Kingdom', 1 FROM user WHERE username = 'roy';
INSERT IGNORE INTO author (user_id, name, book, country, booker_prize)
  SELECT id, 'Chinua Achebe', 'Things Fall Apart', 'Nigeria', 0 FROM user WHERE username = 'alice';
