'use strict';
// The blocklist contract, as the Python connector applies it (events/signing.py,
// events/privacy.py, connectors/subscriber/records.py and freshness.py): a record is
// believed only when a trusted key signed its canonical JSON, may issue its type from its
// source, and it fits the topic it sits in. Pure code: no Kafka, no clock of its own.

const crypto = require('node:crypto');
const fs = require('node:fs');
const YAML = require('yaml');
const { canonicalize } = require('./canonical');

const HEARTBEAT_KEY = 'heartbeat';
// Entries before v3 carry no list version: 0, older than any versioned record.
const ENTRY_TYPES = new Set(['redline.blocklist.entry.v1', 'redline.blocklist.entry.v2', 'redline.blocklist.entry.v3']);
const LIFTED_TYPE = 'redline.blocklist.lifted.v1';
// A v1 heartbeat has no list head, so it vouches for nothing (refused, as in Python).
const HEARTBEAT_TYPE = 'redline.blocklist.heartbeat.v2';
const EMPTY_DIGEST = '0'.repeat(64);
const MAX_EVENT_BYTES = 256 * 1024;
const MAX_CLOCK_SKEW_S = 5;
const SUBJECT_HASH = /^[0-9a-f]{64}$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i;

/** A record the list will not apply; `reason` is the Python connector's code for it. */
class Refusal extends Error {
  constructor(reason, detail) {
    super(detail);
    this.reason = reason;
  }
}

/** Bad input (a subject ID, a file): names the field and the reason. */
class InvalidInput extends Error {
  constructor(field, reason) {
    super(`${field}: ${reason}`);
    this.field = field;
    this.reason = reason;
  }
}

function strictBase64(value, bytes) {
  if (typeof value !== 'string' || value.length % 4 !== 0 || !BASE64.test(value)) {
    throw new Error('not base64');
  }
  const decoded = Buffer.from(value, 'base64');
  if (decoded.length !== bytes) {
    throw new Error(`expected ${bytes} bytes, got ${decoded.length}`);
  }
  return decoded;
}

/** Python's fnmatch.fnmatchcase, which the trust store's `may_issue` patterns use. */
function fnmatchRegExp(pattern) {
  let out = '';
  for (let i = 0; i < pattern.length; ) {
    const c = pattern[i++];
    if (c === '*') {
      if (!out.endsWith('.*')) out += '.*';
    } else if (c === '?') {
      out += '.';
    } else if (c === '[') {
      let j = i;
      if (pattern[j] === '!') j++;
      if (pattern[j] === ']') j++;
      while (j < pattern.length && pattern[j] !== ']') j++;
      if (j >= pattern.length) {
        out += '\\[';
      } else {
        let set = pattern.slice(i, j).replace(/\\/g, '\\\\');
        i = j + 1;
        if (set.startsWith('!')) set = `^${set.slice(1)}`;
        else if (set.startsWith('^') || set.startsWith('[')) set = `\\${set}`;
        out += `[${set}]`;
      }
    } else {
      out += c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    }
  }
  return new RegExp(`^(?:${out})$`, 's');
}

/** `{keys: [{key_id, issuer, source, public_key, may_issue}]}`, read as strictly as Python. */
function loadTrustStore(path) {
  let document;
  try {
    document = YAML.parse(fs.readFileSync(path, 'utf8'));
  } catch (error) {
    throw new InvalidInput('trust-store', `cannot read ${path}: ${error.message}`);
  }
  if (!document || !Array.isArray(document.keys)) {
    throw new InvalidInput('trust-store', `${path}: keys: must be a list of key entries`);
  }
  const keys = new Map();
  document.keys.forEach((entry, index) => {
    const where = `${path}: keys[${index}]`;
    for (const field of ['key_id', 'issuer', 'source', 'public_key']) {
      if (typeof entry?.[field] !== 'string' || !entry[field].trim()) {
        throw new InvalidInput('trust-store', `${where}.${field}: must be a non-empty string`);
      }
    }
    const patterns = entry.may_issue;
    if (!Array.isArray(patterns) || !patterns.length || !patterns.every((p) => typeof p === 'string' && p)) {
      throw new InvalidInput('trust-store', `${where}.may_issue: must be a non-empty list of strings`);
    }
    if (keys.has(entry.key_id)) {
      throw new InvalidInput('trust-store', `${where}.key_id: duplicate key id`);
    }
    let raw;
    try {
      raw = strictBase64(entry.public_key, 32);
    } catch {
      throw new InvalidInput('trust-store', `${where}.public_key: not a raw Ed25519 key`);
    }
    keys.set(entry.key_id, {
      keyId: entry.key_id,
      issuer: entry.issuer,
      source: entry.source,
      publicKey: crypto.createPublicKey({
        key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') },
        format: 'jwk',
      }),
      mayIssue: patterns.map(fnmatchRegExp),
    });
  });
  return keys;
}

