// Verifies a walfeed push request's signature in Node.js (no packages needed):
//
//   const { verifySignature } = require("./verify.js");
//   // in an Express handler with express.raw({ type: "application/json" }):
//   if (!verifySignature(secret, req.get("Walfeed-Signature"), req.body)) res.status(401).end();
//
// The signature is HMAC-SHA256 of "<timestamp>.<raw body>" keyed with the subscription's
// secret, sent as "t=<unix seconds>,v1=<hex>"; a timestamp more than `toleranceSeconds` away
// from now is refused, so a captured request cannot be replayed later.
//
// Run as a script it checks one request: node verify.js SECRET_FILE HEADER BODY_FILE [NOW]
// (exit 0 when valid, 1 when not).
"use strict";
const crypto = require("crypto");
const fs = require("fs");

function verifySignature(secret, header, body, toleranceSeconds = 300, now = Date.now() / 1000) {
  const fields = Object.fromEntries(
    String(header || "").split(",").map((part) => {
      const eq = part.indexOf("=");
      return [part.slice(0, eq), part.slice(eq + 1)];
    }),
  );
  const timestamp = Number.parseInt(fields.t, 10);
  if (!Number.isFinite(timestamp) || !/^[0-9a-f]{64}$/.test(fields.v1 || "")) return false;
  if (Math.abs(now - timestamp) > toleranceSeconds) return false;
  const expected = crypto
    .createHmac("sha256", secret)
    .update(`${timestamp}.`)
    .update(body)
    .digest();
  return crypto.timingSafeEqual(expected, Buffer.from(fields.v1, "hex"));
}

module.exports = { verifySignature };

if (require.main === module) {
  const [secretFile, header, bodyFile, now] = process.argv.slice(2);
  const secret = fs.readFileSync(secretFile, "utf8").replace(/\r?\n$/, "");
  const ok = verifySignature(secret, header, fs.readFileSync(bodyFile), 300,
                             now === undefined ? Date.now() / 1000 : Number(now));
  console.log(ok ? "valid" : "invalid");
  process.exit(ok ? 0 : 1);
}
