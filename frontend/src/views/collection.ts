// One collection: its documents with live status, and uploads by drag and drop straight to Blob Storage.

import type { Collection, CollectionAccess, DocumentStatus, FolioDocument, WorkspaceMember } from "../api";
import type { App, View } from "../app";
import {
  announce,
  confirmDialog,
  emptyState,
  errorMessage,
  errorState,
  formError,
  formatBytes,
  formatDate,
  formatNumber,
  h,
  loadingState,
} from "../dom";
import { putBlob } from "../upload";

// Images are read by OCR where the deployment has Azure AI Document Intelligence; elsewhere the API says so.
const ACCEPT = ".pdf,.docx,.pptx,.xlsx,.csv,.tsv,.html,.htm,.md,.markdown,.txt,.png,.jpg,.jpeg,.tif,.tiff";
const PARALLEL_UPLOADS = 3;
const POLL_MS = 1000;
const SLOW_POLL_MS = 4000; // after a minute of waiting, ask less often
const TERMINAL: DocumentStatus[] = ["ready", "failed", "deleted"];
const STATUS_LABEL: Record<DocumentStatus, string> = {
  awaiting_upload: "Waiting for upload",
  queued: "Queued",
  processing: "Indexing…",
  ready: "Ready",
  failed: "Failed",
  deleted: "Deleted",
};

interface Row {
  key: string;
  filename: string;
  size: number;
  doc: FolioDocument | null;
  /** 0..1 while this page uploads the file; null otherwise. */
  progress: number | null;
  /** A failure before the document existed or while uploading: shown instead of the status. */
  problem: string | null;
  watchedSince: number | null;
  tr: HTMLTableRowElement;
}

