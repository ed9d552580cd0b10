// Search: query box, mode switch, collection filter; results with heading path, pages and highlights.

import type { Collection, SearchMode, SearchResult } from "../api";
import type { App, View } from "../app";
import { emptyState, errorState, formatNumber, h, headingTrail, loadingState, pagesLabel, snippet } from "../dom";

const MODES: [SearchMode, string, string][] = [
  ["hybrid", "Hybrid", "Words and meaning together (best for most questions)"],
  ["lexical", "Keywords", "Exact words, like names or clause numbers"],
  ["vector", "Meaning", "Similar meaning, even with different words"],
];

export function searchView(app: App, _params: string[], query: URLSearchParams): View {
  const controller = new AbortController();
  let inflight: AbortController | null = null;
  const initialMode = (MODES.find(([m]) => m === query.get("mode"))?.[0] ?? "hybrid") as SearchMode;

  const box = h("input", {
    id: "search-query", type: "search", name: "q", required: true, maxlength: "1000", autocomplete: "off",
    placeholder: "e.g. payment terms for late invoices", value: query.get("q") ?? "",
  });
  const modes = h(
    "fieldset",
    { class: "modes" },
    h("legend", null, "Mode"),
    MODES.map(([mode, label, help]) =>
      h(
        "label",
        { class: "mode", title: help },
        h("input", { type: "radio", name: "mode", value: mode, checked: mode === initialMode }),
        h("span", null, label),
      ),
    ),
  );
  const scope = h("select", { id: "search-collection", name: "collection" }, h("option", { value: "" }, "All collections"));
  const results = h("div", { class: "results", "aria-busy": "false" }, intro());
  const summary = h("p", { class: "results-summary", role: "status" });

  void app.api.collections(controller.signal).then(
    (collections: Collection[]) => {
      for (const c of collections) {
        scope.append(h("option", { value: c.id, selected: c.id === query.get("collection") }, c.name));
      }
    },
    () => undefined, // the filter is optional; searching all collections still works
  );

  const form = h(
    "form",
    { role: "search", class: "search-form card", novalidate: true },
    h(
      "div",
      { class: "search-row" },
      h("label", { for: "search-query", class: "visually-hidden" }, "Search your documents"),
      box,
      h("button", { type: "submit", class: "button button-primary" }, "Search"),
    ),
    h(
      "div",
      { class: "search-options" },
      modes,
      h("div", { class: "field" }, h("label", { for: "search-collection" }, "In"), scope),
    ),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const q = box.value.trim();
    if (!q) {
      summary.textContent = "Type something to search for.";
      box.focus();
      return;
    }
    const params = new URLSearchParams({ q, mode: currentMode() });
    if (scope.value) params.set("collection", scope.value);
    history.replaceState(null, "", `/search?${params}`);
    void run(q, currentMode(), scope.value);
  });

  function currentMode(): SearchMode {
    return (form.querySelector<HTMLInputElement>("input[name=mode]:checked")?.value ?? "hybrid") as SearchMode;
  }

  async function run(q: string, mode: SearchMode, collection: string): Promise<void> {
    inflight?.abort();
    const mine = (inflight = new AbortController());
    const abort = () => mine.abort();
    controller.signal.addEventListener("abort", abort, { once: true });
    results.setAttribute("aria-busy", "true");
    results.replaceChildren(loadingState("Searching…"));
    summary.textContent = "";
    try {
      const found = await app.api.search(q, mode, collection ? [collection] : [], mine.signal);
      render(q, found.results);
      summary.textContent =
        found.results.length === 0
          ? `No results for “${q}”.`
          : `${formatNumber(found.results.length)} ${found.results.length === 1 ? "result" : "results"} in ${Math.round(found.tookMs)} ms.`;
    } catch (error) {
      if (mine.signal.aborted) return;
      results.replaceChildren(errorState(error, () => void run(q, mode, collection)));
      summary.textContent = "The search failed.";
    } finally {
      results.setAttribute("aria-busy", "false");
      controller.signal.removeEventListener("abort", abort);
    }
  }

  function render(q: string, found: SearchResult[]): void {
    if (found.length === 0) {
      results.replaceChildren(
        emptyState(
          "No passages match",
          `Nothing in your documents matches “${q}”. Try fewer or other words, or switch to “Meaning” to find passages that say it differently.`,
        ),
      );
      return;
    }
    results.replaceChildren(
      h(
        "ol",
        { class: "result-list" },
        found.map((result) =>
          h(
            "li",
            { class: "card result" },
            h(
              "h2",
              { class: "result-title" },
              h(
                "button",
                {
                  type: "button",
                  class: "link-button",
                  "aria-haspopup": "dialog",
                  onclick: (event: Event) =>
                    app.openPassage({ documentId: result.documentId, chunkId: result.chunkId }, event.currentTarget as HTMLElement),
                },
                result.title,
              ),
            ),
            h(
              "div",
              { class: "result-meta" },
              headingTrail(result.headingPath),
              result.pages ? h("span", { class: "pages" }, pagesLabel(result.pages)) : null,
            ),
            h("p", { class: "snippet" }, snippet(result.snippet)),
          ),
        ),
      ),
    );
  }

  function intro(): HTMLElement {
    return emptyState(
      "Search every document in this workspace",
      "Ask in your own words or use exact terms. Results show where each passage sits in its document; open one to read it in context.",
    );
  }

  const el = h("section", { class: "page" }, h("h1", { tabindex: "-1" }, "Search"), form, summary, results);
  const initial = query.get("q")?.trim();
  if (initial) void run(initial, initialMode, query.get("collection") ?? "");
  return { title: "Search", el, dispose: () => { controller.abort(); inflight?.abort(); } };
}
