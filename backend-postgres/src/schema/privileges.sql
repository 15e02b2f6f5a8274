-- The functions-only role, as Message DB's installer sets it up.
DO $install$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'message_store') THEN
    CREATE ROLE message_store WITH LOGIN;
  END IF;
END
$install$;

GRANT USAGE ON SCHEMA message_store TO message_store;
GRANT SELECT, INSERT ON message_store.messages TO message_store;
GRANT USAGE, SELECT ON SEQUENCE message_store.messages_global_position_seq TO message_store;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA message_store TO message_store;
GRANT SELECT ON ALL TABLES IN SCHEMA message_store TO message_store;
REVOKE UPDATE, DELETE, TRUNCATE ON message_store.messages FROM message_store;
