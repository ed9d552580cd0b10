// Runtime configuration: /config.json is served next to the app, so one build runs everywhere.
// In Azure the deployment writes it: the function app's API origin and the Entra app registration
// ({"auth": "entra"}: MSAL sign-in, bearer tokens to the API on its own origin). The checked-in
// public/config.json is the Static Web Apps default; locally the dev server (devhost/frontend.py)
// answers {"auth": "dev"} (the dev sign-in), or "entra" against a local OpenID Connect provider.

export type AuthMode = "swa" | "dev" | "entra";

/** The Entra app registration the web app signs in with (an SPA platform with this origin's redirect URI). */
export interface EntraConfig {
  clientId: string;
  /** https://login.microsoftonline.com/organizations: any work or school tenant. */
  authority: string;
  /** The API's delegated scope, such as api://<client id>/access_as_user. */
  apiScope: string;
  /** Hosts MSAL trusts without Microsoft's instance discovery (a non-Microsoft authority, such as a test provider). */
  knownAuthorities: string[];
}

export interface RuntimeConfig {
  apiBase: string;
  auth: AuthMode;
  entra: EntraConfig | null;
}

const DEFAULTS: RuntimeConfig = { apiBase: "/api", auth: "swa", entra: null };

export async function loadConfig(): Promise<RuntimeConfig> {
  try {
    const response = await fetch("/config.json", { cache: "no-store", headers: { Accept: "application/json" } });
    if (!response.ok) return DEFAULTS;
    const raw = (await response.json()) as Partial<Record<keyof RuntimeConfig, unknown>>;
    const entra = readEntra(raw.entra);
    return {
      apiBase: typeof raw.apiBase === "string" && raw.apiBase ? raw.apiBase.replace(/\/+$/, "") : DEFAULTS.apiBase,
      auth: raw.auth === "dev" ? "dev" : raw.auth === "entra" && entra ? "entra" : "swa",
      entra,
    };
  } catch {
    return DEFAULTS; // e.g. the fallback served index.html: not JSON
  }
}

function readEntra(value: unknown): EntraConfig | null {
  if (!value || typeof value !== "object") return null;
  const raw = value as Record<string, unknown>;
  const text = (key: string): string => (typeof raw[key] === "string" ? (raw[key] as string) : "");
  if (!text("clientId") || !text("authority") || !text("apiScope")) return null;
  const known = Array.isArray(raw.knownAuthorities) ? raw.knownAuthorities.filter((h) => typeof h === "string") : [];
  return { clientId: text("clientId"), authority: text("authority"), apiScope: text("apiScope"), knownAuthorities: known };
}
