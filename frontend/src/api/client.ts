/** The typed API client: openapi-fetch over the generated schema, plus the
 * session's CSRF token on every state-changing request. */

import createClient, { type Middleware } from "openapi-fetch";

import { ApiError, errorFromResponse, parseApiError } from "./errors";
import type { components, paths } from "./schema";

export type Schemas = components["schemas"];
export type Project = Schemas["ProjectOut"];
export type Package = Schemas["PackageOut"];
export type Version = Schemas["VersionOut"];
export type FileInfo = Schemas["FileOut"];
export type ArtifactDetail = Schemas["ArtifactDetail"];
export type Member = Schemas["MemberOut"];
export type Token = Schemas["TokenOut"];
export type TokenCreated = Schemas["TokenCreated"];
export type User = Schemas["UserOut"];
export type AuditEntry = Schemas["AuditOut"];
export type SearchHit = Schemas["SearchHit"];
export type StorageStats = Schemas["StorageStats"];
export type Me = Schemas["MeOut"];
export type UploadResult = Schemas["UploadOut"];
export type UploadSession = Schemas["UploadSessionOut"];

export const CSRF_COOKIE = "orchard_csrf";
const SAFE = new Set(["GET", "HEAD", "OPTIONS"]);

export function readCookie(name: string, cookies: string = globalThis.document?.cookie ?? ""): string | null {
  for (const part of cookies.split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key === name) return decodeURIComponent(rest.join("="));
  }
  return null;
}

/** Headers every state-changing request of a signed-in browser needs. */
export function csrfHeaders(): Record<string, string> {
  const token = readCookie(CSRF_COOKIE);
  return token ? { "X-CSRF-Token": token } : {};
}

/** Marks the UI's own requests: the API then sends no Basic challenge on a
 * 401 (which would make the browser open its password dialog). */
export const UI_HEADERS = { "X-Requested-With": "orchard-ui" };

const csrf: Middleware = {
  onRequest({ request }) {
    for (const [k, v] of Object.entries(UI_HEADERS)) request.headers.set(k, v);
    if (!SAFE.has(request.method)) {
      for (const [k, v] of Object.entries(csrfHeaders())) request.headers.set(k, v);
    }
    return request;
  },
};

export const api = createClient<paths>({ baseUrl: "", credentials: "same-origin" });
api.use(csrf);

/** Unwrap an openapi-fetch result: the data, or an ApiError. */
export async function unwrap<T>(
  promise: Promise<{ data?: T; error?: unknown; response: Response }>,
): Promise<T> {
  let result;
  try {
    result = await promise;
  } catch (e) {
    throw parseApiError(0, e instanceof Error ? e.message : null);
  }
  if (result.response.ok) return result.data as T;
  throw parseApiError(result.response.status, result.error);
}

/** A plain JSON request, for endpoints not (yet) in the OpenAPI document. */
export async function requestJson<T>(method: string, url: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json", ...UI_HEADERS };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (!SAFE.has(method)) Object.assign(headers, csrfHeaders());
  let response: Response;
  try {
    response = await fetch(url, {
      method,
      headers,
      credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, "network_error", "Network error: the server could not be reached");
  }
  if (!response.ok) throw await errorFromResponse(response);
  if (response.status === 204) return undefined as T;
  const text = await response.text();
  return (text ? JSON.parse(text) : undefined) as T;
}

/** Path segments are always encoded. */
export const seg = encodeURIComponent;
