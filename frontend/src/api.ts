// The HTTP API client: one place that adds auth and workspace headers and turns RFC 9457
// problem+json errors into ApiError with the server's `detail`, which views show to the user.

import type { Auth } from "./auth";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly title: string,
    readonly detail: string,
    readonly problem: Record<string, unknown> = {},
  ) {
    super(detail);
  }

  get notFound(): boolean {
    return this.status === 404;
  }
}

const WORKSPACE_KEY = "folio.workspace";

export interface Pages {
  start: number;
  end: number;
}

export interface Me {
  user: { id: string; email: string | null; name: string | null } | null;
  tenant: { id: string; name: string };
  role: "owner" | "member" | "viewer";
  workspaces: { id: string; name: string; personal: boolean; role: string }[];
}

export interface Collection {
  id: string;
  name: string;
  description: string;
  createdAt: string;
  documents: number;
  /** open: the whole workspace reads it; restricted: owners and the members and groups it names. */
  access: "open" | "restricted";
}

export interface WorkspaceMember {
  userId: string;
  email: string | null;
  name: string | null;
  role: "owner" | "member" | "viewer" | null;
}

/** Who may read a collection (owners only): GET/PUT /api/collections/{id}/access. */
export interface CollectionAccess {
  collectionId: string;
  mode: "open" | "restricted";
  members: WorkspaceMember[];
  /** Entra security groups by object id, with the owner's label for each. */
  groups: { id: string; label: string }[];
}

export type DocumentStatus = "awaiting_upload" | "queued" | "processing" | "ready" | "failed" | "deleted";

export interface FolioDocument {
  id: string;
  collectionId: string;
  filename: string;
  contentType: string;
  size: number;
  status: DocumentStatus;
  error: string | null;
  /** Failed documents only: whether re-indexing could succeed (false: upload the file again). */
  retryable: boolean | null;
  pages: number | null;
  chunks: number | null;
  createdAt: string;
  updatedAt: string;
  indexedAt: string | null;
}

export interface UploadTicket {
  documentId: string;
  uploadUrl: string;
  expiresAt: string;
  method: string;
  headers: Record<string, string>;
}

export type SearchMode = "hybrid" | "lexical" | "vector";

export interface SearchResult {
  chunkId: string;
  documentId: string;
  collectionId: string;
  title: string;
  headingPath: string[];
  pages: Pages | null;
  snippet: string; // HTML-escaped by the server, matches in <mark>
  score: number;
}

export interface Passage {
  chunkId: string;
  ordinal: number;
  headingPath: string[];
  text: string;
  pages: Pages | null;
}

export interface PassageInContext {
  document: { id: string; collectionId: string; title: string; pages: number | null };
  passage: Passage;
  before: Passage[];
  after: Passage[];
}

/** GET /documents/{id}/content: a read-only URL of the original file, valid for a few minutes. */
export interface DocumentContent {
  documentId: string;
  url: string;
  expiresAt: string;
  filename: string;
  contentType: string;
  format: "pdf" | "docx" | "html" | "markdown" | "text" | "other";
  size: number;
  pages: number | null;
}

export interface Usage {
  used: number;
  limit: number | null;
}

export interface Billing {
  plan: string;
  status: string;
  subscription: null | {
    status: string;
    plan: string;
    currentPeriodEnd: string | null;
    cancelAtPeriodEnd: boolean;
    graceEndsAt: string | null;
  };
  period: { start: string; end: string };
  usage: Record<string, Usage>;
  plans: { name: string; purchasable: boolean; limits: Record<string, number | null> }[];
}

export interface ChatSessionSummary {
  id: string;
  title: string;
  updatedAt: string | null;
}

export interface Citation {
  n: number;
  chunkId: string;
  documentId: string;
  title: string;
  headingPath: string[];
  pages: Pages | null;
  snippet: string;
}

export type FeedbackReason = "wrong" | "not_grounded" | "incomplete" | "other";

/** The author's rating of one answer (PUT/DELETE /chat/sessions/{id}/messages/{id}/feedback). */
export interface Feedback {
  rating: "up" | "down";
  reason: FeedbackReason | null;
  comment: string | null;
}

export interface ChatMessage {
  /** The stored message's id (answers take feedback by it); absent while an answer streams. */
  id?: string;
  role: "user" | "assistant";
  content: string;
  citations: Citation[];
  feedback?: Feedback | null;
}

