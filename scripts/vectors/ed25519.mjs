// Generates tests/vectors/discord.json and tests/vectors/standardwebhooks-v1a.json.
//
//   npm install discord-interactions@4.4.0 standardwebhooks@1.3.0
//   node scripts/vectors/ed25519.mjs tests/vectors
//
// Signatures are made with Node's own Ed25519 (node:crypto) from fixed seeds, following each
// provider's documented algorithm: Discord signs `timestamp + body` with its application key;
// Standard Webhooks `v1a` signs `id.timestamp.body` with a `whsk_` key. Discord's official
// verifier, discord-interactions' verifyKey, judges every Discord case (its verdict is recorded
// in `official_verdicts`). No official Standard Webhooks library signs or verifies `v1a`
// (standardwebhooks 1.3.0 for Node and Python, svix 2.9.1: checked), so those cases follow the
// specification alone.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const out = process.argv[2] ?? 'tests/vectors';
const NOW = 1767225600;

function keyFromSeed(byte) {
  const seed = Buffer.alloc(32, byte);
  const der = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]);
  const privateKey = crypto.createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  const publicKey = crypto.createPublicKey(privateKey);
  const raw = publicKey.export({ format: 'der', type: 'spki' }).subarray(-32);
  return { seed, privateKey, raw };
}

const sign = (key, message) => crypto.sign(null, Buffer.from(message), key.privateKey);

// The group order of Ed25519: adding it to S gives a non-canonical signature of the same value.
const L = (1n << 252n) + 27742317777372353535851937790883648493n;
function nonCanonical(signature) {
  const s = BigInt('0x' + Buffer.from(signature.subarray(32)).reverse().toString('hex')) + L;
  const bytes = Buffer.from(s.toString(16).padStart(64, '0'), 'hex').reverse();
  return Buffer.concat([signature.subarray(0, 32), bytes]);
}

