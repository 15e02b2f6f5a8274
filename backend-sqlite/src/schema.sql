-- message-store's SQLite schema, version 1. Message DB's table, plus what
-- it computes per row at read time, stored at write time so that reads are
-- index scans: the category, the consumer-group hash of the cardinal id,
-- and the correlation's category.
CREATE TABLE IF NOT EXISTS messages (
  -- AUTOINCREMENT: a global position is never handed out twice, even
  -- after the newest rows are deleted.
  global_position INTEGER PRIMARY KEY AUTOINCREMENT,
  position INTEGER NOT NULL,
  -- UTC, 'YYYY-MM-DD HH:MM:SS.ffffff', as Message DB's timestamp.
  time TEXT NOT NULL,
  stream_name TEXT NOT NULL,
  type TEXT NOT NULL,
  data TEXT,
  metadata TEXT,
  id TEXT NOT NULL,
  -- Everything before the first '-' of the stream name.
  category TEXT NOT NULL,
  -- Message DB's hash_64 of the cardinal id; NULL when the name has no id.
  cardinal_hash INTEGER,
  -- The category of metadata's correlationStreamName, when it has one.
  correlation_category TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS messages_id ON messages (id);
CREATE UNIQUE INDEX IF NOT EXISTS messages_stream ON messages (stream_name, position);
CREATE INDEX IF NOT EXISTS messages_category ON messages (category, global_position);
