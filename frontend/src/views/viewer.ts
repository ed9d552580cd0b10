// The original of a cited document, opened from the passage dialog ("Open original"): a PDF at the
// cited page with the passage highlighted on pdf.js's text layer; HTML, Markdown and text as text with
// the passage marked. The file comes straight from Blob Storage with a read-only URL that lives for a
// few minutes (GET /api/documents/{id}/content). A document's own HTML never enters the page: it is
// parsed in an inert document and only its text is shown.

import type { DocumentContent, Pages } from "../api";
import type { App } from "../app";
import { errorState, h, loadingState } from "../dom";

export interface CitedPassage {
  documentId: string;
  title: string;
  text: string;
  pages: Pages | null;
}

const MAX_TEXT_SHOWN = 400_000; // characters of a text file put on screen at once (around the passage)

export function openOriginal(app: App, cited: CitedPassage, opener: HTMLElement | null): void {
  const controller = new AbortController();
  const cleanups: (() => void)[] = [];
  const title = h("h2", { id: "viewer-title" }, cited.title);
  const tools = h("div", { class: "viewer-tools" });
  const close = h("button", { type: "button", class: "button button-quiet dialog-close", "aria-label": "Close original" }, "Close");
  const status = h("p", { class: "muted viewer-status", role: "status" });
  // Focusable, so the keyboard can scroll the page or the text (it scrolls, not the dialog).
  const body = h(
    "div",
    { class: "viewer-body", role: "region", "aria-label": "Original document", tabindex: "0", "aria-busy": "true" },
    loadingState("Opening the original…"),
  );
  const dialog = h(
    "dialog",
    { class: "dialog viewer-dialog", "aria-labelledby": "viewer-title" },
    h("div", { class: "dialog-head" }, title, tools, close),
    status,
    body,
  );
  close.addEventListener("click", () => dialog.close());
  dialog.addEventListener("close", () => {
    controller.abort();
    for (const cleanup of cleanups) cleanup();
    dialog.remove();
    opener?.focus();
  });
  document.body.appendChild(dialog);
  dialog.showModal();
  close.focus();

  const show = async (): Promise<void> => {
    const content = await app.api.documentContent(cited.documentId, controller.signal);
    tools.append(
      h("a", { class: "button", href: content.url, download: content.filename, rel: "noopener noreferrer" }, "Download"),
    );
    if (content.format === "pdf") {
      await showPdf(content, cited, { body, tools, status, signal: controller.signal, cleanups });
    } else if (content.format === "html" || content.format === "markdown" || content.format === "text") {
      const raw = await download(content.url, controller.signal);
      const text = new TextDecoder("utf-8").decode(raw);
      showText(content.format === "html" ? htmlText(text) : text, cited, body, status);
    } else {
      status.textContent = "";
      body.replaceChildren(
        h(
          "div",
          { class: "state" },
          h("p", { class: "state-title" }, "This format opens outside Folio"),
          h(
            "p",
            null,
            content.format === "docx"
              ? "Word files have no fixed pages to show here: the passage dialog shows the cited passage within its neighbours. Download the file to open it in Word."
              : "Folio shows the cited passage within its neighbours; download the file to see it whole.",
          ),
        ),
      );
    }
    body.setAttribute("aria-busy", "false");
  };
  show().catch((error: unknown) => {
    if (controller.signal.aborted) return;
    body.setAttribute("aria-busy", "false");
    status.textContent = "";
    body.replaceChildren(errorState(error));
  });
}

async function download(url: string, signal: AbortSignal): Promise<ArrayBuffer> {
  let response: Response;
  try {
    response = await fetch(url, { signal, credentials: "omit", referrerPolicy: "no-referrer" });
  } catch (error) {
    if (error instanceof DOMException && error.name === "AbortError") throw error;
    throw new Error("The original could not be downloaded from storage. Check your connection and try again.");
  }
  if (!response.ok) {
    throw new Error(
      response.status === 403
        ? "The link to the original has expired. Close this and open the original again."
        : `The original could not be downloaded from storage (HTTP ${response.status}).`,
    );
  }
  return response.arrayBuffer();
}

