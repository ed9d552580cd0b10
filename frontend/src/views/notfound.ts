// A path the app doesn't know.

import type { App, View } from "../app";
import { h } from "../dom";

export function notFoundView(_app: App): View {
  return {
    title: "Not found",
    el: h(
      "section",
      { class: "page" },
      h("h1", null, "Page not found"),
      h("p", null, "There is nothing at this address. ", h("a", { href: "/" }, "Go to your collections"), "."),
    ),
  };
}
