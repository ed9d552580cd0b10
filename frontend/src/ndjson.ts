// Reads an NDJSON response body incrementally: one parsed object per line, as soon as the line is complete.

export async function* readNdjson(body: ReadableStream<Uint8Array>): AsyncGenerator<Record<string, unknown>> {
  const reader = body.getReader();
  const decoder = new TextDecoder(); // stream: true keeps a character split across chunks whole
  let buffer = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let newline: number;
      while ((newline = buffer.indexOf("\n")) >= 0) {
        const line = buffer.slice(0, newline).trim();
        buffer = buffer.slice(newline + 1);
        if (line) yield parse(line);
      }
    }
    const rest = (buffer + decoder.decode()).trim();
    if (rest) yield parse(rest);
  } finally {
    reader.releaseLock();
  }
}

function parse(line: string): Record<string, unknown> {
  const value: unknown = JSON.parse(line);
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new SyntaxError("An NDJSON line is not a JSON object.");
  }
  return value as Record<string, unknown>;
}