interface PdfParts {
  body: HTMLElement;
  tools: HTMLElement;
  status: HTMLElement;
  signal: AbortSignal;
  cleanups: (() => void)[];
}

async function showPdf(content: DocumentContent, cited: CitedPassage, parts: PdfParts): Promise<void> {
  const { body, tools, status, signal, cleanups } = parts;
  const [data, engine] = await Promise.all([download(content.url, signal), import("../pdf")]);
  const pdf = await engine.openPdf(data);
  cleanups.push(() => void pdf.destroy());
  if (signal.aborted) return;
  const count = pdf.numPages;
  const citedPages = cited.pages ?? { start: 1, end: 1 };
  const first = Math.min(Math.max(1, citedPages.start), count);
  const page = h("div", { class: "pdf-page" });
  const label = h("span", { class: "viewer-page", "aria-live": "polite" });
  const previous = h("button", { type: "button", class: "button" }, "Previous page");
  const next = h("button", { type: "button", class: "button" }, "Next page");
  tools.prepend(previous, label, next);
  body.replaceChildren(h("div", { class: "pdf-scroller" }, page));

  let shown = 0;
  let rendering = Promise.resolve();
  const go = (n: number): Promise<void> => {
    shown = n;
    previous.disabled = n <= 1;
    next.disabled = n >= count;
    label.textContent = `Page ${n} of ${count}`;
    page.dataset.page = String(n);
    rendering = rendering.then(async () => {
      if (signal.aborted || shown !== n) return;
      const width = Math.min(body.clientWidth - 32, 1000);
      const { hits } = await engine.renderPage(pdf, n, page, width, cited.text);
      const citedHere = n >= citedPages.start && n <= citedPages.end;
      status.textContent = hits.length
        ? `The cited passage is highlighted on page ${n}.`
        : citedHere
          ? `The cited passage is on page ${n}, but its text could not be matched on the page.`
          : `The cited passage is on ${citedPages.start === citedPages.end ? `page ${citedPages.start}` : `pages ${citedPages.start}–${citedPages.end}`}.`;
      hits[0]?.scrollIntoView({ block: "center" });
    });
    return rendering;
  };
  previous.addEventListener("click", () => void go(shown - 1));
  next.addEventListener("click", () => void go(shown + 1));
  await go(first);
}

function showText(text: string, cited: CitedPassage, body: HTMLElement, status: HTMLElement): void {
  const ranges = matchPassage([text], cited.text)
    .map((r) => [r.start, r.end] as const)
    .sort((a, b) => a[0] - b[0]);
  let from = 0;
  let to = text.length;
  if (text.length > MAX_TEXT_SHOWN) {
    const centre = ranges.length ? ranges[0][0] : 0;
    from = Math.max(0, centre - MAX_TEXT_SHOWN / 2);
    to = Math.min(text.length, from + MAX_TEXT_SHOWN);
  }
  const out = h("pre", { class: "viewer-text" });
  let at = from;
  for (const [start, end] of ranges) {
    if (end <= at || start >= to) continue;
    out.append(text.slice(at, Math.max(at, start)), h("mark", { class: "viewer-hit" }, text.slice(Math.max(at, start), Math.min(end, to))));
    at = Math.min(end, to);
  }
  out.append(text.slice(at, to));
  body.replaceChildren(out);
  if (from > 0 || to < text.length) {
    body.prepend(h("p", { class: "muted" }, "The file is long: only the part around the passage is shown."));
  }
  status.textContent = ranges.length
    ? "The cited passage is highlighted."
    : "The cited passage could not be matched in the file's text.";
  out.querySelector(".viewer-hit")?.scrollIntoView({ block: "center" });
}

// --- the document's text, without its markup --------------------------------------------------