async function discord() {
  const { verifyKey } = require('discord-interactions');
  const version = require('discord-interactions/package.json').version;
  const verifier = `discord-interactions@${version} verifyKey()`;
  const app = keyFromSeed(0x11);
  const other = keyFromSeed(0x22);
  const appHex = app.raw.toString('hex');
  const ping = '{"application_id":"1111111111111111111","id":"1234567890123456789","token":"aW50ZXJhY3Rpb24","type":1,"version":1}';
  const command = '{"application_id":"1111111111111111111","data":{"id":"2222222222222222222","name":"ping","type":1},"id":"1234567890123456790","token":"aW50ZXJhY3Rpb24","type":2,"version":1}';
  const unicode = '{"data":{"name":"écho","options":[{"name":"texte","value":"naïve 💬"}]},"id":"1234567890123456791","type":2}';
  const cases = [];
  const add = async (c) => {
    // As Node's http module presents them: a repeated header's values joined with ', '.
    const headers = {};
    for (const [n, v] of c.headers) {
      const name = n.toLowerCase();
      headers[name] = name in headers ? `${headers[name]}, ${v}` : v;
    }
    let verdict;
    try {
      const ok = await verifyKey(c.body, headers['x-signature-ed25519'] ?? '', headers['x-signature-timestamp'] ?? '', c.secrets[0]);
      verdict = { verdict: ok ? 'accept' : 'reject' };
    } catch (err) {
      verdict = { verdict: 'crash', detail: String(err) };
    }
    cases.push({ now: NOW + 2, ...c, official_verdicts: { [verifier]: verdict } });
  };
  const signed = (key, ts, body) => sign(key, ts + body).toString('hex');
  const headers = (signature, ts) => [
    ['Content-Type', 'application/json'],
    ['X-Signature-Ed25519', signature],
    ['X-Signature-Timestamp', String(ts)],
  ];
  await add({ name: 'ping', expected: 'valid', basis: 'provider-docs', description: 'A PING, as Discord sends it when the endpoint is saved.', secrets: [appHex], body: ping, headers: headers(signed(app, NOW, ping), NOW) });
  await add({ name: 'application_command', expected: 'valid', basis: 'provider-docs', description: 'An application command.', secrets: [appHex], body: command, headers: headers(signed(app, NOW, command), NOW) });
  await add({ name: 'unicode_body', expected: 'valid', basis: 'provider-docs', description: 'Non-ASCII UTF-8 in the body: the bytes are signed as sent.', secrets: [appHex], body: unicode, headers: headers(signed(app, NOW, unicode), NOW) });
  await add({ name: 'rotation_receiver_tries_two_keys', expected: 'valid', basis: 'policy', description: 'Signed by the second of two configured public keys.', secrets: [other.raw.toString('hex'), appHex], body: ping, headers: headers(signed(app, NOW, ping), NOW) });
  await add({ name: 'tampered_body', expected: 'invalid', basis: 'provider-docs', failure: 'signature_mismatch', description: 'One byte of the body changed after signing.', secrets: [appHex], body: ping.replace('"type":1', '"type":2'), headers: headers(signed(app, NOW, ping), NOW) });
  await add({ name: 'wrong_key', expected: 'invalid', basis: 'provider-docs', failure: 'signature_mismatch', description: 'Signed by another key.', secrets: [appHex], body: ping, headers: headers(signed(other, NOW, ping), NOW) });
  await add({ name: 'timestamp_header_altered', expected: 'invalid', basis: 'provider-docs', failure: 'signature_mismatch', description: 'The timestamp header is not the one signed.', secrets: [appHex], body: ping, headers: headers(signed(app, NOW, ping), NOW + 1) });
  await add({ name: 'stale_timestamp', expected: 'invalid', basis: 'policy', failure: 'timestamp_out_of_tolerance', description: 'Signed an hour before the receiver\'s clock: a replay. discord-interactions checks no time and accepts it.', secrets: [appHex], body: ping, headers: headers(signed(app, NOW - 3600, ping), NOW - 3600) });
  await add({ name: 'future_timestamp', expected: 'invalid', basis: 'policy', failure: 'timestamp_out_of_tolerance', description: 'Signed an hour ahead of the receiver\'s clock.', secrets: [appHex], body: ping, headers: headers(signed(app, NOW + 3600, ping), NOW + 3600) });
  await add({ name: 'missing_signature_header', expected: 'invalid', basis: 'provider-docs', failure: 'missing_header', description: 'No X-Signature-Ed25519.', secrets: [appHex], body: ping, headers: headers(signed(app, NOW, ping), NOW).filter(([n]) => n !== 'X-Signature-Ed25519') });
  await add({ name: 'missing_timestamp_header', expected: 'invalid', basis: 'provider-docs', failure: 'missing_header', description: 'No X-Signature-Timestamp.', secrets: [appHex], body: ping, headers: headers(signed(app, NOW, ping), NOW).filter(([n]) => n !== 'X-Signature-Timestamp') });
  await add({ name: 'malformed_signature_not_hex', expected: 'invalid', basis: 'provider-docs', failure: 'malformed_header', description: 'Not hex.', secrets: [appHex], body: ping, headers: headers('z'.repeat(128), NOW) });
  await add({ name: 'malformed_signature_short', expected: 'invalid', basis: 'provider-docs', failure: 'malformed_header', description: 'One byte short of 64.', secrets: [appHex], body: ping, headers: headers(signed(app, NOW, ping).slice(0, 126), NOW) });
  await add({ name: 'upper_case_hex', expected: 'invalid', basis: 'policy', failure: 'malformed_header', description: 'The right signature in upper-case hex: Discord sends lower case; the presets refuse upper-case hex as for every hex provider. discord-interactions accepts it.', secrets: [appHex], body: ping, headers: headers(signed(app, NOW, ping).toUpperCase(), NOW) });
  await add({ name: 'non_canonical_s', expected: 'invalid', basis: 'policy', failure: 'signature_mismatch', description: 'The right signature with the group order added to S: the same value in a non-canonical (malleable) form, refused by strict verification (RFC 8032 §5.1.7).', secrets: [appHex], body: ping, headers: headers(nonCanonical(sign(app, String(NOW) + ping)).toString('hex'), NOW) });
  await add({ name: 'duplicate_signature_headers', expected: 'invalid', basis: 'policy', failure: 'malformed_header', description: 'Two X-Signature-Ed25519 lines, the first wrong and the second right: refused rather than guessed at.', secrets: [appHex], body: ping, headers: [['X-Signature-Ed25519', signed(other, NOW, ping)], ...headers(signed(app, NOW, ping), NOW)] });
  return {
    $comment: 'Made by scripts/vectors/ed25519.mjs. Do not edit by hand.',
    scheme: 'discord',
    provenance: 'docs-recipe',
    generated_by: `node:crypto Ed25519 (Node ${process.version}), judged by ${verifier}`,
    signing_time: NOW,
    secrets_are: "the application's public key, 64 hex digits (Ed25519); signatures over timestamp + body",
    tolerance_seconds: 300,
    cases,
  };
}

