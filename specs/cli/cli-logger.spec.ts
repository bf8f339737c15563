/** The client commands log an expected failure (ERR_RELAY_LOST) as one line with its code and no stack. */
import { PassThrough } from 'node:stream';
import t from 'tap';
import { RelayLostError } from '../../actors/client/index.ts';
import { createCliLogger } from '../../cli/cli-logger.ts';

function capture() {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (c: Buffer) => (text += c));
  return { stream, lines: () => text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>), text: () => text };
}

t.test('an AlphanetError is logged as type, code and message; any other error keeps its stack', async (t) => {
  const out = capture();
  const logger = createCliLogger('alphanet-test', { stream: out.stream });
  logger.warn({ err: new RelayLostError('the connection to the relay was lost'), willReconnect: true }, 'lost the relay');
  logger.error({ err: new Error('a bug') }, 'unexpected');
  await new Promise((resolve) => setImmediate(resolve));
  t.equal(out.text().split('\n').filter(Boolean).length, 2, 'one line each');
  const [lost, bug] = out.lines();
  t.same(lost.err, { type: 'RelayLostError', code: 'ERR_RELAY_LOST', message: 'the connection to the relay was lost' });
  t.equal(lost.msg, 'lost the relay');
  t.match(bug.err, { type: 'Error', message: 'a bug', stack: /at / });
});
