-- Foundation schema: tenants, identities, memberships, API keys, audit, collections, documents, chunks.
--
-- Scale path: every tenant table has tenant_id first in its primary key, unique constraints and
-- foreign keys, so the tables can later be distributed on tenant_id (Citus) with each workspace on
-- one shard. `users` is global identity data (a reference table in that world) and is not readable
-- by the app role at all: the app reaches it only through the SECURITY DEFINER functions below.
--
-- Row-level security is FORCEd on every tenant table, so even the owner is filtered. The app sets
-- app.tenant_id / app.user_id with set_config(..., true) (transaction-local) at the start of each
-- transaction; with nothing set, every policy matches no rows.
--
-- Template values filled in by the migration runner: {{embedding_dim}}, {{app_role}}.

CREATE EXTENSION IF NOT EXISTS vector;

CREATE FUNCTION folio_current_tenant() RETURNS uuid
  LANGUAGE sql STABLE PARALLEL SAFE
  AS $$ SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid $$;

CREATE FUNCTION folio_current_user() RETURNS uuid
  LANGUAGE sql STABLE PARALLEL SAFE
  AS $$ SELECT NULLIF(current_setting('app.user_id', true), '')::uuid $$;

CREATE TABLE tenants (
  tenant_id   uuid PRIMARY KEY,
  name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
  user_id             uuid PRIMARY KEY,
  idp                 text NOT NULL,          -- 'entra:<tenant id>', 'swa:aad', 'swa:github', ...
  idp_subject         text NOT NULL,          -- the provider's stable id (oid / userId)
  email               text,
  display_name        text,
  personal_tenant_id  uuid UNIQUE REFERENCES tenants (tenant_id),
  created_at          timestamptz NOT NULL DEFAULT now(),
  last_seen_at        timestamptz NOT NULL DEFAULT now(),
  UNIQUE (idp, idp_subject)
);
CREATE INDEX users_email ON users (lower(email));

CREATE TABLE memberships (
  tenant_id   uuid NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
  user_id     uuid NOT NULL REFERENCES users (user_id) ON DELETE CASCADE,
  role        text NOT NULL CHECK (role IN ('owner', 'member', 'viewer')),
  personal    boolean NOT NULL DEFAULT false,   -- this is the user's own workspace (made at first sign-in)
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, user_id)
);
CREATE INDEX memberships_user ON memberships (user_id);

-- Owners invite by sign-in email; the invitation turns into a membership at that user's sign-in.
CREATE TABLE invitations (
  tenant_id   uuid NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
  email       text NOT NULL CHECK (email = lower(email)),
  role        text NOT NULL CHECK (role IN ('owner', 'member', 'viewer')),
  invited_by  uuid NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, email)
);
CREATE INDEX invitations_email ON invitations (email);

CREATE TABLE api_keys (
  tenant_id     uuid NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
  key_id        uuid NOT NULL,
  name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
  role          text NOT NULL CHECK (role IN ('member', 'viewer')),
  secret_hash   bytea NOT NULL,           -- sha256 of a 256-bit random secret; shown once
  created_by    uuid NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  revoked_at    timestamptz,
  last_used_at  timestamptz,
  PRIMARY KEY (tenant_id, key_id)
);

CREATE TABLE audit_log (
  tenant_id      uuid NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
  audit_id       bigint GENERATED ALWAYS AS IDENTITY,
  occurred_at    timestamptz NOT NULL DEFAULT now(),
  actor_type     text NOT NULL CHECK (actor_type IN ('user', 'api_key', 'system')),
  actor_id       text NOT NULL,
  action         text NOT NULL,
  target_type    text NOT NULL,
  target_id      text,
  details        jsonb NOT NULL DEFAULT '{}'::jsonb,
  invocation_id  text,
  PRIMARY KEY (tenant_id, audit_id)
);

CREATE TABLE collections (
  tenant_id      uuid NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
  collection_id  uuid NOT NULL,
  name           text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  description    text NOT NULL DEFAULT '' CHECK (length(description) <= 2000),
  created_by     uuid,
  created_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, collection_id),
  UNIQUE (tenant_id, name)
);

