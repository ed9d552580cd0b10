// Sign-in with Microsoft Entra ID through MSAL.js: authorization code flow with PKCE (redirect), then an
// access token for Folio's API scope on every request, renewed silently (refresh token) and sent as
// `Authorization: Bearer` to the function app on its own origin. Loaded only when config.json says
// "entra", so the dev and Static Web Apps modes never download MSAL.

import {
  InteractionRequiredAuthError,
  PublicClientApplication,
  type AccountInfo,
  type RedirectRequest,
} from "@azure/msal-browser";
import type { Auth, Principal } from "./auth";
import type { EntraConfig } from "./config";

export async function loadEntraAuth(config: EntraConfig): Promise<Auth> {
  const origin = window.location.origin;
  const msal = new PublicClientApplication({
    auth: {
      clientId: config.clientId,
      authority: config.authority,
      knownAuthorities: config.knownAuthorities,
      redirectUri: `${origin}/`, // registered as an SPA redirect URI on the app registration
      postLogoutRedirectUri: `${origin}/`,
    },
    cache: { cacheLocation: "sessionStorage" }, // tokens end with the tab; nothing in localStorage
  });
  await msal.initialize();
  const result = await msal.handleRedirectPromise(); // back from the sign-in page: code → tokens (PKCE)
  const account: AccountInfo | null = result?.account ?? msal.getActiveAccount() ?? msal.getAllAccounts()[0] ?? null;
  if (account) msal.setActiveAccount(account);
  const scopes = [config.apiScope];

  const signIn = (returnTo: string): void => {
    const request: RedirectRequest = { scopes, redirectStartPage: `${origin}${returnTo}` };
    void msal.loginRedirect(request);
  };

  return {
    mode: "entra",
    principal: account ? toPrincipal(account) : null,
    headers: async (): Promise<Record<string, string>> => {
      if (!account) return {};
      try {
        const token = await msal.acquireTokenSilent({ scopes, account });
        return { Authorization: `Bearer ${token.accessToken}` };
      } catch (error) {
        if (error instanceof InteractionRequiredAuthError) {
          // The session at Entra ended (or consent is needed): sign in again, then come back here.
          await msal.acquireTokenRedirect({ scopes, account, redirectStartPage: window.location.href });
          return new Promise<Record<string, string>>(() => {}); // the page is leaving
        }
        throw error;
      }
    },
    signIn,
    signOut: () => void msal.logoutRedirect({ account: account ?? undefined }),
  };
}

function toPrincipal(account: AccountInfo): Principal {
  return {
    identityProvider: "aad",
    userId: account.localAccountId || account.homeAccountId,
    userDetails: account.username || account.name || "",
    userRoles: ["authenticated"],
  };
}
