"""Schema for the relay watch's change counter (owned by the relay work).

The watch (``server_stub/api/routes/relay_tasks.py``) pushes wipe/logout orders and
device-list changes and closes revoked devices' sockets. Those rows are changed by request
handlers and by the admin CLI from another process, so in-process notification is not
enough; instead every write that can matter to the watch bumps one counter, and a watch
round that finds it unchanged skips its scan of every connected socket.

What the watch reads, and so what bumps the counter: a device's state and order, a
session's revocation and lifetime, a user's device-list version, room membership (which
users' device lists are watched, and who hears of a change). Writes to anything else
(events, last-seen times, nonces, tokens) leave it alone.
"""

SQL = """
CREATE TABLE watch_changes (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    counter  INTEGER NOT NULL
);
INSERT INTO watch_changes (id, counter) VALUES (1, 0);

CREATE TRIGGER watch_device_update AFTER UPDATE OF state, pending_order, order_id ON devices
BEGIN UPDATE watch_changes SET counter = counter + 1 WHERE id = 1; END;
CREATE TRIGGER watch_device_delete AFTER DELETE ON devices
BEGIN UPDATE watch_changes SET counter = counter + 1 WHERE id = 1; END;
CREATE TRIGGER watch_session_update AFTER UPDATE OF revoked_ms, absolute_expires_ms
    ON sessions
BEGIN UPDATE watch_changes SET counter = counter + 1 WHERE id = 1; END;
CREATE TRIGGER watch_session_delete AFTER DELETE ON sessions
BEGIN UPDATE watch_changes SET counter = counter + 1 WHERE id = 1; END;
CREATE TRIGGER watch_user_update AFTER UPDATE OF device_list_version ON users
BEGIN UPDATE watch_changes SET counter = counter + 1 WHERE id = 1; END;
CREATE TRIGGER watch_member_insert AFTER INSERT ON room_members
BEGIN UPDATE watch_changes SET counter = counter + 1 WHERE id = 1; END;
CREATE TRIGGER watch_member_update AFTER UPDATE OF state, user_id, room_id ON room_members
BEGIN UPDATE watch_changes SET counter = counter + 1 WHERE id = 1; END;
CREATE TRIGGER watch_member_delete AFTER DELETE ON room_members
BEGIN UPDATE watch_changes SET counter = counter + 1 WHERE id = 1; END;
"""
