// The passage viewer: a modal dialog with the passage and its neighbours, opened from a search
// result or a chat citation. Native <dialog>: focus stays inside, Escape closes, focus returns.
// "Open original" opens the file itself at the cited page, the passage highlighted (views/viewer.ts).

import type { Passage } from "../api";
import type { App } from "../app";
import { errorState, h, headingTrail, loadingState, pagesLabel } from "../dom";

export function openPassage(app: App, ref: { documentId: string; chunkId: string }, opener: HTMLElement | null): void {
  const controller = new AbortController();
  const title = h("h2", { id: "passage-title" }, "Passage");
  const body = h("div", { class: "passage-body", "aria-busy": "true" }, loadingState("Loading the passage…"));
  const close = h("button", { type: "button", class: "button button-quiet dialog-close", "aria-label": "Close passage" }, "Close");
  const dialog = h(
    "dialog",
    { class: "dialog passage-dialog", "aria-labelledby": "passage-title" },
    h("div", { class: "dialog-head" }, title, close),
    body,
  );
  close.addEventListener("click", () => dialog.close());
  dialog.addEventListener("click", (event) => {
    if (event.target === dialog) dialog.close(); // a click on the backdrop
  });
  dialog.addEventListener("close", () => {
    controller.abort();
    dialog.remove();
    opener?.focus();
  });
  document.body.appendChild(dialog);
  dialog.showModal();
  close.focus();

  void app.api.passage(ref.documentId, ref.chunkId, controller.signal).then(
    (found) => {
      title.textContent = found.document.title;
      const target = section(found.passage, true);
      const original = h(
        "button",
        { type: "button", class: "button", "aria-haspopup": "dialog" },
        found.passage.pages ? `Open original at ${pagesLabel(found.passage.pages)}` : "Open original",
      );
      const cited = { documentId: found.document.id, title: found.document.title, text: found.passage.text, pages: found.passage.pages };
      // The viewer (and pdf.js behind it) is loaded on first use, not with the app.
      original.addEventListener("click", () => {
        void import("./viewer").then(
          (viewer) => viewer.openOriginal(app, cited, original),
          (error: unknown) => body.prepend(errorState(error)),
        );
      });
      body.replaceChildren(
        h("div", { class: "passage-actions" }, h("p", { class: "muted passage-where" }, describe(found.passage)), original),
        h("div", { class: "passage-context" }, found.before.map((p) => section(p, false)), target, found.after.map((p) => section(p, false))),
      );
      body.setAttribute("aria-busy", "false");
      target.scrollIntoView({ block: "center" });
    },
    (error) => {
      if (controller.signal.aborted) return;
      body.setAttribute("aria-busy", "false");
      body.replaceChildren(errorState(error));
    },
  );
}

function describe(passage: Passage): string {
  const where = [passage.headingPath.join(" › "), pagesLabel(passage.pages)].filter(Boolean).join(" · ");
  return where ? `The cited passage, in ${where}, with what comes before and after it.` : "The cited passage with what comes before and after it.";
}

function section(passage: Passage, isTarget: boolean): HTMLElement {
  return h(
    "section",
    {
      class: isTarget ? "passage passage-target" : "passage",
      "data-chunk": passage.chunkId,
      "aria-label": isTarget ? "Cited passage" : undefined,
    },
    headingTrail(passage.headingPath),
    passage.pages ? h("p", { class: "pages" }, pagesLabel(passage.pages)) : null,
    passage.text.split(/\n{2,}/).map((paragraph) => h("p", null, paragraph)),
  );
}