/** HKDF-SHA256 of the master key for one measure's list (events/subject_keys.py). */
function deriveMeasureKey(master, measure) {
  return Buffer.from(
    crypto.hkdfSync('sha256', master, Buffer.from('redline-blocklist-subject-keys-v1'), Buffer.from(`redline-subject-key:${measure}`, 'utf8'), 32),
  );
}

/**
 * The subject key of `measure`'s list: a file of `<measure> <hex>` lines (what a
 * subscriber is given: only its measures' keys), or one bare hex master key to derive
 * it from. Its id is what every entry, lift and heartbeat of that list names.
 */
function loadSubjectKey(path, measure) {
  let text;
  try {
    text = fs.readFileSync(path, 'utf8');
  } catch (error) {
    throw new InvalidInput('subject-key', `cannot read ${path}: ${error.message}`);
  }
  const lines = text.split(/\r?\n/).map((l) => l.trim().split(/\s+/)).filter((p) => p[0]);
  let key;
  const isHex = (hex) => /^([0-9a-fA-F]{2})+$/.test(hex) && hex.length >= 32;
  if (lines.length === 1 && lines[0].length === 1) {
    if (!isHex(lines[0][0])) throw new InvalidInput('subject-key', `${path}: expected at least 16 bytes as hex`);
    key = deriveMeasureKey(Buffer.from(lines[0][0], 'hex'), measure);
  } else {
    const line = lines.find((p) => p.length === 2 && p[0] === measure);
    if (!line || !isHex(line[1])) throw new InvalidInput('subject-key', `${path}: no hex key for measure ${measure}`);
    key = Buffer.from(line[1], 'hex');
  }
  const keyId = crypto
    .createHash('sha256')
    .update(Buffer.concat([Buffer.from('redline-subject-key:'), key]))
    .digest('hex')
    .slice(0, 16);
  return { key, keyId };
}

const USCC_ALPHABET = '0123456789ABCDEFGHJKLMNPQRTUWXY';
const USCC_WEIGHTS = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];
const RESIDENT_WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const RESIDENT_CHECKS = '10X98765432';

function checkAlphabet(value, alphabet) {
  [...value].forEach((char, index) => {
    if (!alphabet.includes(char)) {
      throw new Error(`character '${char}' at position ${index + 1} is not allowed`);
    }
  });
}

function validateUscc(code) {
  checkAlphabet(code, USCC_ALPHABET);
  const total = [...code.slice(0, 17)].reduce(
    (sum, char, i) => sum + USCC_ALPHABET.indexOf(char) * USCC_WEIGHTS[i],
    0,
  );
  const expected = USCC_ALPHABET[(31 - (total % 31)) % 31];
  if (code[17] !== expected) {
    throw new Error(`check character is '${code[17]}', expected '${expected}'`);
  }
}

function validateResidentId(number, today) {
  checkAlphabet(number.slice(0, 17), '0123456789');
  checkAlphabet(number, '0123456789X');
  const [year, month, day] = [+number.slice(6, 10), +number.slice(10, 12), +number.slice(12, 14)];
  const born = new Date(0);
  born.setUTCFullYear(year, month - 1, day); // no 1900 offset for years below 100
  if (year < 1 || born.getUTCFullYear() !== year || born.getUTCMonth() !== month - 1 || born.getUTCDate() !== day) {
    throw new Error(`birth date '${number.slice(6, 14)}' is not a real date`);
  }
  if (born > today) {
    throw new Error(`birth date '${number.slice(6, 14)}' is in the future`);
  }
  const total = [...number.slice(0, 17)].reduce((sum, char, i) => sum + Number(char) * RESIDENT_WEIGHTS[i], 0);
  const expected = RESIDENT_CHECKS[total % 11];
  if (number[17] !== expected) {
    throw new Error(`check character is '${number[17]}', expected '${expected}'`);
  }
}

