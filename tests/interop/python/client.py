"""Python's ssl as an interop client for camera-web's tests/interop.rs.

    python3 client.py ID ADDRESS PORT NAME CAFILE [ID ADDRESS PORT NAME CAFILE ...]

For each case: ssl.create_default_context(cafile=CAFILE) (CAFILE is the only trust anchor), a TCP
connection to ADDRESS:PORT (never to NAME), and a handshake with server_hostname=NAME (a DNS name
or an IP address). Prints one line per case: "ID OK" or "ID FAIL <error>".
"""
import socket
import ssl
import sys


def check(address, port, name, cafile):
    context = ssl.create_default_context(cafile=cafile)
    with socket.create_connection((address, int(port)), timeout=20) as sock:
        with context.wrap_socket(sock, server_hostname=name):
            pass


def main(args):
    if not args or len(args) % 5:
        sys.exit("usage: client.py ID ADDRESS PORT NAME CAFILE [...]")
    for i in range(0, len(args), 5):
        case_id, address, port, name, cafile = args[i : i + 5]
        try:
            check(address, port, name, cafile)
            print(f"{case_id} OK", flush=True)
        except Exception as e:  # every failure is a result to report, not a crash
            print(f"{case_id} FAIL {type(e).__name__}: {e}".replace("\n", " "), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
