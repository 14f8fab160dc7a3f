export function rxeSport(fl: number, a: number, b: number): number;
export function createSport(qpn: number): number;
