-- The local stand-in for the Service Bus index queue (INDEX_QUEUE_BACKEND=postgres): peek-lock
-- semantics with delivery counts and a dead-letter state. Unused in Azure, where Service Bus is the
-- queue. Holds job envelopes (ids and versions), never document content.

CREATE TABLE local_queue (
  queue_name      text NOT NULL,
  message_id      text NOT NULL,              -- duplicate detection: one live row per id
  body            jsonb NOT NULL,
  state           text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'completed', 'deadlettered')),
  delivery_count  integer NOT NULL DEFAULT 0,
  enqueued_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
  sequence_number bigint GENERATED ALWAYS AS IDENTITY,
  lock_token      uuid,
  locked_until    timestamptz,
  dead_letter_reason text,
  dead_letter_description text,
  settled_at      timestamptz,
  PRIMARY KEY (queue_name, message_id)
);
CREATE INDEX local_queue_ready ON local_queue (queue_name, sequence_number) WHERE state = 'active';
