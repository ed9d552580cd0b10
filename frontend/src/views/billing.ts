// Billing: the plan in force, usage against every limit, upgrade (Stripe Checkout) and manage (Customer Portal).

import type { Billing } from "../api";
import type { App, View } from "../app";
import { errorState, formatBytes, formatDate, formatNumber, formError, h, loadingState } from "../dom";

const LIMITS: [string, string, boolean][] = [
  ["documents", "Documents", false],
  ["storageBytes", "Storage", true],
  ["pagesPerMonth", "Pages indexed this month", false],
  ["searchesPerMonth", "Searches this month", false],
  ["chatTokensPerMonth", "Chat tokens this month", false],
];

const STATUS_TEXT: Record<string, string> = {
  active: "Active",
  trialing: "Trial",
  grace: "Payment failed: the plan continues during the grace period",
  downgraded: "Payment failed: moved to the free plan",
  past_due: "Payment overdue",
  canceled: "Cancelled",
  none: "",
};

export function billingView(app: App): View {
  const controller = new AbortController();
  const body = h("div", { "aria-busy": "true" }, loadingState("Loading billing…"));
  const isOwner = app.me.role === "owner";

  async function load(): Promise<void> {
    body.setAttribute("aria-busy", "true");
    body.replaceChildren(loadingState("Loading billing…"));
    try {
      render(await app.api.billing(controller.signal));
    } catch (error) {
      if (controller.signal.aborted) return;
      body.replaceChildren(errorState(error, () => void load()));
    } finally {
      body.setAttribute("aria-busy", "false");
    }
  }

  function render(billing: Billing): void {
    const error = formError();
    const status = STATUS_TEXT[billing.status] ?? billing.status;
    const sub = billing.subscription;
    const plan = h(
      "section",
      { class: "card plan-card", "aria-labelledby": "plan-title" },
      h("h2", { id: "plan-title", class: "card-title" }, "Current plan"),
      h("p", { class: "plan-name" }, capitalize(billing.plan)),
      status ? h("p", { class: `plan-status plan-status-${billing.status}` }, status) : null,
      sub?.currentPeriodEnd
        ? h("p", { class: "muted" }, `${sub.cancelAtPeriodEnd ? "Ends" : "Renews"} ${formatDate(sub.currentPeriodEnd)}`)
        : null,
      sub?.graceEndsAt ? h("p", { class: "muted" }, `Grace period ends ${formatDate(sub.graceEndsAt)}`) : null,
      h("p", { class: "muted" }, `Monthly usage resets on ${formatDate(billing.period.end, false)} (UTC).`),
    );
    if (sub) {
      const manage = h("button", { type: "button", class: "button", disabled: !isOwner }, "Manage billing");
      manage.addEventListener("click", () => void redirect(manage, () => app.api.portal(), error));
      plan.append(h("div", { class: "card-actions" }, manage));
    }
    plan.append(error.el);
    if (!isOwner) plan.append(h("p", { class: "hint" }, "Only workspace owners can change the plan or billing details."));

    const usage = h(
      "section",
      { class: "card", "aria-labelledby": "usage-title" },
      h("h2", { id: "usage-title", class: "card-title" }, "Usage"),
      h("ul", { class: "usage-list" }, LIMITS.map(([key, label, bytes]) => usageItem(key, label, bytes, billing))),
    );

    const upgrades = billing.plans.filter((p) => p.name !== billing.plan && p.purchasable);
    const plans = h(
      "section",
      { class: "plans", "aria-labelledby": "plans-title" },
      h("h2", { id: "plans-title" }, "Plans"),
      upgrades.length === 0
        ? h("p", { class: "muted" }, sub ? "Change or cancel your plan with Manage billing." : "No other plan is on sale at the moment.")
        : h(
            "ul",
            { class: "card-list plan-list" },
            upgrades.map((p) => {
              const button = h("button", { type: "button", class: "button button-primary", disabled: !isOwner }, `Upgrade to ${capitalize(p.name)}`);
              const planError = formError();
              button.addEventListener("click", () => void redirect(button, () => app.api.checkout(p.name), planError));
              return h(
                "li",
                { class: "card" },
                h("h3", { class: "card-title" }, capitalize(p.name)),
                h("ul", { class: "plan-limits" }, LIMITS.map(([key, label, bytes]) =>
                  h("li", null, `${label.replace(" this month", " a month")}: ${limitText(p.limits[key] ?? null, bytes)}`))),
                button,
                planError.el,
              );
            }),
          ),
    );
    body.replaceChildren(h("div", { class: "billing-grid" }, plan, usage), plans);
  }

  const el = h("section", { class: "page" }, h("h1", { tabindex: "-1" }, "Billing"), body);
  void load();
  return { title: "Billing", el, dispose: () => controller.abort() };
}

async function redirect(
  button: HTMLButtonElement,
  start: () => Promise<{ url: string }>,
  error: ReturnType<typeof formError>,
): Promise<void> {
  const label = button.textContent;
  button.disabled = true;
  button.textContent = "Opening Stripe…";
  error.clear();
  try {
    const { url } = await start();
    window.location.assign(url);
  } catch (err) {
    error.show(err);
    button.disabled = false;
    button.textContent = label;
  }
}

function usageItem(key: string, label: string, bytes: boolean, billing: Billing): HTMLElement {
  const entry = billing.usage[key] ?? { used: 0, limit: null };
  const id = `usage-${key}`;
  const show = (n: number) => (bytes ? formatBytes(n) : formatNumber(n));
  const text = entry.limit === null ? `${show(entry.used)} used · unlimited` : `${show(entry.used)} of ${show(entry.limit)}`;
  const full = entry.limit !== null && entry.limit > 0 ? entry.used / entry.limit : 0;
  return h(
    "li",
    { class: full >= 1 ? "usage usage-full" : "usage" },
    h("div", { class: "usage-head" }, h("span", { id }, label), h("span", { class: "usage-numbers" }, text)),
    entry.limit === null
      ? null
      : h("meter", {
          min: "0", max: String(entry.limit), value: String(Math.min(entry.used, entry.limit)),
          low: String(entry.limit * 0.7), high: String(entry.limit * 0.9), optimum: "0",
          "aria-labelledby": id, "aria-valuetext": text,
        }),
  );
}

function limitText(limit: number | null, bytes: boolean): string {
  if (limit === null) return "unlimited";
  return bytes ? formatBytes(limit) : formatNumber(limit);
}

function capitalize(name: string): string {
  return name.charAt(0).toUpperCase() + name.slice(1);
}