/** The normalised USCC or resident ID number, or InvalidInput('subject', why not). */
function normaliseSubjectId(raw, now = new Date()) {
  if (typeof raw !== 'string' || !raw.trim()) {
    throw new InvalidInput('subject', 'required: a USCC or resident ID number');
  }
  const value = raw.trim().toUpperCase();
  if (value.length !== 18) {
    throw new InvalidInput('subject', `a USCC or resident ID number has 18 characters, got ${value.length}`);
  }
  try {
    validateUscc(value);
    return value;
  } catch (asUscc) {
    try {
      const today = new Date(Date.UTC(now.getFullYear(), now.getMonth(), now.getDate()));
      validateResidentId(value, today);
      return value;
    } catch (asPerson) {
      throw new InvalidInput(
        'subject',
        `not a valid USCC (${asUscc.message}) nor resident ID number (${asPerson.message})`,
      );
    }
  }
}

/** HMAC-SHA256 of the normalised ID under the subject key, hex: the record key. */
function subjectHash(subjectKey, normalisedId) {
  return crypto.createHmac('sha256', subjectKey.key).update(normalisedId, 'ascii').digest('hex');
}

/** First 4 and last 2 characters, as the Python side masks an ID in logs and notices. */
function maskIdentifier(value) {
  const text = String(value).trim();
  return text.length <= 6 ? '*'.repeat(text.length) : text.slice(0, 4) + '*'.repeat(text.length - 6) + text.slice(-2);
}

function parseTime(value, field) {
  if (typeof value !== 'string' || !RFC3339.test(value)) {
    throw new Refusal('invalid_event', `${field}: not a date-time with a time zone`);
  }
  const millis = Date.parse(value);
  if (Number.isNaN(millis)) {
    throw new Refusal('invalid_event', `${field}: not a real date-time`);
  }
  return millis / 1000;
}

/** Parse the envelope, then prove who signed it and that they may: as TrustStore.verify. */
function verifiedEvent(value, trust) {
  if (value.length > MAX_EVENT_BYTES) {
    throw new Refusal('invalid_event', `${value.length} bytes exceeds the limit of ${MAX_EVENT_BYTES}`);
  }
  let event;
  try {
    event = JSON.parse(value.toString('utf8'));
  } catch (error) {
    throw new Refusal('invalid_event', `not a JSON document: ${error.message}`);
  }
  if (event === null || typeof event !== 'object' || Array.isArray(event)) {
    throw new Refusal('invalid_event', 'expected a JSON object');
  }
  for (const field of ['id', 'source', 'type', 'subject', 'dataschema']) {
    if (typeof event[field] !== 'string' || !event[field]) {
      throw new Refusal('invalid_event', `${field}: required, a non-empty string`);
    }
  }
  if (event.specversion !== '1.0') {
    throw new Refusal('invalid_event', "specversion: must be '1.0'");
  }
  parseTime(event.time, 'time');
  if (event.data === null || typeof event.data !== 'object' || Array.isArray(event.data)) {
    throw new Refusal('invalid_event', 'data: must be an object');
  }
  const { signingkey: keyId, signature } = event;
  if (typeof keyId !== 'string' || !keyId || typeof signature !== 'string' || !signature) {
    throw new Refusal('signature_malformed', 'the event has no signingkey or signature');
  }
  let signatureBytes;
  try {
    signatureBytes = strictBase64(signature, 64);
  } catch (error) {
    throw new Refusal('signature_malformed', `signature: ${error.message}`);
  }
  const key = trust.get(keyId);
  if (key === undefined) {
    throw new Refusal('signature_unknown_key', `no trusted key '${keyId}'`);
  }
  // What was signed: the event as sent, without its signature (attributes that are
  // absent are absent, never null).
  const signed = Object.fromEntries(
    Object.entries(event).filter(([name, v]) => name !== 'signature' && v !== null),
  );
  let message;
  try {
    message = canonicalize(signed);
  } catch (error) {
    throw new Refusal('signature_malformed', `cannot canonicalise: ${error.message}`);
  }
  if (!crypto.verify(null, message, key.publicKey, signatureBytes)) {
    throw new Refusal('signature_bad_signature', `signature does not match key '${key.keyId}'`);
  }
  if (event.source !== key.source) {
    throw new Refusal('signature_source_mismatch', `key '${key.keyId}' signs as '${key.source}', event says '${event.source}'`);
  }
  if (!key.mayIssue.some((pattern) => pattern.test(event.type))) {
    throw new Refusal('signature_issuer_not_allowed', `${key.issuer} may not issue ${event.type}`);
  }
  return event;
}

/** What one listed entry adds to (and removes from) its partition's digest
 * (events/blocklist_head.py): SHA-256 of "<subject hash>:<version>". */
function itemDigest(subjectHash, version) {
  return crypto.createHash('sha256').update(`${subjectHash}:${version}`, 'ascii').digest();
}

function xorDigest(hex, item) {
  const value = Buffer.from(hex, 'hex');
  for (let i = 0; i < value.length; i++) value[i] ^= item[i];
  return value.toString('hex');
}

