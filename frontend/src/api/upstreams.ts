/** Upstream sources (/api/v1/upstreams). Typed by hand, loosely: the page
 * shows what the server sends and says so plainly when the API is absent. */

import { requestJson } from "./client";
import { ApiError } from "./errors";

export interface Upstream {
  id?: number | string;
  name: string;
  format?: string;
  url: string;
  priority?: number;
  enabled?: boolean;
  auth_type?: string;
  username?: string;
  has_credentials?: boolean;
  /** Hosts besides the source's own origin that its pages may link files to; empty: any public https host. */
  file_hosts?: string[];
  source?: string; // "settings" | "database"
  status?: string;
  [key: string]: unknown;
}

export interface UpstreamIn {
  name: string;
  format: string;
  url: string;
  priority: number;
  enabled: boolean;
  auth_type: "none" | "basic" | "bearer";
  username?: string;
  password?: string;
  token?: string;
  file_hosts?: string[];
}

export type UpstreamPatch = Partial<Omit<UpstreamIn, "name" | "format">>;

export interface ConnectionTest {
  ok?: boolean;
  status?: string | number;
  message?: string;
  error?: string | null;
  elapsed_ms?: number;
  [key: string]: unknown;
}

const BASE = "/api/v1/upstreams";

/** True when an error means "this server has no upstreams API". */
export function isMissingApi(error: unknown): boolean {
  return error instanceof ApiError && (error.status === 404 || error.status === 405) && error.code !== "upstream_not_found";
}

function normalise(body: unknown): Upstream[] {
  if (Array.isArray(body)) return body as Upstream[];
  if (body && typeof body === "object") {
    for (const key of ["upstreams", "items", "sources"]) {
      const v = (body as Record<string, unknown>)[key];
      if (Array.isArray(v)) return v as Upstream[];
    }
  }
  return [];
}

export const upstreamKey = (u: Upstream) => encodeURIComponent(String(u.id ?? u.name));

export async function listUpstreams(): Promise<Upstream[]> {
  return normalise(await requestJson<unknown>("GET", BASE));
}

export function createUpstream(body: UpstreamIn): Promise<Upstream> {
  return requestJson<Upstream>("POST", BASE, body);
}

export function updateUpstream(u: Upstream, patch: UpstreamPatch): Promise<Upstream> {
  return requestJson<Upstream>("PATCH", `${BASE}/${upstreamKey(u)}`, patch);
}

/** Allowed file hosts typed as one line ("a.example, b.example:8443"): trimmed, lower-case, no duplicates. */
export function parseHosts(text: string): string[] {
  const hosts: string[] = [];
  for (const part of text.split(/[\s,]+/)) {
    const host = part.trim().toLowerCase();
    if (host && !hosts.includes(host)) hosts.push(host);
  }
  return hosts;
}

/** How a source's allowed file hosts read in the table. */
export function describeHosts(hosts: string[] | undefined): string {
  return hosts && hosts.length ? hosts.join(", ") : "any public https host";
}

export function deleteUpstream(u: Upstream): Promise<void> {
  return requestJson<void>("DELETE", `${BASE}/${upstreamKey(u)}`);
}

export function testUpstream(u: Upstream): Promise<ConnectionTest> {
  return requestJson<ConnectionTest>("POST", `${BASE}/${upstreamKey(u)}/test`);
}

/** A one-line verdict of a connection test. */
export function describeTest(t: ConnectionTest): { ok: boolean; text: string } {
  const ok = t.ok ?? (typeof t.status === "number" ? t.status < 400 : ["ok", "up", "reachable"].includes(String(t.status)));
  const parts = [ok ? "Reachable" : "Not reachable"];
  if (t.status !== undefined && typeof t.status === "number") parts.push(`HTTP ${t.status}`);
  if (typeof t.elapsed_ms === "number") parts.push(`${Math.round(t.elapsed_ms)} ms`);
  const detail = t.message ?? t.error;
  if (detail) parts.push(String(detail));
  return { ok: !!ok, text: parts.join(" · ") };
}
