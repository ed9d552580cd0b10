-- Restricted collections (#18): a collection is open to its whole workspace (the default, as before)
-- or restricted to named members and Entra security groups; owners of the workspace see everything.
--
-- The rule is computed in the database from the signed context, the way the tenant is (0009):
--   * a user (app.user_id) who is an owner of the workspace (app.tenant_id) sees every collection;
--   * any other user sees the open collections and the restricted ones that name them
--     (collection_members) or one of their groups (collection_groups, matched against the groups of
--     their latest token, kept per workspace and user in member_groups);
--   * a transaction signed with app.access = 'api_key' (an API key's) sees the open collections only;
--   * a transaction with neither a user nor an access mark is the system's own (indexer, blob events,
--     the orphan sweep, billing) and sees the whole workspace;
--   * any other app.access value sees the open collections only (fail closed).
-- app.access is part of what app.context_sig signs from here on (folio_context_verified below), so
-- SQL run as the app role can neither drop the API-key mark nor claim to be the system.
--
-- folio_hidden_collections() is the restricted collections the transaction may not read. It is
-- evaluated once per statement (an InitPlan) and is the empty array for owners, the system and any
-- workspace without a restricted collection. documents and chunks (and with them passages,
-- citations, document status, uploads, re-indexing and deletion) carry it in their tenant policy;
-- search's candidate functions apply it themselves (they read chunks as the owner).
--
-- Groups are not signed into every transaction (a token may hold 200 of them): resolve_caller records
-- the token's groups through folio_record_groups(), which accepts them only when they are exactly
-- what app.access signs ('groups:<overage>:<sorted ids>'), for the signed user in the signed
-- workspace. The app role cannot read or write member_groups otherwise (no policy for it).
-- Group overage (a token that names a Graph source instead of its groups) is recorded as no groups:
-- group grants then do not apply to that user (fail closed); grants by name still do.

ALTER TABLE collections ADD COLUMN access text NOT NULL DEFAULT 'open' CHECK (access IN ('open', 'restricted'));
CREATE INDEX collections_restricted ON collections (tenant_id, collection_id) WHERE access = 'restricted';

CREATE TABLE collection_members (
  tenant_id      uuid NOT NULL,
  collection_id  uuid NOT NULL,
  user_id        uuid NOT NULL,
  granted_by     uuid,
  created_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, collection_id, user_id),
  FOREIGN KEY (tenant_id, collection_id) REFERENCES collections (tenant_id, collection_id) ON DELETE CASCADE,
  -- Leaving the workspace ends the grant: joining again later does not bring it back.
  FOREIGN KEY (tenant_id, user_id) REFERENCES memberships (tenant_id, user_id) ON DELETE CASCADE
);

CREATE TABLE collection_groups (
  tenant_id      uuid NOT NULL,
  collection_id  uuid NOT NULL,
  group_id       uuid NOT NULL,                       -- an Entra security group's object id
  label          text NOT NULL DEFAULT '' CHECK (length(label) <= 200),   -- the owner's name for it
  granted_by     uuid,
  created_at     timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, collection_id, group_id),
  FOREIGN KEY (tenant_id, collection_id) REFERENCES collections (tenant_id, collection_id) ON DELETE CASCADE
);

CREATE TABLE member_groups (
  tenant_id   uuid NOT NULL,
  user_id     uuid NOT NULL,
  groups      uuid[] NOT NULL DEFAULT '{}',
  overage     boolean NOT NULL DEFAULT false,   -- the token named a Graph source instead of its groups
  updated_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, user_id),
  FOREIGN KEY (tenant_id, user_id) REFERENCES memberships (tenant_id, user_id) ON DELETE CASCADE
);

-- The context signature covers app.access too. Unset, the message is 0009's, so every transaction
-- signed as before still verifies.
CREATE OR REPLACE FUNCTION folio_context_verified() RETURNS boolean
  LANGUAGE sql STABLE PARALLEL RESTRICTED SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
  AS $$ SELECT NOT EXISTS (SELECT 1 FROM folio_context_key)
            OR folio_context_sign(folio_context_message(coalesce(current_setting('app.tenant_id', true), ''),
                                                        coalesce(current_setting('app.user_id', true), ''),
                                                        coalesce(current_setting('app.access', true), '')))
               = coalesce(current_setting('app.context_sig', true), '') $$;