/** A heartbeat cannot vouch for a moment after it arrived (freshness.effective_as_of). */
function effectiveAsOf(asOf, receivedAt) {
  if (asOf > receivedAt + MAX_CLOCK_SKEW_S) return null;
  return Math.min(asOf, receivedAt);
}

/**
 * One measure's list: the blocked subjects by keyed hash, and the newest heartbeat per
 * partition. `apply` takes records in offset order; `check` answers a raw subject ID.
 */
class Blocklist {
  constructor({ topic, trust, subjectKey, boundSeconds }) {
    const match = /^redline\.blocklist\.([a-z0-9_]+)\.v\d+$/.exec(topic);
    if (!match) throw new InvalidInput('topic', `${topic} is not a blocklist topic`);
    this.topic = topic;
    this.measure = match[1];
    this.trust = trust;
    this.subjectKey = subjectKey;
    this.boundSeconds = boundSeconds;
    this.entries = new Map(); // subject hash -> what the entry says
    this.lifted = new Map(); // subject hash -> version of the signed lift
    this.heads = new Map(); // partition -> { entries, digest } of what this list holds
    this.heartbeats = new Map(); // partition -> epoch seconds it vouches for (null: unheard)
  }

  /** The topic's partitions: one never heard from vouches for nothing, so it is stale. */
  setPartitions(partitions) {
    for (const partition of partitions) {
      if (!this.heartbeats.has(partition)) this.heartbeats.set(partition, null);
    }
  }

  /** What a record means for the list; never throws for bad data, refuses it instead. */
  apply(record, now) {
    try {
      return this.read(record, now);
    } catch (error) {
      if (error instanceof Refusal) return { kind: 'refused', reason: error.reason, detail: error.message };
      throw error;
    }
  }

  read({ partition, key, value }, now) {
    this.setPartitions([partition]);
    if (key === null || key === undefined) {
      throw new Refusal('invalid_key', 'a blocklist record needs a key');
    }
    const text = key.toString('latin1');
    if (text === HEARTBEAT_KEY) return this.heartbeat(partition, value, now);
    if (!SUBJECT_HASH.test(text)) {
      throw new Refusal('invalid_key', `key '${text.slice(0, 80)}' is not a subject hash`);
    }
    if (value === null || value === undefined) {
      // Unsigned: anyone able to write the topic could write it. The block stays.
      return { kind: 'ignored', reason: 'unsigned_tombstone', subjectHash: text };
    }
    const event = verifiedEvent(value, this.trust);
    const data = event.data;
    if (!ENTRY_TYPES.has(event.type) && event.type !== LIFTED_TYPE) {
      throw new Refusal('wrong_event_type', `${event.type} under a subject key`);
    }
    if (data.measure !== this.measure) throw new Refusal('wrong_measure', `record of ${data.measure} on ${this.topic}`);
    if (data.key_id !== this.subjectKey.keyId) {
      throw new Refusal('wrong_subject_key', `hashed under subject key ${data.key_id}, this subscriber holds ${this.subjectKey.keyId}`);
    }
    if (data.subject_hash !== text) throw new Refusal('key_mismatch', 'the record key is not the record\'s subject hash');
    const version = Number.isSafeInteger(data.version) && data.version >= 0 ? data.version : 0;
    if (!this.newer(text, version)) {
      return { kind: 'ignored', reason: 'replayed', subjectHash: text };
    }
    if (event.type === LIFTED_TYPE) {
      const held = this.entries.get(text);
      if (held) this.hold(held.partition, text, held.version);
      this.entries.delete(text);
      this.lifted.set(text, version);
      return { kind: 'remove', subjectHash: text, removed: Boolean(held) };
    }
    if ((data.target ?? 'subject') !== 'subject') {
      throw new Refusal('unsupported_target', `held against a ${data.target}: this subscriber answers by subject only`);
    }
    if (!Array.isArray(data.cases) || !data.cases.length || typeof data.masked_name !== 'string') {
      throw new Refusal('invalid_event', 'data: an entry needs masked_name and at least one case');
    }
    const previous = this.entries.get(text);
    if (previous) this.hold(previous.partition, text, previous.version);
    this.hold(partition, text, version);
    this.lifted.delete(text);
    this.entries.set(text, {
      partition,
      version,
      eventId: event.id,
      maskedName: data.masked_name,
      department: data.department,
      subjectKind: data.subject_kind,
      cases: data.cases.map((c) => ({
        case_id: c.case_id,
        legal_basis: c.legal_basis,
        since: c.since,
        rule: c.rule ?? '',
        facts: c.facts ?? [],
      })),
    });
    return { kind: 'upsert', subjectHash: text, eventId: event.id };
  }

