// Who is signed in, and what the API client sends to prove it.
// - "entra" (Azure): MSAL signs the user in with Microsoft Entra ID and every API call carries
//   `Authorization: Bearer <access token for Folio's API scope>` (./entra.ts, loaded on demand).
// - "dev" (`make dev`): a dev sign-in keeps a principal in localStorage and the API client sends it as
//   x-ms-client-principal; the local host trusts that header only in FOLIO_DEV_MODE, never in Azure.
// - "swa": Static Web Apps' own sign-in (/.auth/me) with the API as its linked backend; kept for
//   deployments that still link one. The app never sends the header itself in this mode.

import type { AuthMode, RuntimeConfig } from "./config";

export interface Principal {
  identityProvider: string;
  userId: string;
  userDetails: string;
  userRoles: string[];
}

const DEV_KEY = "folio.devPrincipal";

export interface Auth {
  mode: AuthMode;
  principal: Principal | null;
  /** Headers the API client adds to every request (a fresh bearer token under Entra; none under Static Web Apps). */
  headers(): Promise<Record<string, string>>;
  /** Start an interactive sign-in that comes back to ``returnTo`` (Entra only). */
  signIn?(returnTo: string): void;
  signOut(): void;
}

export async function loadAuth(config: RuntimeConfig): Promise<Auth> {
  if (config.auth === "entra" && config.entra) {
    const { loadEntraAuth } = await import("./entra"); // MSAL is its own chunk, fetched only here
    return loadEntraAuth(config.entra);
  }
  const mode: AuthMode = config.auth === "dev" ? "dev" : "swa";
  const principal = mode === "dev" ? readDevPrincipal() : await fetchSwaPrincipal();
  return {
    mode,
    principal,
    headers: async (): Promise<Record<string, string>> =>
      mode === "dev" && principal ? { "x-ms-client-principal": encodePrincipal(principal) } : {},
    signOut: () => {
      if (mode === "dev") {
        localStorage.removeItem(DEV_KEY);
        window.location.assign("/");
      } else {
        window.location.assign("/.auth/logout?post_logout_redirect_uri=/");
      }
    },
  };
}

export function swaLoginUrl(returnTo: string): string {
  return `/.auth/login/aad?post_login_redirect_uri=${encodeURIComponent(returnTo)}`;
}

async function fetchSwaPrincipal(): Promise<Principal | null> {
  try {
    const response = await fetch("/.auth/me", { cache: "no-store" });
    if (!response.ok) return null;
    const body = (await response.json()) as { clientPrincipal?: Principal | null };
    return body.clientPrincipal ?? null;
  } catch {
    return null;
  }
}

function readDevPrincipal(): Principal | null {
  try {
    const parsed = JSON.parse(localStorage.getItem(DEV_KEY) ?? "null") as Principal | null;
    return parsed && typeof parsed.userId === "string" && typeof parsed.userDetails === "string" ? parsed : null;
  } catch {
    return null;
  }
}

/** Dev sign-in: the same principal shape Static Web Apps builds after an Entra sign-in. */
export function devSignIn(email: string): Principal {
  const normalized = email.trim().toLowerCase();
  const principal: Principal = {
    identityProvider: "aad",
    userId: `dev:${normalized}`, // stable per email, so signing in again is the same user
    userDetails: normalized,
    userRoles: ["anonymous", "authenticated"],
  };
  localStorage.setItem(DEV_KEY, JSON.stringify(principal));
  return principal;
}

/** base64 of the UTF-8 JSON, as Static Web Apps encodes the header. */
export function encodePrincipal(principal: Principal): string {
  const bytes = new TextEncoder().encode(JSON.stringify(principal));
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

