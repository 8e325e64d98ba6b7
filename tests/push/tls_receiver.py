#!/usr/bin/python3
"""An HTTPS receiver for HttpPoster's tests (tests/push/http_poster_test.cc).

  tls_receiver.py --cert PEM --key KEY --alpn h2,http/1.1 --port-file FILE --log FILE

TLS with the given certificate, offering the given ALPN protocols in that order of preference.
Writes its port to --port-file once it listens. Appends to --log, one JSON object a line, each
connection's negotiated protocol ({"alpn": ...}, or {"handshake_error": ...}) and each POST
({"version": ..., "path": ..., "body": ...}), which it answers 200 "ok" over HTTP/1.1. A
connection that negotiated h2 is recorded and closed: this receiver speaks HTTP/1.1 only.
"""
import argparse
import http.server
import json
import os
import ssl


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.record({"version": self.request_version, "path": self.path,
                            "body": body.decode("utf-8", "replace")})
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


class Server(http.server.HTTPServer):
    def __init__(self, context, log):
        super().__init__(("127.0.0.1", 0), Handler)
        self.context, self.log = context, log

    def record(self, entry):
        with open(self.log, "a") as f:
            f.write(json.dumps(entry) + "\n")

    def get_request(self):
        sock, address = self.socket.accept()
        try:
            return self.context.wrap_socket(sock, server_side=True), address
        except (ssl.SSLError, OSError) as e:
            self.record({"handshake_error": str(e)})
            sock.close()
            raise

    def verify_request(self, request, client_address):
        alpn = request.selected_alpn_protocol()
        self.record({"alpn": alpn})
        return alpn != "h2"


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--alpn", required=True)
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--log", required=True)
    args = parser.parse_args()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args.cert, args.key)
    context.set_alpn_protocols(args.alpn.split(","))
    server = Server(context, args.log)
    with open(args.port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(args.port_file + ".tmp", args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