DO $$ BEGIN
  EXECUTE format($f$
    -- True when the signed caller is a user who owns the signed workspace (no access mark).
    CREATE FUNCTION folio_caller_is_owner() RETURNS boolean
      LANGUAGE sql STABLE PARALLEL RESTRICTED SECURITY DEFINER SET search_path = public, pg_temp
      AS $b$ SELECT session_user = %1$L
                 OR (folio_context_verified() AND coalesce(current_setting('app.access', true), '') = ''
                     AND EXISTS (SELECT 1 FROM memberships m
                                 WHERE m.tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid
                                   AND m.user_id = NULLIF(current_setting('app.user_id', true), '')::uuid
                                   AND m.role = 'owner')) $b$;

    -- The restricted collections of the signed workspace this transaction may not read.
    CREATE FUNCTION folio_hidden_collections() RETURNS uuid[]
      LANGUAGE plpgsql STABLE PARALLEL RESTRICTED SECURITY DEFINER SET search_path = public, pg_temp
      AS $b$
    DECLARE
      v_tenant uuid;
      v_user uuid;
      v_access text := coalesce(current_setting('app.access', true), '');
      v_groups uuid[] := '{}';
    BEGIN
      -- The schema owner's own sessions (operators, migrations) are trusted as in 0009; an unsigned
      -- context matches no row through the tenant qual anyway.
      IF session_user = %1$L OR NOT folio_context_verified() THEN
        RETURN '{}';
      END IF;
      v_tenant := NULLIF(current_setting('app.tenant_id', true), '')::uuid;
      v_user := NULLIF(current_setting('app.user_id', true), '')::uuid;
      IF v_tenant IS NULL OR (v_access = '' AND v_user IS NULL) THEN
        RETURN '{}';   -- no workspace (nothing is visible), or the system's own work
      END IF;
      IF NOT EXISTS (SELECT 1 FROM collections c WHERE c.tenant_id = v_tenant AND c.access = 'restricted') THEN
        RETURN '{}';
      END IF;
      IF v_access = '' THEN
        IF EXISTS (SELECT 1 FROM memberships m WHERE m.tenant_id = v_tenant AND m.user_id = v_user AND m.role = 'owner') THEN
          RETURN '{}';
        END IF;
        SELECT g.groups INTO v_groups FROM member_groups g WHERE g.tenant_id = v_tenant AND g.user_id = v_user;
      END IF;
      RETURN ARRAY(
        SELECT c.collection_id FROM collections c
        WHERE c.tenant_id = v_tenant AND c.access = 'restricted'
          AND NOT (v_access = '' AND (
            EXISTS (SELECT 1 FROM collection_members cm
                    WHERE cm.tenant_id = v_tenant AND cm.collection_id = c.collection_id AND cm.user_id = v_user)
            OR EXISTS (SELECT 1 FROM collection_groups cg
                       WHERE cg.tenant_id = v_tenant AND cg.collection_id = c.collection_id
                         AND cg.group_id = ANY (coalesce(v_groups, '{}')))))
        ORDER BY c.collection_id);
    END $b$;

    CREATE POLICY owner_only ON member_groups FOR ALL TO %1$I USING (true) WITH CHECK (true);
    -- As for chunks (0003, owner_reads_chunks): the definer functions below read documents of the
    -- collections a caller may not read (to count them), each scoped to the signed tenant itself.
    CREATE POLICY owner_reads_documents ON documents FOR SELECT TO %1$I USING (true);
  $f$, current_user);
END $$;

-- How many chunks of the signed workspace are in collections this transaction may not read (0 for
-- most callers: one call of folio_hidden_collections()). Search asks HNSW for proportionally more
-- candidates, so that a filter removing them does not cost pgvector's iterative scan a second round.
CREATE FUNCTION folio_hidden_chunks() RETURNS bigint
  LANGUAGE plpgsql STABLE PARALLEL RESTRICTED SECURITY DEFINER SET search_path = public, pg_temp
  AS $$
DECLARE
  v_hidden uuid[] := folio_hidden_collections();
BEGIN
  IF cardinality(v_hidden) = 0 THEN
    RETURN 0;
  END IF;
  RETURN (SELECT coalesce(sum(d.chunk_count), 0) FROM documents d
          WHERE d.tenant_id = NULLIF(current_setting('app.tenant_id', true), '')::uuid
            AND d.collection_id = ANY (v_hidden));
END $$;

-- Record the groups of the caller's token for the signed user in the signed workspace. The call is
-- accepted only when app.access signs exactly these groups; the row changes only when they differ.
CREATE FUNCTION folio_record_groups(p_groups uuid[], p_overage boolean) RETURNS void
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
  AS $$
DECLARE
  v_tenant uuid := NULLIF(current_setting('app.tenant_id', true), '')::uuid;
  v_user uuid := NULLIF(current_setting('app.user_id', true), '')::uuid;
  v_groups uuid[] := ARRAY(SELECT DISTINCT g FROM unnest(coalesce(p_groups, '{}')) AS g ORDER BY g);
BEGIN
  IF v_tenant IS NULL OR v_user IS NULL OR NOT folio_context_verified()
     OR current_setting('app.access', true) IS DISTINCT FROM
        format('groups:%s:%s', CASE WHEN p_overage THEN 1 ELSE 0 END, array_to_string(v_groups, ','))
     OR NOT EXISTS (SELECT 1 FROM memberships m WHERE m.tenant_id = v_tenant AND m.user_id = v_user) THEN
    RAISE EXCEPTION 'folio_record_groups: the groups are not signed for this caller'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  INSERT INTO member_groups AS g (tenant_id, user_id, groups, overage) VALUES (v_tenant, v_user, v_groups, p_overage)
    ON CONFLICT (tenant_id, user_id) DO UPDATE SET groups = EXCLUDED.groups, overage = EXCLUDED.overage, updated_at = now()
    WHERE (g.groups, g.overage) IS DISTINCT FROM (EXCLUDED.groups, EXCLUDED.overage);