export function collectionView(app: App, [collectionId]: string[]): View {
  const controller = new AbortController();
  const signal = controller.signal;
  const rows = new Map<string, Row>();
  let pollTimer: number | undefined;

  const heading = h("h1", { tabindex: "-1" }, "Collection");
  const description = h("p", { class: "muted", hidden: true });
  const tbody = h("tbody");
  const table = h(
    "table",
    { class: "documents" },
    h("caption", { class: "visually-hidden" }, "Documents in this collection and their indexing status"),
    h(
      "thead",
      null,
      h(
        "tr",
        null,
        ["Document", "Status", "Pages", "Passages", "Size", "Added", ""].map((label) =>
          h("th", { scope: "col" }, label ? label : h("span", { class: "visually-hidden" }, "Actions")),
        ),
      ),
    ),
    tbody,
  );
  const documents = h("div", { class: "documents-region", "aria-busy": "true" }, loadingState("Loading documents…"));

  // --- loading -------------------------------------------------------------------------------

  async function load(): Promise<void> {
    documents.setAttribute("aria-busy", "true");
    documents.replaceChildren(loadingState("Loading documents…"));
    try {
      const [collection, docs] = await Promise.all([
        app.api.collection(collectionId, signal),
        app.api.documents(collectionId, signal),
      ]);
      showCollection(collection);
      rows.clear();
      tbody.replaceChildren();
      for (const doc of docs) {
        const row = addRow(doc.id, doc.filename, doc.size, "end");
        row.doc = doc;
        renderRow(row);
        if (doc.status === "queued" || doc.status === "processing") watch(row);
      }
      refreshEmpty();
    } catch (error) {
      if (signal.aborted) return;
      heading.textContent = "Collection";
      documents.replaceChildren(errorState(error, () => void load()));
    } finally {
      documents.setAttribute("aria-busy", "false");
    }
  }

  function showCollection(collection: Collection): void {
    heading.textContent = collection.name;
    crumb.textContent = collection.name;
    document.title = `${collection.name} · Folio`;
    description.textContent = collection.description;
    description.hidden = !collection.description;
    restrictedNote.hidden = collection.access !== "restricted";
  }

  // --- who may read it (owners) -------------------------------------------------------------------

  const restrictedNote = h(
    "p",
    { class: "access-note", hidden: true },
    h("span", { class: "status-badge status-restricted" }, "Restricted"),
    " Only the workspace's owners and the people and groups they chose can see this collection.",
  );
  const isOwner = app.me.role === "owner";
  const accessRegion = h("div", { class: "access-region", "aria-busy": "true" }, loadingState("Loading access…"));
  const accessError = formError();

  async function loadAccess(): Promise<void> {
    accessRegion.setAttribute("aria-busy", "true");
    try {
      const [access, people] = await Promise.all([
        app.api.collectionAccess(collectionId, signal),
        app.api.members(signal),
      ]);
      renderAccess(access, people);
    } catch (error) {
      if (signal.aborted) return;
      accessRegion.replaceChildren(errorState(error, () => void loadAccess()));
    } finally {
      accessRegion.setAttribute("aria-busy", "false");
    }
  }

  function renderAccess(access: CollectionAccess, people: WorkspaceMember[]): void {
    const groups = access.groups.map((g) => ({ ...g }));
    const granted = new Set(access.members.map((m) => m.userId));
    const radio = (mode: CollectionAccess["mode"], label: string, hint: string) =>
      h(
        "label",
        { class: "access-mode" },
        h("input", { type: "radio", name: "access-mode", value: mode, checked: access.mode === mode }),
        h("span", null, h("strong", null, label), h("span", { class: "hint" }, hint)),
      );
    const modes = h(
      "fieldset",
      { class: "access-modes" },
      h("legend", null, "Who can read it"),
      radio("open", "Everyone in the workspace", "Every member and viewer sees its documents in lists, search and chat."),
      radio("restricted", "Only the people and groups below", "Owners always can. Others don't see that it exists."),
    );
    const readers = people.filter((p) => p.role !== "owner");
    const memberList = h(
      "fieldset",
      { class: "access-members" },
      h("legend", null, "People"),
      readers.length
        ? readers.map((p) =>
            h(
              "label",
              { class: "access-member" },
              h("input", { type: "checkbox", name: "access-member", value: p.userId, checked: granted.has(p.userId) }),
              ` ${p.name ?? p.email ?? p.userId}`,
              p.email && p.name !== p.email ? h("span", { class: "hint" }, ` ${p.email}`) : null,
              h("span", { class: "hint" }, ` · ${p.role ?? ""}`),
            ),
          )
        : h("p", { class: "hint" }, "Nobody but owners is in this workspace yet."),
    );
    const groupList = h("ul", { class: "access-groups", "aria-label": "Groups" });
    const renderGroups = () =>
      groupList.replaceChildren(
        ...groups.map((g, i) =>
          h(
            "li",
            { "data-group": g.id },
            h("span", null, g.label || "Group"),
            " ",
            h("code", null, g.id),
            " ",
            h(
              "button",
              {
                type: "button",
                class: "button button-quiet button-danger-text",
                "aria-label": `Remove group ${g.label || g.id}`,
                onclick: () => {
                  groups.splice(i, 1);
                  renderGroups();
                },
              },
              "Remove",
            ),
          ),
        ),
      );
    renderGroups();
    const groupId = h("input", { id: "access-group-id", type: "text", autocomplete: "off", spellcheck: "false", placeholder: "00000000-0000-0000-0000-000000000000" });
    const groupLabel = h("input", { id: "access-group-label", type: "text", maxlength: "200", autocomplete: "off" });
    const addGroup = h(
      "button",
      {
        type: "button",
        class: "button",
        onclick: () => {
          const id = groupId.value.trim().toLowerCase();
          if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(id)) {
            accessError.show(new Error("A group is named by its Entra object id, like 0f8fad5b-d9cb-469f-a165-70867728950e."));
            groupId.focus();
            return;
          }
          accessError.clear();
          if (!groups.some((g) => g.id === id)) groups.push({ id, label: groupLabel.value.trim() });
          groupId.value = "";
          groupLabel.value = "";
          renderGroups();
          groupId.focus();
        },
      },
      "Add group",
    );
    const groupSection = h(
      "fieldset",
      { class: "access-group-fields" },
      h("legend", null, "Entra security groups"),
      groupList,
      h(
        "div",
        { class: "access-add-group" },
        h("label", { for: "access-group-id" }, "Group object id"),
        groupId,
        h("label", { for: "access-group-label" }, "Label (optional)"),
        groupLabel,
        addGroup,
      ),
      h("p", { class: "hint" }, "People whose sign-in lists one of these groups can read the collection."),
    );
    const save = h("button", { type: "submit", class: "button button-primary" }, "Save access");
    const form = h("form", { class: "access-form", "aria-labelledby": "access-title" }, modes, memberList, groupSection, accessError.el, save);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const mode = (form.querySelector<HTMLInputElement>("input[name=access-mode]:checked")?.value ?? "open") as CollectionAccess["mode"];
      const members = [...form.querySelectorAll<HTMLInputElement>("input[name=access-member]:checked")].map((c) => c.value);
      save.disabled = true;
      accessError.clear();
      try {
        const saved = await app.api.setCollectionAccess(collectionId, mode, members, groups);
        restrictedNote.hidden = saved.mode !== "restricted";
        renderAccess(saved, people);
        announce(saved.mode === "restricted" ? "Access saved: the collection is restricted." : "Access saved: everyone in the workspace can read the collection.");
      } catch (error) {
        accessError.show(error);
        save.disabled = false;
      }
    });
    accessRegion.replaceChildren(form);
  }

  function refreshEmpty(): void {
    if (rows.size === 0) {
      documents.replaceChildren(
        emptyState(
          "No documents yet",
          app.canEdit()
            ? "Drop files above or choose them to upload. Each one is indexed for search and chat within seconds."
            : "Nobody has uploaded a document to this collection yet.",
        ),
      );
    } else if (!documents.contains(table)) {
      documents.replaceChildren(table);
    }
  }

  // --- rows ------------------------------------------------------------------------------------

  function addRow(key: string, filename: string, size: number, where: "start" | "end"): Row {
    const tr = h("tr", { "data-document": key });
    const row: Row = { key, filename, size, doc: null, progress: null, problem: null, watchedSince: null, tr };
    rows.set(key, row);
    if (where === "start") tbody.prepend(tr);
    else tbody.append(tr);
    return row;
  }

  function statusOf(row: Row): string {
    if (row.problem) return "error";
    if (row.progress !== null && row.progress < 1) return "uploading";
    return row.doc?.status ?? "requesting";
  }

  function renderRow(row: Row): void {
    const doc = row.doc;
    const status = statusOf(row);
    const statusCell = h("td", { class: "status-cell" });
    if (status === "uploading" || status === "requesting") {
      const percent = Math.round((row.progress ?? 0) * 100);
      statusCell.append(
        h("progress", { max: "100", value: String(percent), "aria-label": `Uploading ${row.filename}` }),
        h("span", { class: "status-text" }, status === "requesting" ? "Preparing upload…" : `Uploading ${percent}%`),
      );
    } else if (status === "error") {
      statusCell.append(badge("failed", "Not uploaded"), h("p", { class: "status-reason" }, row.problem ?? ""));
    } else if (doc) {
      const label =
        doc.status === "awaiting_upload" && row.progress === 1 ? "Uploaded, waiting to be queued" : STATUS_LABEL[doc.status];
      statusCell.append(badge(doc.status, label));
      if (doc.status === "failed" && doc.error) statusCell.append(h("p", { class: "status-reason" }, doc.error));
    }
    const actions = h("td", { class: "row-actions" });
    if (app.canEdit() && doc && doc.status !== "deleted" && status !== "uploading" && status !== "requesting") {
      // A failure re-indexing cannot fix (a refused file, a plan limit, a file gone) offers no Retry.
      if (doc.status === "failed" && doc.retryable !== false) {
        actions.append(
          h(
            "button",
            { type: "button", class: "button button-quiet", "aria-label": `Retry indexing ${row.filename}`, onclick: () => void retry(row) },
            "Retry",
          ),
        );
      }
      actions.append(
        h(
          "button",
          { type: "button", class: "button button-quiet button-danger-text", "aria-label": `Delete ${row.filename}`, onclick: () => void remove(row) },
          "Delete",
        ),
      );
    } else if (row.problem) {
      actions.append(
        h(
          "button",
          { type: "button", class: "button button-quiet", "aria-label": `Dismiss ${row.filename}`, onclick: () => dismiss(row) },
          "Dismiss",
        ),
      );
    }
    row.tr.dataset.status = status;
    row.tr.replaceChildren(
      h("th", { scope: "row", class: "doc-name" }, row.filename),
      statusCell,
      h("td", { class: "num" }, doc?.pages != null ? formatNumber(doc.pages) : "—"),
      h("td", { class: "num" }, doc?.chunks ? formatNumber(doc.chunks) : "—"),
      h("td", { class: "num" }, formatBytes(row.size)),
      h("td", { class: "added" }, doc ? formatDate(doc.createdAt) : "now"),
      actions,
    );
  }

  function badge(status: string, label: string): HTMLElement {
    return h("span", { class: `status-badge status-${status}` }, label);
  }

  async function remove(row: Row): Promise<void> {
    const confirmed = await confirmDialog(
      `Delete “${row.filename}”?`,
      "The document and its passages are removed from search and chat. This can't be undone.",
      "Delete document",
    );
    if (!confirmed || !row.doc) return;
    try {
      await app.api.deleteDocument(row.doc.id);
      rows.delete(row.key);
      row.tr.remove();
      announce(`${row.filename} deleted.`);
      refreshEmpty();
      heading.focus();
    } catch (error) {
      row.problem = errorMessage(error);
      renderRow(row);
    }
  }

  async function retry(row: Row): Promise<void> {
    if (!row.doc) return;
    try {
      row.doc = await app.api.reindexDocument(row.doc.id);
      renderRow(row);
      watch(row);
      announce(`${row.filename} queued for indexing again.`);
    } catch (error) {
      announce(`${row.filename}: ${errorMessage(error)}`);
    }
  }

  function dismiss(row: Row): void {
    rows.delete(row.key);
    row.tr.remove();
    refreshEmpty();
    heading.focus();
  }

  // --- live status -------------------------------------------------------------------------------

  function watch(row: Row): void {
    row.watchedSince ??= Date.now();
    schedulePoll(POLL_MS);
  }

  function schedulePoll(delay: number): void {
    if (pollTimer === undefined && !signal.aborted) pollTimer = window.setTimeout(() => void poll(), delay);
  }

  async function poll(): Promise<void> {
    pollTimer = undefined;
    const watched = [...rows.values()].filter((r) => r.watchedSince !== null && r.doc);
    await Promise.all(
      watched.map(async (row) => {
        try {
          const fresh = await app.api.document(row.doc!.id, signal);
          const before = row.doc!.status;
          row.doc = fresh;
          if (fresh.status !== before || TERMINAL.includes(fresh.status)) renderRow(row);
          if (TERMINAL.includes(fresh.status)) {
            row.watchedSince = null;
            if (fresh.status === "ready") {
              announce(`${row.filename} is ready: ${formatNumber(fresh.chunks ?? 0)} passages indexed.`);
            } else if (fresh.status === "failed") {
              announce(`${row.filename} failed: ${fresh.error ?? "unknown reason"}`);
            }
          }
        } catch (error) {
          if (signal.aborted) return;
          if ((error as { status?: number }).status === 404) row.watchedSince = null; // deleted elsewhere
        }
      }),
    );
    const waiting = [...rows.values()].filter((r) => r.watchedSince !== null);
    if (waiting.length) {
      const oldest = Math.min(...waiting.map((r) => r.watchedSince!));
      schedulePoll(Date.now() - oldest > 60_000 ? SLOW_POLL_MS : POLL_MS);
    }
  }

  // --- uploads ---------------------------------------------------------------------------------

  const queue: { row: Row; file: File }[] = [];
  let active = 0;

  function upload(files: File[]): void {
    if (files.length === 0) return;
    for (const file of files) {
      const row = addRow(`upload-${crypto.randomUUID()}`, file.name, file.size, "start");
      row.progress = 0;
      renderRow(row);
      queue.push({ row, file });
    }
    refreshEmpty();
    announce(`Uploading ${files.length} ${files.length === 1 ? "file" : "files"}.`);
    pump();
  }

  function pump(): void {
    while (active < PARALLEL_UPLOADS && queue.length && !signal.aborted) {
      const next = queue.shift()!;
      active += 1;
      void send(next.row, next.file).finally(() => {
        active -= 1;
        pump();
      });
    }
  }

  async function send(row: Row, file: File): Promise<void> {
    let ticket;
    try {
      ticket = await app.api.requestUpload(collectionId, file);
    } catch (error) {
      row.progress = null;
      row.problem = errorMessage(error);
      renderRow(row);
      announce(`${row.filename} was not uploaded: ${row.problem}`);
      return;
    }
    const now = new Date().toISOString();
    row.doc = {
      id: ticket.documentId, collectionId, filename: file.name, contentType: file.type, size: file.size,
      status: "awaiting_upload", error: null, retryable: null, pages: null, chunks: null, createdAt: now, updatedAt: now,
      indexedAt: null,
    };
    row.tr.dataset.document = ticket.documentId;
    let lastPercent = -1;
    try {
      await putBlob(
        ticket,
        file,
        (fraction) => {
          const percent = Math.floor(fraction * 100);
          if (percent !== lastPercent) {
            lastPercent = percent;
            row.progress = fraction;
            renderRow(row);
          }
        },
        signal,
      );
    } catch (error) {
      if (signal.aborted) return;
      row.progress = null;
      row.problem = errorMessage(error);
      renderRow(row);
      announce(`${row.filename} was not uploaded: ${row.problem}`);
      void app.api.deleteDocument(ticket.documentId).catch(() => undefined); // no half-made document left
      row.doc = null;
      renderRow(row);
      return;
    }
    row.progress = 1;
    renderRow(row);
    watch(row);
  }

  // --- drop zone ---------------------------------------------------------------------------------

  const input = h("input", { type: "file", id: "file-input", multiple: true, accept: ACCEPT, class: "visually-hidden", tabindex: "-1" });
  input.addEventListener("change", () => {
    upload(Array.from(input.files ?? []));
    input.value = "";
  });
  const choose = h("button", { type: "button", class: "button button-primary", onclick: () => input.click() }, "Choose files");
  const zone = h(
    "div",
    { class: "dropzone", "aria-describedby": "dropzone-hint" },
    h("p", { class: "dropzone-title" }, "Drag and drop files here, or"),
    choose,
    h("label", { for: "file-input", class: "visually-hidden" }, "Files to upload"),
    input,
    h("p", { id: "dropzone-hint", class: "hint" }, "PDF, Word, PowerPoint, Excel, CSV, HTML, Markdown, plain text, or scans where OCR is set up. Several at once is fine."),
  );
  let depth = 0;
  zone.addEventListener("dragenter", (event) => {
    event.preventDefault();
    depth += 1;
    zone.classList.add("dragging");
  });
  zone.addEventListener("dragleave", () => {
    depth = Math.max(0, depth - 1);
    if (depth === 0) zone.classList.remove("dragging");
  });
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    if (event.dataTransfer) event.dataTransfer.dropEffect = "copy";
  });
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    depth = 0;
    zone.classList.remove("dragging");
    upload(Array.from(event.dataTransfer?.files ?? []));
  });
  // A file dropped next to the zone must not make the browser navigate away to it.
  const swallow = (event: DragEvent) => {
    if (!zone.contains(event.target as Node)) event.preventDefault();
  };
  window.addEventListener("dragover", swallow);
  window.addEventListener("drop", swallow);

  const crumb = h("span", { "aria-current": "page" }, "Collection");
  const el = h(
    "section",
    { class: "page" },
    h("nav", { class: "breadcrumb", "aria-label": "Breadcrumb" }, h("a", { href: "/" }, "Collections"), h("span", { "aria-hidden": "true" }, " / "), crumb),
    heading,
    description,
    restrictedNote,
    app.canEdit() ? h("section", { class: "upload", "aria-labelledby": "upload-title" }, h("h2", { id: "upload-title" }, "Upload documents"), zone) : null,
    h("section", { "aria-labelledby": "documents-title" }, h("h2", { id: "documents-title" }, "Documents"), documents),
    isOwner ? h("section", { class: "access", "aria-labelledby": "access-title" }, h("h2", { id: "access-title" }, "Access"), accessRegion) : null,
  );
  void load();
  if (isOwner) void loadAccess();
  return {
    title: "Collection",
    el,
    dispose: () => {
      controller.abort();
      window.clearTimeout(pollTimer);
      window.removeEventListener("dragover", swallow);
      window.removeEventListener("drop", swallow);
    },
  };
}
