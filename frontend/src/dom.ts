// Small DOM helpers. Text always goes in as text nodes; the only HTML the app inserts is the
// server-escaped search/citation snippet, and even that is rebuilt from text and <mark> alone.

import { ApiError, type Pages } from "./api";

type Child = Node | string | number | null | undefined | false | Child[];
type Props = Record<string, unknown>;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Props | null = null,
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value as EventListener);
    } else if (key === "class") {
      el.className = String(value);
    } else if (value === true) {
      el.setAttribute(key, "");
    } else {
      el.setAttribute(key, String(value));
    }
  }
  append(el, children);
  return el;
}

function append(parent: Node, children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(parent, child);
    else parent.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** The server's snippet (HTML-escaped, matches in <mark>) as nodes: text and <mark> only survive. */
export function snippet(html: string): DocumentFragment {
  const template = document.createElement("template");
  template.innerHTML = html; // inert: template content never runs scripts or loads resources
  const out = document.createDocumentFragment();
  for (const node of Array.from(template.content.childNodes)) {
    if (node.nodeType === Node.ELEMENT_NODE && (node as Element).tagName === "MARK") {
      out.appendChild(h("mark", null, node.textContent ?? ""));
    } else {
      out.appendChild(document.createTextNode(node.textContent ?? ""));
    }
  }
  return out;
}

let liveRegion: HTMLElement | null = null;

/** Tell screen-reader users about something that happened elsewhere on the page. */
export function announce(message: string): void {
  if (!liveRegion) {
    liveRegion = h("div", { class: "visually-hidden", role: "status", "aria-live": "polite", "data-announcer": true });
    document.body.appendChild(liveRegion);
  }
  const region = liveRegion;
  region.textContent = "";
  window.setTimeout(() => (region.textContent = message), 50);
}

export function errorMessage(error: unknown): string {
  if (error instanceof ApiError) return error.detail;
  if (error instanceof Error) return error.message;
  return "Something went wrong.";
}

export function loadingState(text: string): HTMLElement {
  return h("p", { class: "state state-loading", role: "status" }, h("span", { class: "spinner", "aria-hidden": "true" }), text);
}

export function emptyState(title: string, text: string, ...extra: Child[]): HTMLElement {
  return h("div", { class: "state state-empty" }, h("p", { class: "state-title" }, title), h("p", null, text), ...extra);
}

export function errorState(error: unknown, retry?: () => void): HTMLElement {
  return h(
    "div",
    { class: "state state-error", role: "alert" },
    h("p", { class: "state-title" }, error instanceof ApiError && error.status === 0 ? "Offline" : "Couldn't load this"),
    h("p", null, errorMessage(error)),
    retry ? h("button", { type: "button", class: "button", onclick: retry }, "Try again") : null,
  );
}

/** An inline message under a form: role=alert so it is read out when it appears. */
export function formError(): { el: HTMLElement; show(error: unknown): void; clear(): void } {
  const el = h("p", { class: "form-error", role: "alert", hidden: true });
  return {
    el,
    show(error) {
      el.textContent = errorMessage(error);
      el.hidden = false;
    },
    clear() {
      el.textContent = "";
      el.hidden = true;
    },
  };
}

/** A modal yes/no question in a native <dialog> (focus trapped, Escape cancels); resolves true on yes. */
export function confirmDialog(title: string, text: string, action: string): Promise<boolean> {
  return new Promise((resolve) => {
    const opener = document.activeElement as HTMLElement | null;
    const titleId = `dialog-${Math.random().toString(36).slice(2)}`;
    const dialog = h(
      "dialog",
      { class: "dialog dialog-small", "aria-labelledby": titleId },
      h("h2", { id: titleId }, title),
      h("p", null, text),
      h(
        "form",
        { method: "dialog", class: "dialog-actions" },
        h("button", { type: "submit", value: "cancel", class: "button" }, "Cancel"),
        h("button", { type: "submit", value: "confirm", class: "button button-danger" }, action),
      ),
    );
    dialog.addEventListener("close", () => {
      const confirmed = dialog.returnValue === "confirm";
      dialog.remove();
      opener?.focus();
      resolve(confirmed);
    });
    document.body.appendChild(dialog);
    dialog.showModal();
    dialog.querySelector<HTMLButtonElement>("button[value=cancel]")?.focus();
  });
}

const numbers = new Intl.NumberFormat();

export function formatNumber(value: number): string {
  return numbers.format(value);
}

export function formatBytes(bytes: number): string {
  const units = ["bytes", "KB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${numbers.format(value)} bytes` : `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

export function formatDate(iso: string | null | undefined, withTime = true): string {
  if (!iso) return "";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "";
  return withTime
    ? date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" })
    : date.toLocaleDateString(undefined, { dateStyle: "medium", timeZone: "UTC" });
}

export function pagesLabel(pages: Pages | null | undefined): string {
  if (!pages) return "";
  return pages.start === pages.end ? `p. ${pages.start}` : `pp. ${pages.start}–${pages.end}`;
}

export function headingTrail(path: string[] | null | undefined): HTMLElement | null {
  if (!path || path.length === 0) return null;
  return h("p", { class: "heading-path" }, path.join(" › "));
}
