/**
 * A request target the WebSocket port cannot take as a URL (docs/RELAY.md "WebSocket"): a path
 * that starts with `//` (`GET // HTTP/1.1`, `//a:99999`, `//[::1`) is, against a base URL, an
 * authority with no or a bad host, and parsing it threw inside the HTTP server's 'request' and
 * 'upgrade' handlers: one request from anyone who can reach the port was an uncaught exception
 * that ended the relay process (here: the spec process, which tap fails). Each is answered with
 * an HTTP 4xx, as a plain request and as an upgrade, and the relay goes on serving: a WebSocket
 * client is admitted, and a plain request on the same port is answered. A query string still
 * does not change the path, nor does an absolute-form target (`GET http://host/alphanet`): both
 * upgrade to a WebSocket like `/alphanet`.
 */
import t from 'tap';
import { PacketType, encodePacket } from '../../protocol/index.ts';
import { relayFor } from '../client/fixtures.ts';
import { rawHttp, upgradeRequest } from '../helpers/raw-http.ts';
import { RawWsClient } from '../helpers/ws-raw-client.ts';

const TARGETS = ['//', '//a:99999', '//[::1', '//a:99999/alphanet', '//x/alphanet?y=1'];

t.test('a request target starting with // is answered 4xx, as a request and as an upgrade, and the relay goes on', async (t) => {
  const relay = await relayFor(t, { websocket: { port: 0 } });
  const { host, port } = relay.websocket!;
  for (const target of TARGETS) {
    for (const [kind, request] of [
      ['request', `GET ${target} HTTP/1.1\r\nHost: x\r\n\r\n`],
      ['upgrade', upgradeRequest(target)],
    ] as const) {
      const exchange = await rawHttp(host, port, request, '127.0.0.2');
      t.teardown(() => exchange.socket.destroy());
      const status = await exchange.status;
      t.ok(status >= 400 && status < 500, `${kind} of ${JSON.stringify(target)}: answered ${status}`);
      exchange.socket.destroy();
    }
  }
  // Still serving: a plain request on the port, and a WebSocket client that says Hello and is answered.
  const plain = await rawHttp(host, port, 'GET /alphanet HTTP/1.1\r\nHost: x\r\n\r\n', '127.0.0.3');
  t.teardown(() => plain.socket.destroy());
  t.equal(await plain.status, 426, 'a plain GET of the WebSocket path is still answered 426');
  const { client } = await RawWsClient.hello(relay.websocket!.url, { localAddress: '127.0.0.3' });
  t.teardown(() => client.ws.terminate());
  client.send(encodePacket({ type: PacketType.Ping, nonce: 5 }));
  t.match(await client.next(PacketType.Pong), { nonce: 5 }, 'a WebSocket client is admitted and served');
});

t.test('an upgrade of the WebSocket path with a query string, or in absolute form, is a WebSocket all the same', async (t) => {
  const relay = await relayFor(t, { websocket: { port: 0 } });
  const { host, port } = relay.websocket!;
  for (const target of ['/alphanet?x=//a:99999', `http://127.0.0.1:${port}/alphanet`, `HTTP://x/alphanet?y=1`]) {
    const exchange = await rawHttp(host, port, upgradeRequest(target), '127.0.0.2');
    t.teardown(() => exchange.socket.destroy());
    t.equal(await exchange.status, 101, `an upgrade of ${JSON.stringify(target)} is switched to a WebSocket`);
    exchange.socket.destroy();
  }
  const { client } = await RawWsClient.hello(`${relay.websocket!.url}?room=1&x=//a:99999`, { localAddress: '127.0.0.2' });
  t.teardown(() => client.ws.terminate());
  client.send(encodePacket({ type: PacketType.Ping, nonce: 6 }));
  t.match(await client.next(PacketType.Pong), { nonce: 6 }, 'admitted and served');
});
