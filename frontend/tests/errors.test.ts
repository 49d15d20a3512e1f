import { describe, expect, test } from "vitest";

import { ApiError, errorFromResponse, errorMessage, parseApiError } from "../src/api/errors";

describe("parseApiError", () => {
  test("reads Orchard's error shape", () => {
    const e = parseApiError(409, { error: { code: "conflict", message: "file hello.txt exists with other content" } });
    expect(e).toBeInstanceOf(ApiError);
    expect(e.status).toBe(409);
    expect(e.code).toBe("conflict");
    expect(e.message).toBe("file hello.txt exists with other content");
  });

  test("falls back to FastAPI's detail, then to a plain text body", () => {
    expect(parseApiError(400, { detail: "bad thing" }).message).toBe("bad thing");
    expect(parseApiError(502, "upstream said no").message).toBe("upstream said no");
  });

  test("never shows an HTML page as a message", () => {
    const e = parseApiError(502, "<html><body>Bad Gateway</body></html>");
    expect(e.message).toBe("An upstream registry failed");
    expect(e.code).toBe("http_error");
  });

  test("explains bare statuses and network failures", () => {
    expect(parseApiError(403, null).message).toMatch(/not allowed/);
    expect(parseApiError(418, {}).message).toBe("Request failed (HTTP 418)");
    const net = parseApiError(0, null);
    expect(net.code).toBe("network_error");
    expect(net.message).toMatch(/could not be reached/);
  });

  test("ignores malformed error objects", () => {
    expect(parseApiError(404, { error: "nope" }).message).toBe("Not found");
    expect(parseApiError(404, { error: { code: 7 } }).message).toBe("Not found");
    expect(parseApiError(404, { error: { message: "gone" } }).code).toBe("error");
  });

  test("parses a fetch Response", async () => {
    const r = new Response(JSON.stringify({ error: { code: "not_found", message: "project 'x' not found" } }), { status: 404 });
    const e = await errorFromResponse(r);
    expect([e.status, e.code, e.message]).toEqual([404, "not_found", "project 'x' not found"]);
    expect(errorMessage(e)).toBe("project 'x' not found");
    expect(errorMessage("plain")).toBe("plain");
  });
});
