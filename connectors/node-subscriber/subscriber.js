#!/usr/bin/env node
'use strict';
// A Redline blocklist subscriber in Node: follows one blocklist topic from its start,
// believes only records signed by a trusted key (Ed25519 over RFC 8785 canonical JSON),
// lifts only on a signed lift record (a bare tombstone is ignored: anyone able to write
// the topic could write one), ignores replayed older records, keeps the newest heartbeat
// per partition only while the partition matches its signed list head, and answers blocked /
// clear / stale for a USCC or resident ID number. The same contract as the Python
// connector (connectors/subscriber), in another language, with kafkajs.
//
//   node subscriber.js --bootstrap HOST:PORT --topic redline.blocklist.refuse_loans.v1 \
//       --trust-store truststore.yaml --subject-key subject.key [--freshness-bound 30] [ID ...]
//
// With IDs: read the topic up to where it ended at start-up, answer each, exit.
// Without: keep following, and answer each ID read from stdin, one per line.
// Answers are JSON lines on stdout; what happened (caught up, refused records) is JSON
// lines on stderr. Subject IDs are hashed before use and masked in every answer.

const { parseArgs } = require('node:util');
const readline = require('node:readline');
const { Kafka, logLevel } = require('kafkajs');
const { Blocklist, InvalidInput, loadSubjectKey, loadTrustStore } = require('./lib/contract');

const USAGE = `usage: subscriber.js --bootstrap HOST:PORT --topic TOPIC --trust-store FILE
       --subject-key FILE [--freshness-bound SECONDS] [ID ...]`;

function report(event) {
  process.stderr.write(`${JSON.stringify({ at: new Date().toISOString(), ...event })}\n`);
}

function answer(value) {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

function settings(argv) {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      bootstrap: { type: 'string', default: process.env.KAFKA_BOOTSTRAP || '127.0.0.1:9092' },
      topic: { type: 'string' },
      'trust-store': { type: 'string' },
      'subject-key': { type: 'string' },
      'freshness-bound': { type: 'string', default: '30' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  for (const name of ['topic', 'trust-store', 'subject-key']) {
    if (!values[name]) throw new InvalidInput(name, 'required');
  }
  const bound = Number(values['freshness-bound']);
  if (!Number.isFinite(bound) || bound <= 0) {
    throw new InvalidInput('freshness-bound', `a positive number of seconds, got '${values['freshness-bound']}'`);
  }
  return {
    brokers: values.bootstrap.split(',').map((b) => b.trim()).filter(Boolean),
    list: new Blocklist({
      topic: values.topic,
      trust: loadTrustStore(values['trust-store']),
      subjectKey: loadSubjectKey(values['subject-key'], measureOf(values.topic)),
      boundSeconds: bound,
    }),
    ids: positionals,
  };
}

const now = () => Date.now() / 1000;

function measureOf(topic) {
  const match = /^redline\.blocklist\.([a-z0-9_]+)\.v\d+$/.exec(topic);
  if (!match) throw new InvalidInput('topic', `${topic} is not a blocklist topic`);
  return match[1];
}

async function main() {
  let config;
  try {
    config = settings(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`${error.message}\n${USAGE}\n`);
    process.exit(2);
  }
  const { brokers, list, ids } = config;
  const kafka = new Kafka({
    clientId: 'redline-node-subscriber',
    brokers,
    logLevel: logLevel.WARN,
    logCreator: () => ({ namespace, level, log }) =>
      report({ event: 'kafka', level, namespace, message: log.message }),
  });

  // Where the topic ends now: reaching it on every partition is "caught up".
  const admin = kafka.admin();
  await admin.connect();
  const ends = new Map();
  try {
    for (const { partition, high } of await admin.fetchTopicOffsets(list.topic)) {
      ends.set(partition, BigInt(high));
    }
  } finally {
    await admin.disconnect();
  }
  list.setPartitions(ends.keys());
  const next = new Map([...ends.keys()].map((p) => [p, 0n]));
  let caughtUp = false;
  let finish;
  const done = new Promise((resolve) => {
    finish = resolve;
  });

  const reached = () => [...ends].every(([partition, end]) => next.get(partition) >= end);
  const onCaughtUp = () => {
    if (caughtUp || !reached()) return;
    caughtUp = true;
    report({ event: 'caught_up', topic: list.topic, entries: list.entries.size });
    if (ids.length) {
      for (const id of ids) answer(list.check(id, now()));
      finish(0);
    }
  };

  // A group of its own, nothing committed: every start reads the whole compacted list.
  // A 6 s session (Kafka's minimum by default) makes the join quick on the embedded broker.
  const consumer = kafka.consumer({
    groupId: `redline-node-subscriber-${process.pid}-${Date.now()}`,
    sessionTimeout: 6000,
    heartbeatInterval: 1000,
    rebalanceTimeout: 10000,
  });
  consumer.on(consumer.events.CRASH, ({ payload }) => {
    report({ event: 'crash', message: String(payload.error), restart: payload.restart });
    if (!payload.restart) finish(1);
  });
  await consumer.connect();
  await consumer.subscribe({ topic: list.topic, fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ partition, message }) => {
      const outcome = list.apply(
        { partition, key: message.key, value: message.value },
        now(),
      );
      if (outcome.kind === 'refused' || outcome.kind === 'ignored') {
        report({ event: outcome.kind, topic: list.topic, partition, offset: message.offset, ...outcome });
      }
      next.set(partition, BigInt(message.offset) + 1n);
      onCaughtUp();
    },
  });
  onCaughtUp(); // an empty topic is caught up at once

  if (!ids.length) {
    const lines = readline.createInterface({ input: process.stdin });
    lines.on('line', (line) => {
      if (line.trim()) answer(list.check(line, now()));
    });
    lines.on('close', () => finish(0));
  }
  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => finish(0));

  const code = await done;
  await consumer.disconnect().catch((error) => report({ event: 'disconnect', message: String(error) }));
  process.exit(code);
}

main().catch((error) => {
  report({ event: 'fatal', message: String(error && error.stack ? error.stack : error) });
  process.exit(1);
});
