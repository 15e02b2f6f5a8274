-- Opt-in extras: none changes the functions' interface.

-- A notification on channel 'message_store' with payload
-- {"category": "<category>"}, delivered at commit. PostgreSQL delivers
-- identical notifications of one transaction once, so a transaction sends
-- one per category it wrote, however many messages (a row-level trigger is
-- the only kind that sees every write_message call's row). A payload must
-- stay under block_size - 192 bytes (8000 by default): for a longer
-- category name the payload is {}, and listeners wake every subscription.
CREATE OR REPLACE FUNCTION message_store.notify_message_written()
RETURNS trigger LANGUAGE plpgsql
AS $fn$
DECLARE
  payload text := json_build_object('category', message_store.category(NEW.stream_name))::text;
BEGIN
  IF octet_length(payload) >= current_setting('block_size')::int - 192 THEN
    payload := '{}';
  END IF;
  PERFORM pg_notify('message_store', payload);
  RETURN NULL;
END;
$fn$;

-- Created only when missing, so running the installer again takes no lock on
-- a table in use.
DO $install$
BEGIN
  IF NOT EXISTS (
    SELECT 1 FROM pg_trigger
    WHERE tgname = 'message_store_notify' AND tgrelid = 'message_store.messages'::regclass
  ) THEN
    CREATE TRIGGER message_store_notify
      AFTER INSERT ON message_store.messages
      FOR EACH ROW EXECUTE FUNCTION message_store.notify_message_written();
  END IF;
END
$install$;
