// Everything that runs in a browser, for the repository's system suites (bundled to
// dist/internal/browser.js, not published). Users import "softroce".
export * from "../core/index.js";
export * from "../browser/index.js";