const SKIPPED = new Set(["SCRIPT", "STYLE", "TEMPLATE", "NOSCRIPT", "HEAD", "IFRAME", "OBJECT", "EMBED", "SVG", "MATH", "CANVAS"]);
const BLOCKS = new Set([
  "ADDRESS", "ARTICLE", "ASIDE", "BLOCKQUOTE", "BR", "CAPTION", "DD", "DIV", "DL", "DT", "FIGCAPTION", "FIGURE",
  "FOOTER", "FORM", "H1", "H2", "H3", "H4", "H5", "H6", "HEADER", "HR", "LI", "MAIN", "NAV", "OL", "P", "PRE",
  "SECTION", "TABLE", "TR", "UL",
]);

const STYLE_OPEN = /<style\b[^<>]*>/gi;
const STYLE_CLOSE = /<\/style\s*>/gi;

/** The HTML without its style sheets, in one forward pass. (A lazy `<style>[\s\S]*?</style>` regex
 * rescanned to the end of the file from every unclosed `<style>`: 140 KB of them took 0.7 s, 1 MB half
 * a minute.) An unclosed style sheet runs to the end, as it does for the browser's parser. */
function withoutStyleSheets(html: string): string {
  const kept: string[] = [];
  let at = 0;
  STYLE_OPEN.lastIndex = 0;
  for (let open = STYLE_OPEN.exec(html); open; open = STYLE_OPEN.exec(html)) {
    kept.push(html.slice(at, open.index));
    STYLE_CLOSE.lastIndex = STYLE_OPEN.lastIndex;
    const close = STYLE_CLOSE.exec(html);
    at = close ? STYLE_CLOSE.lastIndex : html.length;
    STYLE_OPEN.lastIndex = at;
    if (!close) break;
  }
  kept.push(html.slice(at));
  return kept.join(" ");
}

/** The text of an HTML file, paragraphs on their own lines. Parsed with DOMParser into an inert document:
 * nothing in it runs or loads, and none of it is inserted into the page. */
export function htmlText(html: string): string {
  // Style sheets and every attribute go before parsing: the parsed document shares the app's CSP, and
  // Chromium reports (and blocks) inline styles and event handlers even there. Only text is read, so
  // whatever this misses is at worst a blocked style or handler, never markup on the page.
  const bare = withoutStyleSheets(html)
    // No "<" outside quotes inside a tag: with it, every unclosed "<a" scanned to the end of the file
    // (quadratic: 200 KB of them took 25 s and hung the tab).
    .replace(/<([a-z][a-z0-9-]*)(?:"[^"]*"|'[^']*'|[^'"<>])*>/gi, "<$1>");
  const parsed = new DOMParser().parseFromString(bare, "text/html");
  const out: string[] = [];
  const walk = (node: Node): void => {
    if (node.nodeType === Node.TEXT_NODE) {
      out.push((node.textContent ?? "").replace(/\s+/g, " "));
      return;
    }
    if (node.nodeType !== Node.ELEMENT_NODE) return;
    const tag = (node as Element).tagName.toUpperCase();
    if (SKIPPED.has(tag) || (node as Element).hasAttribute("hidden")) return;
    const block = BLOCKS.has(tag);
    if (block) out.push("\n\n");
    node.childNodes.forEach(walk);
    if (tag === "TD" || tag === "TH") out.push("\t");
    if (block) out.push("\n\n");
  };
  walk(parsed.body);
  return out
    .join("")
    .replace(/[ \t]*\n[ \t]*/g, "\n")
    .replace(/\n{3,}/g, "\n\n")
    .trim();
}

// --- finding the passage -------------------------------------------------------------------------

export interface TextRange {
  /** Index of the part (a text item of a PDF page, or the one text of a file). */
  part: number;
  start: number;
  end: number;
}

const WORD_CHAR = /[\p{L}\p{N}]/u;
const MIN_PIECE = 12; // letters and digits: shorter pieces of a passage are not looked for on their own

interface Squashed {
  text: string;
  /** For each character of `text`: the part, and where the character it came from starts and ends. */
  from: [number, number, number][];
}

