import { renderToStaticMarkup } from "react-dom/server";
import { describe, expect, test } from "vitest";

import type { Project, Version } from "../src/api/client";
import { describeTest, isMissingApi } from "../src/api/upstreams";
import { ApiError } from "../src/api/errors";
import { arcs, DonutChart } from "../src/components/Charts";
import { ProgressBar } from "../src/components/ProgressBar";
import { ErrorBox } from "../src/components/States";
import { hitRate } from "../src/routes/Dashboard";
import { newestFirst } from "../src/routes/Package";
import { filterProjects } from "../src/routes/Projects";

describe("charts", () => {
  test("arcs split the circle by value", () => {
    expect(arcs([{ label: "a", value: 3, color: "" }, { label: "b", value: 1, color: "" }])).toEqual([
      { start: 0, share: 0.75 },
      { start: 0.75, share: 0.25 },
    ]);
    expect(arcs([{ label: "a", value: 0, color: "" }])).toEqual([{ start: 0, share: 0 }]);
  });

  test("a donut has an accessible summary", () => {
    const html = renderToStaticMarkup(
      <DonutChart title="Cache hit rate" center="75%" format={String} segments={[{ label: "Hits", value: 3, color: "red" }, { label: "Misses", value: 1, color: "blue" }]} />,
    );
    expect(html).toContain('aria-label="Cache hit rate: Hits: 3 (75%), Misses: 1 (25%)"');
    expect(hitRate(3, 1)).toBe(0.75);
    expect(Number.isNaN(hitRate(0, 0))).toBe(true);
  });
});

test("the progress bar exposes its value", () => {
  const html = renderToStaticMarkup(<ProgressBar loaded={512} total={2048} label="Upload of a.bin" />);
  expect(html).toContain('role="progressbar"');
  expect(html).toContain('aria-valuenow="25"');
  expect(html).toContain("25% · 512 B / 2 KiB");
});

test("errors render as alerts with the API's message", () => {
  const html = renderToStaticMarkup(
    <ErrorBox error={new ApiError(403, "forbidden", "you may not write to project x")} />,
  );
  expect(html).toContain('role="alert"');
  expect(html).toContain("you may not write to project x");
});

test("project filters and version order", () => {
  const p = (name: string, is_public: boolean) => ({ name, is_public }) as Project;
  const all = [p("a", true), p("b", false)];
  expect(filterProjects(all, "public").map((x) => x.name)).toEqual(["a"]);
  expect(filterProjects(all, "private").map((x) => x.name)).toEqual(["b"]);
  expect(filterProjects(all, "all")).toHaveLength(2);
  const v = (version: string, created_at: string) => ({ version, created_at }) as Version;
  expect(newestFirst([v("1.0", "2026-01-01T00:00:00Z"), v("2.0", "2026-02-01T00:00:00Z"), v("1.5", "2026-01-15T00:00:00Z")]).map((x) => x.version)).toEqual(["2.0", "1.5", "1.0"]);
});

test("upstream API helpers", () => {
  expect(isMissingApi(new ApiError(404, "not_found", "Not Found"))).toBe(true);
  expect(isMissingApi(new ApiError(403, "forbidden", "no"))).toBe(false);
  expect(describeTest({ ok: true, status: 200, elapsed_ms: 12.4 })).toEqual({ ok: true, text: "Reachable · HTTP 200 · 12 ms" });
  expect(describeTest({ ok: false, message: "connection refused" })).toEqual({ ok: false, text: "Not reachable · connection refused" });
  expect(describeTest({ ok: false, status: null as unknown as number, elapsed_ms: 3, error: "timed out" })).toEqual({ ok: false, text: "Not reachable · 3 ms · timed out" });
});
