// Types of scripts/gen-abi.mjs for the TypeScript tests that import it.
export interface AbiField { name: string; offset: number; type: string; doc?: string; ts?: string | false }
export interface AbiLayout {
  id: string; module: string; title: string; doc?: string; asPrefix: string; asOffsetType?: "usize" | "u32"; ts?: string;
  size?: { name: string; value: number; as?: string; ts?: string | false; doc?: string };
  fields: AbiField[];
}
export interface AbiValue { name: string; value: number; doc?: string; as?: false; ts?: false; inNames?: false }
export interface AbiEnum {
  id: string; module: string; title: string; doc?: string; as?: "enum"; asEnum?: string; asPrefix?: string; ts?: string;
  tsType?: boolean; count?: boolean; names?: { as?: string; ts?: string; case?: "lower" | "upper" }; values: AbiValue[];
}
export interface AbiConstant { module: string; name: string; value: number; type: "u32" | "usize" | "i32"; doc?: string; ts?: false }
export interface AbiSchema {
  verbsAbiVersion: number;
  modules: Record<string, string>;
  layouts: AbiLayout[];
  enums: AbiEnum[];
  constants: AbiConstant[];
}
export const ROOT: string;
export const SCHEMA_PATH: string;
export const DOCS_PATH: string;
export const OTHER_DOCS: string[];
export function validate(schema: AbiSchema): void;
export function docTables(schema: AbiSchema): Map<string, string>;
export function renderDocs(schema: AbiSchema, docs: string, others?: Record<string, string>): string;
export function render(schema: AbiSchema, docs: string, others?: Record<string, string>): Map<string, string>;
export function renderTree(root?: string): Map<string, string>;
export function staleFiles(root?: string): string[];
