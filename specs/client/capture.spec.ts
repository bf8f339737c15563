/**
 * What a packet capture of the client ↔ relay links shows (issue 12, docs/SECURITY.md): a marker
 * sent both ways through a virtual connection never appears on either link, in either direction,
 * with TLS to the relay and also with the relay link in plaintext (end-to-end encryption alone
 * holds). The control case, both layers off, finds the marker: the capture does see what crosses.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import type { ConnectOptions } from '../../actors/client/index.ts';
import { makeIdentity } from '../helpers/tls-identity.ts';
import { recordingProxy, type RecordingProxy } from '../helpers/recording-proxy.ts';
import { clientFor, openPair, readAll, relayFor, sha256 } from './fixtures.ts';

/** A payload made of the marker repeated: any plaintext piece of it on the wire would be found. */
function markedPayload(marker: Buffer, bytes: number): Uint8Array {
  const out = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i += marker.length) marker.copy(out, i);
  return new Uint8Array(out);
}

async function tempDir(t: Test): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'alphanet-capture-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

interface Case {
  name: string;
  relayTls: boolean;
  e2e: boolean;
  markerOnWire: boolean;
}

const CASES: Case[] = [
  { name: 'TLS to the relay and end to end (the defaults)', relayTls: true, e2e: true, markerOnWire: false },
  { name: 'plaintext relay link (--plaintext), end to end on', relayTls: false, e2e: true, markerOnWire: false },
  { name: 'control: plaintext relay link and --no-e2e', relayTls: false, e2e: false, markerOnWire: true },
];

for (const c of CASES) {
  t.test(`${c.name}: the marker is ${c.markerOnWire ? 'seen' : 'nowhere'} in the capture, and arrives intact`, async (t) => {
    const tlsIdentity = c.relayTls ? await makeIdentity(t) : undefined;
    const relay = await relayFor(t, tlsIdentity ? { tls: { key: tlsIdentity.key, cert: tlsIdentity.cert } } : {});
    const dir = await tempDir(t);
    const links: RecordingProxy[] = [];
    const through = async (n: number): Promise<ConnectOptions & { port: number }> => {
      const link = await recordingProxy(t, relay.port);
      links.push(link);
      return {
        port: link.port,
        identity: path.join(dir, String(n), 'identity'),
        e2e: c.e2e,
        ...(tlsIdentity ? { tls: { knownRelaysFile: path.join(dir, 'known-relays'), fingerprint: tlsIdentity.fingerprint } } : {}),
      };
    };
    const serverOptions = await through(2);
    const clientOptions = await through(3);
    const server = await clientFor(t, { host: '127.0.0.1', port: serverOptions.port }, 2, serverOptions);
    const client = await clientFor(t, { host: '127.0.0.1', port: clientOptions.port }, 3, clientOptions);
    const [outgoing, accepted] = await openPair(server, client, 7);

    const upMarker = randomBytes(32);
    const downMarker = randomBytes(32);
    const up = markedPayload(upMarker, 256 * 1024);
    const down = markedPayload(downMarker, 256 * 1024);
    const [gotUp, gotDown] = await Promise.all([
      readAll(accepted),
      readAll(outgoing),
      outgoing.send(up).then(() => outgoing.end()),
      accepted.send(down).then(() => accepted.end()),
    ]);
    t.equal(sha256(gotUp), sha256(up), 'the bytes one way are intact');
    t.equal(sha256(gotDown), sha256(down), 'and the other way');

    const [serverLink, clientLink] = links as [RecordingProxy, RecordingProxy];
    const wire = {
      'sender → relay': clientLink.toRelay(),
      'relay → receiver': serverLink.fromRelay(),
      'answer → relay': serverLink.toRelay(),
      'relay → answer reader': clientLink.fromRelay(),
    };
    for (const [where, bytes] of Object.entries(wire)) t.ok(bytes.length >= 256 * 1024, `${where}: the capture has the traffic (${bytes.length} bytes)`);
    const find = (bytes: Buffer, marker: Buffer): boolean => bytes.indexOf(marker) !== -1;
    const found = {
      'sender → relay': find(wire['sender → relay'], upMarker),
      'relay → receiver': find(wire['relay → receiver'], upMarker),
      'answer → relay': find(wire['answer → relay'], downMarker),
      'relay → answer reader': find(wire['relay → answer reader'], downMarker),
    };
    t.same(found, Object.fromEntries(Object.keys(found).map((k) => [k, c.markerOnWire])), c.markerOnWire ? 'the capture sees the plaintext' : 'no link, no direction, carries the marker');
  });
}
