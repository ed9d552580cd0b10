// Chat: questions answered from the workspace's documents, streamed as NDJSON, with numbered
// citations that open the cited passage; conversations listed on the side.
//
// Stream contract (POST /api/chat, application/x-ndjson), one JSON object per line:
//   {"type":"session","sessionId":…} · {"type":"delta","text":…}… · {"type":"citations","citations":[{n,chunkId,documentId,title,headingPath,pages,snippet}]}
//   · {"type":"done","usage":{…},"extractive":bool,"grounded":bool} · or, when a turn fails midway,
//   {"type":"error","error":{problem+json}}. Lines of other types are ignored.

import { ApiError, type ChatMessage, type ChatSessionSummary, type Citation, type Feedback, type FeedbackReason } from "../api";
import type { App, View } from "../app";
import { announce, emptyState, errorMessage, errorState, formatDate, h, loadingState, pagesLabel } from "../dom";
import { readNdjson } from "../ndjson";

type StreamEvent =
  | { kind: "session"; sessionId: string; title?: string }
  | { kind: "delta"; text: string }
  | { kind: "citations"; citations: Citation[] }
  | { kind: "done"; messageId?: string }
  | { kind: "error"; detail: string }
  | { kind: "other" };

export function readEvent(raw: Record<string, unknown>): StreamEvent {
  const kind = String(raw.type ?? raw.event ?? raw.kind ?? "");
  const session = raw.session as Record<string, unknown> | undefined;
  switch (kind) {
    case "session":
      return { kind, sessionId: String(raw.sessionId ?? raw.id ?? session?.id ?? ""), title: (raw.title ?? session?.title) as string | undefined };
    case "delta":
      return { kind, text: String(raw.text ?? raw.delta ?? raw.content ?? "") };
    case "citations":
      return { kind, citations: (raw.citations ?? raw.items ?? []) as Citation[] };
    case "done":
      return { kind, messageId: typeof raw.messageId === "string" ? raw.messageId : undefined };
    case "error": {
      const problem = (raw.error ?? raw) as Record<string, unknown>;
      return { kind, detail: String(problem.detail ?? problem.message ?? "The answer could not be completed.") };
    }
    default:
      return { kind: "other" };
  }
}

/** No chat on this server: no route at all (a 404 that is not Folio's problem+json), or chat not configured. */
function notServed(error: unknown): boolean {
  if (!(error instanceof ApiError)) return false;
  const type = String(error.problem.type ?? "");
  return (error.status === 404 && !type) || type.endsWith("/configuration");
}