/** Letters and digits only, lower-cased and NFKC-normalised (ligatures split): what both sides are
 * compared on, so whitespace, line breaks, hyphenation and markup never stop a match. */
function squash(parts: readonly string[]): Squashed {
  let text = "";
  const from: [number, number, number][] = [];
  parts.forEach((part, index) => {
    let i = 0;
    for (const char of part) {
      for (const c of char.normalize("NFKC").toLowerCase()) {
        if (WORD_CHAR.test(c)) {
          text += c;
          from.push([index, i, i + char.length]);
        }
      }
      i += char.length;
    }
  });
  return { text, from };
}

/**
 * Where `passage` lies in `parts` (texts in reading order, e.g. the text items of a PDF page), ignoring
 * whitespace, punctuation and case. The whole passage if it is there; else each of its sentences and
 * lines that is (a passage that runs onto the next page, or that the indexer tidied). One range per part
 * and matched piece, in order.
 */
export function matchPassage(parts: readonly string[], passage: string): TextRange[] {
  const haystack = squash(parts);
  const whole = squash([passage]).text;
  if (!whole) return [];
  const found: [number, number][] = [];
  const at = haystack.text.indexOf(whole);
  if (at >= 0) {
    found.push([at, at + whole.length]);
  } else {
    let from = 0;
    for (const piece of passage.split(/\n+|(?<=[.!?;:])\s+/)) {
      const needle = squash([piece]).text;
      if (needle.length < MIN_PIECE) continue;
      let where = haystack.text.indexOf(needle, from);
      if (where < 0) where = haystack.text.indexOf(needle);
      if (where < 0) continue;
      found.push([where, where + needle.length]);
      from = where + needle.length;
    }
    // A passage that runs over a page break starts on one page and ends on the next, mid-sentence:
    // the longest beginning of it on this page, and the longest end.
    const begins = longest(whole.length, (n) => haystack.text.indexOf(whole.slice(0, n)));
    const ends = longest(whole.length, (n) => haystack.text.lastIndexOf(whole.slice(whole.length - n)));
    if (begins) found.push(begins);
    if (ends) found.push(ends);
  }
  const ranges: TextRange[] = [];
  for (const [start, end] of merge(found)) {
    let current: TextRange | null = null;
    for (let k = start; k < end; k++) {
      const [part, charStart, charEnd] = haystack.from[k];
      if (current && current.part === part) {
        current.end = Math.max(current.end, charEnd);
      } else {
        current = { part, start: charStart, end: charEnd };
        ranges.push(current);
      }
    }
    // The sentence's closing punctuation belongs to it, though it was not compared.
    if (current) current.end += /^[.!?;:,)\]"'”’»]*/u.exec(parts[current.part].slice(current.end))?.[0].length ?? 0;
  }
  return ranges;
}

/** The longest n (at least 2 × MIN_PIECE, below `most`) for which `at(n)` finds something, as [start, end). */
function longest(most: number, at: (n: number) => number): [number, number] | null {
  let low = 2 * MIN_PIECE;
  let high = most - 1;
  let best: [number, number] | null = null;
  while (low <= high) {
    const n = (low + high) >> 1; // found for n means found for every shorter n
    const where = at(n);
    if (where >= 0) {
      best = [where, where + n];
      low = n + 1;
    } else {
      high = n - 1;
    }
  }
  return best;
}

/** Sorted, overlapping ranges joined. */
function merge(found: [number, number][]): [number, number][] {
  const out: [number, number][] = [];
  for (const [start, end] of [...found].sort((a, b) => a[0] - b[0])) {
    const last = out[out.length - 1];
    if (last && start <= last[1]) last[1] = Math.max(last[1], end);
    else out.push([start, end]);
  }
  return out;
}

/** The parts (PDF text items) that hold some of the passage. */
export function findPassage(parts: readonly string[], passage: string): number[] {
  return [...new Set(matchPassage(parts, passage).map((r) => r.part))];
}
