/**
 * The bounds' flags reach the relay end to end: `npm start` with --max-pairs-per-host and
 * --frame-timeout refuses the second pair of a host on the wire and closes a stalled frame.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ErrorCode, FailureReason, PacketType } from '../../protocol/index.ts';
import { RawClient, frameHeader, helloSocket, nextError, nextId } from '../helpers/raw-client.ts';
import { pairUp } from '../helpers/relay-fixture.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

t.test('--max-pairs-per-host and --frame-timeout are enforced by the started relay', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'alphanet-bounds-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'cli/relay-main.ts', '--plaintext', '--port', '0', '--db', path.join(dir, 'db.json'), '--max-pairs-per-host', '1', '--frame-timeout', '800'],
    { cwd: ROOT, env: { ...process.env, ALPHANET_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const exited = once(child, 'close');
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let stdout = '';
  child.stdout.setEncoding('utf8');
  const address = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no listening line within 20000 ms')), 20_000);
    child.stdout.on('data', (d: string) => {
      stdout += d;
      const m = /listening on (\S+)(?: \([^)\n]*\))?\n/.exec(stdout);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
  });
  const port = Number(address.split(':').pop());

  const { client: a, virtualIp: aIp } = await RawClient.open({ port, localAddress: '127.0.20.1' });
  const { client: b, virtualIp: bIp } = await RawClient.open({ port, localAddress: '127.0.20.2' });
  t.teardown(() => {
    a.socket.destroy();
    b.socket.destroy();
  });
  const { aPort } = await pairUp(a, aIp.ip, b, bIp.ip, 80);
  const requestId = nextId();
  a.send({ type: PacketType.SocketConnectionRequest, requestId, connectionId: 0, source: { ip: aIp.ip, port: aPort }, destination: { ip: bIp.ip, port: 80 } });
  const refused = await a.next(PacketType.RequestFailed);
  t.same([refused.requestId, refused.reason], [requestId, FailureReason.LimitReached], 'the host\'s second pair is refused');

  const staller = await helloSocket(port, '127.0.20.3');
  t.teardown(() => staller.destroy());
  staller.write(frameHeader(PacketType.ArbitraryData, 1000));
  t.equal((await nextError(staller, 10_000)).code, ErrorCode.FrameTimeout, 'a stalled frame is closed');

  child.kill('SIGTERM');
  const [code] = await exited;
  t.equal(code, 0);
});