export function chatView(app: App, [sessionParam]: string[]): View {
  const controller = new AbortController();
  let sessionId: string | null = sessionParam || null;
  let streaming: AbortController | null = null;

  const heading = h("h1", { tabindex: "-1" }, sessionId ? "Conversation" : "New conversation");
  const sessions = h("div", { class: "session-list", "aria-busy": "true" }, loadingState("Loading conversations…"));
  const messages = h("ol", { class: "messages", "aria-label": "Conversation" });
  const conversation = h("div", { class: "conversation" }, messages);
  const question = h("textarea", {
    id: "chat-question", name: "message", rows: "3", required: true, maxlength: "4000",
    placeholder: "e.g. When are invoices due, and what happens if they are paid late?",
  });
  const ask = h("button", { type: "submit", class: "button button-primary" }, "Ask");
  const stop = h("button", { type: "button", class: "button", hidden: true, onclick: () => streaming?.abort() }, "Stop");
  const form = h(
    "form",
    { class: "chat-form", novalidate: true },
    h("label", { for: "chat-question" }, "Ask a question about your documents"),
    question,
    h("div", { class: "chat-form-actions" }, h("span", { class: "hint" }, "Enter to send, Shift+Enter for a new line"), stop, ask),
  );
  const main = h("div", { class: "chat-main" }, conversation, form);

  question.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = question.value.trim();
    if (!text || streaming) {
      question.focus();
      return;
    }
    question.value = "";
    void send(text);
  });

  function unavailable(error: unknown): void {
    const configured = error instanceof ApiError && error.problem.type;
    main.replaceChildren(
      emptyState(
        "Chat isn't available yet",
        "This Folio server doesn't offer chat yet. Search still finds every passage in your documents.",
        configured ? h("p", { class: "hint" }, errorMessage(error)) : null,
        h("a", { class: "button", href: "/search" }, "Go to search"),
      ),
    );
    sessions.replaceChildren(h("p", { class: "muted" }, "No conversations."));
  }

  async function loadSessions(): Promise<void> {
    try {
      renderSessions(await app.api.chatSessions(controller.signal));
    } catch (error) {
      if (controller.signal.aborted) return;
      if (notServed(error)) return unavailable(error);
      sessions.replaceChildren(errorState(error, () => void loadSessions()));
    } finally {
      sessions.setAttribute("aria-busy", "false");
    }
  }

  function renderSessions(list: ChatSessionSummary[]): void {
    if (list.length === 0) {
      sessions.replaceChildren(h("p", { class: "muted" }, "No conversations yet. Ask a question to start one."));
      return;
    }
    sessions.replaceChildren(
      h(
        "ul",
        null,
        list.map((s) =>
          h(
            "li",
            null,
            h(
              "a",
              { href: `/chat/${encodeURIComponent(s.id)}`, "aria-current": s.id === sessionId ? "page" : undefined },
              h("span", { class: "session-title" }, s.title),
              s.updatedAt ? h("span", { class: "meta" }, formatDate(s.updatedAt)) : null,
            ),
          ),
        ),
      ),
    );
  }

  async function loadSession(id: string): Promise<void> {
    messages.replaceChildren(h("li", null, loadingState("Loading the conversation…")));
    try {
      const session = await app.api.chatSession(id, controller.signal);
      heading.textContent = session.title;
      document.title = `${session.title} · Folio`;
      messages.replaceChildren(...session.messages.map((m) => messageItem(m)));
      if (session.messages.length === 0) messages.replaceChildren();
    } catch (error) {
      if (controller.signal.aborted) return;
      messages.replaceChildren(h("li", null, errorState(error, () => void loadSession(id))));
    }
  }

  function messageItem(message: ChatMessage): HTMLElement {
    if (message.role === "user") {
      return h("li", { class: "message message-user" }, h("p", { class: "message-who visually-hidden" }, "You asked:"), h("p", null, message.content));
    }
    const item = h("li", { class: "message message-assistant" });
    renderAnswer(item, message.content, message.citations);
    if (message.id && sessionId) item.append(feedbackControl(app, sessionId, message.id, message.feedback ?? null));
    return item;
  }

  function renderAnswer(item: HTMLElement, text: string, citations: Citation[], error?: string): void {
    const byNumber = new Map(citations.map((c) => [Number(c.n), c]));
    // Plain text with light structure: blank lines separate paragraphs, "- " lines make a list.
    const answer = h("div", { class: "answer" });
    for (const block of text.split(/\n{2,}/)) {
      const lines = block.split("\n").filter((line) => line.trim());
      if (lines.length && lines.every((line) => /^\s*[-*] /.test(line))) {
        answer.append(h("ul", null, lines.map((line) => h("li", null, withCitations(line.replace(/^\s*[-*] /, ""), byNumber)))));
      } else if (lines.length) {
        const p = h("p");
        lines.forEach((line, i) => p.append(...(i ? [h("br")] : []), withCitations(line, byNumber)));
        answer.append(p);
      }
    }
    item.replaceChildren(h("p", { class: "message-who visually-hidden" }, "Folio answered:"), answer);
    if (citations.length) {
      item.append(
        h(
          "div",
          { class: "sources" },
          h("h3", null, "Sources"),
          h(
            "ol",
            null,
            citations.map((c) =>
              h(
                "li",
                { value: String(c.n) },
                h(
                  "button",
                  { type: "button", class: "link-button source", "aria-haspopup": "dialog", onclick: (e: Event) => open(c, e) },
                  c.title,
                  c.headingPath?.length ? h("span", { class: "muted" }, ` — ${c.headingPath.join(" › ")}`) : null,
                  c.pages ? h("span", { class: "muted" }, `, ${pagesLabel(c.pages)}`) : null,
                ),
              ),
            ),
          ),
        ),
      );
    }
    if (error) item.append(h("p", { class: "form-error", role: "alert" }, error));
  }

  function withCitations(text: string, byNumber: Map<number, Citation>): DocumentFragment {
    const out = document.createDocumentFragment();
    let last = 0;
    for (const match of text.matchAll(/\[(\d+)\]/g)) {
      const citation = byNumber.get(Number(match[1]));
      if (!citation) continue;
      out.append(text.slice(last, match.index), citeButton(citation));
      last = match.index! + match[0].length;
    }
    out.append(text.slice(last));
    return out;
  }

  function citeButton(citation: Citation): HTMLElement {
    return h(
      "button",
      { type: "button", class: "cite", "aria-haspopup": "dialog", "aria-label": `Source ${citation.n}: ${citation.title}`, onclick: (e: Event) => open(citation, e) },
      `[${citation.n}]`,
    );
  }

  function open(citation: Citation, event: Event): void {
    app.openPassage({ documentId: citation.documentId, chunkId: String(citation.chunkId) }, event.currentTarget as HTMLElement);
  }

  async function send(text: string): Promise<void> {
    messages.append(messageItem({ role: "user", content: text, citations: [] }));
    const item = h("li", { class: "message message-assistant", "aria-busy": "true" }, loadingState("Reading your documents…"));
    messages.append(item);
    item.scrollIntoView({ block: "nearest" });
    streaming = new AbortController();
    const abort = () => streaming?.abort();
    controller.signal.addEventListener("abort", abort, { once: true });
    stop.hidden = false;
    ask.disabled = true;
    let answer = "";
    let citations: Citation[] = [];
    let messageId: string | undefined;
    let live: HTMLElement | null = null;
    try {
      const response = await app.api.chat(text, sessionId, [], streaming.signal);
      for await (const raw of readNdjson(response.body!)) {
        const event = readEvent(raw);
        if (event.kind === "session" && event.sessionId && event.sessionId !== sessionId) {
          sessionId = event.sessionId;
          history.replaceState(null, "", `/chat/${encodeURIComponent(sessionId)}`);
          if (event.title) heading.textContent = event.title;
          void loadSessions();
        } else if (event.kind === "delta") {
          answer += event.text;
          if (!live) {
            live = h("p", { class: "answer-streaming" });
            item.replaceChildren(live);
          }
          live.textContent = answer;
        } else if (event.kind === "citations") {
          citations = event.citations;
        } else if (event.kind === "done") {
          messageId = event.messageId;
        } else if (event.kind === "error") {
          throw new Error(event.detail);
        }
      }
      renderAnswer(item, answer, citations);
      if (messageId && sessionId) item.append(feedbackControl(app, sessionId, messageId, null));
      announce(citations.length ? `Answer ready, with ${citations.length} sources.` : "Answer ready.");
    } catch (error) {
      const stopped = error instanceof DOMException && error.name === "AbortError";
      renderAnswer(item, answer, citations, stopped ? "Stopped." : errorMessage(error));
      if (notServed(error) && !answer) unavailable(error);
    } finally {
      item.setAttribute("aria-busy", "false");
      controller.signal.removeEventListener("abort", abort);
      streaming = null;
      stop.hidden = true;
      ask.disabled = false;
      if (!controller.signal.aborted && main.contains(question)) question.focus();
    }
  }

  const el = h(
    "section",
    { class: "page chat-page" },
    heading,
    h(
      "div",
      { class: "chat-layout" },
      h(
        "aside",
        { class: "chat-sessions", "aria-labelledby": "sessions-title" },
        h("h2", { id: "sessions-title" }, "Conversations"),
        h("a", { class: "button", href: "/chat" }, "New conversation"),
        sessions,
      ),
      main,
    ),
  );
  void loadSessions();
  if (sessionId) void loadSession(sessionId);
  return {
    title: sessionId ? "Conversation" : "Chat",
    el,
    dispose: () => {
      controller.abort();
      streaming?.abort();
    },
  };
}

