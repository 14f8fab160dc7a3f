// The one place the playground imports softroce from (host/core: the same in the page and in Node).
export * from "../../../host/core/index.js";
