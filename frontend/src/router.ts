// History-API routing: real links everywhere, intercepted for same-origin navigation; on every
// route change the new page's heading gets focus, so keyboard and screen-reader users land on it.

import type { App, View } from "./app";

export type RouteHandler = (app: App, params: string[], query: URLSearchParams) => View;

export class Router {
  private current: View | null = null;
  private first = true;

  constructor(
    private readonly routes: [RegExp, RouteHandler][],
    private readonly notFound: RouteHandler,
    private readonly outlet: HTMLElement,
    private readonly app: () => App,
    private readonly onChange: (path: string) => void,
  ) {
    window.addEventListener("popstate", () => this.render());
    document.addEventListener("click", (event) => this.intercept(event));
  }

  navigate(path: string, replace = false): void {
    if (replace) history.replaceState(null, "", path);
    else history.pushState(null, "", path);
    this.render();
  }

  render(): void {
    this.current?.dispose?.();
    const { pathname, search } = window.location;
    const query = new URLSearchParams(search);
    let view: View | null = null;
    for (const [pattern, handler] of this.routes) {
      const match = pattern.exec(pathname);
      if (match) {
        view = handler(this.app(), match.slice(1).map((part) => (part === undefined ? "" : decodeURIComponent(part))), query);
        break;
      }
    }
    view ??= this.notFound(this.app(), [], query);
    this.current = view;
    this.outlet.replaceChildren(view.el);
    document.title = `${view.title} · Folio`;
    this.onChange(pathname);
    if (this.first) {
      this.first = false;
    } else {
      const heading = this.outlet.querySelector<HTMLElement>("h1");
      if (heading) {
        heading.tabIndex = -1;
        heading.focus();
      }
    }
  }

  private intercept(event: MouseEvent): void {
    if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey)
      return;
    const link = (event.target as Element | null)?.closest?.("a");
    if (!link || link.target || link.hasAttribute("download") || link.origin !== window.location.origin) return;
    if (link.pathname.startsWith("/.auth/") || link.pathname.startsWith("/api/")) return;
    event.preventDefault();
    if (link.pathname + link.search !== window.location.pathname + window.location.search) {
      this.navigate(link.pathname + link.search);
    }
  }
}
