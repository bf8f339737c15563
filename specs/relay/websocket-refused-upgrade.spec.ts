/**
 * An upgrade the WebSocket port refuses (docs/RELAY.md "WebSocket"): a wrong path (404) or a page
 * from an origin not allowed (403). Once Node's HTTP server hands a socket to 'upgrade' it no
 * longer times it out, so the relay must close it itself after the answer: ending its side only
 * left the socket open for as long as the peer kept its own side open, a descriptor per request
 * held by anyone, and a relay that waited on them to stop. Here the peer reads the answer and
 * keeps its side open, writing nothing more; the relay still lets the connection go at once, so
 * it stops promptly with such peers still connected (on ws, where its HTTP server waits for every
 * connection it accepted; wss destroys its sockets at close either way). The same over wss.
 */
import t from 'tap';
import { relayFor } from '../client/fixtures.ts';
import { rawHttp, upgradeRequest } from '../helpers/raw-http.ts';
import { makeIdentity } from '../helpers/tls-identity.ts';
import { waitFor, within } from '../helpers/wait.ts';

/** How long the relay may take to let a refused connection go, or to stop. */
const LET_GO_MS = 3_000;

/** TCP sockets open in this process (the relay's and the spec's: listeners are not counted). */
function openTcpSockets(): number {
  return process.getActiveResourcesInfo().filter((kind) => kind === 'TCPSocketWrap').length;
}

for (const [what, request, expected] of [
  ['a wrong path', upgradeRequest('/not-alphanet'), 404],
  ['an origin not allowed', upgradeRequest('/alphanet', ['Origin: https://evil.example']), 403],
] as const) {
  t.test(`an upgrade refused for ${what} (${expected}) is let go though the peer keeps its side open (ws)`, async (t) => {
    const relay = await relayFor(t, { websocket: { port: 0, allowOrigins: ['https://game.example'] } });
    const { host, port } = relay.websocket!;
    const exchange = await rawHttp(host, port, request, '127.0.0.2', { allowHalfOpen: true });
    t.teardown(() => exchange.socket.destroy());
    t.equal(await exchange.status, expected, `answered ${expected}`);
    await within('the relay to end its side after the answer', exchange.ended, LET_GO_MS);
    t.equal(exchange.socket.writable, true, 'the peer keeps its own side open');
    // The relay runs in this process: once it has let its socket go, the peer's is the only one.
    await waitFor(() => openTcpSockets() === 1, "the relay to close its socket of the refused upgrade (only the peer's left open)", LET_GO_MS);
    t.pass('the relay closed its socket while the peer kept its side open');
    await within('the relay to stop while the refused peer keeps its side open', relay.close(), LET_GO_MS);
    t.pass('stopped');
  });

  t.test(`an upgrade refused for ${what} (${expected}) is let go though the peer keeps its side open (wss)`, async (t) => {
    const identity = await makeIdentity(t);
    const relay = await relayFor(t, { tls: { key: identity.key, cert: identity.cert }, websocket: { port: 0, allowOrigins: ['https://game.example'] } });
    const { host, port } = relay.websocket!;
    const exchange = await rawHttp(host, port, request, '127.0.0.2', { allowHalfOpen: true, tls: true });
    t.teardown(() => exchange.socket.destroy());
    t.equal(await exchange.status, expected, `answered ${expected}`);
    await within('the relay to end its side after the answer', exchange.ended, LET_GO_MS);
    await waitFor(() => openTcpSockets() === 1, "the relay to close its socket of the refused upgrade (only the peer's left open)", LET_GO_MS);
    t.pass('the relay closed its socket while the peer kept its side open');
  });
}
