import { renderToStaticMarkup } from "react-dom/server";
import { expect, test } from "vitest";

import { describeHosts, parseHosts } from "../src/api/upstreams";
import { FileHosts } from "../src/routes/admin/Upstreams";

test("allowed file hosts are parsed from one line", () => {
  expect(parseHosts(" Files.Example, cdn.example:8443  files.example,,")).toEqual(["files.example", "cdn.example:8443"]);
  expect(parseHosts("")).toEqual([]);
  expect(describeHosts([])).toBe("any public https host");
  expect(describeHosts(["a.example", "b.example"])).toBe("a.example, b.example");
});

test("the table shows a source's file hosts, editable unless from settings", () => {
  const html = renderToStaticMarkup(<FileHosts upstream={{ name: "mirror", url: "https://***@m.example/simple", file_hosts: ["files.example"] }} onSaved={() => {}} />);
  expect(html).toContain("files.example");
  expect(html).toContain('aria-label="Edit file hosts of mirror"');
  const settings = renderToStaticMarkup(<FileHosts upstream={{ name: "pypi", url: "https://m.example/simple", source: "settings" }} onSaved={() => {}} />);
  expect(settings).toContain("any public https host");
  expect(settings).not.toContain("Edit");
});
