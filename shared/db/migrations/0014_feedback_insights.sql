-- Answer feedback and owner insights (#18 items 2-3); the reasons are in docs/insights.md.
--
-- insight_events: one row per search (POST /api/search) and per answered chat question, written
-- after the user's request with one INSERT (shared/insights.py). `text` is the query or question and
-- is dropped (set NULL) once older than INSIGHTS_RETENTION_DAYS; the counts and document ids stay.
--
-- answer_feedback: the thumbs up/down on an assistant message, one row per message (the feedback
-- also lives on the message in the chat store). A thumbs down keeps copies of the question, the
-- answer and its citations for the owners' review; those texts are dropped with the question texts.
--
-- Both are tenant tables like the others: tenant_id leads every key, row-level security forced.

CREATE TABLE insight_events (
  tenant_id    uuid NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
  event_id     bigint GENERATED ALWAYS AS IDENTITY,
  occurred_at  timestamptz NOT NULL DEFAULT now(),
  kind         text NOT NULL CHECK (kind IN ('search', 'question')),
  text         text CHECK (length(text) <= 4000),
  results      integer NOT NULL CHECK (results >= 0),          -- hits, or passages retrieved for a question
  outcome      text CHECK ((kind = 'question') = (outcome IS NOT NULL)
                           AND outcome IN ('answered', 'no_answer')),
  retrieved    uuid[] NOT NULL DEFAULT '{}',                    -- documents among the results
  cited        uuid[] NOT NULL DEFAULT '{}',                    -- documents the answer cites
  PRIMARY KEY (tenant_id, event_id)
);
CREATE INDEX insight_events_by_time ON insight_events (tenant_id, occurred_at);
-- The retention sweep's scan: only rows that still hold a text.
CREATE INDEX insight_events_text_expiry ON insight_events (occurred_at) WHERE text IS NOT NULL;

CREATE TABLE answer_feedback (
  tenant_id    uuid NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
  message_id   text NOT NULL CHECK (length(message_id) <= 200),
  session_id   text NOT NULL CHECK (length(session_id) <= 200),
  author       text NOT NULL CHECK (length(author) <= 200),    -- the chat partition's user (or api_key:<id>)
  rating       text NOT NULL CHECK (rating IN ('up', 'down')),
  reason       text CHECK (reason IN ('wrong', 'not_grounded', 'incomplete', 'other')),
  comment      text CHECK (length(comment) <= 1000),
  question     text,
  answer       text,
  citations    jsonb NOT NULL DEFAULT '[]'::jsonb,
  asked_at     timestamptz NOT NULL,
  updated_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, message_id)
);
CREATE INDEX answer_feedback_by_time ON answer_feedback (tenant_id, updated_at);
CREATE INDEX answer_feedback_text_expiry ON answer_feedback (asked_at)
  WHERE question IS NOT NULL OR answer IS NOT NULL OR comment IS NOT NULL;

DO $$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['insight_events', 'answer_feedback'] LOOP
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
    EXECUTE format('CREATE POLICY tenant_isolation ON %I FOR ALL USING (tenant_id = (SELECT folio_current_tenant()))'
                   ' WITH CHECK (tenant_id = (SELECT folio_current_tenant()))', t);
    -- The schema owner (so only its SECURITY DEFINER functions, below) reaches every workspace's rows.
    EXECUTE format('CREATE POLICY retention_sweep ON %I FOR ALL TO %I USING (true) WITH CHECK (true)', t, current_user);
  END LOOP;
END $$;

-- The retention sweep (the daily timer, shared/insights.py drop_expired_texts): every workspace's
-- question texts, and the copied texts of feedback, older than p_days days become NULL. Idempotent.
-- It can only erase texts past a retention of at least one day, so SQL run as the app role gains
-- nothing from calling it with a small p_days but the loss of old texts.
CREATE FUNCTION folio_drop_expired_insight_texts(p_days integer) RETURNS bigint
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
  v_before timestamptz := now() - make_interval(days => greatest(p_days, 1));
  v_events bigint;
  v_feedback bigint;
BEGIN
  UPDATE insight_events SET text = NULL WHERE text IS NOT NULL AND occurred_at < v_before;
  GET DIAGNOSTICS v_events = ROW_COUNT;
  UPDATE answer_feedback SET question = NULL, answer = NULL, comment = NULL
    WHERE asked_at < v_before AND (question IS NOT NULL OR answer IS NOT NULL OR comment IS NOT NULL);
  GET DIAGNOSTICS v_feedback = ROW_COUNT;
  RETURN v_events + v_feedback;
END $$;