  heartbeat(partition, value, now) {
    if (value === null || value === undefined) {
      throw new Refusal('invalid_event', 'a heartbeat record without value');
    }
    const event = verifiedEvent(value, this.trust);
    const data = event.data;
    if (event.type !== HEARTBEAT_TYPE) throw new Refusal('wrong_event_type', `${event.type} under the heartbeat key`);
    if (data.measure !== this.measure || data.partition !== partition) {
      throw new Refusal('wrong_partition', `heartbeat of ${data.measure}/${data.partition} on ${this.topic}/${partition}`);
    }
    if (data.key_id !== this.subjectKey.keyId) {
      throw new Refusal('wrong_subject_key', `builder hashes under ${data.key_id}, this subscriber holds ${this.subjectKey.keyId}`);
    }
    if (!Number.isSafeInteger(data.entries) || typeof data.digest !== 'string') {
      throw new Refusal('no_list_head', 'a heartbeat without a list head');
    }
    const head = this.heads.get(partition) ?? { entries: 0, digest: EMPTY_DIGEST };
    if (head.entries !== data.entries || head.digest !== data.digest) {
      // Not the list the builder signed: vouch for nothing until a heartbeat matches.
      this.heartbeats.set(partition, null);
      return { kind: 'ignored', reason: 'diverged', partition, held: head.entries, signed: data.entries };
    }
    const asOf = parseTime(data.as_of, 'data.as_of');
    const vouched = effectiveAsOf(asOf, now);
    if (vouched === null) {
      return { kind: 'ignored', reason: 'heartbeat_from_the_future', partition };
    }
    this.heartbeats.set(partition, vouched);
    return { kind: 'heartbeat', partition, vouched };
  }

  /** Whether a record of `version` is newer than the entry or lift held (else a replay). */
  newer(subjectHash, version) {
    const held = Math.max(this.entries.get(subjectHash)?.version ?? -1, this.lifted.get(subjectHash) ?? -1);
    return version > held || (version === 0 && held <= 0);
  }

  /** Add or remove (the same XOR) one entry in its partition's head. */
  hold(partition, subjectHash, version) {
    const head = this.heads.get(partition) ?? { entries: 0, digest: EMPTY_DIGEST };
    const present = this.entries.get(subjectHash);
    const removing = present && present.partition === partition && present.version === version;
    this.heads.set(partition, {
      entries: head.entries + (removing ? -1 : 1),
      digest: xorDigest(head.digest, itemDigest(subjectHash, version)),
    });
  }

  /** The oldest heartbeat over every partition; null while any is unheard. */
  watermark() {
    let oldest = null;
    for (const seen of this.heartbeats.values()) {
      if (seen === null) return null;
      if (oldest === null || seen < oldest) oldest = seen;
    }
    return oldest;
  }

  /** blocked / clear / stale for a raw ID, or invalid naming the field and the reason. */
  check(raw, now) {
    let hash;
    try {
      hash = subjectHash(this.subjectKey, normaliseSubjectId(raw, new Date(now * 1000)));
    } catch (error) {
      if (error instanceof InvalidInput) return { status: 'invalid', field: error.field, reason: error.reason };
      throw error;
    }
    const subject = maskIdentifier(raw);
    const entry = this.entries.get(hash);
    const known = entry
      ? {
          status: 'blocked',
          measure: this.measure,
          subject,
          subject_hash: hash,
          masked_name: entry.maskedName,
          department: entry.department,
          legal_basis: [...new Set(entry.cases.map((c) => c.legal_basis))],
          cases: entry.cases,
        }
      : { status: 'clear', measure: this.measure, subject };
    const mark = this.watermark();
    if (mark === null || now - mark > this.boundSeconds) {
      // Fail closed: never "clear" on a list nobody vouched for lately.
      return {
        status: 'stale',
        measure: this.measure,
        subject,
        watermark: mark === null ? null : new Date(mark * 1000).toISOString(),
        age_seconds: mark === null ? null : Math.round((now - mark) * 1000) / 1000,
        bound_seconds: this.boundSeconds,
        last_known: known,
      };
    }
    return known;
  }
}

module.exports = {
  Blocklist,
  deriveMeasureKey,
  InvalidInput,
  Refusal,
  loadSubjectKey,
  loadTrustStore,
  maskIdentifier,
  normaliseSubjectId,
  subjectHash,
  verifiedEvent,
};
