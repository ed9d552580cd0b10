// Insights (workspace owners only): what people ask and search, what found nothing, the answers rated
// down with their question and sources, the most cited documents and those nothing retrieved lately.
// The API answers 403 to everyone else; this view says so instead of showing an error.

import { ApiError, type Insights } from "../api";
import type { App, View } from "../app";
import { emptyState, errorState, formatDate, formatNumber, h, loadingState } from "../dom";

const WINDOWS = [7, 30, 90];
const REASON_TEXT: Record<string, string> = {
  wrong: "Wrong",
  not_grounded: "Not backed by the documents",
  incomplete: "Incomplete",
  other: "Other",
};

export function insightsView(app: App, _params: string[], query: URLSearchParams): View {
  const controller = new AbortController();
  const requested = Number(query.get("days"));
  const days = WINDOWS.includes(requested) ? requested : 30;
  const body = h("div", { class: "insights", "aria-busy": "true" }, loadingState("Loading insights…"));
  const windows = h(
    "nav",
    { class: "insights-windows", "aria-label": "Period" },
    WINDOWS.map((n) =>
      h("a", { href: `/insights?days=${n}`, class: "button", "aria-current": n === days ? "page" : undefined }, `Last ${n} days`),
    ),
  );

  async function load(): Promise<void> {
    try {
      render(await app.api.insights(days, controller.signal));
    } catch (error) {
      if (controller.signal.aborted) return;
      if (error instanceof ApiError && error.status === 403) {
        body.replaceChildren(emptyState("Owners only", "Only the owners of this workspace see its insights."));
      } else {
        body.replaceChildren(errorState(error, () => void load()));
      }
    } finally {
      body.setAttribute("aria-busy", "false");
    }
  }

  function render(data: Insights): void {
    const share = data.noAnswerShare === null ? "—" : `${Math.round(data.noAnswerShare * 100)}%`;
    const most = Math.max(1, ...data.questionsPerDay.map((d) => d.questions));
    body.replaceChildren(
      h(
        "dl",
        { class: "insights-totals" },
        stat("Questions", formatNumber(data.questions)),
        stat("Answers that found nothing", share, "insights-no-answer"),
        stat("Searches", formatNumber(data.searches)),
        stat("Searches with no result", formatNumber(data.searchesWithNoResult)),
        stat("Rated helpful / unhelpful", `${formatNumber(data.feedback.up)} / ${formatNumber(data.feedback.down)}`),
      ),
      section(
        "per-day",
        "Questions per day",
        h(
          "table",
          { class: "insights-days" },
          h("caption", { class: "visually-hidden" }, "Questions per day, and how many found nothing"),
          h("thead", null, h("tr", null, h("th", { scope: "col" }, "Day"), h("th", { scope: "col" }, "Questions"), h("th", { scope: "col" }, "Found nothing"))),
          h(
            "tbody",
            null,
            [...data.questionsPerDay].reverse().map((d) =>
              h(
                "tr",
                null,
                h("th", { scope: "row" }, formatDate(d.day, false)),
                h(
                  "td",
                  null,
                  h("meter", { class: "bar", min: "0", max: String(most), value: String(d.questions), "aria-hidden": "true" }),
                  ` ${d.questions}`,
                ),
                h("td", null, String(d.noAnswer)),
              ),
            ),
          ),
        ),
      ),
      section(
        "negative",
        "Answers rated unhelpful",
        data.negativeFeedback.length
          ? h(
              "ol",
              { class: "insights-feedback" },
              data.negativeFeedback.map((f) =>
                h(
                  "li",
                  { class: "card" },
                  h("p", { class: "meta" }, `${f.reason ? REASON_TEXT[f.reason] ?? f.reason : "No reason given"} · ${formatDate(f.updatedAt)}`),
                  h("p", { class: "insights-question" }, h("strong", null, "Question: "), f.question ?? "(no longer kept)"),
                  h("p", { class: "insights-answer" }, h("strong", null, "Answer: "), f.answer ?? "(no longer kept)"),
                  f.comment ? h("p", null, h("strong", null, "Comment: "), f.comment) : null,
                  f.citations.length
                    ? h(
                        "div",
                        null,
                        h("strong", null, "Sources: "),
                        h(
                          "ul",
                          { class: "insights-sources" },
                          f.citations.map((c) =>
                            h(
                              "li",
                              null,
                              h(
                                "button",
                                {
                                  type: "button",
                                  class: "link-button",
                                  "aria-haspopup": "dialog",
                                  onclick: (e: Event) =>
                                    app.openPassage({ documentId: c.documentId, chunkId: String(c.chunkId) }, e.currentTarget as HTMLElement),
                                },
                                `[${c.n}] ${c.title}`,
                              ),
                            ),
                          ),
                        ),
                      )
                    : null,
                ),
              ),
            )
          : h("p", { class: "muted" }, "No answer was rated unhelpful in this period."),
      ),
      section(
        "cited",
        "Most cited documents",
        data.mostCited.length
          ? h(
              "ol",
              { class: "insights-cited" },
              data.mostCited.map((d) =>
                h(
                  "li",
                  null,
                  d.collectionId && !d.deleted
                    ? h("a", { href: `/collections/${encodeURIComponent(d.collectionId)}` }, d.filename ?? d.documentId)
                    : `${d.filename ?? d.documentId} (deleted)`,
                  h("span", { class: "muted" }, ` — cited in ${d.citations} ${d.citations === 1 ? "answer" : "answers"}`),
                ),
              ),
            )
          : h("p", { class: "muted" }, "No answer cited a document in this period."),
      ),
      section(
        "never",
        `Documents not retrieved in the last ${data.neverRetrieved.days} days`,
        data.neverRetrieved.total
          ? h(
              "div",
              null,
              h(
                "p",
                { class: "muted" },
                `${formatNumber(data.neverRetrieved.total)} ready ${data.neverRetrieved.total === 1 ? "document" : "documents"} that no search or question found.`,
              ),
              h(
                "ul",
                { class: "insights-never" },
                data.neverRetrieved.documents.map((d) =>
                  h("li", null, h("a", { href: `/collections/${encodeURIComponent(d.collectionId)}` }, d.filename)),
                ),
              ),
            )
          : h("p", { class: "muted" }, "Every ready document was found at least once."),
      ),
      section(
        "empty",
        "Searches with no result",
        data.emptySearches.length
          ? h(
              "ul",
              { class: "insights-empty" },
              data.emptySearches.map((s) =>
                h("li", null, h("q", null, s.query), h("span", { class: "muted" }, ` — ${s.count}×, last ${formatDate(s.lastAt)}`)),
              ),
            )
          : h("p", { class: "muted" }, "Every search found something."),
      ),
      h(
        "p",
        { class: "hint" },
        `Question, search and feedback texts are kept for ${data.retentionDays} days, then dropped; the counts stay.`,
      ),
    );
  }

  const el = h(
    "section",
    { class: "page insights-page" },
    h("h1", { tabindex: "-1" }, "Insights"),
    h("p", { class: "muted" }, "What people ask in this workspace, and what Folio could not answer."),
    windows,
    body,
  );
  void load();
  return { title: "Insights", el, dispose: () => controller.abort() };
}

function stat(label: string, value: string, className?: string): HTMLElement {
  return h("div", { class: "insights-stat" }, h("dt", null, label), h("dd", { class: className }, value));
}

function section(id: string, title: string, content: HTMLElement): HTMLElement {
  return h("section", { class: "card insights-section", "aria-labelledby": `insights-${id}` }, h("h2", { id: `insights-${id}`, class: "card-title" }, title), content);
}