function v1a() {
  const version = require('standardwebhooks/package.json').version;
  const key = keyFromSeed(0x33);
  const other = keyFromSeed(0x44);
  const whpk = (k) => 'whpk_' + k.raw.toString('base64');
  const secret = 'whsec_' + Buffer.alloc(24, 7).toString('base64');
  const mac = (id, ts, body) => crypto.createHmac('sha256', Buffer.alloc(24, 7)).update(`${id}.${ts}.${body}`).digest('base64');
  const id = 'msg_2KWPBgLlAfxdpx2AI54pPJ85f4W';
  const body = '{"type":"invoice.paid","data":{"id":"in_1","amount":1200}}';
  const v1aSig = (k, ts, b = body, i = id) => 'v1a,' + sign(k, `${i}.${ts}.${b}`).toString('base64');
  const headers = (signature, ts = NOW, i = id) => [
    ['Content-Type', 'application/json'],
    ['webhook-id', i],
    ['webhook-timestamp', String(ts)],
    ['webhook-signature', signature],
  ];
  const cases = [
    { name: 'v1a', expected: 'valid', basis: 'provider-docs', description: 'One v1a signature; the receiver holds the public key.', secrets: [whpk(key)], body, headers: headers(v1aSig(key, NOW)) },
    { name: 'v1a_among_other_versions', expected: 'valid', basis: 'provider-docs', description: 'A v1a signature after a v2 entry the receiver does not know.', secrets: [whpk(key)], body, headers: headers('v2,bm90LWEtc2lnbmF0dXJl ' + v1aSig(key, NOW)) },
    { name: 'v1a_rotation_two_keys', expected: 'valid', basis: 'policy', description: 'Signed by the second of two public keys.', secrets: [whpk(other), whpk(key)], body, headers: headers(v1aSig(key, NOW)) },
    { name: 'v1_or_v1a_receiver_holds_both', expected: 'valid', basis: 'provider-docs', description: 'A wrong v1 MAC and a right v1a signature; the receiver holds a secret and a public key: either kind matching is enough.', secrets: [secret, whpk(key)], body, headers: headers('v1,' + mac(id, NOW, body + 'x') + ' ' + v1aSig(key, NOW)) },
    { name: 'v1_with_public_key_beside', expected: 'valid', basis: 'provider-docs', description: 'A right v1 MAC; the receiver holds the secret and a public key.', secrets: [secret, whpk(key)], body, headers: headers('v1,' + mac(id, NOW, body)) },
    { name: 'v1a_wrong_key', expected: 'invalid', basis: 'provider-docs', failure: 'signature_mismatch', description: 'Signed by another key.', secrets: [whpk(key)], body, headers: headers(v1aSig(other, NOW)) },
    { name: 'v1a_tampered_body', expected: 'invalid', basis: 'provider-docs', failure: 'signature_mismatch', description: 'The body changed after signing.', secrets: [whpk(key)], body: body.replace('1200', '1300'), headers: headers(v1aSig(key, NOW)) },
    { name: 'v1a_id_altered', expected: 'invalid', basis: 'provider-docs', failure: 'signature_mismatch', description: 'webhook-id is not the one signed.', secrets: [whpk(key)], body, headers: headers(v1aSig(key, NOW), NOW, id + 'x') },
    { name: 'v1a_stale', expected: 'invalid', basis: 'provider-docs', failure: 'timestamp_out_of_tolerance', description: 'Signed an hour before the clock.', secrets: [whpk(key)], body, headers: headers(v1aSig(key, NOW - 3600), NOW - 3600) },
    { name: 'v1a_malformed', expected: 'invalid', basis: 'policy', failure: 'malformed_header', description: 'A v1a entry that is not the base64 of 64 bytes, with a public key configured.', secrets: [whpk(key)], body, headers: headers('v1a,' + Buffer.alloc(63, 1).toString('base64')) },
    { name: 'v1a_only_receiver_holds_a_secret', expected: 'invalid', basis: 'provider-docs', failure: 'malformed_header', description: 'Only a v1a signature, and the receiver holds only a secret: v1a entries are ignored, which leaves no signature to check.', secrets: [secret], body, headers: headers(v1aSig(key, NOW)) },
    { name: 'v1_mac_under_v1a', expected: 'invalid', basis: 'policy', failure: 'malformed_header', description: 'A v1 MAC labelled v1a: 32 bytes where an Ed25519 signature has 64.', secrets: [secret, whpk(key)], body, headers: headers('v1a,' + mac(id, NOW, body)) },
  ].map((c) => ({ now: NOW + 2, official_verdicts: {}, ...c }));
  return {
    $comment: 'Made by scripts/vectors/ed25519.mjs. Do not edit by hand.',
    scheme: 'standardwebhooks-v1a',
    provenance: 'docs-recipe',
    generated_by: `node:crypto Ed25519 and HMAC-SHA256 (Node ${process.version}) following the Standard Webhooks specification; no official library implements v1a (standardwebhooks@${version} for Node, standardwebhooks 1.3.0 for Python, svix 2.9.1: checked), so official_verdicts are empty`,
    signing_time: NOW,
    secrets_are: 'whpk_ public keys (standard base64 of 32 bytes) and whsec_ secrets, mixed; a match with any one is enough',
    tolerance_seconds: 300,
    cases,
  };
}

fs.writeFileSync(path.join(out, 'discord.json'), JSON.stringify(await discord(), null, 2) + '\n');
fs.writeFileSync(path.join(out, 'standardwebhooks-v1a.json'), JSON.stringify(v1a(), null, 2) + '\n');
