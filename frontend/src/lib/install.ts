/** Format-specific install instructions for a package version. */

export interface InstallTarget {
  /** Where Orchard is reached, e.g. "https://orchard.example.com" (no trailing slash). */
  baseUrl: string;
  project: string;
  /** The package's display name (what a user types). */
  pkg: string;
  /** generic | pypi | npm | go */
  format: string;
  version?: string | null;
  /** A file of the version, for the curl instruction. */
  filename?: string | null;
  /** A private project needs a token. */
  isPublic?: boolean;
}

export interface Instruction {
  /** Stable id (for keys and tests): pip, uv, npm, go, curl. */
  id: string;
  label: string;
  command: string;
  note?: string;
}

import { packageSegment } from "./links";

const enc = encodeURIComponent;

function trimBase(url: string): string {
  return url.replace(/\/+$/, "");
}

/** Quote a shell word when it holds anything but safe characters. */
export function shellQuote(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./~^-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

export function fileUrl(t: InstallTarget, version: string, filename: string): string {
  return `${trimBase(t.baseUrl)}/api/v1/project/${enc(t.project)}/packages/${packageSegment(t.format, t.pkg)}/versions/${enc(version)}/files/${enc(filename)}`;
}

export function installInstructions(t: InstallTarget): Instruction[] {
  const base = trimBase(t.baseUrl);
  const project = enc(t.project);
  const version = t.version ?? null;
  const out: Instruction[] = [];
  const tokenNote =
    t.isPublic === false ? "Private project: sign the request with an API token (see Tokens)." : undefined;

  if (t.format === "pypi") {
    const index = `${base}/pypi/${project}/simple/`;
    const req = shellQuote(version ? `${t.pkg}==${version}` : t.pkg);
    out.push({
      id: "pip",
      label: "pip",
      command: `pip install --index-url ${index} ${req}`,
      note: t.isPublic === false ? "Private project: use https://__token__:<token>@… in the index URL." : undefined,
    });
    out.push({ id: "uv", label: "uv", command: `uv pip install --index-url ${index} ${req}`, note: undefined });
  } else if (t.format === "npm") {
    const spec = shellQuote(version ? `${t.pkg}@${version}` : t.pkg);
    out.push({
      id: "npm",
      label: "npm",
      command: `npm install --registry ${base}/npm/${project}/ ${spec}`,
      note: t.isPublic === false ? "Private project: npm login --registry … or a bearer token in .npmrc." : undefined,
    });
  } else if (t.format === "go") {
    const spec = shellQuote(version ? `${t.pkg}@${version}` : `${t.pkg}@latest`);
    out.push({
      id: "go",
      label: "go",
      command: `GOPROXY=${base}/go/${project} GOFLAGS=-mod=mod go get ${spec}`,
      note: "Private modules: also set GONOSUMDB for the module path.",
    });
  }

  if (version && t.filename) {
    const auth = t.isPublic === false ? '-H "Authorization: Bearer $ORCHARD_TOKEN" ' : "";
    out.push({
      id: "curl",
      label: "curl",
      command: `curl -fL ${auth}-o ${shellQuote(t.filename)} ${fileUrl(t, version, t.filename)}`,
      note: tokenNote,
    });
  } else if (out.length === 0) {
    out.push({
      id: "curl",
      label: "curl",
      command: `curl -fsS ${base}/api/v1/project/${project}/packages/${packageSegment(t.format, t.pkg)}/versions`,
      note: "Lists the versions; each file has a download URL.",
    });
  }
  return out;
}
