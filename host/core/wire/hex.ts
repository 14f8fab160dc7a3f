// Hex text -> bytes for people pasting packets: spaces, colons, newlines, dashes and 0x prefixes
// are allowed; anything else gets a message that says where it is.

export class HexError extends Error {
  override name = "HexError";
}

export function parseHex(text: string): Uint8Array {
  const digits: string[] = [];
  // Drop a 0x/0X prefix at the start of each token, then separators.
  const cleaned = text.replace(/(^|[\s:,-])0[xX]/g, "$1");
  for (let i = 0; i < cleaned.length; i++) {
    const c = cleaned[i];
    if (/[0-9a-fA-F]/.test(c)) digits.push(c);
    else if (!/[\s:,-]/.test(c)) {
      const shown = /[\x21-\x7e]/.test(c) ? `'${c}'` : `U+${c.codePointAt(0)!.toString(16).padStart(4, "0")}`;
      throw new HexError(`non-hex character ${shown} in hex input (after ${digits.length} digits)`);
    }
  }
  if (digits.length === 0) throw new HexError("no hex digits in hex input");
  if (digits.length % 2) throw new HexError(`odd number of hex digits (${digits.length})`);
  const out = new Uint8Array(digits.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(digits[2 * i] + digits[2 * i + 1], 16);
  return out;
}

export function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