/** GET /insights?days=N (workspace owners only). */
export interface Insights {
  days: number;
  retentionDays: number;
  questions: number;
  noAnswer: number;
  noAnswerShare: number | null;
  questionsPerDay: { day: string; questions: number; noAnswer: number }[];
  searches: number;
  searchesWithNoResult: number;
  emptySearches: { query: string; count: number; lastAt: string }[];
  feedback: { up: number; down: number };
  negativeFeedback: {
    messageId: string;
    reason: FeedbackReason | null;
    comment: string | null;
    question: string | null;
    answer: string | null;
    citations: { n: number; documentId: string; title: string; headingPath: string[] | null; chunkId: string }[];
    askedAt: string;
    updatedAt: string;
  }[];
  mostCited: { documentId: string; filename: string | null; collectionId: string | null; deleted: boolean; citations: number }[];
  neverRetrieved: { days: number; total: number; documents: { documentId: string; filename: string; collectionId: string }[] };
}

export class Api {
  constructor(
    private readonly base: string,
    private readonly auth: Auth,
  ) {}

  get workspace(): string | null {
    return localStorage.getItem(WORKSPACE_KEY);
  }

  set workspace(id: string | null) {
    if (id) localStorage.setItem(WORKSPACE_KEY, id);
    else localStorage.removeItem(WORKSPACE_KEY);
  }

