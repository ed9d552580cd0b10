-- Search: BM25 statistics kept in step with the chunks, and document metadata for filters.
--
-- The lexical leg ranks with BM25, computed in SQL from the stored tsvector: term frequency
-- from the tsvector's positions, document frequency per (tenant, lexeme) and chunk lengths
-- from the tables below. Statement-level triggers keep the statistics exact in the same
-- transaction as every chunk insert or delete (including cascades from document and collection
-- deletes), serialised per tenant by a transaction-scoped advisory lock so concurrent indexers
-- of one workspace cannot deadlock on shared lexemes.

-- Total number of positions in a tsvector (a lexeme without positions counts once).
CREATE FUNCTION folio_tsv_positions(tsvector) RETURNS integer
  LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
  AS $$ SELECT coalesce(sum(coalesce(array_length(positions, 1), 1)), 0)::integer FROM unnest($1) $$;

-- BM25 document length: the number of indexed tokens of heading and body.
ALTER TABLE chunks ADD COLUMN lex_len integer GENERATED ALWAYS AS (
  folio_tsv_positions(to_tsvector('english'::regconfig, heading)) +
  folio_tsv_positions(to_tsvector('english'::regconfig, body))) STORED;

-- Keep vectors inline in the heap row: an out-of-line (TOASTed) vector costs a TOAST lookup
-- per distance, which made an exact scan of 9k chunks take 55 ms instead of a few.
ALTER TABLE chunks ALTER COLUMN embedding SET STORAGE PLAIN;
-- The tsvector stays in the row too (compressed, not out of line): each lexical candidate reads
-- it, while the body is read only for the few results shown.
ALTER TABLE chunks ALTER COLUMN tsv SET STORAGE MAIN;

-- Document metadata used by search filters.
ALTER TABLE documents ADD COLUMN doc_type text;          -- pdf | docx | html | markdown | text (by content)
ALTER TABLE documents ADD COLUMN jurisdiction text;      -- optional, set at upload
CREATE INDEX documents_filters ON documents (tenant_id, doc_type, jurisdiction);

CREATE TABLE lexeme_stats (
  tenant_id  uuid NOT NULL REFERENCES tenants (tenant_id) ON DELETE CASCADE,
  lexeme     text NOT NULL,
  df         integer NOT NULL CHECK (df >= 0),   -- chunks of this tenant containing the lexeme
  PRIMARY KEY (tenant_id, lexeme)
);

CREATE TABLE tenant_text_stats (
  tenant_id  uuid PRIMARY KEY REFERENCES tenants (tenant_id) ON DELETE CASCADE,
  chunks     bigint NOT NULL CHECK (chunks >= 0),
  total_len  bigint NOT NULL CHECK (total_len >= 0)
);

ALTER TABLE lexeme_stats ENABLE ROW LEVEL SECURITY;
ALTER TABLE lexeme_stats FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON lexeme_stats FOR ALL USING (tenant_id = folio_current_tenant())
  WITH CHECK (tenant_id = folio_current_tenant());
ALTER TABLE tenant_text_stats ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_text_stats FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenant_text_stats FOR ALL USING (tenant_id = folio_current_tenant())
  WITH CHECK (tenant_id = folio_current_tenant());

CREATE FUNCTION folio_lock_text_stats(tenants uuid[]) RETURNS void
  LANGUAGE sql VOLATILE
  AS $$ SELECT pg_advisory_xact_lock(hashtextextended('folio.text_stats:' || t::text, 0))
        FROM unnest(tenants) AS t ORDER BY t $$;

CREATE FUNCTION folio_chunks_added() RETURNS trigger
  LANGUAGE plpgsql
  AS $$
BEGIN
  PERFORM folio_lock_text_stats(ARRAY(SELECT DISTINCT tenant_id FROM added));
  INSERT INTO lexeme_stats AS s (tenant_id, lexeme, df)
    SELECT a.tenant_id, u.lexeme, count(*) FROM added a, unnest(a.tsv) AS u GROUP BY 1, 2
    ON CONFLICT (tenant_id, lexeme) DO UPDATE SET df = s.df + EXCLUDED.df;
  INSERT INTO tenant_text_stats AS t (tenant_id, chunks, total_len)
    SELECT tenant_id, count(*), coalesce(sum(lex_len), 0) FROM added GROUP BY 1
    ON CONFLICT (tenant_id) DO UPDATE
      SET chunks = t.chunks + EXCLUDED.chunks, total_len = t.total_len + EXCLUDED.total_len;
  RETURN NULL;
END $$;

