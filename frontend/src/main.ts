// Boot: runtime config → who is signed in → the caller's workspace → the shell and the router.

import "./styles.css";
import { Api, ApiError, type Me } from "./api";
import type { App } from "./app";
import { devSignIn, loadAuth, swaLoginUrl, type Auth } from "./auth";
import { loadConfig } from "./config";
import { errorState, formError, h, loadingState } from "./dom";
import { Router } from "./router";
import { billingView } from "./views/billing";
import { chatView } from "./views/chat";
import { collectionView } from "./views/collection";
import { collectionsView } from "./views/collections";
import { insightsView } from "./views/insights";
import { notFoundView } from "./views/notfound";
import { openPassage } from "./views/passage";
import { searchView } from "./views/search";

const NAV: [string, string][] = [
  ["/", "Collections"],
  ["/search", "Search"],
  ["/chat", "Chat"],
  ["/billing", "Billing"],
];
// Only owners see insights (the API answers 403 to anyone else; the page says so if reached by URL).
const OWNER_NAV: [string, string][] = [["/insights", "Insights"]];

async function boot(): Promise<void> {
  const root = document.getElementById("app")!;
  const config = await loadConfig();
  let auth: Auth;
  try {
    auth = await loadAuth(config);
  } catch (error) {
    // e.g. the sign-in came back with an error, or the identity provider cannot be reached
    const notice = h("p", { class: "form-error", role: "alert" }, describe(error));
    root.replaceChildren(signInCard(notice, h("a", { class: "button button-primary", href: "/" }, "Try again")));
    document.title = "Sign in · Folio";
    return;
  }
  if (!auth.principal) {
    root.replaceChildren(signInPage(auth));
    document.title = "Sign in · Folio";
    root.querySelector<HTMLElement>("input, a.button, button.button-primary")?.focus();
    return;
  }
  const api = new Api(config.apiBase, auth);
  const main = h("main", { id: "main", tabindex: "-1" }, loadingState("Loading your workspace…"));
  root.replaceChildren(main);
  let me: Me;
  try {
    me = await loadMe(api);
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      root.replaceChildren(signInPage(auth, error.detail));
      return;
    }
    main.replaceChildren(h("h1", null, "Folio"), errorState(error, () => void boot()));
    return;
  }
  const links = me.role === "owner" ? [...NAV, ...OWNER_NAV] : NAV;
  const nav = h("ul", { class: "nav-links" }, links.map(([href, label]) => h("li", null, h("a", { href }, label))));
  const app: App = {
    api,
    auth,
    me,
    navigate: (path, options) => router.navigate(path, options?.replace),
    openPassage: (ref, opener) => openPassage(app, ref, opener),
    canEdit: () => me.role === "owner" || me.role === "member",
  };
  const router = new Router(
    [
      [/^\/$/, collectionsView],
      [/^\/collections\/([^/]+)$/, collectionView],
      [/^\/search$/, searchView],
      [/^\/chat(?:\/([^/]+))?$/, chatView],
      [/^\/billing$/, billingView],
      [/^\/insights$/, insightsView],
    ],
    notFoundView,
    main,
    () => app,
    (path) => {
      for (const link of nav.querySelectorAll("a")) {
        const href = link.getAttribute("href")!;
        const active = href === "/" ? path === "/" || path.startsWith("/collections/") : path.startsWith(href);
        if (active) link.setAttribute("aria-current", "page");
        else link.removeAttribute("aria-current");
      }
    },
  );
  root.replaceChildren(header(app, nav), main);
  router.render();
}

async function loadMe(api: Api): Promise<Me> {
  try {
    return await api.me();
  } catch (error) {
    // A workspace picked earlier that the user no longer belongs to is a 404: fall back to the personal one.
    if (error instanceof ApiError && error.status === 404 && api.workspace) {
      api.workspace = null;
      return api.me();
    }
    throw error;
  }
}

function header(app: App, nav: HTMLElement): HTMLElement {
  const { me } = app;
  const who = me.user?.email ?? me.user?.name ?? app.auth.principal?.userDetails ?? "";
  let workspace: HTMLElement = h("span", { class: "workspace-name" }, me.tenant.name);
  if (me.workspaces.length > 1) {
    const select = h(
      "select",
      {
        id: "workspace-select",
        onchange: (event: Event) => {
          app.api.workspace = (event.target as HTMLSelectElement).value;
          window.location.assign("/");
        },
      },
      me.workspaces.map((w) =>
        h("option", { value: w.id, selected: w.id === me.tenant.id }, `${w.name}${w.personal ? " (personal)" : ""}`),
      ),
    );
    workspace = h("span", null, h("label", { for: "workspace-select", class: "visually-hidden" }, "Workspace"), select);
  }
  return h(
    "header",
    { class: "topbar" },
    h("a", { class: "brand", href: "/" }, h("span", { class: "brand-mark", "aria-hidden": "true" }, "F"), "Folio"),
    h("nav", { "aria-label": "Main" }, nav),
    h(
      "div",
      { class: "account" },
      workspace,
      h("span", { class: "role-badge", title: "Your role in this workspace" }, me.role),
      h("span", { class: "account-user" }, who),
      h("button", { type: "button", class: "button button-quiet", onclick: () => app.auth.signOut() }, "Sign out"),
    ),
  );
}

/** The sign-in card, with the way to sign in that this deployment uses. */
function signInCard(notice: HTMLElement | null, ...body: (HTMLElement | null)[]): HTMLElement {
  return h(
    "main",
    { id: "main", class: "signin" },
    h(
      "section",
      { class: "card signin-card" },
      h("h1", null, "Sign in to Folio"),
      h("p", null, "Your team's documents, searchable and answerable, with sources."),
      notice,
      ...body,
    ),
  );
}

function signInPage(auth: Auth, problem?: string): HTMLElement {
  const returnTo = window.location.pathname + window.location.search;
  const notice = problem ? h("p", { class: "form-error", role: "alert" }, problem) : null;
  if (auth.mode === "entra") {
    return signInCard(
      notice,
      h(
        "button",
        { type: "button", class: "button button-primary", onclick: () => auth.signIn?.(returnTo) },
        "Sign in with Microsoft",
      ),
      h("p", { class: "hint" }, "Use your work or school account."),
    );
  }
  if (auth.mode === "swa") {
    return signInCard(
      notice,
      h("a", { class: "button button-primary", href: swaLoginUrl(returnTo) }, "Sign in with Microsoft"),
    );
  }
  const error = formError();
  const email = h("input", { id: "signin-email", type: "email", name: "email", required: true, autocomplete: "email" });
  const form = h(
    "form",
    {
      class: "stack",
      onsubmit: (event: Event) => {
        event.preventDefault();
        if (!email.value.trim() || !email.checkValidity()) {
          error.show(new Error("Enter an email address, such as ann@example.com."));
          email.focus();
          return;
        }
        devSignIn(email.value);
        window.location.assign(returnTo);
      },
      novalidate: true,
    },
    h("label", { for: "signin-email" }, "Email"),
    email,
    error.el,
    h("button", { type: "submit", class: "button button-primary" }, "Sign in"),
  );
  return signInCard(
    notice,
    form,
    h(
      "p",
      { class: "hint" },
      "Local development sign-in: no password, the local API trusts it in dev mode. " +
        "In Azure, you sign in with Microsoft Entra ID.",
    ),
  );
}

function describe(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return `Signing in did not work: ${text.split("\n")[0].slice(0, 300)}`;
}

void boot();
