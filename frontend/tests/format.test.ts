import { describe, expect, test } from "vitest";

import { formatBytes, formatPercent, shortHash } from "../src/lib/format";

describe("formatBytes", () => {
  test.each([
    [0, "0 B"],
    [1, "1 B"],
    [1023, "1023 B"],
    [1024, "1 KiB"],
    [1536, "1.5 KiB"],
    [10 * 1024 * 1024, "10 MiB"],
    [123.4 * 1024 ** 3, "123 GiB"],
    [2.25 * 1024 ** 4, "2.3 TiB"],
    [1024 ** 6, "1024 PiB"],
    [-2048, "-2 KiB"],
  ])("%d → %s", (n, s) => expect(formatBytes(n)).toBe(s));

  test("missing values", () => {
    expect(formatBytes(null)).toBe("—");
    expect(formatBytes(undefined)).toBe("—");
    expect(formatBytes(Number.NaN)).toBe("—");
  });
});

test("formatPercent", () => {
  expect(formatPercent(0.4567)).toBe("45.7%");
  expect(formatPercent(1)).toBe("100%");
  expect(formatPercent(Number.NaN)).toBe("—");
});

test("shortHash", () => {
  const h = "a".repeat(64);
  expect(shortHash(h)).toBe("aaaaaaaaaaaa…");
  expect(shortHash("abc")).toBe("abc");
});
