-- Search candidates in one call per leg, and the rows a search may read in one place (#17: the
-- large-workspace hybrid p95 after 0009).
--
-- 0009's search called folio_lexical_candidates once per branch of its candidate UNION ALL: when
-- every query term is common (the narrow path: the rarest terms' chunks holding all three, then two,
-- then either), up to three calls, each materialising up to candidate_cap rows (a function's result
-- is a tuplestore: the caller's LIMIT cannot stop it), where the inline statement before 0009 stopped
-- reading at the cap. On the 100k-chunk benchmark those are 18 of 200 queries, and they are the
-- slowest ones, so they make the p95. folio_lexical_tiers takes the tiers as one array and applies
-- the cap itself: one call, one signature check, and no row read past the cap, as before 0009.
--
-- folio_chunks_in_scope is where every candidate function gets its rows: the signed tenant (checked
-- here, the key is the definer's to read), the caller's filters. It is an inlinable SQL function
-- (not SECURITY DEFINER, no SET clause, STABLE, not STRICT), so its body becomes part of the
-- definer function's own statement: the index conditions the caller adds (tsv @@, ORDER BY
-- embedding <=>) still reach GIN and HNSW. A rule that narrows what a search may read (e.g. the
-- collections a user may not read) goes here, once, for both legs; wrap a per-transaction value in
-- a scalar subquery, e.g. (SELECT folio_...()), so it is computed once, not once per row.
-- Not executable by the app role (inlining checks the definer's right, not the caller's).
--
-- Each candidate function runs one statement a call, planned with the values of its arguments (as
-- in 0009: search sets plan_cache_mode = force_custom_plan), so the constant choices (scan or GIN,
-- exact or HNSW, absent tiers) fold away before planning. Every reference to folio_chunks_in_scope
-- is inlined, so planned, on every call (~0.1 ms each on the benchmark machine): each function
-- keeps to one where it can.

CREATE FUNCTION folio_chunks_in_scope(
  p_tenant uuid, p_collections uuid[], p_documents uuid[], p_doc_types text[], p_jurisdictions text[])
  RETURNS SETOF chunks
  LANGUAGE sql STABLE PARALLEL RESTRICTED
  AS $$
    SELECT c.* FROM chunks c
    WHERE c.tenant_id = p_tenant
      -- Explicitly signed: in a definer's statement, folio_current_tenant() would trust the raw setting.
      AND folio_context_verified()
      AND p_tenant = NULLIF(current_setting('app.tenant_id', true), '')::uuid
      AND (cardinality(p_collections) = 0 OR c.collection_id = ANY (p_collections))
      AND (cardinality(p_documents) = 0 OR c.document_id = ANY (p_documents))
      AND (cardinality(p_doc_types) = 0 AND cardinality(p_jurisdictions) = 0
           OR c.document_id IN (SELECT d.document_id FROM documents d WHERE d.tenant_id = p_tenant
                AND (cardinality(p_doc_types) = 0 OR d.doc_type = ANY (p_doc_types))
                AND (cardinality(p_jurisdictions) = 0 OR d.jurisdiction = ANY (p_jurisdictions))))
  $$;
REVOKE EXECUTE ON FUNCTION folio_chunks_in_scope(uuid, uuid[], uuid[], text[], text[]) FROM PUBLIC;

-- Lexical candidates by tiers: the chunks matching p_tiers[1], then those matching p_tiers[2] but
-- not p_tiers[1], then p_tiers[3] but not p_tiers[2], in that order, at most p_limit in all (search
-- passes one tier, or three nested ones: all three rarest terms, two, either). Absent or NULL tiers
-- match nothing. p_scan matches an expression over tsv, which the GIN index cannot answer, so the
-- workspace's own rows are read (small workspaces). One tier (most searches) is a statement of its
-- own: each reference to folio_chunks_in_scope is inlined, and so planned, on every call.
CREATE FUNCTION folio_lexical_tiers(
  p_tenant uuid, p_tiers tsquery[], p_scan boolean, p_collections uuid[], p_documents uuid[],
  p_doc_types text[], p_jurisdictions text[], p_limit integer)
  RETURNS TABLE (chunk_id bigint, lex_len integer, tsv tsvector)
  LANGUAGE plpgsql STABLE PARALLEL RESTRICTED SECURITY DEFINER SET search_path = public, pg_temp
  AS $$
#variable_conflict use_column
BEGIN
  IF coalesce(cardinality(p_tiers), 0) <= 1 THEN
    RETURN QUERY
      SELECT c.chunk_id, c.lex_len, c.tsv
      FROM folio_chunks_in_scope(p_tenant, p_collections, p_documents, p_doc_types, p_jurisdictions) c
      WHERE CASE WHEN p_scan THEN c.tsv || ''::tsvector ELSE c.tsv END @@ p_tiers[1]
      LIMIT p_limit;
  ELSE
    RETURN QUERY
      SELECT c.chunk_id, c.lex_len, c.tsv
      FROM folio_chunks_in_scope(p_tenant, p_collections, p_documents, p_doc_types, p_jurisdictions) c
      WHERE CASE WHEN p_scan THEN c.tsv || ''::tsvector ELSE c.tsv END @@ p_tiers[1]
      UNION ALL
      SELECT c.chunk_id, c.lex_len, c.tsv
      FROM folio_chunks_in_scope(p_tenant, p_collections, p_documents, p_doc_types, p_jurisdictions) c
      WHERE CASE WHEN p_scan THEN c.tsv || ''::tsvector ELSE c.tsv END @@ p_tiers[2] AND NOT c.tsv @@ p_tiers[1]
      UNION ALL
      SELECT c.chunk_id, c.lex_len, c.tsv
      FROM folio_chunks_in_scope(p_tenant, p_collections, p_documents, p_doc_types, p_jurisdictions) c
      WHERE CASE WHEN p_scan THEN c.tsv || ''::tsvector ELSE c.tsv END @@ p_tiers[3] AND NOT c.tsv @@ p_tiers[2]
      LIMIT p_limit;
  END IF;
END $$;

-- 0009's one-tier form (search no longer calls it): the same rows as before, now read through
-- folio_chunks_in_scope like everything else, so a rule added there holds here too.
CREATE OR REPLACE FUNCTION folio_lexical_candidates(
  p_tenant uuid, p_match tsquery, p_exclude tsquery, p_scan boolean, p_collections uuid[], p_documents uuid[],
  p_doc_types text[], p_jurisdictions text[], p_limit integer)
  RETURNS TABLE (chunk_id bigint, lex_len integer, tsv tsvector)
  LANGUAGE sql STABLE PARALLEL RESTRICTED SECURITY DEFINER SET search_path = public, pg_temp
  AS $$
    SELECT c.chunk_id, c.lex_len, c.tsv
    FROM folio_chunks_in_scope(p_tenant, p_collections, p_documents, p_doc_types, p_jurisdictions) c
    WHERE CASE WHEN p_scan THEN c.tsv || ''::tsvector ELSE c.tsv END @@ p_match
      AND (p_exclude IS NULL OR NOT c.tsv @@ p_exclude)
    LIMIT p_limit
  $$;

-- Vector candidates: the p_depth nearest chunks in scope, by HNSW (iterative scan, settings of the
-- caller's transaction) or, with p_exact, by an exact scan: distance + 0 hides the order from HNSW.
-- One statement, one reference to the scope: the sort keys that do not apply fold to constants,
-- which the planner drops, so without p_exact the order is the HNSW index's own.
CREATE OR REPLACE FUNCTION folio_vector_candidates(
  p_tenant uuid, p_embedding vector, p_exact boolean, p_collections uuid[], p_documents uuid[],
  p_doc_types text[], p_jurisdictions text[], p_depth integer)
  RETURNS TABLE (chunk_id bigint, distance double precision)
  LANGUAGE sql STABLE PARALLEL RESTRICTED SECURITY DEFINER SET search_path = public, pg_temp
  AS $$
    SELECT c.chunk_id, c.embedding <=> p_embedding
    FROM folio_chunks_in_scope(p_tenant, p_collections, p_documents, p_doc_types, p_jurisdictions) c
    WHERE c.embedding IS NOT NULL
    ORDER BY CASE WHEN p_exact THEN (c.embedding <=> p_embedding) + 0 END,
             CASE WHEN p_exact THEN c.chunk_id END,
             c.embedding <=> p_embedding
    LIMIT p_depth
  $$;
