// Collections: list, create, delete.

import type { Collection } from "../api";
import type { App, View } from "../app";
import {
  announce,
  confirmDialog,
  emptyState,
  errorMessage,
  errorState,
  formatDate,
  formatNumber,
  formError,
  h,
  loadingState,
} from "../dom";

export function collectionsView(app: App): View {
  const controller = new AbortController();
  const list = h("div", { class: "collections", "aria-busy": "true" }, loadingState("Loading collections…"));

  async function load(): Promise<void> {
    list.setAttribute("aria-busy", "true");
    list.replaceChildren(loadingState("Loading collections…"));
    try {
      render(await app.api.collections(controller.signal));
    } catch (error) {
      if (controller.signal.aborted) return;
      list.replaceChildren(errorState(error, () => void load()));
    } finally {
      list.setAttribute("aria-busy", "false");
    }
  }

  function render(collections: Collection[]): void {
    if (collections.length === 0) {
      list.replaceChildren(
        emptyState(
          "No collections yet",
          app.canEdit()
            ? "A collection groups related documents, such as contracts or policies. Create one above, then upload files to it."
            : "Nobody has created a collection in this workspace yet.",
        ),
      );
      return;
    }
    list.replaceChildren(
      h("ul", { class: "card-list", "aria-label": "Collections" }, collections.map((c) => item(c))),
    );
  }

  function item(collection: Collection): HTMLElement {
    const li = h(
      "li",
      { class: "card collection-card" },
      h(
        "h2",
        { class: "card-title" },
        h("a", { href: `/collections/${collection.id}` }, collection.name),
        collection.access === "restricted" ? [" ", h("span", { class: "status-badge status-restricted" }, "Restricted")] : null,
      ),
      collection.description ? h("p", { class: "muted" }, collection.description) : null,
      h(
        "p",
        { class: "meta" },
        `${formatNumber(collection.documents)} ${collection.documents === 1 ? "document" : "documents"} · created ${formatDate(collection.createdAt)}`,
      ),
    );
    if (app.canEdit()) {
      const remove = h(
        "button",
        { type: "button", class: "button button-quiet button-danger-text", "aria-label": `Delete collection ${collection.name}` },
        "Delete",
      );
      remove.addEventListener("click", async () => {
        const confirmed = await confirmDialog(
          `Delete “${collection.name}”?`,
          `Its ${formatNumber(collection.documents)} documents and their passages are deleted too. This can't be undone.`,
          "Delete collection",
        );
        if (!confirmed) return;
        remove.disabled = true;
        try {
          await app.api.deleteCollection(collection.id);
          announce(`Collection ${collection.name} deleted.`);
          await load();
          heading.focus();
        } catch (error) {
          remove.disabled = false;
          li.appendChild(h("p", { class: "form-error", role: "alert" }, errorMessage(error)));
        }
      });
      li.appendChild(h("div", { class: "card-actions" }, remove));
    }
    return li;
  }

  const heading = h("h1", { tabindex: "-1" }, "Collections");
  const el = h("section", { class: "page" }, heading);
  if (app.canEdit()) el.appendChild(createForm(app));
  el.appendChild(list);
  void load();
  return { title: "Collections", el, dispose: () => controller.abort() };
}

function createForm(app: App): HTMLElement {
  const error = formError();
  const name = h("input", { id: "collection-name", name: "name", required: true, maxlength: "200", autocomplete: "off" });
  const description = h("input", { id: "collection-description", name: "description", maxlength: "2000", autocomplete: "off" });
  const submit = h("button", { type: "submit", class: "button button-primary" }, "Create collection");
  const form = h(
    "form",
    { class: "card create-form", "aria-labelledby": "create-collection-title", novalidate: true },
    h("h2", { id: "create-collection-title", class: "card-title" }, "New collection"),
    h(
      "div",
      { class: "form-row" },
      h("div", { class: "field" }, h("label", { for: "collection-name" }, "Name"), name),
      h(
        "div",
        { class: "field field-wide" },
        h("label", { for: "collection-description" }, "Description ", h("span", { class: "muted" }, "(optional)")),
        description,
      ),
      submit,
    ),
    error.el,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.clear();
    if (!name.value.trim()) {
      error.show(new Error("Give the collection a name."));
      name.focus();
      return;
    }
    submit.disabled = true;
    submit.textContent = "Creating…";
    try {
      const created = await app.api.createCollection(name.value.trim(), description.value.trim());
      announce(`Collection ${created.name} created.`);
      app.navigate(`/collections/${created.id}`);
    } catch (err) {
      error.show(err);
      name.focus();
    } finally {
      submit.disabled = false;
      submit.textContent = "Create collection";
    }
  });
  return form;
}
