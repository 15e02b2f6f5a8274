-- Opt-in extras: none changes the functions' interface.

-- A notification per written message on channel 'message_store', payload
-- {"category": "<category>", "global_position": <n>}, delivered at commit.
-- A payload must stay under block_size - 192 bytes (8000 by default): for a
-- longer category name the category is left out, and listeners wake every
-- subscription instead.
CREATE OR REPLACE FUNCTION message_store.notify_message_written()
RETURNS trigger LANGUAGE plpgsql
AS $fn$
DECLARE
  payload text := json_build_object(
    'category', message_store.category(NEW.stream_name),
    'global_position', NEW.global_position)::text;
BEGIN
  IF octet_length(payload) >= current_setting('block_size')::int - 192 THEN
    payload := json_build_object('global_position', NEW.global_position)::text;
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