END $$;

-- Row-level security ------------------------------------------------------------------------

ALTER TABLE member_groups ENABLE ROW LEVEL SECURITY;
ALTER TABLE member_groups FORCE ROW LEVEL SECURITY;   -- the app role has no policy: definer functions only

-- Grants are read per workspace; only owners (or the system) may write them, and only owners may
-- change a collection's access mode, also for SQL that bypasses the service (one injection anywhere).
DO $$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['collection_members', 'collection_groups'] LOOP
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
    EXECUTE format('CREATE POLICY tenant_read ON %I FOR SELECT USING (tenant_id = (SELECT folio_current_tenant()))', t);
    EXECUTE format('CREATE POLICY owner_write ON %I FOR INSERT WITH CHECK (tenant_id = (SELECT folio_current_tenant())'
                   ' AND (SELECT folio_caller_is_owner()))', t);
    EXECUTE format('CREATE POLICY owner_update ON %I FOR UPDATE USING (tenant_id = (SELECT folio_current_tenant())'
                   ' AND (SELECT folio_caller_is_owner())) WITH CHECK (tenant_id = (SELECT folio_current_tenant()))', t);
    EXECUTE format('CREATE POLICY owner_delete ON %I FOR DELETE USING (tenant_id = (SELECT folio_current_tenant())'
                   ' AND (SELECT folio_caller_is_owner()))', t);
  END LOOP;
END $$;

CREATE FUNCTION folio_collections_access_guard() RETURNS trigger
  LANGUAGE plpgsql
  AS $$
BEGIN
  IF NEW.access IS DISTINCT FROM (CASE WHEN TG_OP = 'INSERT' THEN 'open' ELSE OLD.access END)
     AND NOT folio_caller_is_owner()
     AND NOT (folio_context_verified() AND coalesce(current_setting('app.access', true), '') = ''
              AND NULLIF(current_setting('app.user_id', true), '') IS NULL) THEN
    RAISE EXCEPTION 'only an owner of the workspace may change who can read a collection'
      USING ERRCODE = 'insufficient_privilege';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER collections_access_guard BEFORE INSERT OR UPDATE OF access ON collections
  FOR EACH ROW EXECUTE FUNCTION folio_collections_access_guard();

-- Documents and chunks: the tenant and the collection rule, for reads and writes alike. The schema
-- owner's permissive owner_reads_chunks (0003) still ORs to true for search's definer functions,
-- which keeps GIN and HNSW usable there; those functions apply the rule themselves.
ALTER POLICY tenant_isolation ON documents
  USING (tenant_id = (SELECT folio_current_tenant()) AND collection_id <> ALL ((SELECT folio_hidden_collections())::uuid[]))
  WITH CHECK (tenant_id = (SELECT folio_current_tenant()) AND collection_id <> ALL ((SELECT folio_hidden_collections())::uuid[]));
ALTER POLICY tenant_isolation ON chunks
  USING (tenant_id = (SELECT folio_current_tenant()) AND collection_id <> ALL ((SELECT folio_hidden_collections())::uuid[]))
  WITH CHECK (tenant_id = (SELECT folio_current_tenant()) AND collection_id <> ALL ((SELECT folio_hidden_collections())::uuid[]));

-- Search: both legs take their candidates from folio_chunks_in_scope (0012), inlined into the
-- candidate functions' own statements (which read chunks as the owner, so the policy above does not
-- filter them): the same rule goes there, once per statement, for both legs.
CREATE OR REPLACE FUNCTION folio_chunks_in_scope(
  p_tenant uuid, p_collections uuid[], p_documents uuid[], p_doc_types text[], p_jurisdictions text[])
  RETURNS SETOF chunks
  LANGUAGE sql STABLE PARALLEL RESTRICTED
  AS $$
    SELECT c.* FROM chunks c
    WHERE c.tenant_id = p_tenant
      -- Explicitly signed: in a definer's statement, folio_current_tenant() would trust the raw setting.
      AND folio_context_verified()
      AND p_tenant = NULLIF(current_setting('app.tenant_id', true), '')::uuid
      AND c.collection_id <> ALL ((SELECT folio_hidden_collections())::uuid[])
      AND (cardinality(p_collections) = 0 OR c.collection_id = ANY (p_collections))
      AND (cardinality(p_documents) = 0 OR c.document_id = ANY (p_documents))
      AND (cardinality(p_doc_types) = 0 AND cardinality(p_jurisdictions) = 0
           OR c.document_id IN (SELECT d.document_id FROM documents d WHERE d.tenant_id = p_tenant
                AND (cardinality(p_doc_types) = 0 OR d.doc_type = ANY (p_doc_types))
                AND (cardinality(p_jurisdictions) = 0 OR d.jurisdiction = ANY (p_jurisdictions))))
  $$;
REVOKE EXECUTE ON FUNCTION folio_chunks_in_scope(uuid, uuid[], uuid[], text[], text[]) FROM PUBLIC;
