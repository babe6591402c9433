'use strict';
// RFC 8785 (JSON Canonicalization Scheme): the bytes a Redline signature covers. The
// RFC defines its number and string forms as ECMAScript's JSON.stringify, and its key
// order as UTF-16 code units, which is what Array.prototype.sort compares: in JavaScript
// the scheme is these few lines. Python signs with the same scheme (events/envelope.py).

// Outside a surrogate pair, a surrogate is not a Unicode character: the RFC refuses it
// (and so does the Python side, which cannot encode it as UTF-8).
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

function string(value) {
  if (LONE_SURROGATE.test(value)) {
    throw new TypeError('a string holds a lone surrogate: not canonical JSON');
  }
  return JSON.stringify(value);
}

function serialise(value) {
  if (value === null || typeof value === 'boolean') {
    return JSON.stringify(value);
  }
  if (typeof value === 'number') {
    // NaN and Infinity have no JSON form. Integers beyond 2^53 cannot be told apart once
    // parsed; Python refuses to sign them (I-JSON), so no genuine event holds one.
    if (!Number.isFinite(value)) {
      throw new TypeError(`${value} is not a JSON number`);
    }
    return JSON.stringify(value); // ECMAScript Number::toString, -0 as 0 (RFC 8785 §3.2.2.3)
  }
  if (typeof value === 'string') {
    return string(value);
  }
  if (Array.isArray(value)) {
    return `[${value.map(serialise).join(',')}]`;
  }
  if (typeof value === 'object') {
    const members = Object.keys(value)
      .sort()
      .map((key) => `${string(key)}:${serialise(value[key])}`);
    return `{${members.join(',')}}`;
  }
  throw new TypeError(`a ${typeof value} has no JSON form`);
}

/** The RFC 8785 canonical UTF-8 bytes of a parsed JSON value. */
function canonicalize(value) {
  return Buffer.from(serialise(value), 'utf8');
}

module.exports = { canonicalize };

// `node lib/canonical.js`: one JSON document per stdin line in, its canonical form as
// base64 per line out; the Python tests compare it byte for byte with their own.
if (require.main === module) {
  const lines = require('node:readline').createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    let out;
    try {
      out = canonicalize(JSON.parse(line)).toString('base64');
    } catch (error) {
      out = `error: ${error.message}`;
    }
    process.stdout.write(`${out}\n`);
  });
}
