/** Errors from Orchard's API: `{"error": {"code", "message"}}`, turned into
 * one exception type with a message a person can act on. */

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;

  constructor(status: number, code: string, message: string) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
  }
}

const STATUS_TEXT: Record<number, string> = {
  400: "The request was not accepted",
  401: "Please sign in",
  403: "You are not allowed to do this",
  404: "Not found",
  405: "This server does not offer that action",
  409: "That conflicts with what is already there",
  413: "The file is too large for this server",
  422: "Some fields are not valid",
  429: "Too many attempts; wait a moment and try again",
  500: "The server failed",
  502: "An upstream registry failed",
  503: "The server is unavailable",
};

/** Build an ApiError from a status and a parsed (or unparsable) body. */
export function parseApiError(status: number, body: unknown): ApiError {
  if (body && typeof body === "object" && "error" in body) {
    const err = (body as { error: unknown }).error;
    if (err && typeof err === "object") {
      const { code, message } = err as { code?: unknown; message?: unknown };
      if (typeof message === "string" && message) {
        return new ApiError(status, typeof code === "string" ? code : "error", message);
      }
    }
  }
  // FastAPI's default shape, should a route answer it.
  if (body && typeof body === "object" && "detail" in body) {
    const detail = (body as { detail: unknown }).detail;
    if (typeof detail === "string") return new ApiError(status, "error", detail);
  }
  if (typeof body === "string" && body.trim() && body.length < 300 && !body.trim().startsWith("<")) {
    return new ApiError(status, "error", body.trim());
  }
  const fallback = STATUS_TEXT[status] ?? (status ? `Request failed (HTTP ${status})` : "Network error: the server could not be reached");
  return new ApiError(status, status ? "http_error" : "network_error", fallback);
}

/** Parse a fetch Response that failed. */
export async function errorFromResponse(response: Response): Promise<ApiError> {
  const text = await response.text().catch(() => "");
  let body: unknown = text;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    /* not JSON: keep the text */
  }
  return parseApiError(response.status, body);
}

/** A message for any thrown value. */
export function errorMessage(error: unknown): string {
  if (error instanceof ApiError) return error.message;
  if (error instanceof Error) return error.message;
  return String(error);
}
