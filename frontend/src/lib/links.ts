/**
 * Links to packages and versions.
 *
 * The REST API names a package by one path segment, `{format}:{name}` with
 * the name percent-encoded (`npm:%40babel%2Fcore`, `go:github.com%2Fpkg%2Ferrors`),
 * and every package and version object carries its own API `url` in that
 * form. The UI's pages mirror the API's paths, so a UI link is the API URL
 * with `/api/v1/project/` turned into `/projects/`.
 */

const API_PREFIX = "/api/v1/project/";

/** `npm`, `@babel/core` → `npm:%40babel%2Fcore` (the API's package segment). */
export function packageSegment(format: string, name: string): string {
  return `${format}:${encodeURIComponent(name)}`;
}

/** The UI page of an API object URL (absolute or not): a package or a version. */
export function uiPath(apiUrl: string): string {
  let path = apiUrl;
  const scheme = /^[a-z][a-z0-9+.-]*:\/\/[^/]*/i.exec(path);
  if (scheme) path = path.slice(scheme[0].length);
  const at = path.indexOf(API_PREFIX);
  if (at < 0) throw new Error(`not an API project URL: ${apiUrl}`);
  return `/projects/${path.slice(at + API_PREFIX.length)}`;
}

/** The UI page of a package, from its project, format and name. */
export function packagePath(project: string, format: string, name: string): string {
  return `/projects/${encodeURIComponent(project)}/packages/${packageSegment(format, name)}`;
}

/** A package reference as the UI route holds it (`npm:@babel/core`, or a
 * bare `yaml`) → its API/UI path segment (`npm:%40babel%2Fcore`). */
export function refSegment(ref: string): string {
  const colon = ref.indexOf(":");
  return colon < 0 ? encodeURIComponent(ref) : packageSegment(ref.slice(0, colon), ref.slice(colon + 1));
}

/** The name a package reference names: `npm:@babel/core` → `@babel/core`. */
export function refName(ref: string): string {
  const colon = ref.indexOf(":");
  return colon < 0 ? ref : ref.slice(colon + 1);
}