  /** fetch with Folio's headers; network failures become ApiError(0), error statuses ApiError(status). */
  async fetch(method: string, path: string, body?: unknown, init: RequestInit = {}): Promise<Response> {
    const headers: Record<string, string> = { Accept: "application/json", ...(await this.auth.headers()) };
    if (this.workspace) headers["X-Folio-Workspace"] = this.workspace;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    Object.assign(headers, init.headers ?? {});
    let response: Response;
    try {
      response = await fetch(this.base + path, {
        ...init,
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (error) {
      if (error instanceof DOMException && error.name === "AbortError") throw error;
      throw new ApiError(0, "Offline", "Folio's API can't be reached. Check your connection and try again.");
    }
    if (!response.ok) throw await toApiError(response);
    return response;
  }

  async json<T>(method: string, path: string, body?: unknown, init: RequestInit = {}): Promise<T> {
    const response = await this.fetch(method, path, body, init);
    if (response.status === 204) return undefined as T;
    return (await response.json()) as T;
  }

  me = (signal?: AbortSignal) => this.json<Me>("GET", "/me", undefined, { signal });
  collections = (signal?: AbortSignal) =>
    this.json<{ collections: Collection[] }>("GET", "/collections", undefined, { signal }).then((r) => r.collections);
  collection = (id: string, signal?: AbortSignal) =>
    this.json<Collection>("GET", `/collections/${enc(id)}`, undefined, { signal });
  createCollection = (name: string, description: string) =>
    this.json<Collection>("POST", "/collections", description ? { name, description } : { name });
  deleteCollection = (id: string) => this.json<void>("DELETE", `/collections/${enc(id)}`);
  collectionAccess = (id: string, signal?: AbortSignal) =>
    this.json<CollectionAccess>("GET", `/collections/${enc(id)}/access`, undefined, { signal });
  setCollectionAccess = (id: string, mode: CollectionAccess["mode"], members: string[], groups: CollectionAccess["groups"]) =>
    this.json<CollectionAccess>("PUT", `/collections/${enc(id)}/access`, {
      mode,
      members,
      groups: groups.map((g) => g.id),
      groupLabels: groups.map((g) => g.label),
    });
  members = (signal?: AbortSignal) =>
    this.json<{ members: WorkspaceMember[] }>("GET", "/members", undefined, { signal }).then((r) => r.members);
  documents = (collectionId: string, signal?: AbortSignal) =>
    this.json<{ documents: FolioDocument[] }>("GET", `/collections/${enc(collectionId)}/documents`, undefined, {
      signal,
    }).then((r) => r.documents);
  document = (id: string, signal?: AbortSignal) =>
    this.json<FolioDocument>("GET", `/documents/${enc(id)}`, undefined, { signal });
  requestUpload = (collectionId: string, file: File) =>
    this.json<UploadTicket>("POST", `/collections/${enc(collectionId)}/documents`, {
      filename: file.name,
      contentType: file.type,
      size: file.size,
    });
  deleteDocument = (id: string) => this.json<void>("DELETE", `/documents/${enc(id)}`);
  reindexDocument = (id: string) => this.json<FolioDocument>("POST", `/documents/${enc(id)}/reindex`);
  search = (query: string, mode: SearchMode, collectionIds: string[], signal?: AbortSignal) =>
    this.json<{ results: SearchResult[]; tookMs: number }>(
      "POST",
      "/search",
      { query, mode, top: 10, ...(collectionIds.length ? { collectionIds } : {}) },
      { signal },
    );
  passage = (documentId: string, chunkId: string, signal?: AbortSignal) =>
    this.json<PassageInContext>("GET", `/documents/${enc(documentId)}/chunks/${enc(chunkId)}?context=2`, undefined, {
      signal,
    });
  documentContent = (documentId: string, signal?: AbortSignal) =>
    this.json<DocumentContent>("GET", `/documents/${enc(documentId)}/content`, undefined, { signal });
  billing = (signal?: AbortSignal) => this.json<Billing>("GET", "/billing", undefined, { signal });
  checkout = (plan: string) => this.json<{ url: string }>("POST", "/billing/checkout", { plan });
  portal = () => this.json<{ url: string }>("POST", "/billing/portal", {});
  chatSessions = (signal?: AbortSignal) =>
    this.json<Record<string, unknown>>("GET", "/chat/sessions", undefined, { signal }).then(readSessions);
  chatSession = (id: string, signal?: AbortSignal) =>
    this.json<Record<string, unknown>>("GET", `/chat/sessions/${enc(id)}`, undefined, { signal }).then(readMessages);
  deleteChatSession = (id: string) => this.json<void>("DELETE", `/chat/sessions/${enc(id)}`);
  setFeedback = (sessionId: string, messageId: string, feedback: Feedback) =>
    this.json<Feedback>("PUT", `/chat/sessions/${enc(sessionId)}/messages/${enc(messageId)}/feedback`, {
      rating: feedback.rating,
      ...(feedback.reason ? { reason: feedback.reason } : {}),
      ...(feedback.comment ? { comment: feedback.comment } : {}),
    });
  clearFeedback = (sessionId: string, messageId: string) =>
    this.json<void>("DELETE", `/chat/sessions/${enc(sessionId)}/messages/${enc(messageId)}/feedback`);
  insights = (days: number, signal?: AbortSignal) =>
    this.json<Insights>("GET", `/insights?days=${days}`, undefined, { signal });
  /** POST /api/chat as an NDJSON stream (read it with readNdjson). */
  chat = (message: string, sessionId: string | null, collectionIds: string[], signal: AbortSignal) =>
    this.fetch(
      "POST",
      "/chat",
      { message, ...(sessionId ? { sessionId } : {}), ...(collectionIds.length ? { collectionIds } : {}) },
      { signal, headers: { Accept: "application/x-ndjson" } },
    );
}

function enc(segment: string): string {
  return encodeURIComponent(segment);
}

async function toApiError(response: Response): Promise<ApiError> {
  const type = response.headers.get("Content-Type") ?? "";
  if (type.includes("json")) {
    try {
      const problem = (await response.json()) as Record<string, unknown>;
      const detail = typeof problem.detail === "string" ? problem.detail : fallbackDetail(response.status);
      const title = typeof problem.title === "string" ? problem.title : response.statusText;
      return new ApiError(response.status, title, detail, problem);
    } catch {
      /* fall through: not JSON after all */
    }
  }
  return new ApiError(response.status, response.statusText, fallbackDetail(response.status));
}

function fallbackDetail(status: number): string {
  if (status === 401) return "Your sign-in has expired. Sign in again.";
  if (status === 403) return "You don't have permission to do that.";
  if (status === 404) return "That doesn't exist (any more).";
  if (status === 413) return "That request is too large.";
  if (status === 429) return "Too many requests. Wait a moment and try again.";
  if (status >= 500) return "Something went wrong on Folio's side. Try again in a moment.";
  return `The request failed (HTTP ${status}).`;
}

// The chat API's listing shapes, read defensively: {sessions|items: [{id|sessionId, title|name, updatedAt}]}.
function readSessions(body: Record<string, unknown>): ChatSessionSummary[] {
  const list = (body.sessions ?? body.items ?? []) as Record<string, unknown>[];
  return list.map((s) => ({
    id: String(s.id ?? s.sessionId ?? ""),
    title: String(s.title ?? s.name ?? "Untitled conversation"),
    updatedAt: typeof s.updatedAt === "string" ? s.updatedAt : typeof s.createdAt === "string" ? s.createdAt : null,
  }));
}

function readMessages(body: Record<string, unknown>): { title: string; messages: ChatMessage[] } {
  const list = (body.messages ?? []) as Record<string, unknown>[];
  return {
    title: String(body.title ?? body.name ?? "Conversation"),
    messages: list.map((m) => ({
      id: typeof m.id === "string" ? m.id : undefined,
      role: m.role === "user" ? "user" : "assistant",
      content: String(m.content ?? m.text ?? ""),
      citations: Array.isArray(m.citations) ? (m.citations as Citation[]) : [],
      feedback: (m.feedback as Feedback | null | undefined) ?? null,
    })),
  };
}
