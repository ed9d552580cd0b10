// Runtime configuration: /config.json is served next to the app, so one build runs everywhere.
// In Azure it is the checked-in public/config.json (same-origin /api, Static Web Apps auth); locally
// the dev server (devhost/frontend.py) answers it with {"auth": "dev"}.

export type AuthMode = "swa" | "dev";

export interface RuntimeConfig {
  apiBase: string;
  auth: AuthMode;
}

const DEFAULTS: RuntimeConfig = { apiBase: "/api", auth: "swa" };

export async function loadConfig(): Promise<RuntimeConfig> {
  try {
    const response = await fetch("/config.json", { cache: "no-store", headers: { Accept: "application/json" } });
    if (!response.ok) return DEFAULTS;
    const raw = (await response.json()) as Partial<Record<keyof RuntimeConfig, unknown>>;
    return {
      apiBase: typeof raw.apiBase === "string" && raw.apiBase ? raw.apiBase.replace(/\/+$/, "") : DEFAULTS.apiBase,
      auth: raw.auth === "dev" ? "dev" : "swa",
    };
  } catch {
    return DEFAULTS; // e.g. the fallback served index.html: not JSON
  }
}
