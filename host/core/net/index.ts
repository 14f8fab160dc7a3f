// host/core/net: addresses and datagrams — IP text, GIDs, the datagram a link carries,
// joining byte pieces, and finding the IP packet inside a captured frame.
export * from "./addr.js";
export * from "./gid.js";
export * from "./bytes.js";
export * from "./datagram.js";
export * from "./ip-extract.js";
