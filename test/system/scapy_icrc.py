#!/usr/bin/python3
"""Checks RoCEv2 ICRCs for test/system/scapy-icrc.sys.mjs, independently of softroce.

Input (argv[1]): one packet per line, "<id> <hex of the IP packet, ICRC last>".
Output (stdout): one JSON object per packet:
  {"id", "ip": 4|6, "wire": hex, "scapy": hex|null, "indep": hex, "verdict": "good"|"bad", "error"?}
IPv4: scapy.contrib.roce dissects IP/UDP/BTH and BTH.compute_icrc recomputes the
ICRC (scapy has no IPv6 ICRC). IPv4 and IPv6: an implementation written here
from the rule rxe uses (zlib CRC-32 over 8 x 0xFF and the packet with its
variant fields set to ones). "good" means every checker agrees with the wire.
With --pcap FILE... instead, checks every UDP/4791 packet of the captures.
"""
import json
import struct
import sys
import zlib

from scapy.all import IP, IPv6, UDP, Ether, raw, rdpcap  # noqa: E402
from scapy.contrib.roce import BTH  # noqa: E402


def independent_icrc(pkt: bytes) -> bytes:
    p = bytearray(pkt)
    version = p[0] >> 4
    if version == 4:
        ip_len = (p[0] & 0x0F) * 4
        p[1] = 0xFF  # TOS
        p[8] = 0xFF  # TTL
        p[10:12] = b"\xff\xff"  # header checksum
    elif version == 6:
        ip_len = 40
        p[0] |= 0x0F  # traffic class (high nibble)
        p[1:4] = b"\xff\xff\xff"  # traffic class (low nibble), flow label
        p[7] = 0xFF  # hop limit
    else:
        raise ValueError("IP version %d" % version)
    p[ip_len + 6 : ip_len + 8] = b"\xff\xff"  # UDP checksum
    p[ip_len + 8 + 4] = 0xFF  # BTH byte 4: FECN, BECN, reserved
    crc = zlib.crc32(b"\xff" * 8 + bytes(p[:-4])) & 0xFFFFFFFF
    return struct.pack("<I", crc)


def scapy_icrc(pkt: bytes):
    ip = IP(pkt)
    if UDP not in ip or ip[UDP].dport != 4791 or BTH not in ip:
        raise ValueError("scapy does not dissect it as IP/UDP:4791/BTH: " + ip.summary())
    if ip.len != len(pkt) or ip[UDP].len != len(pkt) - ip.ihl * 4:
        raise ValueError("length fields disagree with the packet size")
    rebuilt = IP(raw(ip))
    del rebuilt.chksum
    if IP(raw(rebuilt)).chksum != ip.chksum:
        raise ValueError("IPv4 header checksum is wrong")
    return ip[BTH].compute_icrc(b"")


def check_ipv6_structure(pkt: bytes):
    ip = IPv6(pkt)
    if UDP not in ip or ip[UDP].dport != 4791 or BTH not in ip:
        raise ValueError("scapy does not dissect it as IPv6/UDP:4791/BTH: " + ip.summary())
    if ip.plen != len(pkt) - 40 or ip[UDP].len != len(pkt) - 40:
        raise ValueError("length fields disagree with the packet size")


def check(pid, pkt: bytes):
    res = {"id": pid, "ip": pkt[0] >> 4, "wire": pkt[-4:].hex(), "scapy": None}
    try:
        res["indep"] = independent_icrc(pkt).hex()
        good = res["indep"] == res["wire"]
        if res["ip"] == 4:
            res["scapy"] = scapy_icrc(pkt).hex()
            good = good and res["scapy"] == res["wire"]
        else:
            check_ipv6_structure(pkt)
        res["verdict"] = "good" if good else "bad"
    except Exception as e:  # a packet scapy cannot take is reported, not fatal
        res["verdict"] = "bad"
        res["error"] = "%s: %s" % (type(e).__name__, e)
    return res


def main():
    if sys.argv[1] == "--pcap":
        n = 0
        for path in sys.argv[2:]:
            for i, frame in enumerate(rdpcap(path)):
                if UDP not in frame or frame[UDP].dport != 4791:
                    continue
                ip = frame[IP] if IP in frame else frame[IPv6]
                print(json.dumps(check("%s#%d" % (path, i + 1), raw(ip))))
                n += 1
        return
    with open(sys.argv[1]) as f:
        for line in f:
            if not line.strip():
                continue
            pid, h = line.split()
            print(json.dumps(check(pid, bytes.fromhex(h))))


if __name__ == "__main__":
    main()
