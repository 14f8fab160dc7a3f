import { psn_next, psn_distance, psn_order, PSN_MASK } from "../../assembly/wire/psn";
import { psn_add, psn_cmp, psn_diff } from "../../assembly/wire/exports";

describe("PSN", () => {
  it("adds modulo 2^24", () => {
    expect(psn_next(0xffffff, 1)).toBe(0);
    expect(psn_next(0xfffff0, 0x20)).toBe(0x10);
    expect(psn_next(5, 0)).toBe(5);
    expect(psn_add(0xffffff, 0xffffff)).toBe(0xfffffe);
    expect(PSN_MASK).toBe(0xffffff);
  });
  it("compares across the wrap", () => {
    expect(psn_order(0, 0xffffff)).toBe(1);
    expect(psn_order(0xffffff, 0)).toBe(-1);
    expect(psn_order(7, 7)).toBe(0);
    expect(psn_order(0x7fffff, 0)).toBe(1);
    expect(psn_order(0x800000, 0)).toBe(-1); // half the space away counts as behind
    expect(psn_cmp(3, 0xfffffd)).toBe(1);
    expect(psn_cmp(0xfffffd, 3)).toBe(-1);
  });
  it("measures signed distance", () => {
    expect(psn_distance(2, 0xfffffe)).toBe(4);
    expect(psn_distance(0xfffffe, 2)).toBe(-4);
    expect(psn_distance(0x7fffff, 0)).toBe(0x7fffff);
    expect(psn_distance(0x800000, 0)).toBe(-0x800000);
    expect(psn_diff(100, 40)).toBe(60);
    expect(psn_diff(0, 0)).toBe(0);
  });
});
