-- Sentence embeddings of every chunk (#15), what the extractive answerer scores a question against.
--
-- The answerer quotes whole sentences of the retrieved passages. Embedding them while a user waits
-- cost about 10 ms a sentence on two cores, so it only ever scored 8 of a turn's ~36; the indexer now
-- embeds each quotable sentence once (shared/indexer.py, with the same splitter the answerer uses)
-- and a turn reads the vectors of its passages' sentences with one indexed lookup.
--
-- A row holds no text: `text_hash` is the hash of exactly what was embedded (the chunk's heading
-- path and the sentence, shared.chat.providers.extractive.sentence_key), so the answerer uses a
-- stored vector only for the very sentence it splits out today; a sentence it cannot match (a
-- chunk indexed before this migration, or a splitter that changed since) is embedded at answer
-- time as before. halfvec: half the bytes of vector, and a cosine between sentences does not need
-- more than half precision.
--
-- A tenant table like the others: tenant_id leads the key, row-level security forced. A row is
-- visible only with its chunk (the EXISTS runs under the chunks policy, whatever it says now or
-- later), and goes with it (ON DELETE CASCADE).

CREATE TABLE chunk_sentences (
  tenant_id   uuid NOT NULL,
  chunk_id    bigint NOT NULL,
  position    integer NOT NULL CHECK (position >= 0),       -- the sentence's index among the chunk's quotable ones
  text_hash   text NOT NULL CHECK (length(text_hash) <= 64),
  embedding   halfvec({{embedding_dim}}) NOT NULL,
  PRIMARY KEY (tenant_id, chunk_id, position),
  FOREIGN KEY (tenant_id, chunk_id) REFERENCES chunks (tenant_id, chunk_id) ON DELETE CASCADE
);

ALTER TABLE chunk_sentences ENABLE ROW LEVEL SECURITY;
ALTER TABLE chunk_sentences FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON chunk_sentences FOR ALL
  USING (tenant_id = (SELECT folio_current_tenant())
         AND EXISTS (SELECT 1 FROM chunks c WHERE c.tenant_id = chunk_sentences.tenant_id
                                              AND c.chunk_id = chunk_sentences.chunk_id))
  WITH CHECK (tenant_id = (SELECT folio_current_tenant())
              AND EXISTS (SELECT 1 FROM chunks c WHERE c.tenant_id = chunk_sentences.tenant_id
                                                   AND c.chunk_id = chunk_sentences.chunk_id));
