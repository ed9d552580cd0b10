-- Row-level security as a real barrier: a signed tenant context, a barrier view, narrow definer functions.
--
-- Before this migration anyone who could run SQL as the app role (one injection anywhere) could
-- (1) set app.tenant_id / app.user_id to any workspace or user and read it; (2) put a function of
-- their own (or an erroring cast) into a query on tenant_chunks, which read chunks with its owner's
-- rights and was not a security_barrier, so the function saw other workspaces' rows before the
-- tenant qual removed them; (3) call folio_sign_in with any identity, rewriting a user's email and
-- marking it verified.
--
-- (1) The context is signed. The pool (shared/db/pool.py) asks the server for this transaction's
-- binding (backend pid and transaction start in microseconds), then sets app.tenant_id,
-- app.user_id and app.context_sig = HMAC-SHA256(key, tenant/user//pid/start) (and, for sign-in,
-- app.identity with app.identity_sig = HMAC-SHA256(key, //identity/pid/start)).
-- folio_current_tenant() and folio_current_user() return NULL, so every policy matches nothing,
-- unless the signature verifies (or the caller is the schema owner itself). The key is in folio_context_key, which the app role cannot read
-- (migrate.py revokes it); the app holds the same key as a secret setting (DATABASE_CONTEXT_KEY),
-- never in the database role's reach. A signature is good for one transaction of one backend:
-- one seen in a log cannot be replayed. With no key installed nothing is checked (as before).
--
-- Policies call the function once per statement ("(SELECT folio_current_tenant())", an InitPlan),
-- not once per row: the check reads the key table and hashes twice.
--
-- (2) Search no longer reads chunks through a view the planner may look through: its two legs call
-- folio_lexical_candidates / folio_vector_candidates, SECURITY DEFINER functions whose own statement
-- applies the tenant qual and the index conditions together (so GIN and HNSW are still used), and a
-- caller's function can only ever see what they return. tenant_chunks stays for ad-hoc reads, as a
-- security_barrier, security_invoker view (the app role's own policies apply).
--
-- (3) With a key installed, a row of `users` may only be written for the identity the signed
-- context names (app.identity, which the pool sets from a validated token for sign-in): the
-- users_guard trigger checks it, so folio_sign_in (whichever migration defines it last) cannot be
-- pointed at another user. folio_context_sign(text) is not executable by the app role.

CREATE TABLE folio_context_key (
  only_row      boolean PRIMARY KEY DEFAULT true CHECK (only_row),
  ipad          bytea NOT NULL CHECK (length(ipad) = 64),   -- key XOR 0x36.., HMAC's inner pad
  opad          bytea NOT NULL CHECK (length(opad) = 64),   -- key XOR 0x5c.., HMAC's outer pad
  installed_at  timestamptz NOT NULL DEFAULT now()
);

-- What a signature covers: tenant, user and sign-in identity, and this transaction's binding. The
-- context signature (app.context_sig) covers the tenant and user; the identity has its own
-- (app.identity_sig), because folio_sign_in changes the tenant while it works.
CREATE FUNCTION folio_context_message(p_tenant text, p_user text, p_identity text) RETURNS text
  LANGUAGE sql STABLE PARALLEL RESTRICTED
  AS $$ SELECT format('%s/%s/%s/%s/%s', p_tenant, p_user, p_identity, pg_backend_pid(),
                      (extract(epoch FROM transaction_timestamp()) * 1000000)::bigint) $$;

-- HMAC-SHA256 of a message with the installed key (NULL without one). Not for the app role.
CREATE FUNCTION folio_context_sign(p_message text) RETURNS text
  LANGUAGE sql STABLE PARALLEL RESTRICTED SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
  AS $$ SELECT encode(sha256(k.opad || sha256(k.ipad || convert_to(p_message, 'UTF8'))), 'hex')
        FROM folio_context_key k $$;
REVOKE EXECUTE ON FUNCTION folio_context_sign(text) FROM PUBLIC;

-- True when no key is installed, or when app.context_sig signs this transaction's tenant and user.
CREATE FUNCTION folio_context_verified() RETURNS boolean
  LANGUAGE sql STABLE PARALLEL RESTRICTED SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
  AS $$ SELECT NOT EXISTS (SELECT 1 FROM folio_context_key)
            OR folio_context_sign(folio_context_message(coalesce(current_setting('app.tenant_id', true), ''),
                                                        coalesce(current_setting('app.user_id', true), ''), ''))
               = coalesce(current_setting('app.context_sig', true), '') $$;

-- The sign-in identity this transaction may write (app.identity, signed by app.identity_sig); NULL
-- when there is none or it is not signed. Without a key, whatever app.identity says.
CREATE FUNCTION folio_signed_identity() RETURNS text
  LANGUAGE sql STABLE PARALLEL RESTRICTED SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
  AS $$ SELECT NULLIF(current_setting('app.identity', true), '')
         WHERE NOT EXISTS (SELECT 1 FROM folio_context_key)
            OR folio_context_sign(folio_context_message('', '', coalesce(current_setting('app.identity', true), '')))
               = coalesce(current_setting('app.identity_sig', true), '') $$;

-- The schema owner's own settings are trusted as they are: it owns the tables and could lift RLS
-- anyway, and its SECURITY DEFINER functions (folio_sign_in) switch the tenant with set_config.
-- Everyone else's count only when signed. The owner's name is fixed when this migration runs.
DO $$ BEGIN
  EXECUTE format($f$
    CREATE OR REPLACE FUNCTION folio_current_tenant() RETURNS uuid
      LANGUAGE sql STABLE PARALLEL RESTRICTED
      AS $b$ SELECT CASE WHEN current_user = %1$L OR folio_context_verified()
                         THEN NULLIF(current_setting('app.tenant_id', true), '')::uuid END $b$;
    CREATE OR REPLACE FUNCTION folio_current_user() RETURNS uuid
      LANGUAGE sql STABLE PARALLEL RESTRICTED
      AS $b$ SELECT CASE WHEN current_user = %1$L OR folio_context_verified()
                         THEN NULLIF(current_setting('app.user_id', true), '')::uuid END $b$;
  $f$, current_user);
END $$;

-- Every policy evaluates the context once per statement.
DO $$
DECLARE p record; v_using text; v_check text;
BEGIN
  FOR p IN SELECT schemaname, tablename, policyname, qual, with_check FROM pg_policies
           WHERE schemaname = 'public'
             AND (qual ~ 'folio_current_(tenant|user)\(\)' OR with_check ~ 'folio_current_(tenant|user)\(\)') LOOP
    v_using := regexp_replace(p.qual, 'folio_current_(tenant|user)\(\)', '(SELECT folio_current_\1())', 'g');
    v_check := regexp_replace(p.with_check, 'folio_current_(tenant|user)\(\)', '(SELECT folio_current_\1())', 'g');
    EXECUTE format('ALTER POLICY %I ON %I.%I', p.policyname, p.schemaname, p.tablename)
      || CASE WHEN v_using IS NOT NULL THEN format(' USING (%s)', v_using) ELSE '' END
      || CASE WHEN v_check IS NOT NULL THEN format(' WITH CHECK (%s)', v_check) ELSE '' END;
  END LOOP;
END $$;

-- tenant_chunks: a barrier, read with the caller's rights.
DROP VIEW tenant_chunks;
CREATE VIEW tenant_chunks WITH (security_barrier, security_invoker) AS
  SELECT * FROM chunks WHERE tenant_id = (SELECT folio_current_tenant());

-- Search's lexical candidates: chunks of p_tenant (which must be the signed context's) matching
-- p_match and not p_exclude, under the filters. p_scan reads the workspace's own rows instead of the
-- GIN index (small workspaces). plpgsql, so each statement is planned with the values given
-- (search sets plan_cache_mode = force_custom_plan) and the tenant's size is known to the planner.
CREATE FUNCTION folio_lexical_candidates(
  p_tenant uuid, p_match tsquery, p_exclude tsquery, p_scan boolean, p_collections uuid[], p_documents uuid[],
  p_doc_types text[], p_jurisdictions text[], p_limit integer)
  RETURNS TABLE (chunk_id bigint, lex_len integer, tsv tsvector)
  LANGUAGE plpgsql STABLE PARALLEL RESTRICTED SECURITY DEFINER SET search_path = public, pg_temp
  AS $$
#variable_conflict use_column
BEGIN
  -- Explicitly signed: as the definer, folio_current_tenant() would trust the raw setting.
  IF p_match IS NULL OR NOT folio_context_verified()
     OR p_tenant IS DISTINCT FROM NULLIF(current_setting('app.tenant_id', true), '')::uuid THEN
    RETURN;
  END IF;
  IF p_scan THEN
    RETURN QUERY
      SELECT c.chunk_id, c.lex_len, c.tsv FROM chunks c
      WHERE c.tenant_id = p_tenant AND (c.tsv || ''::tsvector) @@ p_match
        AND (p_exclude IS NULL OR NOT c.tsv @@ p_exclude)
        AND (cardinality(p_collections) = 0 OR c.collection_id = ANY(p_collections))
        AND (cardinality(p_documents) = 0 OR c.document_id = ANY(p_documents))
        AND (cardinality(p_doc_types) = 0 AND cardinality(p_jurisdictions) = 0
             OR c.document_id IN (SELECT d.document_id FROM documents d WHERE d.tenant_id = p_tenant
                  AND (cardinality(p_doc_types) = 0 OR d.doc_type = ANY(p_doc_types))
                  AND (cardinality(p_jurisdictions) = 0 OR d.jurisdiction = ANY(p_jurisdictions))))
      LIMIT p_limit;
  ELSE
    RETURN QUERY
      SELECT c.chunk_id, c.lex_len, c.tsv FROM chunks c
      WHERE c.tenant_id = p_tenant AND c.tsv @@ p_match
        AND (p_exclude IS NULL OR NOT c.tsv @@ p_exclude)
        AND (cardinality(p_collections) = 0 OR c.collection_id = ANY(p_collections))
        AND (cardinality(p_documents) = 0 OR c.document_id = ANY(p_documents))
        AND (cardinality(p_doc_types) = 0 AND cardinality(p_jurisdictions) = 0
             OR c.document_id IN (SELECT d.document_id FROM documents d WHERE d.tenant_id = p_tenant
                  AND (cardinality(p_doc_types) = 0 OR d.doc_type = ANY(p_doc_types))
                  AND (cardinality(p_jurisdictions) = 0 OR d.jurisdiction = ANY(p_jurisdictions))))
      LIMIT p_limit;
  END IF;
END $$;

-- Search's vector candidates: the p_depth nearest chunks of p_tenant under the filters, by HNSW
-- (iterative scan, settings of the caller's transaction) or, with p_exact, by an exact scan.
CREATE FUNCTION folio_vector_candidates(
  p_tenant uuid, p_embedding vector, p_exact boolean, p_collections uuid[], p_documents uuid[],
  p_doc_types text[], p_jurisdictions text[], p_depth integer)
  RETURNS TABLE (chunk_id bigint, distance double precision)
  LANGUAGE plpgsql STABLE PARALLEL RESTRICTED SECURITY DEFINER SET search_path = public, pg_temp
  AS $$
#variable_conflict use_column
BEGIN
  IF NOT folio_context_verified() OR p_tenant IS DISTINCT FROM NULLIF(current_setting('app.tenant_id', true), '')::uuid THEN
    RETURN;
  END IF;
  IF p_exact THEN
    RETURN QUERY
      SELECT c.chunk_id, c.embedding <=> p_embedding FROM chunks c
      WHERE c.tenant_id = p_tenant AND c.embedding IS NOT NULL
        AND (cardinality(p_collections) = 0 OR c.collection_id = ANY(p_collections))
        AND (cardinality(p_documents) = 0 OR c.document_id = ANY(p_documents))
        AND (cardinality(p_doc_types) = 0 AND cardinality(p_jurisdictions) = 0
             OR c.document_id IN (SELECT d.document_id FROM documents d WHERE d.tenant_id = p_tenant
                  AND (cardinality(p_doc_types) = 0 OR d.doc_type = ANY(p_doc_types))
                  AND (cardinality(p_jurisdictions) = 0 OR d.jurisdiction = ANY(p_jurisdictions))))
      ORDER BY (c.embedding <=> p_embedding) + 0, c.chunk_id
      LIMIT p_depth;
  ELSE
    RETURN QUERY
      SELECT c.chunk_id, c.embedding <=> p_embedding FROM chunks c
      WHERE c.tenant_id = p_tenant AND c.embedding IS NOT NULL
        AND (cardinality(p_collections) = 0 OR c.collection_id = ANY(p_collections))
        AND (cardinality(p_documents) = 0 OR c.document_id = ANY(p_documents))
        AND (cardinality(p_doc_types) = 0 AND cardinality(p_jurisdictions) = 0
             OR c.document_id IN (SELECT d.document_id FROM documents d WHERE d.tenant_id = p_tenant
                  AND (cardinality(p_doc_types) = 0 OR d.doc_type = ANY(p_doc_types))
                  AND (cardinality(p_jurisdictions) = 0 OR d.jurisdiction = ANY(p_jurisdictions))))
      ORDER BY c.embedding <=> p_embedding
      LIMIT p_depth;
  END IF;
END $$;


-- Writes to `users` (only SECURITY DEFINER functions make them: the app role has no privilege on
-- the table) must be for the identity the signed context names, app.identity = idp, subject, email
-- and "true"/"false" (email verified) joined by chr(31): folio_sign_in can no longer be pointed at
-- another user's row, nor give an address or its verified mark that the token did not carry. The
-- owner's own sessions (operators, migrations) are not checked; nothing is checked without a key.
DO $$ BEGIN
  EXECUTE format($f$
    CREATE FUNCTION folio_users_guard() RETURNS trigger
      LANGUAGE plpgsql SET search_path = public, pg_temp
      AS $b$
    DECLARE
      claim text[];
    BEGIN
      IF session_user = %1$L OR NOT EXISTS (SELECT 1 FROM folio_context_key) THEN
        RETURN NEW;
      END IF;
      claim := string_to_array(folio_signed_identity(), chr(31));
      IF coalesce(cardinality(claim), 0) <> 4
         OR claim[1] IS DISTINCT FROM NEW.idp OR claim[2] IS DISTINCT FROM NEW.idp_subject
         OR (TG_OP = 'UPDATE' AND (OLD.idp, OLD.idp_subject) IS DISTINCT FROM (NEW.idp, NEW.idp_subject))
         OR ((TG_OP = 'INSERT' OR NEW.email IS DISTINCT FROM OLD.email)
             AND NEW.email IS DISTINCT FROM lower(nullif(btrim(claim[3]), '')))
         OR ((TG_OP = 'INSERT' OR NEW.email_verified IS DISTINCT FROM OLD.email_verified)
             AND NEW.email_verified AND claim[4] IS DISTINCT FROM 'true')
      THEN
        RAISE EXCEPTION 'users: this session may only write the signed-in identity'
          USING ERRCODE = 'insufficient_privilege';
      END IF;
      RETURN NEW;
    END $b$;
  $f$, current_user);
END $$;
CREATE TRIGGER users_guard BEFORE INSERT OR UPDATE ON users FOR EACH ROW EXECUTE FUNCTION folio_users_guard();