CREATE TABLE documents (
  tenant_id       uuid NOT NULL,
  document_id     uuid NOT NULL,
  collection_id   uuid NOT NULL,
  filename        text NOT NULL,
  content_type    text,
  size_bytes      bigint,
  blob_path       text NOT NULL,
  status          text NOT NULL DEFAULT 'awaiting_upload'
                  CHECK (status IN ('awaiting_upload', 'queued', 'processing', 'ready', 'failed', 'deleted')),
  error           text,
  blob_etag       text,        -- newest blob version seen by an event
  blob_sequencer  text,        -- Event Grid sequencer of that version (orders events per blob)
  indexed_etag    text,        -- blob version the current chunk set was built from
  pages           integer,
  chunk_count     integer NOT NULL DEFAULT 0,
  created_by      uuid,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  indexed_at      timestamptz,
  PRIMARY KEY (tenant_id, document_id),
  FOREIGN KEY (tenant_id, collection_id) REFERENCES collections (tenant_id, collection_id) ON DELETE CASCADE
);
CREATE INDEX documents_collection ON documents (tenant_id, collection_id, created_at DESC);

CREATE TABLE chunks (
  tenant_id      uuid NOT NULL,
  chunk_id       bigint GENERATED ALWAYS AS IDENTITY,
  document_id    uuid NOT NULL,
  collection_id  uuid NOT NULL,
  ordinal        integer NOT NULL,
  heading        text NOT NULL DEFAULT '',      -- heading path joined with ' > ', weighted above the body
  heading_path   text[] NOT NULL DEFAULT '{}',
  body           text NOT NULL,
  page_start     integer,
  page_end       integer,
  char_start     integer NOT NULL,
  char_end       integer NOT NULL,
  content_hash   text NOT NULL,
  embedding      vector({{embedding_dim}}),
  tsv            tsvector GENERATED ALWAYS AS (
                   setweight(to_tsvector('english'::regconfig, heading), 'A') ||
                   setweight(to_tsvector('english'::regconfig, body), 'B')) STORED,
  PRIMARY KEY (tenant_id, chunk_id),
  UNIQUE (tenant_id, document_id, ordinal),
  FOREIGN KEY (tenant_id, document_id) REFERENCES documents (tenant_id, document_id) ON DELETE CASCADE
);
CREATE INDEX chunks_collection ON chunks (tenant_id, collection_id);
CREATE INDEX chunks_tsv ON chunks USING gin (tsv);
CREATE INDEX chunks_embedding ON chunks USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64);

-- Row-level security -------------------------------------------------------------------------

ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants FORCE ROW LEVEL SECURITY;
-- A user sees the current workspace and the workspaces they belong to (for the workspace picker).
CREATE POLICY tenant_visible ON tenants FOR SELECT USING (
  tenant_id = folio_current_tenant()
  OR EXISTS (SELECT 1 FROM memberships m WHERE m.tenant_id = tenants.tenant_id AND m.user_id = folio_current_user()));
CREATE POLICY tenant_write ON tenants FOR ALL USING (tenant_id = folio_current_tenant())
  WITH CHECK (tenant_id = folio_current_tenant());

ALTER TABLE memberships ENABLE ROW LEVEL SECURITY;
ALTER TABLE memberships FORCE ROW LEVEL SECURITY;
-- A user may read their own memberships in any workspace; everything else is per workspace.
CREATE POLICY membership_own ON memberships FOR SELECT USING (user_id = folio_current_user());
CREATE POLICY membership_tenant ON memberships FOR ALL USING (tenant_id = folio_current_tenant())
  WITH CHECK (tenant_id = folio_current_tenant());

ALTER TABLE invitations ENABLE ROW LEVEL SECURITY;
ALTER TABLE invitations FORCE ROW LEVEL SECURITY;
CREATE POLICY invitation_tenant ON invitations FOR ALL USING (tenant_id = folio_current_tenant())
  WITH CHECK (tenant_id = folio_current_tenant());
