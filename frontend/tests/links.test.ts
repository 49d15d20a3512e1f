import { describe, expect, it } from "vitest";

import { fileUrl } from "../src/lib/install";
import { packagePath, packageSegment, refName, refSegment, uiPath } from "../src/lib/links";

describe("package links", () => {
  it("encodes a name as one segment after its format", () => {
    expect(packageSegment("npm", "@babel/core")).toBe("npm:%40babel%2Fcore");
    expect(packageSegment("go", "github.com/Azure/go-autorest/v14")).toBe("go:github.com%2FAzure%2Fgo-autorest%2Fv14");
    expect(packageSegment("pypi", "Foo_Bar")).toBe("pypi:Foo_Bar");
  });

  it("turns an API URL into the UI page", () => {
    expect(uiPath("http://o.test:8080/api/v1/project/p/packages/npm:%40babel%2Fcore")).toBe(
      "/projects/p/packages/npm:%40babel%2Fcore",
    );
    expect(uiPath("https://o.test/base/api/v1/project/team%20a/packages/go:example.com%2Fversions/versions/v1.0.0")).toBe(
      "/projects/team%20a/packages/go:example.com%2Fversions/versions/v1.0.0",
    );
    expect(uiPath("/api/v1/project/p/packages/generic:tool")).toBe("/projects/p/packages/generic:tool");
    expect(() => uiPath("http://o.test/elsewhere")).toThrow();
  });

  it("keeps references and paths consistent", () => {
    expect(refSegment("npm:@babel/core")).toBe("npm:%40babel%2Fcore");
    expect(refSegment("yaml")).toBe("yaml");
    expect(refName("npm:@babel/core")).toBe("@babel/core");
    expect(refName("yaml")).toBe("yaml");
    expect(refSegment("@scope/x")).toBe("%40scope%2Fx");
    expect(packagePath("team a", "npm", "@types/node")).toBe("/projects/team%20a/packages/npm:%40types%2Fnode");
  });

  it("gives curl a file URL with the format", () => {
    const url = fileUrl({ baseUrl: "http://o.test", project: "p", pkg: "@babel/core", format: "npm" }, "7.0.0", "core-7.0.0.tgz");
    expect(url).toBe("http://o.test/api/v1/project/p/packages/npm:%40babel%2Fcore/versions/7.0.0/files/core-7.0.0.tgz");
  });
});
