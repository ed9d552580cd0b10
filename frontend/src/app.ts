// What every view gets: the API client, the caller, navigation and the passage viewer.

import type { Api, Me } from "./api";
import type { Auth } from "./auth";

export interface View {
  title: string;
  el: HTMLElement;
  /** Stop timers and abort requests when the user navigates away. */
  dispose?: () => void;
}

export interface App {
  api: Api;
  auth: Auth;
  me: Me;
  navigate(path: string, options?: { replace?: boolean }): void;
  openPassage(ref: { documentId: string; chunkId: string }, opener: HTMLElement | null): void;
  canEdit(): boolean;
}