CREATE POLICY invitation_own ON invitations FOR SELECT
  USING (email = NULLIF(current_setting('app.user_email', true), ''));

-- The remaining tenant tables share one policy shape.
DO $$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['api_keys', 'audit_log', 'collections', 'documents', 'chunks'] LOOP
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
    EXECUTE format('CREATE POLICY tenant_isolation ON %I FOR ALL USING (tenant_id = folio_current_tenant())'
                   ' WITH CHECK (tenant_id = folio_current_tenant())', t);
  END LOOP;
END $$;

-- Identity functions (SECURITY DEFINER: the only way the app role touches `users`) -------------

-- Look up a signed-in identity; NULL when it has never signed in.
CREATE FUNCTION folio_find_user(p_idp text, p_subject text) RETURNS uuid
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
  AS $$ SELECT user_id FROM users WHERE idp = p_idp AND idp_subject = p_subject $$;

-- First sign-in (and profile refresh): mirror the user, give them a personal workspace once,
-- and turn pending invitations for their email into memberships. Safe under concurrent calls:
-- the upsert serialises on the (idp, idp_subject) row.
CREATE FUNCTION folio_sign_in(p_idp text, p_subject text, p_email text, p_name text) RETURNS uuid
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
  AS $$
DECLARE
  v_user uuid;
  v_personal uuid;
  v_email text := lower(nullif(btrim(p_email), ''));
  v_inv record;
BEGIN
  INSERT INTO users AS u (user_id, idp, idp_subject, email, display_name)
  VALUES (gen_random_uuid(), p_idp, p_subject, v_email, nullif(btrim(p_name), ''))
  ON CONFLICT (idp, idp_subject) DO UPDATE
    SET email = coalesce(EXCLUDED.email, u.email),
        display_name = coalesce(EXCLUDED.display_name, u.display_name),
        last_seen_at = now()
  RETURNING user_id, personal_tenant_id INTO v_user, v_personal;

  IF v_personal IS NULL THEN
    v_personal := gen_random_uuid();
    PERFORM set_config('app.tenant_id', v_personal::text, true);
    INSERT INTO tenants (tenant_id, name)
      VALUES (v_personal, left(coalesce(nullif(btrim(p_name), ''), v_email, 'My') || '''s workspace', 200));
    INSERT INTO memberships (tenant_id, user_id, role, personal) VALUES (v_personal, v_user, 'owner', true);
    UPDATE users SET personal_tenant_id = v_personal WHERE user_id = v_user;
  END IF;

  IF v_email IS NOT NULL THEN
    -- Invitations are read by email here, before any workspace is chosen (policy invitation_own).
    PERFORM set_config('app.user_email', v_email, true);
    FOR v_inv IN SELECT i.tenant_id, i.role FROM invitations i WHERE i.email = v_email LOOP
      PERFORM set_config('app.tenant_id', v_inv.tenant_id::text, true);
      INSERT INTO memberships (tenant_id, user_id, role) VALUES (v_inv.tenant_id, v_user, v_inv.role)
        ON CONFLICT (tenant_id, user_id) DO NOTHING;
      DELETE FROM invitations WHERE tenant_id = v_inv.tenant_id AND email = v_email;
    END LOOP;
    PERFORM set_config('app.user_email', '', true);
  END IF;

  PERFORM set_config('app.tenant_id', '', true);
  RETURN v_user;
END $$;

-- Members of the current workspace with their profile (the only readable view of `users`).
CREATE VIEW workspace_members WITH (security_barrier) AS
  SELECT m.tenant_id, m.user_id, m.role, m.created_at, u.email, u.display_name, u.last_seen_at
  FROM memberships m JOIN users u ON u.user_id = m.user_id
  WHERE m.tenant_id = folio_current_tenant();

-- A user known by email (to add as a member directly); NULL when they have not signed in yet.
CREATE FUNCTION folio_find_user_by_email(p_email text) RETURNS uuid
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
  AS $$ SELECT user_id FROM users WHERE lower(email) = lower(p_email) ORDER BY created_at LIMIT 1 $$;
