// host/core/capture: pcap/pcapng files and a port's recorder.
export * from "./pcap.js";
export * from "./recorder.js";