const REASONS: [FeedbackReason, string][] = [
  ["wrong", "It is wrong"],
  ["not_grounded", "It is not backed by the documents"],
  ["incomplete", "It is incomplete"],
  ["other", "Something else"],
];
const REASON_TEXT = new Map(REASONS);
const MAX_COMMENT = 500;

/** Thumbs up/down on one answer, with an optional reason for a thumbs down; pressing the chosen thumb
 * again takes the rating off. Only the answer's author sees it (others cannot open the conversation). */
export function feedbackControl(app: App, sessionId: string, messageId: string, initial: Feedback | null): HTMLElement {
  let current = initial;
  const status = h("p", { class: "feedback-status muted", role: "status" });
  // Words, not emoji: the accessible name is what is seen, and no emoji font is needed.
  const up = h("button", { type: "button", class: "feedback-thumb" }, "Good answer");
  const down = h("button", { type: "button", class: "feedback-thumb" }, "Bad answer");
  const comment = h("textarea", { name: "comment", rows: "2", maxlength: String(MAX_COMMENT) });
  const commentId = `feedback-comment-${messageId}`;
  comment.id = commentId;
  const reasons = h(
    "fieldset",
    null,
    h("legend", null, "What was wrong with it? (optional)"),
    REASONS.map(([value, label]) =>
      h("label", { class: "feedback-reason" }, h("input", { type: "radio", name: `reason-${messageId}`, value }), ` ${label}`),
    ),
  );
  const form = h(
    "form",
    { class: "feedback-form", hidden: true, novalidate: true },
    reasons,
    h("label", { for: commentId }, "Anything to add? (optional)"),
    comment,
    h("div", { class: "feedback-actions" }, h("button", { type: "submit", class: "button" }, "Send feedback")),
  );
  const el = h(
    "div",
    { class: "feedback", role: "group", "aria-label": "Rate this answer" },
    h("div", { class: "feedback-thumbs" }, up, down, status),
    form,
  );

  function show(): void {
    up.setAttribute("aria-pressed", String(current?.rating === "up"));
    down.setAttribute("aria-pressed", String(current?.rating === "down"));
    if (!current) status.textContent = "";
    else if (current.rating === "up") status.textContent = "You rated this answer helpful.";
    else {
      const reason = current.reason ? REASON_TEXT.get(current.reason) : null;
      status.textContent = `You rated this answer unhelpful${reason ? `: ${reason.toLowerCase()}` : ""}.`;
    }
  }

  async function save(next: Feedback | null): Promise<boolean> {
    up.disabled = down.disabled = true;
    try {
      if (next) current = { ...next, ...(await app.api.setFeedback(sessionId, messageId, next)) };
      else {
        await app.api.clearFeedback(sessionId, messageId);
        current = null;
      }
      show();
      return true;
    } catch (error) {
      status.textContent = errorMessage(error);
      return false;
    } finally {
      up.disabled = down.disabled = false;
    }
  }

  up.addEventListener("click", () => {
    form.hidden = true;
    void save(current?.rating === "up" ? null : { rating: "up", reason: null, comment: null });
  });
  down.addEventListener("click", async () => {
    if (current?.rating === "down") {
      form.hidden = true;
      void save(null);
      return;
    }
    if (await save({ rating: "down", reason: null, comment: null })) {
      form.hidden = false;
      form.querySelector<HTMLInputElement>("input")?.focus();
    }
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const chosen = form.querySelector<HTMLInputElement>("input[type=radio]:checked");
    const text = comment.value.trim().slice(0, MAX_COMMENT);
    if (await save({ rating: "down", reason: (chosen?.value as FeedbackReason | undefined) ?? null, comment: text || null })) {
      form.hidden = true;
      down.focus();
      announce("Thanks for the feedback.");
    }
  });
  show();
  return el;
}