CREATE FUNCTION folio_chunks_removed() RETURNS trigger
  LANGUAGE plpgsql
  AS $$
BEGIN
  PERFORM folio_lock_text_stats(ARRAY(SELECT DISTINCT tenant_id FROM removed));
  UPDATE lexeme_stats s SET df = s.df - r.n
    FROM (SELECT x.tenant_id, u.lexeme, count(*) AS n FROM removed x, unnest(x.tsv) AS u GROUP BY 1, 2) r
    WHERE s.tenant_id = r.tenant_id AND s.lexeme = r.lexeme;
  DELETE FROM lexeme_stats s USING (SELECT DISTINCT tenant_id FROM removed) r
    WHERE s.tenant_id = r.tenant_id AND s.df = 0;
  UPDATE tenant_text_stats t SET chunks = t.chunks - r.n, total_len = t.total_len - r.len
    FROM (SELECT tenant_id, count(*) AS n, coalesce(sum(lex_len), 0) AS len FROM removed GROUP BY 1) r
    WHERE t.tenant_id = r.tenant_id;
  RETURN NULL;
END $$;

CREATE TRIGGER chunks_added AFTER INSERT ON chunks
  REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION folio_chunks_added();
CREATE TRIGGER chunks_removed AFTER DELETE ON chunks
  REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION folio_chunks_removed();

-- Statistics for chunks that existed before this migration. FORCEd RLS applies to the owner
-- too, and this reads and writes every tenant's rows, so it is lifted for these statements only
-- (the whole migration is one transaction).
ALTER TABLE chunks NO FORCE ROW LEVEL SECURITY;
ALTER TABLE lexeme_stats NO FORCE ROW LEVEL SECURITY;
ALTER TABLE tenant_text_stats NO FORCE ROW LEVEL SECURITY;
INSERT INTO lexeme_stats (tenant_id, lexeme, df)
  SELECT c.tenant_id, u.lexeme, count(*) FROM chunks c, unnest(c.tsv) AS u GROUP BY 1, 2;
INSERT INTO tenant_text_stats (tenant_id, chunks, total_len)
  SELECT tenant_id, count(*), coalesce(sum(lex_len), 0) FROM chunks GROUP BY 1;
ALTER TABLE chunks FORCE ROW LEVEL SECURITY;
ALTER TABLE lexeme_stats FORCE ROW LEVEL SECURITY;
ALTER TABLE tenant_text_stats FORCE ROW LEVEL SECURITY;

-- Term frequency from ts_rank of one lexeme with all weights 1, which is H2(tf)/zeta(2)
-- (H2(n) = sum of 1/j^2 for j = 1..n): invert it. 0 means absent. Beyond 8 occurrences BM25's
-- saturation makes the exact count irrelevant for these chunk sizes; the formula's values are
-- 0.6079, 0.7599, 0.8275, 0.8655, 0.8898, 0.9067, 0.9191, 0.9286 for n = 1..8.
-- Not STRICT, so the planner inlines it into the query instead of calling it per row.
CREATE FUNCTION folio_tf(rank real) RETURNS double precision
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  AS $$ SELECT CASE
    WHEN rank <= 0 THEN 0 WHEN rank < 0.684 THEN 1 WHEN rank < 0.794 THEN 2 WHEN rank < 0.846 THEN 3
    WHEN rank < 0.877 THEN 4 WHEN rank < 0.898 THEN 5 WHEN rank < 0.913 THEN 6 WHEN rank < 0.924 THEN 7
    ELSE 8 END::double precision $$;

-- Search reads chunks through this view, not the table. Why: row-level security adds its
-- tenant qual at a lower "security level" than the query's own quals, and PostgreSQL will
-- then use a query qual as an index condition only if its operator is LEAKPROOF; tsvector @@
-- is not (and only a superuser can mark it so), so under RLS the lexical leg could never use
-- the GIN index and would scan every chunk of the tenant. The view belongs to the schema
-- owner, who may read chunks (policy owner_reads_chunks; the owner runs the migrations and
-- could disable RLS anyway), and it scopes rows to the transaction's tenant itself, with the
-- same folio_current_tenant() that the RLS policies use: no tenant set, no rows. It is not a
-- security_barrier view, so the planner can combine its tenant qual with the GIN and HNSW
-- conditions. The app role may only SELECT from it (see shared/db/migrate.py).
DO $$ BEGIN
  EXECUTE format('CREATE POLICY owner_reads_chunks ON chunks FOR SELECT TO %I USING (true)', current_user);
END $$;
CREATE VIEW tenant_chunks AS
  SELECT * FROM chunks WHERE tenant_id = folio_current_tenant();
